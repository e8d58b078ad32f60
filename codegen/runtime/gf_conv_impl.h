/*
 * Convolution kernels for one input element type. Included by gf_conv.c twice, with
 *   XT        int8_t or uint8_t (the input activation type)
 *   GF_S(n)   n##_s8 or n##_u8   (names of this copy)
 *   GF_C_*    which sections this copy compiles (gf_conv.c, from the GF_K_* selection of gf_runtime.h)
 * No include guard on purpose. The per-pixel helpers serve several sections.
 */

/* =============================================================================================
 * Per-pixel path (borders, tails, any geometry): R <= 4 output channels of one group, one
 * output pixel, taps clipped to the input once per pixel.
 *   xg: first input channel of the group; wb: weights of the first output channel of the block.
 */
GF_MAYBE_UNUSED
static void GF_S(gf_conv_pix)(const XT *xg, int32_t cg, const int8_t *wb, int32_t R, const gf_conv_shape_t *s,
                               int32_t oy, int32_t ox, int32_t *acc)
{
    int32_t khw = s->kh * s->kw, wst = cg * khw, hw = s->h * s->w;
    int32_t by = oy * s->sy - s->pt, bx = ox * s->sx - s->pl;
    int32_t i0, i1, j0, j1, c, i, j, r;
    gf_tap_range(by, s->dy, s->kh, s->h, &i0, &i1);
    gf_tap_range(bx, s->dx, s->kw, s->w, &j0, &j1);
    if (i0 >= i1 || j0 >= j1)
        return;
    for (c = 0; c < cg; c++) {
        for (i = i0; i < i1; i++) {
            const XT *xq = xg + (size_t)c * hw + (size_t)((by + i * s->dy) * s->w + bx + j0 * s->dx);
            const int8_t *wq = wb + (size_t)c * khw + i * s->kw + j0;
            for (j = j0; j < j1; j++) {
                int32_t xv = *xq;
                xq += s->dx;
                for (r = 0; r < R; r++)
                    acc[r] += wq[(size_t)r * wst] * xv;
                wq++;
            }
        }
    }
}

/* R output channels (o .. o+R-1, same group) at pixel (oy, ox), stored. */
GF_MAYBE_UNUSED
static void GF_S(gf_conv_pix_store)(const XT *xg, int32_t cg, const int8_t *w, const int32_t *bias, int32_t o,
                                     int32_t R, const gf_conv_shape_t *s, int32_t oy, int32_t ox,
                                     const gf_rqc_t *rcs, void *y)
{
    int32_t acc[4], r;
    size_t ohw = (size_t)s->oh * s->ow;
    for (r = 0; r < R; r++)
        acc[r] = gf_bias(bias, o + r);
    GF_S(gf_conv_pix)(xg, cg, w + (size_t)o * cg * s->kh * s->kw, R, s, oy, ox, acc);
    for (r = 0; r < R; r++)
        gf_store1(rcs ? &rcs[r] : NULL, y, (size_t)(o + r) * ohw + (size_t)oy * s->ow + ox, acc[r]);
}

#ifdef GF_C_GENERAL
/* =============================================================================================
 * General convolution (any kernel, stride, dilation, groups, padding).
 * Interior blocks: 4 output channels x 4 output pixels of one row, all taps valid.
 */
GF_INLINE void GF_S(gf_gen_blk44)(const XT *xrow0, int32_t cg, const int8_t *wb, const gf_conv_shape_t *s,
                                   int32_t nrows, const int32_t sx, const int32_t *b, const gf_rqc_t *rcs,
                                   void *y, size_t yidx)
{
    int32_t a00 = b[0], a01 = b[0], a02 = b[0], a03 = b[0];
    int32_t a10 = b[1], a11 = b[1], a12 = b[1], a13 = b[1];
    int32_t a20 = b[2], a21 = b[2], a22 = b[2], a23 = b[2];
    int32_t a30 = b[3], a31 = b[3], a32 = b[3], a33 = b[3];
    const int32_t kw = s->kw, dx = s->dx, hw = s->h * s->w, rstep = s->dy * s->w;
    const int32_t khw = s->kh * s->kw, wst = cg * khw;
    size_t ohw = (size_t)s->oh * s->ow;
    int32_t c, i, j;
    for (c = 0; c < cg; c++) {
        const XT *xr = xrow0 + (size_t)c * hw;
        const int8_t *w0 = wb + (size_t)c * khw;
        for (i = 0; i < nrows; i++) {
            const XT *xq = xr;
            const int8_t *w1 = w0 + wst, *w2 = w1 + wst, *w3 = w2 + wst;
            for (j = 0; j < kw; j++) {
                int32_t x0 = xq[0], x1 = xq[sx], x2 = xq[2 * sx], x3 = xq[3 * sx], wv;
                xq += dx;
                wv = w0[j];
                a00 += wv * x0, a01 += wv * x1, a02 += wv * x2, a03 += wv * x3;
                wv = w1[j];
                a10 += wv * x0, a11 += wv * x1, a12 += wv * x2, a13 += wv * x3;
                wv = w2[j];
                a20 += wv * x0, a21 += wv * x1, a22 += wv * x2, a23 += wv * x3;
                wv = w3[j];
                a30 += wv * x0, a31 += wv * x1, a32 += wv * x2, a33 += wv * x3;
            }
            xr += rstep;
            w0 += kw;
        }
    }
    GF_STORE4(rcs, 0, y, yidx, a00, a01, a02, a03);
    GF_STORE4(rcs, 1, y, yidx + ohw, a10, a11, a12, a13);
    GF_STORE4(rcs, 2, y, yidx + 2 * ohw, a20, a21, a22, a23);
    GF_STORE4(rcs, 3, y, yidx + 3 * ohw, a30, a31, a32, a33);
}

/* 1 output channel x 4 pixels (channel tails of the general kernel). */
GF_INLINE void GF_S(gf_gen_blk14)(const XT *xrow0, int32_t cg, const int8_t *wb, const gf_conv_shape_t *s,
                                   int32_t nrows, const int32_t sx, int32_t b, const gf_rqc_t *rcs, void *y,
                                   size_t yidx)
{
    int32_t a0 = b, a1 = b, a2 = b, a3 = b;
    const int32_t kw = s->kw, dx = s->dx, hw = s->h * s->w, rstep = s->dy * s->w;
    const int32_t khw = s->kh * s->kw;
    int32_t c, i, j;
    for (c = 0; c < cg; c++) {
        const XT *xr = xrow0 + (size_t)c * hw;
        const int8_t *w0 = wb + (size_t)c * khw;
        for (i = 0; i < nrows; i++) {
            const XT *xq = xr;
            for (j = 0; j < kw; j++) {
                int32_t wv = w0[j];
                a0 += wv * xq[0], a1 += wv * xq[sx], a2 += wv * xq[2 * sx], a3 += wv * xq[3 * sx];
                xq += dx;
            }
            xr += rstep;
            w0 += kw;
        }
    }
    GF_STORE4(rcs, 0, y, yidx, a0, a1, a2, a3);
}

static GF_NOINLINE void GF_S(gf_gen44_s1)(const XT *xrow0, int32_t cg, const int8_t *wb, const gf_conv_shape_t *s,
                                           int32_t nrows, const int32_t *b, const gf_rqc_t *rcs, void *y, size_t yidx)
{
    GF_S(gf_gen_blk44)(xrow0, cg, wb, s, nrows, 1, b, rcs, y, yidx);
}

static GF_NOINLINE void GF_S(gf_gen44_sn)(const XT *xrow0, int32_t cg, const int8_t *wb, const gf_conv_shape_t *s,
                                           int32_t nrows, const int32_t *b, const gf_rqc_t *rcs, void *y, size_t yidx)
{
    GF_S(gf_gen_blk44)(xrow0, cg, wb, s, nrows, s->sx, b, rcs, y, yidx);
}

static GF_NOINLINE void GF_S(gf_gen14)(const XT *xrow0, int32_t cg, const int8_t *wb, const gf_conv_shape_t *s,
                                        int32_t nrows, int32_t b, const gf_rqc_t *rcs, void *y, size_t yidx)
{
    GF_S(gf_gen_blk14)(xrow0, cg, wb, s, nrows, s->sx, b, rcs, y, yidx);
}

static GF_NOINLINE void GF_S(gf_conv_general)(const XT *x, const int8_t *w, const int32_t *bias, const gf_conv_shape_t *s,
                                   const gf_requant_t *rq, void *y)
{
    const int32_t cg = s->c / s->groups, og = s->o / s->groups;
    const int32_t khw = s->kh * s->kw, hw = s->h * s->w;
    int32_t g, o, oy, ox, xl, xr, r;
    gf_interior(s->ow, s->w, s->sx, s->pl, (s->kw - 1) * s->dx + 1, &xl, &xr);
    for (g = 0; g < s->groups; g++) {
        const XT *xg = x + (size_t)g * cg * hw;
        for (o = g * og; o < (g + 1) * og; o += 4) {
            int32_t R = (g + 1) * og - o < 4 ? (g + 1) * og - o : 4;
            gf_rqc_t rcbuf[4];
            const gf_rqc_t *rcs = gf_rqc_block(rcbuf, rq, o, R);
            int32_t b[4];
            const int8_t *wo = w + (size_t)o * cg * khw;
            for (r = 0; r < 4; r++)
                b[r] = r < R ? gf_bias(bias, o + r) : 0;
            for (oy = 0; oy < s->oh; oy++) {
                int32_t by = oy * s->sy - s->pt, i0, i1;
                gf_tap_range(by, s->dy, s->kh, s->h, &i0, &i1);
                for (ox = 0; ox < xl; ox++)
                    GF_S(gf_conv_pix_store)(xg, cg, w, bias, o, R, s, oy, ox, rcs, y);
                for (; ox + 4 <= xr && i1 > i0; ox += 4) {
                    const XT *xrow0 = xg + (size_t)((by + i0 * s->dy) * s->w + ox * s->sx - s->pl);
                    const int8_t *wb = wo + i0 * s->kw;
                    size_t yidx = (size_t)o * s->oh * s->ow + (size_t)oy * s->ow + ox;
                    if (R == 4) {
                        if (s->sx == 1)
                            GF_S(gf_gen44_s1)(xrow0, cg, wb, s, i1 - i0, b, rcs, y, yidx);
                        else
                            GF_S(gf_gen44_sn)(xrow0, cg, wb, s, i1 - i0, b, rcs, y, yidx);
                    } else {
                        for (r = 0; r < R; r++)
                            GF_S(gf_gen14)(xrow0, cg, wb + (size_t)r * cg * khw, s, i1 - i0, b[r],
                                           rcs ? rcs + r : NULL, y, yidx + (size_t)r * s->oh * s->ow);
                    }
                }
                for (; ox < s->ow; ox++)
                    GF_S(gf_conv_pix_store)(xg, cg, w, bias, o, R, s, oy, ox, rcs, y);
            }
        }
    }
}

#endif /* GF_C_GENERAL */

#ifdef GF_C_3X3
/* =============================================================================================
 * 3x3, stride 1, dilation 1, groups 1, any padding.
 * Block: R (1..3) output channels x 4 output pixels. For each input channel and kernel row the
 * 6 input columns bx .. bx+5 are loaded once (ZL / ZR: column bx / bx+5 is padding, constant 0)
 * and shared by the 3 taps; weights come from R pointers with constant offsets.
 *   xp: input channel 0, first valid kernel row, column bx + 1 (always inside the input)
 *   w0: weights of channel o, input channel 0, first valid kernel row.
 */
#define GF_C3_TAP(wo, xa, xb, xc, xd)                                                              \
    do {                                                                                           \
        int32_t w_ = wp0[wo];                                                                      \
        a00 += w_ * (xa), a01 += w_ * (xb), a02 += w_ * (xc), a03 += w_ * (xd);                    \
        if (R > 1) {                                                                               \
            w_ = wp1[wo];                                                                          \
            a10 += w_ * (xa), a11 += w_ * (xb), a12 += w_ * (xc), a13 += w_ * (xd);                \
        }                                                                                          \
        if (R > 2) {                                                                               \
            w_ = wp2[wo];                                                                          \
            a20 += w_ * (xa), a21 += w_ * (xb), a22 += w_ * (xc), a23 += w_ * (xd);                \
        }                                                                                          \
    } while (0)

#define GF_C3_ROW(xr, wo)                                                                          \
    do {                                                                                           \
        const XT *xr_ = (xr);                                                                      \
        int32_t x0 = zl ? 0 : xr_[-1], x1 = xr_[0], x2 = xr_[1], x3 = xr_[2], x4, x5;              \
        GF_C3_TAP((wo), x0, x1, x2, x3);                                                           \
        x4 = xr_[3];                                                                               \
        GF_C3_TAP((wo) + 1, x1, x2, x3, x4);                                                       \
        x5 = zr ? 0 : xr_[4];                                                                      \
        GF_C3_TAP((wo) + 2, x2, x3, x4, x5);                                                       \
    } while (0)

GF_INLINE void GF_S(gf_c3_blk)(const XT *xp, int32_t hw, int32_t W, int32_t C, const int8_t *w0, int32_t wst,
                                int32_t nrows, const int R, const int full, const int zl, const int zr,
                                const int32_t *b, const gf_rqc_t *rcs, void *y, size_t yidx, size_t ohw)
{
    int32_t a00 = b[0], a01 = b[0], a02 = b[0], a03 = b[0];
    int32_t a10 = b[1], a11 = b[1], a12 = b[1], a13 = b[1];
    int32_t a20 = b[2], a21 = b[2], a22 = b[2], a23 = b[2];
    const int8_t *wp0 = w0, *wp1 = R > 1 ? w0 + wst : w0, *wp2 = R > 2 ? w0 + 2 * wst : w0;
    const int8_t *wend = w0 + (size_t)9 * C;
    while (wp0 != wend) {
        int32_t wadv = 9;
        if (full) {
            GF_C3_ROW(xp, 0);
            GF_C3_ROW(xp + W, 3);
            GF_C3_ROW(xp + 2 * W, 6);
        } else {
            const XT *xq = xp;
            int32_t i;
            for (i = 0; i < nrows; i++) {
                GF_C3_ROW(xq, 0);
                xq += W;
                wp0 += 3;
                if (R > 1)
                    wp1 += 3;
                if (R > 2)
                    wp2 += 3;
            }
            wadv = 9 - 3 * nrows;
        }
        xp += hw;
        GF_KEEP(xp);
        wp0 += wadv;
        if (R > 1)
            wp1 += wadv;
        if (R > 2)
            wp2 += wadv;
    }
    GF_STORE4(rcs, 0, y, yidx, a00, a01, a02, a03);
    if (R > 1)
        GF_STORE4(rcs, 1, y, yidx + ohw, a10, a11, a12, a13);
    if (R > 2)
        GF_STORE4(rcs, 2, y, yidx + 2 * ohw, a20, a21, a22, a23);
}

/* 3 channels, all 3 kernel rows valid, no padded column: the hot path. */
static GF_NOINLINE void GF_S(gf_c3_interior)(const XT *xp, int32_t hw, int32_t W, int32_t C, const int8_t *w0,
                                              int32_t wst, const int32_t *b, const gf_rqc_t *rcs, void *y,
                                              size_t yidx, size_t ohw)
{
    GF_S(gf_c3_blk)(xp, hw, W, C, w0, wst, 3, 3, 1, 0, 0, b, rcs, y, yidx, ohw);
}

/* 3 channels, a padded column at either end and/or missing kernel rows (runtime flags). */
static GF_NOINLINE void GF_S(gf_c3_edge)(const XT *xp, int32_t hw, int32_t W, int32_t C, const int8_t *w0,
                                          int32_t wst, int32_t nrows, int zl, int zr, const int32_t *b,
                                          const gf_rqc_t *rcs, void *y, size_t yidx, size_t ohw)
{
    if (nrows == 3)
        GF_S(gf_c3_blk)(xp, hw, W, C, w0, wst, 3, 3, 1, zl, zr, b, rcs, y, yidx, ohw);
    else
        GF_S(gf_c3_blk)(xp, hw, W, C, w0, wst, nrows, 3, 0, zl, zr, b, rcs, y, yidx, ohw);
}

/* One channel (channel tails when O is not a multiple of 3). */
static GF_NOINLINE void GF_S(gf_c3_one)(const XT *xp, int32_t hw, int32_t W, int32_t C, const int8_t *w0,
                                         int32_t nrows, int zl, int zr, int32_t b, const gf_rqc_t *rc, void *y,
                                         size_t yidx)
{
    int32_t b3[3];
    b3[0] = b3[1] = b3[2] = b;
    GF_S(gf_c3_blk)(xp, hw, W, C, w0, 0, nrows, 1, nrows == 3, zl, zr, b3, rc, y, yidx, 0);
}

static void GF_S(gf_conv3x3)(const XT *x, const int8_t *w, const int32_t *bias, const gf_conv_shape_t *s,
                              const gf_requant_t *rq, void *y)
{
    const int32_t C = s->c, H = s->h, W = s->w, hw = H * W, wst = 9 * C;
    const size_t ohw = (size_t)s->oh * s->ow;
    int32_t o, oy, ox, r;
    for (o = 0; o < s->o; o += 3) {
        const int32_t R = s->o - o < 3 ? s->o - o : 3;
        gf_rqc_t rcbuf[3];
        const gf_rqc_t *rcs = gf_rqc_block(rcbuf, rq, o, R);
        int32_t b[3];
        for (r = 0; r < 3; r++)
            b[r] = r < R ? gf_bias(bias, o + r) : 0;
        for (oy = 0; oy < s->oh; oy++) {
            const int32_t by = oy - s->pt;
            int32_t i0, i1, nrows;
            const XT *xrow;
            const int8_t *wrow;
            gf_tap_range(by, 1, 3, H, &i0, &i1);
            nrows = i1 - i0;
            xrow = x + (size_t)(nrows ? (by + i0) * W : 0);
            wrow = w + (size_t)o * wst + 3 * i0;
            ox = 0;
            while (ox < s->ow) {
                const int32_t bx = ox - s->pl;
                const size_t yidx = (size_t)o * ohw + (size_t)oy * s->ow + ox;
                if (ox + 4 <= s->ow && nrows > 0 && bx >= -1 && bx + 5 <= W) {
                    const XT *xp = xrow + (bx + 1);
                    const int zl = bx == -1, zr = bx + 5 == W;
                    if (R == 3 && nrows == 3 && !zl && !zr)
                        GF_S(gf_c3_interior)(xp, hw, W, C, wrow, wst, b, rcs, y, yidx, ohw);
                    else if (R == 3)
                        GF_S(gf_c3_edge)(xp, hw, W, C, wrow, wst, nrows, zl, zr, b, rcs, y, yidx, ohw);
                    else
                        for (r = 0; r < R; r++)
                            GF_S(gf_c3_one)(xp, hw, W, C, wrow + (size_t)r * wst, nrows, zl, zr, b[r],
                                            rcs ? rcs + r : NULL, y, yidx + (size_t)r * ohw);
                    ox += 4;
                } else {
                    GF_S(gf_conv_pix_store)(x, C, w, bias, o, R, s, oy, ox, rcs, y);
                    ox++;
                }
            }
        }
    }
}

#endif /* GF_C_3X3 */

#ifdef GF_C_1X1
/* =============================================================================================
 * 1x1, no padding, groups 1, any stride.
 * Block: 4 output channels x 4 pixels (sx apart). The weights of the 4 channels are interleaved
 * once per channel block into wt[c * 4 + r] (stack), so that one pointer with constant offsets
 * reaches all of them; the input pointer advances by H*W per input channel.
 */
#define GF_C1_STEP(u)                                                                              \
    do {                                                                                           \
        int32_t x0 = xp[0], x1 = xp[sx], x2 = xp[2 * sx], x3 = xp[3 * sx], wv;                     \
        xp += hw;                                                                                  \
        GF_KEEP(xp);                                                                               \
        wv = wt[4 * (u)];                                                                          \
        a00 += wv * x0, a01 += wv * x1, a02 += wv * x2, a03 += wv * x3;                            \
        wv = wt[4 * (u) + 1];                                                                      \
        a10 += wv * x0, a11 += wv * x1, a12 += wv * x2, a13 += wv * x3;                            \
        wv = wt[4 * (u) + 2];                                                                      \
        a20 += wv * x0, a21 += wv * x1, a22 += wv * x2, a23 += wv * x3;                            \
        wv = wt[4 * (u) + 3];                                                                      \
        a30 += wv * x0, a31 += wv * x1, a32 += wv * x2, a33 += wv * x3;                            \
    } while (0)

GF_INLINE void GF_S(gf_c1_blk44)(const XT *xp, int32_t hw, const int8_t *wt, const int8_t *wend, const int32_t sx,
                                  const int32_t *b, const gf_rqc_t *rcs, void *yo, size_t ohw)
{
    int32_t a00 = b[0], a01 = b[0], a02 = b[0], a03 = b[0];
    int32_t a10 = b[1], a11 = b[1], a12 = b[1], a13 = b[1];
    int32_t a20 = b[2], a21 = b[2], a22 = b[2], a23 = b[2];
    int32_t a30 = b[3], a31 = b[3], a32 = b[3], a33 = b[3];
    const int8_t *wend8 = wt + ((wend - wt) & ~31);
    while (wt != wend8) {
        GF_C1_STEP(0);
        GF_C1_STEP(1);
        GF_C1_STEP(2);
        GF_C1_STEP(3);
        GF_C1_STEP(4);
        GF_C1_STEP(5);
        GF_C1_STEP(6);
        GF_C1_STEP(7);
        wt += 32;
    }
    while (wt != wend) {
        GF_C1_STEP(0);
        wt += 4;
    }
    GF_STORE4(rcs, 0, yo, 0, a00, a01, a02, a03);
    GF_STORE4(rcs, 1, yo, ohw, a10, a11, a12, a13);
    GF_STORE4(rcs, 2, yo, 2 * ohw, a20, a21, a22, a23);
    GF_STORE4(rcs, 3, yo, 3 * ohw, a30, a31, a32, a33);
}

/* n blocks of 4 pixels per call (the call's own register file holds the 16 accumulators). */
static GF_NOINLINE void GF_S(gf_c1_blocks_s1)(const XT *xp, int32_t hw, const int8_t *wt, const int8_t *wend,
                                               const int32_t *b, const gf_rqc_t *rcs, uint8_t *yo, int32_t n,
                                               size_t ohw)
{
    const size_t esz = rcs ? 1 : 4;
    for (; n > 0; n--) {
        GF_S(gf_c1_blk44)(xp, hw, wt, wend, 1, b, rcs, yo, ohw);
        xp += 4;
        yo += 4 * esz;
    }
}

static GF_NOINLINE void GF_S(gf_c1_blocks_s2)(const XT *xp, int32_t hw, const int8_t *wt, const int8_t *wend,
                                               const int32_t *b, const gf_rqc_t *rcs, uint8_t *yo, int32_t n,
                                               size_t ohw)
{
    const size_t esz = rcs ? 1 : 4;
    for (; n > 0; n--) {
        GF_S(gf_c1_blk44)(xp, hw, wt, wend, 2, b, rcs, yo, ohw);
        xp += 8;
        yo += 4 * esz;
    }
}

/* 4 output channels x 1 pixel (pixel tails), interleaved weights. */
static void GF_S(gf_c1_blk41)(const XT *xp, int32_t hw, const int8_t *wt, int32_t C, const int32_t *b,
                               const gf_rqc_t *rcs, void *y, size_t yidx, size_t ohw)
{
    int32_t a0 = b[0], a1 = b[1], a2 = b[2], a3 = b[3], c;
    for (c = 0; c < C; c++) {
        int32_t xv = *xp;
        xp += hw;
        a0 += wt[0] * xv, a1 += wt[1] * xv, a2 += wt[2] * xv, a3 += wt[3] * xv;
        wt += 4;
    }
    gf_store1(rcs ? &rcs[0] : NULL, y, yidx, a0);
    gf_store1(rcs ? &rcs[1] : NULL, y, yidx + ohw, a1);
    gf_store1(rcs ? &rcs[2] : NULL, y, yidx + 2 * ohw, a2);
    gf_store1(rcs ? &rcs[3] : NULL, y, yidx + 3 * ohw, a3);
}

/* One row (or the whole flattened plane when stride is 1) of n output pixels, 4 channels;
 * sx is 1 or 2. */
static void GF_S(gf_c1_run)(const XT *xp, int32_t n, int32_t hw, const int8_t *wt, int32_t C, int32_t sx,
                             const int32_t *b, const gf_rqc_t *rcs, void *y, size_t yidx, size_t ohw)
{
    const size_t esz = rcs ? 1 : 4;
    const int8_t *wend = wt + 4 * (size_t)C;
    const int32_t nb = n / 4;
    int32_t p = 4 * nb;
    if (nb > 0) {
        uint8_t *yo = (uint8_t *)y + yidx * esz;
        if (sx == 1)
            GF_S(gf_c1_blocks_s1)(xp, hw, wt, wend, b, rcs, yo, nb, ohw);
        else
            GF_S(gf_c1_blocks_s2)(xp, hw, wt, wend, b, rcs, yo, nb, ohw);
    }
    for (; p < n; p++)
        GF_S(gf_c1_blk41)(xp + (size_t)p * sx, hw, wt, C, b, rcs, y, yidx + p, ohw);
}

/* Output channels o0 .. O-1 with 4 x 4 blocks (any C up to GF_CONV_WBUF_BYTES / 4, sx <= 2, int32 or
 * requantized output). Not inlined into the dispatcher: its weight buffer must not share a stack
 * frame with the 3-in-2 path's. */
static GF_NOINLINE void GF_S(gf_conv1x1_44)(const XT *x, const int8_t *w, const int32_t *bias,
                                              const gf_conv_shape_t *s, const gf_requant_t *rq, void *y, int32_t o0)
{
    const int32_t C = s->c, hw = s->h * s->w;
    const size_t ohw = (size_t)s->oh * s->ow;
    const int flat = s->sy == 1 && s->sx == 1 && s->oh == s->h && s->ow == s->w;
    int8_t wt[GF_CONV_WBUF_BYTES];
    int32_t o, c, r, oy;
    for (o = o0; o + 4 <= s->o; o += 4) {
        gf_rqc_t rcbuf[4];
        const gf_rqc_t *rcs = gf_rqc_block(rcbuf, rq, o, 4);
        int32_t b[4];
        for (r = 0; r < 4; r++)
            b[r] = gf_bias(bias, o + r);
        {
            const int8_t *w0 = w + (size_t)o * C, *w1 = w0 + C, *w2 = w1 + C, *w3 = w2 + C;
            int8_t *d = wt;
            for (c = 0; c < C; c++, d += 4) { /* GF_KEEP: byte stores, not a merged word */
                d[0] = w0[c];
                GF_KEEP(d);
                d[1] = w1[c];
                GF_KEEP(d);
                d[2] = w2[c];
                GF_KEEP(d);
                d[3] = w3[c];
            }
        }
        if (flat) {
            GF_S(gf_c1_run)(x, hw, hw, wt, C, 1, b, rcs, y, (size_t)o * ohw, ohw);
        } else {
            for (oy = 0; oy < s->oh; oy++) {
                const XT *xrow = x + (size_t)oy * s->sy * s->w;
                size_t yidx = (size_t)o * ohw + (size_t)oy * s->ow;
                GF_S(gf_c1_run)(xrow, s->ow, hw, wt, C, s->sx, b, rcs, y, yidx, ohw);
            }
        }
    }
    if (o < s->o) { /* channel tail (O not a multiple of 4): per-pixel path */
        int32_t R = s->o - o, ox;
        gf_rqc_t rcbuf[4];
        const gf_rqc_t *rcs = gf_rqc_block(rcbuf, rq, o, R);
        for (oy = 0; oy < s->oh; oy++)
            for (ox = 0; ox < s->ow; ox++)
                GF_S(gf_conv_pix_store)(x, C, w, bias, o, R, s, oy, ox, rcs, y);
    }
}

/* ---------------------------------------------------------------------------------------------
 * 1x1 with requantized output, 1 <= C <= GF_C1P_CBUF: 8 output channels x 3 pixels per block, the
 * three pixels' sums carried in two 32-bit words ("3 in 2").
 *
 * For one input channel with input values x0, x1, x2 (pixels p, p+sx, p+2sx) and the weight w of
 * an output channel, the block adds w * XA and w * XB (mod 2^32) to two words A and B, with
 *     XA = x0 + 2^21 x1,   XB = x2 + 2^10 x1   (computed once per input channel, shared by the 8
 *                                                output channels),
 * so that after all C input channels, with Sj = sum_c w[c] * xj[c] (the pixels' sums, bias
 * excluded: it is folded into the requantization offset, gf_rqc_init_bias),
 *     A = S0 + 2^21 S1,   B = S2 + 2^10 S1   (mod 2^32).
 * One multiply-add per word makes 3 MACs for 2 (mul, add) pairs. Decoding (12 instructions per
 * output channel and block), with K0 = 2^20 - 1:
 *     t  = (A + K0) >> 21 (arithmetic)  = S1 mod 2^11 as a signed 11-bit value, if S0 + K0 in [0, 2^21)
 *     S0 = A - (t << 21)                  (A - 2^21 t = S0 + 2^21 (S1 - t), and 2^11 divides S1 - t)
 *     B' = B - (t << 10)                = S2 + 2^21 S1h,   S1h = (S1 - t) / 2^11
 *     u  = (B' + K0) >> 21              = S1h, if S2 + K0 in [0, 2^21) and S1h in [-2^10, 2^10)
 *     S2 = B' - (u << 21),  S1 = t + (u << 11).
 * Exact whenever every Sj lies in [-(2^20 - 1), 2^20] (then |S1h| < 2^10 too). Products w * x lie in
 * [-128*127, 128*128] for int8 inputs and [-128*255, 127*255] for uint8 inputs, so chunks of at
 * most GF_C1P_CMAX = 64 (int8) or 32 (uint8) input channels guarantee it for any data. Wider
 * layers (up to GF_C1P_CBUF input channels, the interleaved weight buffer) add the decoded sums of
 * their chunks (gf_c1p_bodyn: 12 + 6 instructions per output channel and chunk); the rest
 * (int32 output, wider C, the last O mod 8 channels) uses the 4 x 4 blocks above.
 * Stack: 8 * GF_C1P_CBUF bytes of weights + 8 channel constants in gf_conv1x1_p (1520 bytes on
 * rv32), the deepest call chain below gf_conv2d_1x1 about 1.9 KiB.
 */
#define GF_C1P_R 8
#ifndef GF_C1P_U
#define GF_C1P_U 1 /* input channels per loop iteration: 1 is spill-free (50 instructions per channel) */
#endif
#define GF_C1P_CMAX ((XT)-1 < 0 ? 64 : 32) /* input channels per exact chunk */
#ifndef GF_C1P_CBUF
#define GF_C1P_CBUF 128 /* largest C (interleaved weights: 8 * C stack bytes) */
#endif
#define GF_C1P_K0 (((uint32_t)1 << 20) - 1u)

/* Packed input words of one input channel; xp advances to the next channel. */
#define GF_C1P_X(SX)                                                                               \
    const uint32_t x1_ = (uint32_t)(int32_t)xp[(SX)];                                              \
    const uint32_t XA = (uint32_t)(int32_t)xp[0] + (x1_ << 21);                                    \
    const uint32_t XB = (uint32_t)(int32_t)xp[2 * (SX)] + (x1_ << 10);                             \
    xp += hw;                                                                                      \
    GF_KEEP(xp)

#define GF_C1P_FIRST(SX)                                                                           \
    do {                                                                                           \
        GF_C1P_X(SX);                                                                              \
        GF_UNROLL for (r = 0; r < GF_C1P_R; r++) {                                                 \
            const uint32_t wv_ = (uint32_t)(int32_t)wq[r];                                         \
            A[r] = wv_ * XA;                                                                       \
            B[r] = wv_ * XB;                                                                       \
        }                                                                                          \
    } while (0)

#define GF_C1P_STEP(u, SX)                                                                         \
    do {                                                                                           \
        GF_C1P_X(SX);                                                                              \
        GF_UNROLL for (r = 0; r < GF_C1P_R; r++) {                                                 \
            const uint32_t wv_ = (uint32_t)(int32_t)wq[GF_C1P_R * (u) + r];                        \
            A[r] += wv_ * XA;                                                                      \
            B[r] += wv_ * XB;                                                                      \
        }                                                                                          \
    } while (0)

/* The 3 sums (pixels p, p+sx, p+2sx) of output channel r of a block from its words A[r], B[r]. */
#define GF_C1P_DECODE(r, s0, s1, s2)                                                               \
    const uint32_t a_##r = A[r];                                                                   \
    const int32_t t_##r = (int32_t)(a_##r + GF_C1P_K0) >> 21;                                      \
    const uint32_t b_##r = B[r] - ((uint32_t)t_##r << 10);                                         \
    const int32_t u_##r = (int32_t)(b_##r + GF_C1P_K0) >> 21;                                      \
    const int32_t s0 = (int32_t)(a_##r - ((uint32_t)t_##r << 21));                                 \
    const int32_t s2 = (int32_t)(b_##r - ((uint32_t)u_##r << 21));                                 \
    const int32_t s1 = (int32_t)((uint32_t)t_##r + ((uint32_t)u_##r << 11))

/* ntrip blocks of 3 consecutive output pixels (input pixels sx apart) for 8 output channels:
 * wt holds the interleaved weights wt[c * 8 + r], rcs the channels' constants (bias folded). */
GF_INLINE void GF_S(gf_c1p_body)(const XT *x, int32_t hw, const int8_t *wt, int32_t C, const int sx,
                                  const gf_rqc_t *rcs, uint8_t *yo, int32_t ntrip, size_t ohw)
{
    const int8_t *wend = wt + (size_t)GF_C1P_R * C;
    const int8_t *wend4 = wt + GF_C1P_R + (((size_t)C - 1u) & ~(size_t)(GF_C1P_U - 1)) * GF_C1P_R;
    for (; ntrip > 0; ntrip--) {
        const XT *xp = x;
        const int8_t *wq = wt;
        uint32_t A[GF_C1P_R], B[GF_C1P_R];
        int r;
        GF_C1P_FIRST(sx);
        wq += GF_C1P_R;
        while (wq != wend4) {
            GF_C1P_STEP(0, sx);
#if GF_C1P_U > 1
            GF_C1P_STEP(1, sx);
#endif
#if GF_C1P_U > 2
            GF_C1P_STEP(2, sx);
            GF_C1P_STEP(3, sx);
#endif
            wq += GF_C1P_U * GF_C1P_R;
        }
        while (wq != wend) {
            GF_C1P_STEP(0, sx);
            wq += GF_C1P_R;
        }
        {
            /* lo and range are layer-wide: read once (byte stores may alias the constants) */
            const int32_t lo = rcs[0].lo;
            const uint32_t rg = rcs[0].range;
            uint8_t *yb = yo;
            GF_UNROLL for (r = 0; r < GF_C1P_R; r++) {
                const gf_rqc_t *rc = &rcs[r];
                const int32_t m = rc->m, oh = rc->oh1, k = rc->k;
                const uint32_t mk = rc->mask;
                GF_C1P_DECODE(r, s0_, s1_, s2_);
                yb[0] = (uint8_t)gf_rq_fast(s0_, m, oh, mk, k, lo, rg, rc);
                yb[1] = (uint8_t)gf_rq_fast(s1_, m, oh, mk, k, lo, rg, rc);
                yb[2] = (uint8_t)gf_rq_fast(s2_, m, oh, mk, k, lo, rg, rc);
                yb += ohw;
            }
        }
        x += 3 * sx;
        yo += 3;
    }
}

/* The same for C > GF_C1P_CMAX: the input channels in chunks of at most GF_C1P_CMAX (each chunk's
 * sums are exact), the chunks' decoded sums added in tot. */
GF_INLINE void GF_S(gf_c1p_bodyn)(const XT *x, int32_t hw, const int8_t *wt, int32_t C, const int sx,
                                   const gf_rqc_t *rcs, uint8_t *yo, int32_t ntrip, size_t ohw)
{
    for (; ntrip > 0; ntrip--) {
        int32_t tot[GF_C1P_R][3], c0, p;
        const XT *xp = x;
        const int8_t *wq = wt;
        int r;
        for (c0 = 0; c0 < C; c0 += GF_C1P_CMAX) {
            const int8_t *wend = wq + (size_t)GF_C1P_R * (C - c0 < GF_C1P_CMAX ? C - c0 : GF_C1P_CMAX);
            uint32_t A[GF_C1P_R], B[GF_C1P_R];
            GF_C1P_FIRST(sx);
            wq += GF_C1P_R;
            while (wq != wend) {
                GF_C1P_STEP(0, sx);
                wq += GF_C1P_R;
            }
            GF_UNROLL for (r = 0; r < GF_C1P_R; r++) {
                GF_C1P_DECODE(r, s0_, s1_, s2_);
                if (c0 == 0) {
                    tot[r][0] = s0_, tot[r][1] = s1_, tot[r][2] = s2_;
                } else {
                    tot[r][0] += s0_, tot[r][1] += s1_, tot[r][2] += s2_;
                }
            }
        }
        for (r = 0; r < GF_C1P_R; r++)
            for (p = 0; p < 3; p++)
                yo[(size_t)r * ohw + p] = (uint8_t)gf_rqc_apply(&rcs[r], tot[r][p]);
        x += 3 * sx;
        yo += 3;
    }
}

static GF_NOINLINE void GF_S(gf_c1p_n1)(const XT *x, int32_t hw, const int8_t *wt, int32_t C, const gf_rqc_t *rcs,
                                         uint8_t *yo, int32_t ntrip, size_t ohw)
{
    GF_S(gf_c1p_bodyn)(x, hw, wt, C, 1, rcs, yo, ntrip, ohw);
}

static GF_NOINLINE void GF_S(gf_c1p_n2)(const XT *x, int32_t hw, const int8_t *wt, int32_t C, const gf_rqc_t *rcs,
                                         uint8_t *yo, int32_t ntrip, size_t ohw)
{
    GF_S(gf_c1p_bodyn)(x, hw, wt, C, 2, rcs, yo, ntrip, ohw);
}

static GF_NOINLINE void GF_S(gf_c1p_s1)(const XT *x, int32_t hw, const int8_t *wt, int32_t C, const gf_rqc_t *rcs,
                                         uint8_t *yo, int32_t ntrip, size_t ohw)
{
    GF_S(gf_c1p_body)(x, hw, wt, C, 1, rcs, yo, ntrip, ohw);
}

static GF_NOINLINE void GF_S(gf_c1p_s2)(const XT *x, int32_t hw, const int8_t *wt, int32_t C, const gf_rqc_t *rcs,
                                         uint8_t *yo, int32_t ntrip, size_t ohw)
{
    GF_S(gf_c1p_body)(x, hw, wt, C, 2, rcs, yo, ntrip, ohw);
}

/* The 1 or 2 pixels after the last block of a run (input pixels sx apart): plain int32 sums,
 * bias excluded as in rcs. */
GF_INLINE void GF_S(gf_c1p_tailp)(const XT *xp, int32_t hw, const int8_t *wq, const int8_t *wend, const int P,
                                   const int32_t sx, const gf_rqc_t *rcs, uint8_t *yo, size_t ohw)
{
    int32_t acc[2][GF_C1P_R];
    int r, p;
    GF_UNROLL for (p = 0; p < P; p++) GF_UNROLL for (r = 0; r < GF_C1P_R; r++) acc[p][r] = 0;
    while (wq != wend) {
        const int32_t x0 = xp[0], x1 = P > 1 ? xp[sx] : 0;
        xp += hw;
        GF_KEEP(xp);
        GF_UNROLL for (r = 0; r < GF_C1P_R; r++) {
            const int32_t wv = wq[r];
            acc[0][r] += wv * x0;
            if (P > 1)
                acc[1][r] += wv * x1;
        }
        wq += GF_C1P_R;
    }
    for (r = 0; r < GF_C1P_R; r++, yo += ohw) /* a plain loop: at most 2 pixels per run */
        for (p = 0; p < P; p++)
            yo[p] = (uint8_t)gf_rqc_apply(&rcs[r], acc[p][r]);
}

static GF_NOINLINE void GF_S(gf_c1p_tail)(const XT *x, int32_t hw, const int8_t *wt, int32_t C, int32_t sx,
                                           int32_t np, const gf_rqc_t *rcs, uint8_t *yo, size_t ohw)
{
    const int8_t *wend = wt + (size_t)GF_C1P_R * C;
    if (np == 1)
        GF_S(gf_c1p_tailp)(x, hw, wt, wend, 1, sx, rcs, yo, ohw);
    else
        GF_S(gf_c1p_tailp)(x, hw, wt, wend, 2, sx, rcs, yo, ohw);
}

/* One run of n consecutive output pixels (input pixels sx apart, sx = 1 or 2). */
static void GF_S(gf_c1p_run)(const XT *x, int32_t n, int32_t hw, const int8_t *wt, int32_t C, int32_t sx,
                              const gf_rqc_t *rcs, uint8_t *yo, size_t ohw)
{
    const int32_t nt = n / 3;
    if (nt > 0) {
        if (C > GF_C1P_CMAX) {
            if (sx == 1)
                GF_S(gf_c1p_n1)(x, hw, wt, C, rcs, yo, nt, ohw);
            else
                GF_S(gf_c1p_n2)(x, hw, wt, C, rcs, yo, nt, ohw);
        } else if (sx == 1) {
            GF_S(gf_c1p_s1)(x, hw, wt, C, rcs, yo, nt, ohw);
        } else {
            GF_S(gf_c1p_s2)(x, hw, wt, C, rcs, yo, nt, ohw);
        }
    }
    if (n > 3 * nt)
        GF_S(gf_c1p_tail)(x + (size_t)3 * nt * sx, hw, wt, C, sx, n - 3 * nt, rcs, yo + 3 * nt, ohw);
}

/* Output channels 0 .. 8*floor(O/8)-1 with the 3-in-2 blocks (requantized output, 1 <= C <=
 * GF_C1P_CBUF, sx <= 2). */
static GF_NOINLINE void GF_S(gf_conv1x1_p)(const XT *x, const int8_t *w, const int32_t *bias,
                                            const gf_conv_shape_t *s, const gf_requant_t *rq, void *y)
{
    const int32_t C = s->c, hw = s->h * s->w;
    const size_t ohw = (size_t)s->oh * s->ow;
    const int flat = s->sy == 1 && s->sx == 1 && s->oh == s->h && s->ow == s->w;
    int8_t wt[GF_C1P_R * GF_C1P_CBUF];
    gf_rqc_t rcs[GF_C1P_R];
    int32_t o, c, r, oy;
    for (o = 0; o + GF_C1P_R <= s->o; o += GF_C1P_R) {
        uint8_t *yo = (uint8_t *)y + (size_t)o * ohw;
        for (r = 0; r < GF_C1P_R; r++)
            gf_rqc_init_bias(&rcs[r], rq, gf_rq_channel(rq, o + r), gf_bias(bias, o + r));
        for (r = 0; r < GF_C1P_R; r++) { /* wt[c * 8 + r] = w[o + r][c] */
            const int8_t *wr = w + (size_t)(o + r) * C, *wr4 = wr + (C & ~3);
            int8_t *d = wt + r;
            for (; wr != wr4; wr += 4, d += 4 * GF_C1P_R) {
                const int8_t w0 = wr[0], w1 = wr[1], w2 = wr[2], w3 = wr[3];
                d[0] = w0;
                d[GF_C1P_R] = w1;
                d[2 * GF_C1P_R] = w2;
                d[3 * GF_C1P_R] = w3;
            }
            for (c = C & ~3; c < C; c++, d += GF_C1P_R)
                *d = *wr++;
        }
        if (flat) {
            GF_S(gf_c1p_run)(x, hw, hw, wt, C, 1, rcs, yo, ohw);
        } else {
            for (oy = 0; oy < s->oh; oy++)
                GF_S(gf_c1p_run)(x + (size_t)oy * s->sy * s->w, s->ow, hw, wt, C, s->sx, rcs,
                                 yo + (size_t)oy * s->ow, ohw);
        }
    }
}

static void GF_S(gf_conv1x1)(const XT *x, const int8_t *w, const int32_t *bias, const gf_conv_shape_t *s,
                              const gf_requant_t *rq, void *y)
{
    const int32_t C = s->c;
    int32_t o = 0;
    if (s->sx > 2 || 4 * C > GF_CONV_WBUF_BYTES) {
        GF_S(gf_conv_general)(x, w, bias, s, rq, y);
        return;
    }
    if (rq && C >= 1 && C <= GF_C1P_CBUF && s->o >= GF_C1P_R) {
        GF_S(gf_conv1x1_p)(x, w, bias, s, rq, y);
        o = s->o & ~(GF_C1P_R - 1);
    }
    if (o < s->o)
        GF_S(gf_conv1x1_44)(x, w, bias, s, rq, y, o);
}

#endif /* GF_C_1X1 */

#ifdef GF_C_DW
/* =============================================================================================
 * Depthwise (groups == C == O), any kernel / stride / padding, dilation 1.
 * 3x3 with stride 1x1 or 2x2 and requantized output: the streaming kernels below (gf_dws);
 * everything else: gf_dw_generic (4 pixels per block with kernel loops, clipped borders).
 */
/* One output pixel at the border (clipped taps). */
static void GF_S(gf_dw3_pixel)(const XT *xc, const int8_t *wc, const gf_conv_shape_t *s, int32_t oy, int32_t ox,
                                int32_t bias, const gf_rqc_t *rc, uint8_t *y)
{
    gf_conv_shape_t s1 = *s;
    int32_t acc = bias;
    s1.c = s1.o = s1.groups = 1;
    GF_S(gf_conv_pix)(xc, 1, wc, 1, &s1, oy, ox, &acc);
    *y = (uint8_t)gf_rqc_apply(rc, acc);
}

/* ---------------------------------------------------------------------------------------------
 * Depthwise 3x3, stride 1 or 2 (both directions), requantized output: streaming rows.
 *
 * Left to right along an output row, each input column (one value per input row) is loaded once
 * and multiplied right away into every accumulator that uses it (stride 1: the outputs whose
 * kernel columns 2, 1 and 0 it is, the last of them starting with a plain mul; stride 2: an even
 * column is kernel column 1 of one output, an odd one column 2 of that output and column 0 of the
 * next). An output is requantized as soon as its last column is in. The 9 weights and the
 * requantization constants stay in registers for the whole channel; the bias is folded into the
 * requantization offset (gf_rqc_init_bias).
 *  - stride 1, one output row per pass (gf_dws_chan_s1): per output 3 loads, 9 mul, 8 add, 8 for
 *    the requantization, and 5 pointer / loop instructions per 3 outputs (29.7 in the loop).
 *  - stride 2, two output rows per pass sharing their common input row (gf_dws2_layer): per
 *    output 5 loads, 9 mul, 8 add, 8 for the requantization (30.6 in the loop, unused work at the
 *    row ends included); the last row of an odd count and the columns that do not fill a group of
 *    4 outputs use the one-row kernel (gf_dws_chan_s2: 6 loads per output).
 * Rows whose window leaves the input (top / bottom padding) read the missing rows from a static
 * row of zeros (gf_dws_zero), so every row runs the same code. Columns: outputs [xs, xs + n) have
 * all three columns inside the input except possibly column 0 of the first (zl, left padding) and
 * column 2 of the last (zr, right padding); outputs outside that range (padding >= 2, narrow
 * rows) use the per-pixel path, rows wider than the zero row are split into column chunks. Row
 * pointers address column xs*S - pl + 1 (never before the row).
 */
#define GF_DWS_V(i, off) ((int32_t)(i == 0 ? p0 : i == 1 ? p1 : i == 2 ? p2 : i == 3 ? p3 : p4)[off])
#define GF_DWS_RQ(a) ((uint8_t)gf_rq_fast((a), rqm, rqoh, rqmk, rqk, rqlo, rqrg, rc))

/* stride 1: column off finishes A (kernel column 2), adds kernel column 1 to B, starts C */
#define GF_DWS1_UNIT(A, B, Cn, off, yo)                                                            \
    do {                                                                                           \
        int32_t v_ = GF_DWS_V(0, off);                                                             \
        A += k02 * v_, B += k01 * v_, Cn = k00 * v_;                                               \
        v_ = GF_DWS_V(1, off);                                                                     \
        A += k12 * v_, B += k11 * v_, Cn += k10 * v_;                                              \
        v_ = GF_DWS_V(2, off);                                                                     \
        A += k22 * v_, B += k21 * v_, Cn += k20 * v_;                                              \
        yp[yo] = GF_DWS_RQ(A);                                                                     \
    } while (0)

/* stride 1: the last two outputs (A finishes at column off, B at column off + 1 unless zr) */
#define GF_DWS1_FIN(A, B, off, yo)                                                                 \
    do {                                                                                           \
        int32_t v_ = GF_DWS_V(0, off);                                                             \
        A += k02 * v_, B += k01 * v_;                                                              \
        v_ = GF_DWS_V(1, off);                                                                     \
        A += k12 * v_, B += k11 * v_;                                                              \
        v_ = GF_DWS_V(2, off);                                                                     \
        A += k22 * v_, B += k21 * v_;                                                              \
        yp[yo] = GF_DWS_RQ(A);                                                                     \
        if (!zr)                                                                                   \
            B += k02 * GF_DWS_V(0, (off) + 1) + k12 * GF_DWS_V(1, (off) + 1) + k22 * GF_DWS_V(2, (off) + 1); \
        yp[(yo) + 1] = GF_DWS_RQ(B);                                                               \
    } while (0)

/* stride 2: columns off (kernel column 1 of A) and off + 1 (column 2 of A, column 0 of B) */
#define GF_DWS2_UNIT(A, B, off, yo)                                                                \
    do {                                                                                           \
        int32_t v_ = GF_DWS_V(0, off);                                                             \
        A += k01 * v_;                                                                             \
        v_ = GF_DWS_V(1, off);                                                                     \
        A += k11 * v_;                                                                             \
        v_ = GF_DWS_V(2, off);                                                                     \
        A += k21 * v_;                                                                             \
        v_ = GF_DWS_V(0, (off) + 1);                                                               \
        A += k02 * v_, B = k00 * v_;                                                               \
        v_ = GF_DWS_V(1, (off) + 1);                                                               \
        A += k12 * v_, B += k10 * v_;                                                              \
        v_ = GF_DWS_V(2, (off) + 1);                                                               \
        A += k22 * v_, B += k20 * v_;                                                              \
        yp[yo] = GF_DWS_RQ(A);                                                                     \
    } while (0)

/* stride 2: the last output */
#define GF_DWS2_FIN(A, off, yo)                                                                    \
    do {                                                                                           \
        A += k01 * GF_DWS_V(0, off) + k11 * GF_DWS_V(1, off) + k21 * GF_DWS_V(2, off);             \
        if (!zr)                                                                                   \
            A += k02 * GF_DWS_V(0, (off) + 1) + k12 * GF_DWS_V(1, (off) + 1) + k22 * GF_DWS_V(2, (off) + 1); \
        yp[yo] = GF_DWS_RQ(A);                                                                     \
    } while (0)

/* stride 2, two output rows (input rows p0..p4; row A reads p0..p2, row B p2..p4): columns off
 * (kernel column 1 of the current outputs A, B) and off + 1 (their column 2, column 0 of the next
 * outputs An, Bn). The shared input row p2 is loaded once. */
#define GF_DWS2R_UNIT(A, An, B, Bn, off, yo)                                                       \
    do {                                                                                           \
        int32_t v_ = GF_DWS_V(0, off);                                                             \
        A += k01 * v_;                                                                             \
        v_ = GF_DWS_V(1, off);                                                                     \
        A += k11 * v_;                                                                             \
        v_ = GF_DWS_V(2, off);                                                                     \
        A += k21 * v_, B += k01 * v_;                                                              \
        v_ = GF_DWS_V(3, off);                                                                     \
        B += k11 * v_;                                                                             \
        v_ = GF_DWS_V(4, off);                                                                     \
        B += k21 * v_;                                                                             \
        v_ = GF_DWS_V(0, (off) + 1);                                                               \
        A += k02 * v_, An = k00 * v_;                                                              \
        v_ = GF_DWS_V(1, (off) + 1);                                                               \
        A += k12 * v_, An += k10 * v_;                                                             \
        v_ = GF_DWS_V(2, (off) + 1);                                                               \
        A += k22 * v_, An += k20 * v_, B += k02 * v_, Bn = k00 * v_;                               \
        ya[yo] = GF_DWSK_RQ(A);                                                                    \
        v_ = GF_DWS_V(3, (off) + 1);                                                               \
        B += k12 * v_, Bn += k10 * v_;                                                             \
        v_ = GF_DWS_V(4, (off) + 1);                                                               \
        B += k22 * v_, Bn += k20 * v_;                                                             \
        yb[yo] = GF_DWSK_RQ(B);                                                                     \
    } while (0)

/* The zero row as seen from a row pointer (offsets -1 .. (n-1)*S + 1 are inside it), computed
 * where it is used (kept in a register for the whole function it would cost a spill). */
#define GF_DWS_ZERO_DECL                                                                           \
    const XT *zero = (const XT *)(const void *)gf_dws_zero + 1;                                    \
    GF_KEEP(zero)

/* Row pointer of input row iy (column c1), or the zero row. */
#define GF_DWS_ROWP(iy) ((uint32_t)(iy) < (uint32_t)H ? xc + (roff + ((iy) - by) * W) : zero)

/* All output rows of one channel. xs, n, zl, zr: the column plan (n >= 2); rc: the channel's
 * constants with the bias folded in. */
GF_INLINE void GF_S(gf_dws_chan)(const XT *xc, const int8_t *wc, const gf_conv_shape_t *s, const int S,
                                  int32_t xs, int32_t n, int zl, int zr, const gf_rqc_t *rc, uint8_t *yc,
                                  int32_t oy0, int32_t oy1)
{
    const int32_t k00 = wc[0], k01 = wc[1], k02 = wc[2], k10 = wc[3], k11 = wc[4], k12 = wc[5];
    const int32_t k20 = wc[6], k21 = wc[7], k22 = wc[8];
    const int32_t rqm = rc->m, rqoh = rc->oh1, rqk = rc->k, rqlo = rc->lo;
    const uint32_t rqmk = rc->mask, rqrg = rc->range;
    const int32_t H = s->h, W = s->w, ow = s->ow, c1 = xs * S - s->pl + 1;
    /* by: first input row of the window; roff: offset of its column c1 (used when by >= 0) */
    int32_t oy, by = oy0 * S - s->pt, roff = by * W + c1;
    uint8_t *yrow = yc + (size_t)oy0 * ow;
    for (oy = oy0; oy < oy1; oy++, by += S, roff += S * W, yrow += ow) {
        const XT *p0, *p1, *p2, *p3 = NULL, *p4 = NULL;
        uint8_t *yp;
        int32_t a, b, c;
        GF_KEEP(by);
        GF_KEEP(roff);
        GF_KEEP(yrow);
        yp = yrow + xs;
        if (by >= 0 && by + 3 <= H) { /* interior row */
            p0 = xc + roff;
            p1 = p0 + W;
            p2 = p1 + W;
        } else {
            GF_DWS_ZERO_DECL;
            p0 = GF_DWS_ROWP(by);
            p1 = GF_DWS_ROWP(by + 1);
            p2 = GF_DWS_ROWP(by + 2);
        }
        (void)p3, (void)p4;
        if (S == 1) {
            uint8_t *yend;
            int32_t v;
            if (zl) { /* column 0 is column 1 of output 0 and column 0 of output 1 */
                v = p0[0], a = k01 * v, b = k00 * v;
                v = p1[0], a += k11 * v, b += k10 * v;
                v = p2[0], a += k21 * v, b += k20 * v;
            } else {
                a = k00 * p0[-1] + k10 * p1[-1] + k20 * p2[-1];
                v = p0[0], a += k01 * v, b = k00 * v;
                v = p1[0], a += k11 * v, b += k10 * v;
                v = p2[0], a += k21 * v, b += k20 * v;
            }
            p0++, p1++, p2++;
            /* units: output t finishes at column offset t (from p), t = 0 .. n-3 */
            yend = yp + 3 * ((n - 2) / 3);
            while (yp != yend) {
                GF_DWS1_UNIT(a, b, c, 0, 0);
                GF_DWS1_UNIT(b, c, a, 1, 1);
                GF_DWS1_UNIT(c, a, b, 2, 2);
                p0 += 3, p1 += 3, p2 += 3;
                yp += 3;
            }
            switch ((n - 2) % 3) {
            case 0:
                GF_DWS1_FIN(a, b, 0, 0);
                break;
            case 1:
                GF_DWS1_UNIT(a, b, c, 0, 0);
                GF_DWS1_FIN(b, c, 1, 1);
                break;
            default:
                GF_DWS1_UNIT(a, b, c, 0, 0);
                GF_DWS1_UNIT(b, c, a, 1, 1);
                GF_DWS1_FIN(c, a, 2, 2);
                break;
            }
        } else {
            uint8_t *yend;
            int32_t v;
            if (zl) { /* output 0: columns 0 (kernel column 1) and 1 */
                a = k01 * p0[0] + k11 * p1[0] + k21 * p2[0];
                v = p0[1], a += k02 * v, b = k00 * v;
                v = p1[1], a += k12 * v, b += k10 * v;
                v = p2[1], a += k22 * v, b += k20 * v;
                yp[0] = GF_DWS_RQ(a);
            } else {
                a = k00 * p0[-1] + k10 * p1[-1] + k20 * p2[-1];
                GF_DWS2_UNIT(a, b, 0, 0);
            }
            p0 += 2, p1 += 2, p2 += 2;
            yp++;
            /* outputs 1 .. n-2: unit t reads columns 2(t-1), 2(t-1)+1 from p; b is the current one */
            yend = yp + 4 * ((n - 2) / 4);
            while (yp != yend) {
                GF_DWS2_UNIT(b, a, 0, 0);
                GF_DWS2_UNIT(a, b, 2, 1);
                GF_DWS2_UNIT(b, a, 4, 2);
                GF_DWS2_UNIT(a, b, 6, 3);
                p0 += 8, p1 += 8, p2 += 8;
                yp += 4;
            }
            switch ((n - 2) % 4) {
            case 0:
                GF_DWS2_FIN(b, 0, 0);
                break;
            case 1:
                GF_DWS2_UNIT(b, a, 0, 0);
                GF_DWS2_FIN(a, 2, 1);
                break;
            case 2:
                GF_DWS2_UNIT(b, a, 0, 0);
                GF_DWS2_UNIT(a, b, 2, 1);
                GF_DWS2_FIN(b, 4, 2);
                break;
            default:
                GF_DWS2_UNIT(b, a, 0, 0);
                GF_DWS2_UNIT(a, b, 2, 1);
                GF_DWS2_UNIT(b, a, 4, 2);
                GF_DWS2_FIN(a, 6, 3);
                break;
            }
        }
    }
}

static GF_NOINLINE GF_ONE_REGION void GF_S(gf_dws_chan_s1)(const XT *xc, const int8_t *wc, const gf_conv_shape_t *s,
                                                            int32_t xs, int32_t n, int zl, int zr, const gf_rqc_t *rc,
                                                            uint8_t *yc, int32_t oy0, int32_t oy1)
{
    GF_S(gf_dws_chan)(xc, wc, s, 1, xs, n, zl, zr, rc, yc, oy0, oy1);
}

static GF_NOINLINE GF_ONE_REGION void GF_S(gf_dws_chan_s2)(const XT *xc, const int8_t *wc, const gf_conv_shape_t *s,
                                                            int32_t xs, int32_t n, int zl, int zr, const gf_rqc_t *rc,
                                                            uint8_t *yc, int32_t oy0, int32_t oy1)
{
    GF_S(gf_dws_chan)(xc, wc, s, 2, xs, n, zl, zr, rc, yc, oy0, oy1);
}

/* Outputs outside the streaming range of every row (padding >= 2, narrow rows): per pixel. */
static void GF_S(gf_dws_edges)(const XT *xc, const int8_t *wc, const gf_conv_shape_t *s, int32_t xs, int32_t n,
                                const gf_rqc_t *rc, uint8_t *yc)
{
    int32_t oy, ox;
    for (oy = 0; oy < s->oh; oy++) {
        uint8_t *yrow = yc + (size_t)oy * s->ow;
        for (ox = 0; ox < xs; ox++)
            GF_S(gf_dw3_pixel)(xc, wc, s, oy, ox, 0, rc, yrow + ox);
        for (ox = xs + n; ox < s->ow; ox++)
            GF_S(gf_dw3_pixel)(xc, wc, s, oy, ox, 0, rc, yrow + ox);
    }
}

/* Stride 2, pairs of output rows, all channels (see gf_dws_chan): input rows p0..p4 feed output
 * rows A (p0..p2) and B (p2..p4), the shared row p2 is loaded once. The unit needs every register,
 * so the requantization uses a compile-time shift (GF_DWS_K, gf_rq_fixk): the channel's weights
 * are pre-shifted by s = 32 + GF_DWS_K - sh (s <= 12 keeps the 9-tap sums below 2^31) and the
 * constants describe the same value for the scaled sums (gf_rqc_init_shift).
 * Every unit finishes an output of each row and starts the next ones (which for the row's last
 * unit are not needed), so a row pair is nothing but groups of 4 identical units: this kernel
 * covers the first n4 outputs of the column plan (n4 a multiple of 4; the column read by the last
 * unit's unused next outputs is inside the input). The rest (the last n - n4 >= 2 outputs of each
 * row pair, the last row of an odd count, and channels the fixed shift does not apply to) goes
 * through the one-row kernel. */
#define GF_DWS_K 11
#define GF_DWSK_RQ(a) ((uint8_t)gf_rq_fixk((a), rqm, rqoh, rqlo, rqrg, &rc, GF_DWS_K))
static GF_NOINLINE GF_ONE_REGION void GF_S(gf_dws2_layer)(const XT *x, const int8_t *w, const int32_t *bias,
                                                          const gf_conv_shape_t *s, const gf_requant_t *rq, void *y,
                                                          int32_t xs, int32_t n, int zl, int zr)
{
    const int32_t H = s->h, W = s->w, ow = s->ow, oh = s->oh, c1 = xs * 2 - s->pl + 1;
    const size_t hw = (size_t)H * W, ohw = (size_t)oh * ow;
    const int32_t noy2 = oh & ~1;
    int32_t n4 = n & ~3, ch;
    if (n4 == n && zr) /* the last unit's next outputs would read the padded column */
        n4 -= 4;
    if (n - n4 == 1) /* the one-row kernel takes at least 2 outputs */
        n4 -= 4;
    if (n4 < 4 || noy2 == 0)
        n4 = 0;
    for (ch = 0; ch < s->c; ch++) {
        const XT *xc = x + ch * hw;
        const int8_t *wc = w + (size_t)ch * 9;
        uint8_t *yc = (uint8_t *)y + ch * ohw;
        gf_rqc_t rc;
        const int32_t sc = n4 ? gf_rqc_init_shift(&rc, rq, gf_rq_channel(rq, ch), gf_bias(bias, ch), GF_DWS_K, 12) : -1;
        if (sc >= 0) {
            const int32_t f = (int32_t)1 << sc; /* weights * 2^sc (a multiply: << of negatives is undefined) */
            const int32_t k00 = wc[0] * f, k01 = wc[1] * f, k02 = wc[2] * f, k10 = wc[3] * f, k11 = wc[4] * f;
            const int32_t k12 = wc[5] * f, k20 = wc[6] * f, k21 = wc[7] * f, k22 = wc[8] * f;
            const int32_t rqm = rc.m, rqoh = rc.oh1, rqlo = rc.lo;
            const uint32_t rqrg = rc.range;
            int32_t by = -s->pt, roff = by * W + c1;
            uint8_t *yrow = yc, *yrend = yc + (size_t)noy2 * ow;
            for (; yrow != yrend; by += 4, roff += 4 * W, yrow += 2 * ow) {
                const XT *p0, *p1, *p2, *p3, *p4;
                uint8_t *ya, *yb, *yend;
                int32_t a, a2, b, b2;
                /* no induction variables derived from these (gcc would keep a dozen, all spilled) */
                GF_KEEP(by);
                GF_KEEP(roff);
                GF_KEEP(yrow);
                ya = yrow + xs;
                yb = ya + ow;
                yend = ya + n4;
                if (by >= 0 && by + 5 <= H) {
                    p0 = xc + roff;
                    p1 = p0 + W;
                    p2 = p1 + W;
                    p3 = p2 + W;
                    p4 = p3 + W;
                } else {
                    GF_DWS_ZERO_DECL;
                    p0 = GF_DWS_ROWP(by);
                    p1 = GF_DWS_ROWP(by + 1);
                    p2 = GF_DWS_ROWP(by + 2);
                    p3 = GF_DWS_ROWP(by + 3);
                    p4 = GF_DWS_ROWP(by + 4);
                }
                /* column -1 (kernel column 0 of the first outputs): padding, or the products */
                if (zl) {
                    a2 = 0, b2 = 0;
                } else {
                    const int32_t v = p2[-1];
                    a2 = k00 * p0[-1] + k10 * p1[-1] + k20 * v;
                    b2 = k00 * v + k10 * p3[-1] + k20 * p4[-1];
                }
                if (n4 & 4) {
                    GF_DWS2R_UNIT(a2, a, b2, b, 0, 0);
                    GF_DWS2R_UNIT(a, a2, b, b2, 2, 1);
                    GF_DWS2R_UNIT(a2, a, b2, b, 4, 2);
                    GF_DWS2R_UNIT(a, a2, b, b2, 6, 3);
                    p0 += 8, p1 += 8, p2 += 8, p3 += 8, p4 += 8;
                    ya += 4, yb += 4;
                }
                while (ya != yend) {
                    GF_DWS2R_UNIT(a2, a, b2, b, 0, 0);
                    GF_DWS2R_UNIT(a, a2, b, b2, 2, 1);
                    GF_DWS2R_UNIT(a2, a, b2, b, 4, 2);
                    GF_DWS2R_UNIT(a, a2, b, b2, 6, 3);
                    GF_DWS2R_UNIT(a2, a, b2, b, 8, 4);
                    GF_DWS2R_UNIT(a, a2, b, b2, 10, 5);
                    GF_DWS2R_UNIT(a2, a, b2, b, 12, 6);
                    GF_DWS2R_UNIT(a, a2, b, b2, 14, 7);
                    p0 += 16, p1 += 16, p2 += 16, p3 += 16, p4 += 16;
                    ya += 8, yb += 8;
                }
            }
        }
        if (sc < 0 || n4 < n || noy2 < oh) {
            gf_rqc_init_bias(&rc, rq, gf_rq_channel(rq, ch), gf_bias(bias, ch));
            if (sc < 0) {
                GF_S(gf_dws_chan_s2)(xc, wc, s, xs, n, zl, zr, &rc, yc, 0, oh);
            } else {
                if (n4 < n) /* the rest of each row pair */
                    GF_S(gf_dws_chan_s2)(xc, wc, s, xs + n4, n - n4, 0, zr, &rc, yc, 0, noy2);
                if (noy2 < oh)
                    GF_S(gf_dws_chan_s2)(xc, wc, s, xs, n, zl, zr, &rc, yc, noy2, oh);
            }
        }
    }
}

/* Returns 0 (nothing done) when the streaming plan does not apply (fewer than 2 outputs per row
 * with at most one padded column on each side). Rows wider than the zero row are processed in
 * column chunks (each chunk reads at most GF_DWS_ZERO_BYTES - 1 consecutive columns). */
static int GF_S(gf_dws)(const XT *x, const int8_t *w, const int32_t *bias, const gf_conv_shape_t *s,
                         const gf_requant_t *rq, void *y)
{
    const int32_t S = s->sx, W = s->w, pl = s->pl, ow = s->ow;
    const int32_t nmax = (GF_DWS_ZERO_BYTES - 3) / S + 1; /* outputs per chunk */
    const size_t hw = (size_t)s->h * W, ohw = (size_t)s->oh * ow;
    int32_t xs = 0, xe, x0, c;
    if (s->h < 1 || W < 1)
        return 0;
    while (xs < ow && xs * S - pl < -1) /* outputs with two or more padded columns on the left */
        xs++;
    xe = xs;
    while (xe < ow && xe * S - pl + 2 <= W) /* at most one padded column on the right */
        xe++;
    if (xe - xs < 2)
        return 0;
    for (x0 = xs; x0 < xe;) {
        int32_t n = xe - x0 < nmax ? xe - x0 : nmax;
        int zl, zr;
        if (xe - x0 - n == 1) /* every chunk has at least 2 outputs */
            n--;
        zl = x0 * S - pl == -1;
        zr = (x0 + n - 1) * S - pl + 2 == W;
        if (S == 2) {
            GF_S(gf_dws2_layer)(x, w, bias, s, rq, y, x0, n, zl, zr);
        } else {
            for (c = 0; c < s->c; c++) {
                gf_rqc_t rc;
                gf_rqc_init_bias(&rc, rq, gf_rq_channel(rq, c), gf_bias(bias, c));
                GF_S(gf_dws_chan_s1)(x + c * hw, w + (size_t)c * 9, s, x0, n, zl, zr, &rc, (uint8_t *)y + c * ohw, 0,
                                     s->oh);
            }
        }
        x0 += n;
    }
    if (xs > 0 || xe < ow) { /* outputs outside the streaming range (padding >= 2, narrow rows) */
        for (c = 0; c < s->c; c++) {
            gf_rqc_t rc;
            gf_rqc_init_bias(&rc, rq, gf_rq_channel(rq, c), gf_bias(bias, c));
            GF_S(gf_dws_edges)(x + c * hw, w + (size_t)c * 9, s, xs, xe - xs, &rc, (uint8_t *)y + c * ohw);
        }
    }
    return 1;
}

/* Generic depthwise: 4 interior pixels per block with kernel loops, clipped per-pixel borders. */
static GF_NOINLINE void GF_S(gf_dw_blk4)(const XT *xr, int32_t W, const int8_t *wr, int32_t nrows, int32_t kw,
                                          const int32_t sx, int32_t b, const gf_rqc_t *rc, void *y, size_t yidx)
{
    int32_t a0 = b, a1 = b, a2 = b, a3 = b, i, j;
    for (i = 0; i < nrows; i++) {
        const XT *xq = xr;
        for (j = 0; j < kw; j++) {
            int32_t wv = wr[j];
            a0 += wv * xq[0], a1 += wv * xq[sx], a2 += wv * xq[2 * sx], a3 += wv * xq[3 * sx];
            xq++;
        }
        xr += W;
        wr += kw;
    }
    GF_STORE4(rc, 0, y, yidx, a0, a1, a2, a3);
}

static void GF_S(gf_dw_generic)(const XT *x, const int8_t *w, const int32_t *bias, const gf_conv_shape_t *s,
                                 const gf_requant_t *rq, void *y)
{
    const int32_t hw = s->h * s->w, khw = s->kh * s->kw;
    const size_t ohw = (size_t)s->oh * s->ow;
    gf_conv_shape_t s1 = *s;
    int32_t c, oy, ox, xl, xr;
    s1.c = s1.o = s1.groups = 1;
    gf_interior(s->ow, s->w, s->sx, s->pl, s->kw, &xl, &xr);
    for (c = 0; c < s->c; c++) {
        const XT *xc = x + (size_t)c * hw;
        const int8_t *wc = w + (size_t)c * khw;
        const int32_t b = gf_bias(bias, c);
        gf_rqc_t rcbuf;
        const gf_rqc_t *rc = gf_rqc_block(&rcbuf, rq, c, 1);
        for (oy = 0; oy < s->oh; oy++) {
            const int32_t by = oy * s->sy - s->pt;
            const size_t yrow = (size_t)c * ohw + (size_t)oy * s->ow;
            int32_t i0, i1;
            gf_tap_range(by, 1, s->kh, s->h, &i0, &i1);
            for (ox = 0; ox < s->ow;) {
                if (ox >= xl && ox + 4 <= xr && i1 > i0) {
                    const XT *xrow = xc + (size_t)((by + i0) * s->w + ox * s->sx - s->pl);
                    const int8_t *wr = wc + i0 * s->kw;
                    GF_S(gf_dw_blk4)(xrow, s->w, wr, i1 - i0, s->kw, s->sx, b, rc, y, yrow + ox);
                    ox += 4;
                } else {
                    int32_t acc = b;
                    GF_S(gf_conv_pix)(xc, 1, wc, 1, &s1, oy, ox, &acc);
                    gf_store1(rc, y, yrow + ox, acc);
                    ox++;
                }
            }
        }
    }
}

static void GF_S(gf_dwconv)(const XT *x, const int8_t *w, const int32_t *bias, const gf_conv_shape_t *s,
                             const gf_requant_t *rq, void *y)
{
    if (rq && s->kh == 3 && s->kw == 3 && (s->sx == 1 || s->sx == 2) && s->sy == s->sx && s->h >= 1 && s->w >= 1) {
        if (!GF_S(gf_dws)(x, w, bias, s, rq, y))
            GF_S(gf_dw_generic)(x, w, bias, s, rq, y);
    }
    else
        GF_S(gf_dw_generic)(x, w, bias, s, rq, y);
}
#endif /* GF_C_DW */

#ifdef GF_C_CONV2D
/* gf_conv2d for this input type: a specialised kernel of this copy when the shape allows it, else
 * the general one (the same integers either way). */
static void GF_S(gf_conv2d_any)(const XT *x, const int8_t *w, const int32_t *bias, const gf_conv_shape_t *s,
                                 const gf_requant_t *rq, void *y)
{
#ifdef GF_C_3X3
    if (gf_is_3x3(s)) {
        GF_S(gf_conv3x3)(x, w, bias, s, rq, y);
        return;
    }
#endif
#ifdef GF_C_1X1
    if (gf_is_1x1(s)) {
        GF_S(gf_conv1x1)(x, w, bias, s, rq, y);
        return;
    }
#endif
#ifdef GF_C_DW
    if (gf_is_dw(s)) {
        GF_S(gf_dwconv)(x, w, bias, s, rq, y);
        return;
    }
#endif
    GF_S(gf_conv_general)(x, w, bias, s, rq, y);
}
#endif /* GF_C_CONV2D */
