/*
 * Convolution kernels for one input element type. Included by gf_conv.c twice, with
 *   XT        int8_t or uint8_t (the input activation type)
 *   GF_S(n)   n##_s8 or n##_u8   (names of this copy)
 * No include guard on purpose.
 */

/* =============================================================================================
 * Per-pixel path (borders, tails, any geometry): R <= 4 output channels of one group, one
 * output pixel, taps clipped to the input once per pixel.
 *   xg: first input channel of the group; wb: weights of the first output channel of the block.
 */
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

static void GF_S(gf_conv_general)(const XT *x, const int8_t *w, const int32_t *bias, const gf_conv_shape_t *s,
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

static void GF_S(gf_conv1x1)(const XT *x, const int8_t *w, const int32_t *bias, const gf_conv_shape_t *s,
                              const gf_requant_t *rq, void *y)
{
    const int32_t C = s->c, hw = s->h * s->w;
    const size_t ohw = (size_t)s->oh * s->ow;
    const int flat = s->sy == 1 && s->sx == 1 && s->oh == s->h && s->ow == s->w;
    int8_t wt[GF_CONV_WBUF_BYTES];
    int32_t o, c, r, oy;
    if (4 * C > GF_CONV_WBUF_BYTES || s->sx > 2) {
        GF_S(gf_conv_general)(x, w, bias, s, rq, y);
        return;
    }
    for (o = 0; o + 4 <= s->o; o += 4) {
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

/* =============================================================================================
 * Depthwise (groups == C == O), any kernel / stride / padding, dilation 1.
 *
 * 3x3 with stride 1x1 or 2x2 and requantized output: a block is NO output rows (NO = 1 is used,
 * see gf_conv.c) x GF_DW3_PS(S) output pixels. It walks its (NO-1)*S + 3 input rows, loading the
 * weights of each kernel row once and streaming every input value into each accumulator that
 * uses it right after the load. A row whose window leaves the input at the top or bottom uses a
 * window moved inside the input with the weights of the missing kernel rows set to 0, so every
 * row runs the same code. Columns: a per-layer plan (gf_dw3_plan_t) splits a row into an
 * optional left-edge block (first input column is padding: a constant 0 instead of a load),
 * interior blocks (no test at all), an optional right-edge block and, for narrow rows or
 * padding >= 2, single pixels.
 */
GF_INLINE void GF_S(gf_dw3_blk)(const XT *restrict rp, int32_t W, const int NO, const int P, const int S,
                                 const int zl, const int zr, const int8_t *restrict k, int32_t bias,
                                 const gf_rqc_t *restrict rc, uint8_t *restrict y, int32_t ow)
{
    const int NT = (P - 1) * S + 3, NU = (NO - 1) * S + 3;
    int32_t acc[2][GF_DW3_P];
    int u, t, q, p;
    GF_UNROLL for (q = 0; q < NO; q++) GF_UNROLL for (p = 0; p < P; p++) acc[q][p] = bias;
    GF_UNROLL for (u = 0; u < NU; u++) {
        /* weights are (re)loaded per input row: laundering the pointer keeps gcc from merging the
         * loads of different rows, which would keep all 9 live next to the accumulators */
        const int8_t *ku = k;
        GF_KEEP(ku);
        GF_UNROLL for (t = 0; t < NT; t++) {
            int32_t xv;
            if (t == 0)
                xv = zl ? 0 : rp[-1];
            else if (t == NT - 1)
                xv = zr ? 0 : rp[t - 1];
            else
                xv = rp[t - 1];
            GF_UNROLL for (q = 0; q < NO; q++) {
                const int i = u - q * S;
                GF_UNROLL for (p = 0; p < P; p++) {
                    const int j = t - p * S;
                    if (i >= 0 && i < 3 && j >= 0 && j < 3)
                        acc[q][p] += ku[3 * i + j] * xv;
                }
            }
        }
        rp += W;
    }
    {
        GF_RQ_DECL(rc);
        GF_UNROLL for (q = 0; q < NO; q++) GF_UNROLL for (p = 0; p < P; p++) GF_RQ_ONE(y + q * ow, p, acc[q][p]);
    }
}

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

/* NO output rows from oy: xrow is the input row read by kernel row 0 of k for row oy (k may be
 * a copy of the weights with zeroed rows, see gf_dw3_border_row). */
GF_INLINE void GF_S(gf_dw3_rows)(const XT *xc, const XT *xrow, const int8_t *wc, const int8_t *k,
                                  const gf_conv_shape_t *s, const gf_dw3_plan_t *plan, int32_t oy, const int NO,
                                  const int S, int32_t bias, const gf_rqc_t *rc, uint8_t *yrow)
{
    const int32_t W = s->w, ow = s->ow;
    int32_t ox, q;
    for (ox = 0; ox < plan->lead; ox++)
        for (q = 0; q < NO; q++)
            GF_S(gf_dw3_pixel)(xc, wc, s, oy + q, ox, bias, rc, yrow + q * ow + ox);
    {
        const XT *xp = xrow + plan->x0;
        uint8_t *yp = yrow + plan->lead, *yend;
        if (plan->left) {
            GF_S(gf_dw3_blk)(xp, W, NO, GF_DW3_PS(S), S, 1, plan->left_zr, k, bias, rc, yp, ow);
            xp += GF_DW3_PS(S) * S;
            yp += GF_DW3_PS(S);
        }
        yend = yp + plan->nmid * GF_DW3_PS(S);
        while (yp != yend) { /* interior: no test, pointers advance */
            GF_S(gf_dw3_blk)(xp, W, NO, GF_DW3_PS(S), S, 0, 0, k, bias, rc, yp, ow);
            xp += GF_DW3_PS(S) * S;
            yp += GF_DW3_PS(S);
        }
        if (plan->right)
            GF_S(gf_dw3_blk)(xp, W, NO, GF_DW3_PS(S), S, 0, 1, k, bias, rc, yp, ow);
    }
    for (ox = plan->tail; ox < ow; ox++) { /* pixels left over by the blocks (narrow rows) */
        const int32_t bx = ox * S - s->pl;
        if (bx >= -1 && bx + 2 <= W) {
            GF_S(gf_dw3_blk)(xrow + (bx + 1), W, NO, 1, S, bx < 0, bx + 2 == W, k, bias, rc, yrow + ox, ow);
        } else {
            for (q = 0; q < NO; q++)
                GF_S(gf_dw3_pixel)(xc, wc, s, oy + q, ox, bias, rc, yrow + q * ow + ox);
        }
    }
}

/* n consecutive output rows from oy (input rows from xrow, S rows apart), one function per
 * stride: the row code exists once per stride and signedness. */
GF_INLINE void GF_S(gf_dw3_nrows)(const XT *xc, const XT *xrow, const int8_t *wc, const int8_t *k,
                                   const gf_conv_shape_t *s, const gf_dw3_plan_t *plan, int32_t oy, int32_t n,
                                   const int S, int32_t bias, const gf_rqc_t *rc, uint8_t *yrow)
{
    const size_t xstep = (size_t)S * s->w, ow = (size_t)s->ow;
    for (; n > 0; n--, oy++) {
        GF_S(gf_dw3_rows)(xc, xrow, wc, k, s, plan, oy, 1, S, bias, rc, yrow);
        xrow += xstep;
        yrow += ow;
    }
}

static GF_NOINLINE void GF_S(gf_dw3_nrows_s1)(const XT *xc, const XT *xrow, const int8_t *wc, const int8_t *k,
                                               const gf_conv_shape_t *s, const gf_dw3_plan_t *plan, int32_t oy,
                                               int32_t n, int32_t bias, const gf_rqc_t *rc, uint8_t *yrow)
{
    GF_S(gf_dw3_nrows)(xc, xrow, wc, k, s, plan, oy, n, 1, bias, rc, yrow);
}

static GF_NOINLINE void GF_S(gf_dw3_nrows_s2)(const XT *xc, const XT *xrow, const int8_t *wc, const int8_t *k,
                                               const gf_conv_shape_t *s, const gf_dw3_plan_t *plan, int32_t oy,
                                               int32_t n, int32_t bias, const gf_rqc_t *rc, uint8_t *yrow)
{
    GF_S(gf_dw3_nrows)(xc, xrow, wc, k, s, plan, oy, n, 2, bias, rc, yrow);
}

static void GF_S(gf_dw3_row1)(const XT *xc, const XT *xrow, const int8_t *wc, const int8_t *k,
                               const gf_conv_shape_t *s, const gf_dw3_plan_t *plan, int32_t oy, int32_t n,
                               int32_t bias, const gf_rqc_t *rc, uint8_t *yrow)
{
    if (s->sx == 1)
        GF_S(gf_dw3_nrows_s1)(xc, xrow, wc, k, s, plan, oy, n, bias, rc, yrow);
    else
        GF_S(gf_dw3_nrows_s2)(xc, xrow, wc, k, s, plan, oy, n, bias, rc, yrow);
}

/* A row whose 3-row window leaves the input (top / bottom padding): the window is moved to rows
 * r0 .. r0+2 inside the input and each of its rows gets the weights of the kernel row that reads
 * it, or zeros. */
static void GF_S(gf_dw3_border_row)(const XT *xc, const int8_t *wc, const gf_conv_shape_t *s,
                                     const gf_dw3_plan_t *plan, int32_t oy, int32_t bias, const gf_rqc_t *rc,
                                     uint8_t *yrow)
{
    const int32_t H = s->h, by = oy * s->sy - s->pt;
    int32_t u, t;
    if (H >= 3) {
        const int32_t r0 = by < 0 ? 0 : H - 3;
        int8_t kz[9];
        for (u = 0; u < 3; u++) {
            const int32_t i = r0 + u - by; /* kernel row that reads input row r0 + u */
            for (t = 0; t < 3; t++)
                kz[3 * u + t] = (int8_t)((i >= 0 && i < 3) ? wc[3 * i + t] : 0);
        }
        GF_S(gf_dw3_row1)(xc, xc + (size_t)r0 * s->w, wc, kz, s, plan, oy, 1, bias, rc, yrow);
    } else { /* fewer than 3 input rows */
        for (t = 0; t < s->ow; t++)
            GF_S(gf_dw3_pixel)(xc, wc, s, oy, t, bias, rc, yrow + t);
    }
}

static void GF_S(gf_dw3)(const XT *x, const int8_t *w, const int32_t *bias, const gf_conv_shape_t *s,
                          const gf_requant_t *rq, void *y)
{
    const size_t hw = (size_t)s->h * s->w, ohw = (size_t)s->oh * s->ow;
    gf_dw3_plan_t plan;
    int32_t c, oy, oy_a, oy_b;
    gf_dw3_make_plan(&plan, s, s->sx, GF_DW3_PS(s->sx));
    gf_interior(s->oh, s->h, s->sy, s->pt, 3, &oy_a, &oy_b); /* rows whose 3 input rows all exist */
    for (c = 0; c < s->c; c++) {
        const XT *xc = x + c * hw;
        const int8_t *wc = w + (size_t)c * 9;
        const int32_t b = gf_bias(bias, c);
        uint8_t *yc = (uint8_t *)y + c * ohw;
        gf_rqc_t rc;
        gf_rqc_init(&rc, rq, gf_rq_channel(rq, c));
        for (oy = 0; oy < oy_a; oy++)
            GF_S(gf_dw3_border_row)(xc, wc, s, &plan, oy, b, &rc, yc + (size_t)oy * s->ow);
        if (oy_a < oy_b)
            GF_S(gf_dw3_row1)(xc, xc + (size_t)(oy_a * s->sy - s->pt) * s->w, wc, wc, s, &plan, oy_a, oy_b - oy_a, b,
                              &rc, yc + (size_t)oy_a * s->ow);
        for (oy = oy_b > oy_a ? oy_b : oy_a; oy < s->oh; oy++)
            GF_S(gf_dw3_border_row)(xc, wc, s, &plan, oy, b, &rc, yc + (size_t)oy * s->ow);
    }
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
    if (rq && s->kh == 3 && s->kw == 3 && (s->sx == 1 || s->sx == 2) && s->sy == s->sx && s->h >= 1 && s->w >= 1)
        GF_S(gf_dw3)(x, w, bias, s, rq, y);
    else
        GF_S(gf_dw_generic)(x, w, bias, s, rq, y);
}
