/*
 * SIMD kernels for the cluster: convolution (every geometry: general, 1x1, depthwise, grouped),
 * linear, linear over rows and matmul with the 4-way 8-bit dot products of gf_simd.h. The same
 * integers as the portable kernels (docs/integer_contract.md): exact int32 sums, the same
 * requantization (gf_rqc_apply), zero padding, zero points expanded exactly in wrapping 32 bits.
 *
 * Operands of a dot product must be 4 contiguous bytes on each side:
 *  - conv (CHW input, weights [o][c/groups][kh][kw]): the receptive fields of a few output
 *    pixels are gathered ("im2col") into the caller's buffer `col`, one row of K4 = round4(K)
 *    bytes per pixel (K = c/groups * kh * kw, padding taps and the row tail zero); each weight row
 *    (K bytes, contiguous) is then dotted with the pixel rows, 4 output channels at a time;
 *  - linear: x and each weight row are contiguous already;
 *  - matmul (b [k][n]): GF_SIMD_PIX columns of b are gathered into `col` (K4 bytes each), every
 *    row of a is dotted with 4 of them at once.
 * K % 4 tail bytes are multiplied one by one. The conv gathers col_bytes / K4 pixels per pass
 * (the requantization constants of a block of 4 channels are computed once per pass); the GAP9
 * tiler plans gf_simd_conv_col_bytes(K) per compute core in L1 (codegen/gap9/tiling.py mirrors
 * it), the matmul gf_simd_col_bytes(K) (4 columns). No VLA, no alloca: the stack measurement
 * (codegen/callgraph.py) sees fixed frames.
 */
#include "gf_internal.h"

#ifdef GF_K_SIMD /* the whole file (kernel selection: gf_runtime.h) */

#include <string.h>

#include "gf_simd.h"

GF_INLINE int32_t gf_simd_round4(int32_t k)
{
    return (k + 3) & ~3;
}

uint32_t gf_simd_col_bytes(int32_t k)
{
    return (uint32_t)GF_SIMD_PIX * (uint32_t)gf_simd_round4(k);
}

uint32_t gf_simd_conv_col_bytes(int32_t k)
{
    const uint32_t k4 = (uint32_t)gf_simd_round4(k);
    uint32_t n = GF_SIMD_CONV_COL_BYTES / k4;
    n = n < 1u ? 1u : (n > GF_SIMD_CONV_PIX_MAX ? GF_SIMD_CONV_PIX_MAX : n);
    return n * k4;
}

/* Store acc of channel ch at flat output index idx (byte with rc, else int32). */
GF_INLINE void gf_simd_store(const gf_rqc_t *rc, void *y, size_t idx, int32_t acc)
{
    if (rc)
        ((uint8_t *)y)[idx] = (uint8_t)gf_rqc_apply(rc, acc);
    else
        ((int32_t *)y)[idx] = acc;
}

/* Requantization constants of channels ch .. ch+n-1 (n <= 4; NULL without requantization), channel ch + r's at
 * rc + r * *step: the caller's one precomputed copy of a per-tensor requantization (rq->pre, step 0), else computed
 * into rc (step 1). */
static const gf_rqc_t *gf_simd_rqc(gf_rqc_t *rc, const gf_requant_t *rq, int32_t ch, int32_t n, int32_t *step)
{
    int32_t r;
    *step = 1;
    if (!rq)
        return NULL;
    if (rq->pre && rq->channels == 1) {
        *step = 0;
        return (const gf_rqc_t *)rq->pre;
    }
    for (r = 0; r < n; r++)
        gf_rqc_init(&rc[r], rq, gf_rq_channel(rq, ch + r));
    return rc;
}

/* ---- convolution --------------------------------------------------------------------------- */

/* Receptive field of output pixel (oy, ox) of one group into cp (K4 bytes, zeros for padding).
 * The shape's fields are read into locals first (the byte stores may alias *s). Interior windows
 * with contiguous taps (dx == 1) whose words stay inside the input row copy each kernel row as
 * ceil(kw/4) 4-byte words (loads and stores at any alignment), kw bytes apart: a word's bytes past
 * the row are overwritten by the next rows, and the last rows (those whose words would end past the
 * pixel's K bytes) are copied byte by byte. Border windows: each kernel row's valid taps found once. */
#define GF_SIMD_GATHER(XT)                                                                         \
    static void gf_simd_gather_##XT(const XT *xg, int32_t cg, const gf_conv_shape_t *s, int32_t oy, int32_t ox, \
                                    uint8_t *cp, int32_t k4)                                       \
    {                                                                                              \
        const int32_t H = s->h, W = s->w, kh = s->kh, kw = s->kw, dy = s->dy, dx = s->dx;          \
        const int32_t hw = H * W, by = oy * s->sy - s->pt, bx = ox * s->sx - s->pl;                \
        uint8_t *const c0 = cp;                                                                    \
        int32_t c, i, j;                                                                           \
        if (by >= 0 && bx >= 0 && by + (kh - 1) * dy < H && bx + (kw - 1) * dx < W) {              \
            const XT *xc = xg + (size_t)by * W + bx; /* every tap inside: no tests */              \
            const int32_t rs = dy * W, nw = (kw + 3) >> 2;                                         \
            if (dx == 1 && bx + 4 * nw <= W) {                                                     \
                /* kernel rows copied as words: those whose last word ends within the K bytes */   \
                const int32_t K = cg * kh * kw, fit = K >= 4 * nw ? (K - 4 * nw) / kw + 1 : 0;     \
                const int32_t rows = fit < cg * kh ? fit : cg * kh;                                \
                int32_t n;                                                                         \
                const uint8_t *xr = (const uint8_t *)xc;                                           \
                for (n = 0, i = 0; n < cg * kh; n++) {                                             \
                    if (n < rows) {                                                                \
                        for (j = 0; j < nw; j++)                                                   \
                            gf_simd_stu(cp + 4 * j, gf_simd_ldu(xr + 4 * j));                      \
                        cp += kw;                                                                  \
                    } else {                                                                       \
                        for (j = 0; j < kw; j++) {                                                 \
                            GF_KEEP(cp);                                                           \
                            *cp++ = xr[j];                                                         \
                        }                                                                          \
                    }                                                                              \
                    if (++i == kh)                                                                 \
                        i = 0, xr += hw - (kh - 1) * rs;                                           \
                    else                                                                           \
                        xr += rs;                                                                  \
                }                                                                                  \
            } else {                                                                               \
                for (c = 0; c < cg; c++, xc += hw) {                                               \
                    const XT *xr = xc;                                                             \
                    for (i = 0; i < kh; i++, xr += rs) {                                           \
                        const XT *xq = xr;                                                         \
                        for (j = 0; j < kw; j++, xq += dx)                                         \
                            *cp++ = (uint8_t)*xq;                                                  \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        } else {                                                                                   \
            int32_t j0, j1;                                                                        \
            gf_tap_range(bx, dx, kw, W, &j0, &j1);                                                 \
            for (c = 0; c < cg; c++) {                                                             \
                const XT *xc = xg + (size_t)c * hw;                                                \
                for (i = 0; i < kh; i++) {                                                         \
                    const int32_t iy = by + i * dy;                                                \
                    const int32_t a = iy >= 0 && iy < H ? j0 : kw, e = iy >= 0 && iy < H ? j1 : kw; \
                    const XT *xq = e > a ? xc + (size_t)iy * W + bx + a * dx : xc;                 \
                    for (j = 0; j < a; j++) {                                                      \
                        GF_KEEP(cp);                                                               \
                        *cp++ = 0;                                                                 \
                    }                                                                              \
                    for (; j < e; j++, xq += dx)                                                   \
                        *cp++ = (uint8_t)*xq;                                                      \
                    for (; j < kw; j++) {                                                          \
                        GF_KEEP(cp);                                                               \
                        *cp++ = 0;                                                                 \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        while (cp != c0 + k4) {                                                                    \
            GF_KEEP(cp);                                                                           \
            *cp++ = 0;                                                                             \
        }                                                                                          \
    }
GF_SIMD_GATHER(int8_t)
GF_SIMD_GATHER(uint8_t)

/* 1x1 convolution: the receptive fields of the 4 pixels at input offset i0 .. i0+3 of each plane
 * (cg channels, hw bytes apart) into 4 rows of k4 bytes: one 4-byte load per channel, its bytes
 * to the 4 rows (the input is read at any alignment), the rows' tails zero. */
static void gf_simd_gather4_1x1(const void *xg, int32_t cg, int32_t hw, size_t i0, uint8_t *cp, int32_t k4)
{
    const uint8_t *xc = (const uint8_t *)xg + i0;
    uint8_t *c1 = cp + k4, *c2 = c1 + k4, *c3 = c2 + k4;
    int32_t c;
    for (c = 0; c < cg; c++, xc += hw) {
        const uint32_t v = gf_simd_ldu(xc);
        cp[c] = (uint8_t)v, c1[c] = (uint8_t)(v >> 8), c2[c] = (uint8_t)(v >> 16), c3[c] = (uint8_t)(v >> 24);
    }
    for (; c < k4; c++) {
        GF_KEEP(c);
        cp[c] = c1[c] = c2[c] = c3[c] = 0;
    }
}

/* The receptive fields of np output pixels from flat pixel index p on (row-major over the tile's
 * ow columns) into np rows of k4 bytes at col. Kernels of at most 4 columns with contiguous taps
 * (dx == 1) over rows of at least 4 bytes: each kernel row is one 4-byte load inside the input row
 * (at the window's start, or moved inside the row at a border and shifted back into place), the
 * padding taps masked to zero, stored as a word kw bytes after the previous one (its bytes past kw
 * are overwritten by the next row; a row whose word would end past k4 is stored byte by byte, the
 * bytes K .. k4-1 zeroed last); the window's valid columns and kernel rows found once per pixel.
 * Other geometries: gf_simd_gather_* per pixel. */
/* One kernel row's word v at cp: one store, or kw bytes where the word would end past ce (the last
 * word of the pixel's row). */
GF_INLINE void gf_simd_put_row(uint8_t *cp, const uint8_t *ce, uint32_t v, int32_t kw)
{
    if (GF_UNLIKELY(cp > ce)) {
        int32_t j;
        for (j = 0; j < kw; j++, v >>= 8)
            cp[j] = (uint8_t)v;
    } else {
        gf_simd_stu(cp, v);
    }
}

#define GF_SIMD_GATHER_RUN(XT)                                                                     \
    static void gf_simd_gather_run_##XT(const XT *xg, int32_t cg, const gf_conv_shape_t *s, int32_t p, int32_t np, \
                                        uint8_t *col, int32_t k4)                                  \
    {                                                                                              \
        const int32_t H = s->h, W = s->w, kh = s->kh, kw = s->kw, dy = s->dy, sy = s->sy, sx = s->sx; \
        const int32_t ow = s->ow, pt = s->pt, pl = s->pl, hw = H * W, rs = dy * W, K = cg * kh * kw; \
        int32_t oy = p / ow, ox = p - oy * ow, q, c, i;                                            \
        if (kh == 1 && kw == 1) { /* one byte per channel, zeros for a padding pixel */            \
            for (q = 0; q < np; q++, col += k4) {                                                  \
                const int32_t by = oy * sy - pt, bx = ox * sx - pl;                                \
                if (by >= 0 && by < H && bx >= 0 && bx < W) {                                      \
                    const XT *xq = xg + by * W + bx;                                               \
                    for (c = 0; c < cg; c++, xq += hw)                                             \
                        col[c] = (uint8_t)*xq;                                                     \
                } else {                                                                           \
                    for (c = 0; c < cg; c++) {                                                     \
                        GF_KEEP(c);                                                                \
                        col[c] = 0;                                                                \
                    }                                                                              \
                }                                                                                  \
                for (c = cg; c < k4; c++) {                                                        \
                    GF_KEEP(c);                                                                    \
                    col[c] = 0;                                                                    \
                }                                                                                  \
                if (++ox == ow)                                                                    \
                    ox = 0, oy++;                                                                  \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        if (!(kw <= 4 && s->dx == 1 && W >= 4)) {                                                  \
            for (q = 0; q < np; q++) {                                                             \
                gf_simd_gather_##XT(xg, cg, s, oy, ox, col + (size_t)q * k4, k4);                  \
                if (++ox == ow)                                                                    \
                    ox = 0, oy++;                                                                  \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        for (q = 0; q < np; q++, col += k4) {                                                      \
            const int32_t by = oy * sy - pt, bx = ox * sx - pl;                                    \
            const int32_t j0 = bx < 0 ? -bx : 0, j1 = W - bx < kw ? W - bx : kw;                   \
            const int32_t L = bx < 0 ? 0 : (bx > W - 4 ? W - 4 : bx), sft = bx - L;               \
            const uint32_t sr = sft > 0 ? 8u * (uint32_t)sft : 0u, sl = sft < 0 ? 8u * (uint32_t)-sft : 0u; \
            uint32_t M = j1 > j0 ? (0xFFFFFFFFu >> (8 * (4 - (j1 - j0)))) << (8 * j0) : 0u;       \
            uint8_t *cp = col, *const ce = col + k4 - 4; /* a word stored at cp <= ce stays in the row */ \
            const uint8_t *xc;                                                                     \
            int32_t i0 = 0, i1 = kh, cg_done = 0;                                                  \
            while (i0 < kh && by + i0 * dy < 0)                                                    \
                i0++;                                                                              \
            while (i1 > i0 && by + (i1 - 1) * dy >= H)                                             \
                i1--;                                                                              \
            if (!M)                                                                                \
                i1 = i0;                                                                           \
            xc = (const uint8_t *)xg + (by + i0 * dy) * W + L;                                     \
            if (i0 == 0 && i1 == kh && sft == 0 && j0 == 0 && j1 == kw) {                          \
                /* every tap inside: plain word copies (the bytes past kw are overwritten) */      \
                for (c = 0; c < cg; c++, xc += hw) {                                               \
                    const uint8_t *xr = xc;                                                        \
                    if (cp + (kh - 1) * kw <= ce) {                                                \
                        for (i = 0; i < kh; i++, cp += kw, xr += rs)                               \
                            gf_simd_stu(cp, gf_simd_ldu(xr));                                      \
                    } else {                                                                       \
                        for (i = 0; i < kh; i++, cp += kw, xr += rs)                               \
                            gf_simd_put_row(cp, ce, gf_simd_ldu(xr), kw);                          \
                    }                                                                              \
                }                                                                                  \
                cg_done = 1;                                                                       \
            }                                                                                      \
            for (c = cg_done ? cg : 0; c < cg; c++, xc += hw) {                                    \
                const uint8_t *xr = xc;                                                            \
                for (i = 0; i < kh; i++, cp += kw) {                                               \
                    uint32_t v = 0;                                                                \
                    if (i >= i0 && i < i1) {                                                       \
                        v = ((gf_simd_ldu(xr) >> sr) << sl) & M;                                   \
                        xr += rs;                                                                  \
                    }                                                                              \
                    gf_simd_put_row(cp, ce, v, kw);                                                \
                }                                                                                  \
            }                                                                                      \
            for (i = K; i < k4; i++) {                                                             \
                GF_KEEP(i);                                                                        \
                col[i] = 0;                                                                        \
            }                                                                                      \
            if (++ox == ow)                                                                        \
                ox = 0, oy++;                                                                      \
        }                                                                                          \
    }
GF_SIMD_GATHER_RUN(int8_t)
GF_SIMD_GATHER_RUN(uint8_t)

/* Requantize (or store as int32 with rc NULL) acc[0 .. n-1] + b of one channel into y[0 .. n-1]:
 * the channel's constants in registers for the row, the clamp as max / min (p.max, p.min) instead
 * of gf_rq_fast's out-of-line saturation (the same result for lo <= hi: gf_rq_fast is called with
 * bounds it never reaches; lo > hi keeps gf_rqc_apply). */
GF_INLINE void gf_simd_rq_row(const gf_rqc_t *rc, const int32_t *acc, int32_t n, int32_t b, void *y)
{
    int32_t q;
    if (!rc) {
        int32_t *const yw = (int32_t *)y;
        for (q = 0; q < n; q++)
            yw[q] = (int32_t)((uint32_t)acc[q] + (uint32_t)b);
        return;
    }
    {
        GF_RQ_DECL(rc);
        const int32_t hi_ = rc_->hi;
        uint8_t *const yb = (uint8_t *)y;
        if (GF_UNLIKELY(lo_ > hi_)) {
            for (q = 0; q < n; q++)
                yb[q] = (uint8_t)gf_rqc_apply(rc_, (int32_t)((uint32_t)acc[q] + (uint32_t)b));
            return;
        }
        for (q = 0; q + 2 <= n; q += 2) { /* two at a time: the loads' and mulh's latencies overlap */
            const int32_t a0 = (int32_t)((uint32_t)acc[q] + (uint32_t)b), a1 = (int32_t)((uint32_t)acc[q + 1] + (uint32_t)b);
            const int32_t r0 = gf_rq_fast(a0, m_, oh_, mk_, k_, INT32_MIN, 0xFFFFFFFFu, rc_);
            const int32_t r1 = gf_rq_fast(a1, m_, oh_, mk_, k_, INT32_MIN, 0xFFFFFFFFu, rc_);
            yb[q] = (uint8_t)gf_simd_min(gf_simd_max(r0, lo_), hi_);
            yb[q + 1] = (uint8_t)gf_simd_min(gf_simd_max(r1, lo_), hi_);
        }
        if (q < n) {
            const int32_t r = gf_rq_fast((int32_t)((uint32_t)acc[q] + (uint32_t)b), m_, oh_, mk_, k_, INT32_MIN,
                                         0xFFFFFFFFu, rc_);
            yb[q] = (uint8_t)gf_simd_min(gf_simd_max(r, lo_), hi_);
        }
        (void)rg_;
    }
}

/* XT: input type, SFX: lanes (x, w) of the dot product. Per pass: the pass's pixels gathered, then
 * per block of 4 output channels (1 at the group's end) the sums of every pixel of the pass into
 * acc (GF_SIMD_CONV_PIX_MAX apart per channel; 2 pixels x 4 channels per inner dot product), then
 * each channel's row of the pass requantized at once. */
#define GF_SIMD_CONV(XT, SFX)                                                                      \
    static GF_NOINLINE void gf_conv_simd_##SFX(const XT *x, const int8_t *w, const int32_t *bias, const gf_conv_shape_t *s, \
                                   const gf_requant_t *rq, void *y, int32_t pa, int32_t pb, uint8_t *col, \
                                   uint32_t col_bytes)                                             \
    {                                                                                              \
        const int32_t cg = s->c / s->groups, og = s->o / s->groups, K = cg * s->kh * s->kw;        \
        const int32_t k4 = gf_simd_round4(K), nw = K >> 2, kt = K & 3, hw = s->h * s->w;           \
        int32_t npix = (int32_t)(col_bytes / (uint32_t)k4); /* pixels per pass (>= 1) */           \
        const int32_t ohw = s->oh * s->ow, O = s->o, G = s->groups, ow = s->ow;                    \
        const size_t esz = rq ? 1u : 4u;                                                           \
        /* 1x1, unpadded, unit column stride: 4 neighbouring pixels are 4 contiguous input bytes */ \
        const int pw = s->kh == 1 && s->kw == 1 && s->sx == 1 && !(s->pt | s->pl | s->pb | s->pr);  \
        const int32_t sy = s->sy, W = s->w;                                                        \
        int32_t acc[4 * GF_SIMD_CONV_PIX_MAX];                                                     \
        int32_t g, p0, q, o, r, t;                                                                 \
        npix = npix > (int32_t)GF_SIMD_CONV_PIX_MAX ? (int32_t)GF_SIMD_CONV_PIX_MAX : npix;        \
        for (g = 0; g < G; g++) {                                                                  \
            const XT *xg = x + (size_t)g * cg * hw;                                                \
            for (p0 = pa; p0 < pb; p0 += npix) {                                                   \
                const int32_t np = pb - p0 < npix ? pb - p0 : npix;                                \
                if (pw) {                                                                          \
                    int32_t oy = p0 / ow, ox = p0 - oy * ow;                                       \
                    for (q = 0; q < np;) {                                                         \
                        if (q + 4 <= np && ox + 4 <= ow) { /* 4 pixels of a row: a word per channel */ \
                            gf_simd_gather4_1x1(xg, cg, hw, (size_t)oy * sy * W + (size_t)ox, col + (size_t)q * k4, k4); \
                            q += 4, ox += 4;                                                       \
                        } else {                                                                   \
                            gf_simd_gather_##XT(xg, cg, s, oy, ox, col + (size_t)q * k4, k4);      \
                            q++, ox++;                                                             \
                        }                                                                          \
                        if (ox == ow)                                                              \
                            ox = 0, oy++;                                                          \
                    }                                                                              \
                } else {                                                                           \
                    gf_simd_gather_run_##XT(xg, cg, s, p0, np, col, k4);                           \
                }                                                                                  \
                for (o = g * og; o < (g + 1) * og;) {                                              \
                    const int32_t R = (g + 1) * og - o >= 4 ? 4 : 1;                               \
                    const int8_t *wo = w + (size_t)o * K;                                          \
                    gf_rqc_t rcb[4];                                                               \
                    int32_t rs;                                                                    \
                    const gf_rqc_t *rc = gf_simd_rqc(rcb, rq, o, R, &rs);                          \
                    /* a K % 4 tail as one more word where a weight row follows the block's last: the \
                     * pixel rows' bytes past K are zero, so the next row's first bytes add nothing */ \
                    const int32_t nwb = kt && o + R < O ? nw + 1 : nw, ktb = nwb > nw ? 0 : kt;    \
                    int32_t tb = ktb; /* the K % 4 tail bytes still to add */                      \
                    if (R == 4 && k4 == 12) { /* 8 < K <= 12: the block's weights in registers */  \
                        uint32_t wr[12], v = 0;                                                    \
                        const uint32_t mk = 0xFFFFFFFFu >> (8 * (12 - K)); /* bytes 8 .. K-1 */     \
                        const uint8_t *wb = (const uint8_t *)wo;                                   \
                        for (r = 0; r < 4; r++, wb += K) { /* row r: words 3r .. 3r+2, zero past K */ \
                            wr[3 * r] = gf_simd_ldu(wb), wr[3 * r + 1] = gf_simd_ldu(wb + 4);      \
                            if (r < 3) /* the next row's bytes masked off */                       \
                                wr[3 * r + 2] = gf_simd_ldu(wb + 8) & mk;                          \
                        }                                                                          \
                        for (t = K - 1; t >= 8; t--) /* the last row's: byte by byte (its end) */  \
                            v = v << 8 | (uint8_t)wo[3 * K + t];                                   \
                        wr[11] = v;                                                                \
                        gf_simd_dotk3_##SFX(col, np, wr, acc, GF_SIMD_CONV_PIX_MAX);               \
                        tb = 0;                                                                    \
                    } else if (R == 4) {                                                           \
                        q = 0;                                                                     \
                        if (k4 == K) /* pixel and weight rows K bytes apart: 4 pixels x 4 channels */ \
                            for (; q + 4 <= np; q += 4)                                            \
                                gf_simd_dot4r4_##SFX(col + (size_t)q * k4, (const uint8_t *)wo, K, nw, acc + q, \
                                                     GF_SIMD_CONV_PIX_MAX);                        \
                        for (; q + 2 <= np; q += 2) { /* two pixels x 4 channels */                \
                            const uint8_t *cq = col + (size_t)q * k4;                              \
                            int32_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};                               \
                            int32_t *const aq = acc + q;                                           \
                            gf_simd_dot4r2_##SFX(cq, cq + k4, (const uint8_t *)wo, K, nwb, a);     \
                            aq[0] = a[0], aq[1] = a[4];                                            \
                            aq[GF_SIMD_CONV_PIX_MAX] = a[1], aq[GF_SIMD_CONV_PIX_MAX + 1] = a[5];  \
                            aq[2 * GF_SIMD_CONV_PIX_MAX] = a[2], aq[2 * GF_SIMD_CONV_PIX_MAX + 1] = a[6]; \
                            aq[3 * GF_SIMD_CONV_PIX_MAX] = a[3], aq[3 * GF_SIMD_CONV_PIX_MAX + 1] = a[7]; \
                        }                                                                          \
                        if (q < np) {                                                              \
                            int32_t a[4] = {0, 0, 0, 0};                                           \
                            gf_simd_dot4r_##SFX(col + (size_t)q * k4, (const uint8_t *)wo, K, nwb, a); \
                            for (r = 0; r < 4; r++)                                                \
                                acc[r * GF_SIMD_CONV_PIX_MAX + q] = a[r];                          \
                        }                                                                          \
                    } else {                                                                       \
                        for (q = 0; q < np; q++)                                                   \
                            acc[q] = gf_simd_dot1_##SFX(col + (size_t)q * k4, (const uint8_t *)wo, nwb, 0); \
                    }                                                                              \
                    for (t = 4 * nwb; t < 4 * nwb + tb; t++) /* the K % 4 tail bytes */            \
                        for (r = 0; r < R; r++) {                                                  \
                            const int32_t wv = wo[(size_t)r * K + t];                              \
                            for (q = 0; q < np; q++)                                               \
                                acc[r * GF_SIMD_CONV_PIX_MAX + q] += wv * (int32_t)(XT)col[(size_t)q * k4 + t]; \
                        }                                                                          \
                    for (r = 0; r < R; r++)                                                        \
                        gf_simd_rq_row(rc ? rc + r * rs : NULL, acc + r * GF_SIMD_CONV_PIX_MAX, np, \
                                       bias ? bias[o + r] : 0,                                     \
                                       (uint8_t *)y + ((size_t)(o + r) * ohw + (size_t)p0) * esz); \
                    o += R;                                                                        \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
GF_SIMD_CONV(int8_t, ss)
GF_SIMD_CONV(uint8_t, us)

/* ---- depthwise convolution ------------------------------------------------------------------
 * groups == c == o, dx == 1, kh * ceil(kw/4) <= GF_SIMD_DW_WORDS. Per channel, the rows of its
 * zero-padded input plane that the output rows need are copied into the buffer (row r, padded
 * column pc at col + r*wb + off + pc, off = -pl mod 4 so that the input columns land word-aligned;
 * padding and the bytes past the window stay zero from one clear per call). A kernel row's taps are
 * ceil(kw/4) words, zero past kw (kept in registers for the channel); an output pixel is one
 * 4-byte load (any alignment) and one dot product per word of each kernel row, read where its
 * window starts. Rows that do not all fit the buffer are processed in passes. */
GF_INLINE int32_t gf_simd_dw_row_bytes(const gf_conv_shape_t *s)
{
    return gf_simd_round4(3 + (s->ow - 1) * s->sx + 4 * ((s->kw + 3) >> 2));
}

uint32_t gf_simd_dw_col_bytes(const gf_conv_shape_t *s)
{
    int32_t wb, span, rows, cap;
    if (!(s->c == s->groups && s->o == s->groups && s->dx == 1 &&
          s->kh * ((s->kw + 3) >> 2) <= GF_SIMD_DW_WORDS))
        return 0;
    wb = gf_simd_dw_row_bytes(s);
    span = (s->kh - 1) * s->dy + 1;
    rows = (s->oh - 1) * s->sy + span;
    cap = (int32_t)(GF_SIMD_DW_COL_BYTES / (uint32_t)wb);
    cap = cap < span ? span : cap;
    return (uint32_t)((rows < cap ? rows : cap) * wb);
}

uint32_t gf_simd_dw_min_bytes(const gf_conv_shape_t *s)
{
    return (uint32_t)(((s->kh - 1) * s->dy + 1) * gf_simd_dw_row_bytes(s));
}

/* n bytes from src (any alignment) to the word-aligned dst, or zeros when src is NULL (word
 * stores; GF_KEEP keeps gcc from calling memset/memcpy, byte-wise in pulpos' C library). */
static void gf_simd_dw_fill(uint8_t *dst, const uint8_t *src, int32_t n)
{
    uint32_t *d = (uint32_t *)(void *)dst, *const de = d + (n >> 2);
    uint8_t *b = dst + 4 * (n >> 2), *const be = dst + n;
    if (src) {
        for (; d != de; d++, src += 4) {
            GF_KEEP(d);
            *d = gf_simd_ldu(src);
        }
        for (; b != be; b++)
            *b = *src++;
    } else {
        for (; d != de; d++) {
            GF_KEEP(d);
            *d = 0;
        }
        for (; b != be; b++) {
            GF_KEEP(b);
            *b = 0;
        }
    }
}

/* Outputs 0 .. n-1 of one output row segment of a channel: p is the buffer at the first pixel's
 * window (kernel row 0), rs the buffer bytes between kernel rows, sx the bytes between windows, W
 * the kernel words (kh rows of nwr), b0 the sums' start (the bias without requantization, 0 with
 * it: folded into rc), y the first output (bytes with rc, else int32). Not inlined: the row loop
 * gets the register file to itself. */
#define GF_SIMD_DW_LOOPS(SFX, STORE)                                                               \
    do {                                                                                           \
        int32_t ox;                                                                                \
        if (kh == 3 && nwr == 1) {                                                                 \
            const uint32_t w0 = W[0], w1 = W[1], w2 = W[2];                                        \
            const uint8_t *r0 = p, *r1 = p + rs, *r2 = p + 2 * rs;                                 \
            for (ox = 0; ox < n; ox++, r0 += sx, r1 += sx, r2 += sx) {                             \
                int32_t acc = gf_sdot4_##SFX(b0, gf_simd_ldu(r0), w0);                             \
                acc = gf_sdot4_##SFX(acc, gf_simd_ldu(r1), w1);                                    \
                acc = gf_sdot4_##SFX(acc, gf_simd_ldu(r2), w2);                                    \
                STORE(ox, acc);                                                                    \
            }                                                                                      \
        } else if (kh == 5 && nwr == 2) {                                                          \
            const uint32_t w0 = W[0], w1 = W[1], w2 = W[2], w3 = W[3], w4 = W[4];                 \
            const uint32_t w5 = W[5], w6 = W[6], w7 = W[7], w8 = W[8], w9 = W[9];                 \
            const uint8_t *r0 = p;                                                                 \
            for (ox = 0; ox < n; ox++, r0 += sx) {                                                 \
                const uint8_t *r1 = r0 + rs, *r2 = r1 + rs, *r3 = r2 + rs, *r4 = r3 + rs;          \
                int32_t acc = gf_sdot4_##SFX(b0, gf_simd_ldu(r0), w0);                             \
                acc = gf_sdot4_##SFX(acc, gf_simd_ldu(r0 + 4), w1);                                \
                acc = gf_sdot4_##SFX(acc, gf_simd_ldu(r1), w2);                                    \
                acc = gf_sdot4_##SFX(acc, gf_simd_ldu(r1 + 4), w3);                                \
                acc = gf_sdot4_##SFX(acc, gf_simd_ldu(r2), w4);                                    \
                acc = gf_sdot4_##SFX(acc, gf_simd_ldu(r2 + 4), w5);                                \
                acc = gf_sdot4_##SFX(acc, gf_simd_ldu(r3), w6);                                    \
                acc = gf_sdot4_##SFX(acc, gf_simd_ldu(r3 + 4), w7);                                \
                acc = gf_sdot4_##SFX(acc, gf_simd_ldu(r4), w8);                                    \
                acc = gf_sdot4_##SFX(acc, gf_simd_ldu(r4 + 4), w9);                                \
                STORE(ox, acc);                                                                    \
            }                                                                                      \
        } else {                                                                                   \
            const uint8_t *r0 = p;                                                                 \
            for (ox = 0; ox < n; ox++, r0 += sx) {                                                 \
                const uint8_t *ri = r0;                                                            \
                const uint32_t *wi = W;                                                            \
                int32_t acc = b0, i, j;                                                            \
                for (i = 0; i < kh; i++, ri += rs)                                                 \
                    for (j = 0; j < nwr; j++)                                                      \
                        acc = gf_sdot4_##SFX(acc, gf_simd_ldu(ri + 4 * j), *wi++);                 \
                STORE(ox, acc);                                                                    \
            }                                                                                      \
        }                                                                                          \
    } while (0)
#define GF_SIMD_DW_RQ(ox, acc) GF_RQ_ONE(yr, ox, acc)
#define GF_SIMD_DW_I32(ox, acc) (yw[ox] = (acc))
#define GF_SIMD_DW_ROW(SFX)                                                                        \
    static GF_NOINLINE void gf_dw_row_##SFX(const uint8_t *p, int32_t rs, int32_t sx, int32_t n, const uint32_t *W, \
                                            int32_t kh, int32_t nwr, int32_t b0, const gf_rqc_t *rc, void *y) \
    {                                                                                              \
        if (rc) {                                                                                  \
            GF_RQ_DECL(rc);                                                                        \
            uint8_t *const yr = (uint8_t *)y;                                                      \
            GF_SIMD_DW_LOOPS(SFX, GF_SIMD_DW_RQ);                                                  \
        } else {                                                                                   \
            int32_t *const yw = (int32_t *)y;                                                      \
            GF_SIMD_DW_LOOPS(SFX, GF_SIMD_DW_I32);                                                 \
        }                                                                                          \
    }
GF_SIMD_DW_ROW(ss)
GF_SIMD_DW_ROW(us)

#define GF_SIMD_DW(XT, SFX)                                                                        \
    static GF_NOINLINE void gf_dw_simd_##SFX(const XT *x, const int8_t *w, const int32_t *bias, const gf_conv_shape_t *s, \
                                             const gf_requant_t *rq, void *y, int32_t pa, int32_t pb, uint8_t *col, \
                                             uint32_t col_bytes)                                   \
    {                                                                                              \
        const int32_t kh = s->kh, kw = s->kw, nwr = (kw + 3) >> 2, sy = s->sy;                     \
        const int32_t span = (kh - 1) * s->dy + 1, wb = gf_simd_dw_row_bytes(s), off = -s->pl & 3; \
        const int32_t nbuf = (int32_t)(col_bytes / (uint32_t)wb), nr = (nbuf - span) / sy + 1;     \
        const int32_t ow = s->ow, hw = s->h * s->w, ohw = s->oh * ow, esz = rq ? 1 : 4;            \
        const int32_t room = wb - off - s->pl;                                                     \
        const int32_t ncopy = s->w < room ? (s->w > 0 ? s->w : 0) : (room > 0 ? room : 0);         \
        const int32_t oya = pa / ow, oyb = (pb - 1) / ow;                                          \
        uint8_t *const din = col + off + s->pl; /* input column 0 of buffer row 0 (word-aligned) */ \
        int32_t c, oy0, oy, r, i, j;                                                               \
        if (pa >= pb)                                                                              \
            return;                                                                                \
        gf_simd_dw_fill(col, NULL, nbuf * wb);                                                     \
        for (c = 0; c < s->c; c++) {                                                               \
            const uint8_t *xc = (const uint8_t *)(x + (size_t)c * hw);                             \
            const int8_t *wc = w + (size_t)c * kh * kw;                                            \
            uint32_t W[GF_SIMD_DW_WORDS];                                                          \
            gf_rqc_t rcb;                                                                          \
            const gf_rqc_t *rc = NULL;                                                             \
            int32_t b0 = bias ? bias[c] : 0;                                                       \
            for (i = 0; i < kh; i++)                                                               \
                for (j = 0; j < nwr; j++) {                                                        \
                    uint32_t v = 0;                                                                \
                    for (r = 3; r >= 0; r--)                                                       \
                        v = v << 8 | (4 * j + r < kw ? (uint8_t)wc[i * kw + 4 * j + r] : 0u);      \
                    W[i * nwr + j] = v;                                                            \
                }                                                                                  \
            if (rq) { /* the bias folded into the constants: the sums start at 0 */                \
                gf_rqc_init_bias(&rcb, rq, gf_rq_channel(rq, c), b0);                              \
                rc = &rcb, b0 = 0;                                                                 \
            }                                                                                      \
            for (oy0 = oya; oy0 <= oyb; oy0 += nr) {                                               \
                const int32_t oy1 = oy0 + nr <= oyb + 1 ? oy0 + nr : oyb + 1;                      \
                const int32_t nrow = (oy1 - 1 - oy0) * sy + span;                                  \
                for (r = 0; r < nrow; r++) {                                                       \
                    const int32_t iy = oy0 * sy + r - s->pt;                                       \
                    gf_simd_dw_fill(din + (size_t)r * wb, iy >= 0 && iy < s->h ? xc + (size_t)iy * s->w : NULL, ncopy); \
                }                                                                                  \
                for (oy = oy0; oy < oy1; oy++) {                                                   \
                    const int32_t xa = oy == oya ? pa - oya * ow : 0, xb = oy == oyb ? pb - oyb * ow : ow; \
                    const size_t yo = (size_t)c * ohw + (size_t)oy * ow + (size_t)xa;              \
                    gf_dw_row_##SFX(col + (size_t)(oy - oy0) * sy * wb + off + xa * s->sx, s->dy * wb, s->sx, \
                                    xb - xa, W, kh, nwr, b0, rc, (uint8_t *)y + yo * (size_t)esz);  \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
GF_SIMD_DW(int8_t, ss)
GF_SIMD_DW(uint8_t, us)

void gf_conv2d_simd(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias, const gf_conv_shape_t *s,
                    const gf_requant_t *rq, void *y, int32_t p0, int32_t p1, uint8_t *col, uint32_t col_bytes)
{
    if (gf_simd_dw_col_bytes(s) && col_bytes >= gf_simd_dw_min_bytes(s)) { /* depthwise: sliding windows */
        if (in_t == GF_U8)
            gf_dw_simd_us((const uint8_t *)x, w, bias, s, rq, y, p0, p1, col, col_bytes);
        else
            gf_dw_simd_ss((const int8_t *)x, w, bias, s, rq, y, p0, p1, col, col_bytes);
        return;
    }
    if (in_t == GF_U8)
        gf_conv_simd_us((const uint8_t *)x, w, bias, s, rq, y, p0, p1, col, col_bytes);
    else
        gf_conv_simd_ss((const int8_t *)x, w, bias, s, rq, y, p0, p1, col, col_bytes);
}

/* Core `core` of `ncores` sharing a tile: a grid of P pixel groups x C channel groups (P * C ==
 * ncores, channels in blocks of 4), the one whose estimated cycles on the busiest core are least:
 * per pixel its gather (~4 K) and per block of 4 channels its dot products and requantization, per
 * channel its requantization constants (~110). Large maps keep P = ncores (every channel, the pixels
 * split); a few pixels (stride-2 tails, 1x1 maps) split the channels too. Grouped and depthwise
 * convolutions split the pixels only. */
void gf_conv2d_simd_core(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
                         const gf_conv_shape_t *s, const gf_requant_t *rq, void *y, int32_t core, int32_t ncores,
                         uint8_t *col, uint32_t col_bytes)
{
    const int32_t npx = s->oh * s->ow, K = s->c * s->kh * s->kw, nb = (s->o + 3) >> 2;
    int32_t ln = 0, lc = 0, p0, p1, o0, o1;
    if (npx >= 2 * ncores || s->groups != 1 || nb < 2) { /* at least 2 pixels a core: the pixels split */
        p0 = core * npx / ncores, p1 = (core + 1) * npx / ncores;
        if (p0 < p1)
            gf_conv2d_simd(x, in_t, w, bias, s, rq, y, p0, p1, col, col_bytes);
        return;
    }
    while ((1 << ln) < ncores)
        ln++;
    if ((1 << ln) == ncores) { /* (groups == 1 and nb >= 2 here) */
        /* ncores a power of two: C = 2^l channel groups, P = 2^(ln-l) pixel groups (shifts only) */
        uint32_t best = 0xFFFFFFFFu;
        int32_t l;
        for (l = 0; l <= ln && (1 << l) <= nb; l++) {
            const uint32_t pp = (uint32_t)(npx + (1 << (ln - l)) - 1) >> (ln - l);
            const uint32_t bb = (uint32_t)(nb + (1 << l) - 1) >> l;
            const uint32_t cost = pp * (4u * (uint32_t)K + 50u) +
                                  pp * bb * ((uint32_t)(K >> 2) * (pp > 1 ? 7u : 9u) + 70u) + bb * 440u;
            if (cost < best)
                best = cost, lc = l;
        }
        {
            const int32_t lp = ln - lc, pi = core & ((1 << lp) - 1), ci = core >> lp;
            p0 = (pi * npx) >> lp, p1 = ((pi + 1) * npx) >> lp;
            o0 = 4 * ((ci * nb) >> lc), o1 = 4 * (((ci + 1) * nb) >> lc);
        }
    } else {
        p0 = core * npx / ncores, p1 = (core + 1) * npx / ncores;
        o0 = 0, o1 = s->o;
    }
    o1 = o1 < s->o ? o1 : s->o;
    if (o0 >= o1 || p0 >= p1)
        return;
    {
        gf_conv_shape_t sc = *s;
        gf_requant_t rc;
        const gf_requant_t *rqp = rq;
        sc.o = o1 - o0;
        if (rq && o0 && rq->channels != 1) {
            rc = *rq;
            rc.m += o0, rc.sh += o0, rc.o += o0;
            rqp = &rc;
        }
        gf_conv2d_simd(x, in_t, w + (size_t)o0 * (size_t)K, bias ? bias + o0 : NULL, &sc, rqp,
                       (uint8_t *)y + (size_t)o0 * (size_t)npx * (rq ? 1u : 4u), p0, p1, col, col_bytes);
    }
}

/* ---- linear ---------------------------------------------------------------------------------- */

/* rows x (k -> o): per block of 4 output features the requantization constants once, then every row
 * (a row's output at y + r * out_row bytes). */
#define GF_SIMD_LINEAR(XT, SFX)                                                                    \
    static void gf_linear_simd_##SFX(const XT *x, const int8_t *w, const int32_t *bias, int32_t rows, int32_t k, \
                                     int32_t o, const gf_requant_t *rq, void *y, size_t out_row)   \
    {                                                                                              \
        const int32_t nw = k >> 2;                                                                 \
        int32_t c, r, t, i;                                                                        \
        for (c = 0; c < o;) {                                                                      \
            const int32_t R = o - c >= 4 ? 4 : 1;                                                  \
            const int8_t *wc = w + (size_t)c * k;                                                  \
            gf_rqc_t rcb[4];                                                                       \
            int32_t rs;                                                                            \
            const gf_rqc_t *rc = gf_simd_rqc(rcb, rq, c, R, &rs);                                  \
            for (i = 0; i < rows; i++) {                                                           \
                const XT *xi = x + (size_t)i * (size_t)k;                                          \
                void *yi = (uint8_t *)y + (size_t)i * out_row;                                     \
                int32_t acc[4];                                                                    \
                for (r = 0; r < R; r++)                                                            \
                    acc[r] = bias ? bias[c + r] : 0;                                               \
                if (R == 4)                                                                        \
                    gf_simd_dot4r_##SFX((const uint8_t *)xi, (const uint8_t *)wc, k, nw, acc);     \
                else                                                                               \
                    acc[0] = gf_simd_dot1_##SFX((const uint8_t *)xi, (const uint8_t *)wc, nw, acc[0]); \
                for (t = 4 * nw; t < k; t++)                                                       \
                    for (r = 0; r < R; r++)                                                        \
                        acc[r] += wc[(size_t)r * k + t] * (int32_t)xi[t];                          \
                for (r = 0; r < R; r++)                                                            \
                    gf_simd_store(rc ? rc + r * rs : NULL, yi, (size_t)(c + r), acc[r]);           \
            }                                                                                      \
            c += R;                                                                                \
        }                                                                                          \
    }
GF_SIMD_LINEAR(int8_t, ss)
GF_SIMD_LINEAR(uint8_t, us)

/* int32 codes (the sums of a global average pool, |acc| < 2^31 proved by the planner): no 8-bit dot
 * products, one MAC at a time, the same requantization. */
static void gf_linear_simd_s32(const int32_t *x, const int8_t *w, const int32_t *bias, int32_t rows, int32_t k,
                               int32_t o, const gf_requant_t *rq, void *y, size_t out_row)
{
    int32_t c, i, t;
    for (c = 0; c < o; c++) {
        const int8_t *wc = w + (size_t)c * k;
        gf_rqc_t rcb[1];
        int32_t rs;
        const gf_rqc_t *rc = gf_simd_rqc(rcb, rq, c, 1, &rs);
        for (i = 0; i < rows; i++) {
            const int32_t *xi = x + (size_t)i * (size_t)k;
            int32_t acc = bias ? bias[c] : 0;
            for (t = 0; t < k; t++)
                acc += wc[t] * xi[t];
            gf_simd_store(rc, (uint8_t *)y + (size_t)i * out_row, (size_t)c, acc);
        }
    }
}

/* One row (k -> o), the fabric controller's linear layers and the cluster's one-row tiles, in chunks of
 * GF_SIMD_LIN1_CHUNK outputs and two passes, so that neither needs more registers than the core has: the
 * int32 sums (per block of 4 outputs the bias, the dot products of gf_simd_dot4r in registers, the K % 4
 * tail; the last o % 4 one at a time) into y (int32 output) or a stack buffer, then the buffer requantized
 * with a per-tensor requantization's constants in registers (gf_simd_rq_row; per channel: each channel's
 * constants). The
 * same integers as gf_linear_simd_<sfx> with rows == 1. */
#define GF_SIMD_LIN1_CHUNK 32
#define GF_SIMD_LINEAR1(XT, SFX)                                                                   \
    static void gf_linear1_sums_##SFX(const XT *x, const int8_t *w, const int32_t *bias, int32_t k, int32_t n, \
                                      int32_t *acc)                                                \
    {                                                                                              \
        const int32_t nw = k >> 2;                                                                 \
        int32_t r = 0, t;                                                                          \
        if ((k & 3) == 0) /* 8 outputs per input word (the rows' tails: none) */                   \
            for (; r + 8 <= n; r += 8) {                                                           \
                int32_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                           \
                if (bias)                                                                          \
                    a[0] = bias[r], a[1] = bias[r + 1], a[2] = bias[r + 2], a[3] = bias[r + 3],    \
                    a[4] = bias[r + 4], a[5] = bias[r + 5], a[6] = bias[r + 6], a[7] = bias[r + 7]; \
                gf_simd_dot8r_##SFX((const uint8_t *)x, (const uint8_t *)(w + (size_t)r * k), k, nw, a); \
                acc[r] = a[0], acc[r + 1] = a[1], acc[r + 2] = a[2], acc[r + 3] = a[3];            \
                acc[r + 4] = a[4], acc[r + 5] = a[5], acc[r + 6] = a[6], acc[r + 7] = a[7];        \
            }                                                                                      \
        for (; r + 4 <= n; r += 4) {                                                               \
            const int8_t *wc = w + (size_t)r * k;                                                  \
            int32_t a[4];                                                                          \
            a[0] = bias ? bias[r] : 0;                                                             \
            a[1] = bias ? bias[r + 1] : 0;                                                         \
            a[2] = bias ? bias[r + 2] : 0;                                                         \
            a[3] = bias ? bias[r + 3] : 0;                                                         \
            gf_simd_dot4r_##SFX((const uint8_t *)x, (const uint8_t *)wc, k, nw, a);                \
            for (t = 4 * nw; t < k; t++) {                                                         \
                const int32_t v = x[t];                                                            \
                a[0] += wc[t] * v;                                                                 \
                a[1] += wc[k + t] * v;                                                             \
                a[2] += wc[2 * k + t] * v;                                                         \
                a[3] += wc[3 * k + t] * v;                                                         \
            }                                                                                      \
            acc[r] = a[0], acc[r + 1] = a[1], acc[r + 2] = a[2], acc[r + 3] = a[3];                \
        }                                                                                          \
        for (; r < n; r++) {                                                                       \
            const int8_t *wc = w + (size_t)r * k;                                                  \
            int32_t v = gf_simd_dot1_##SFX((const uint8_t *)x, (const uint8_t *)wc, nw, bias ? bias[r] : 0); \
            for (t = 4 * nw; t < k; t++)                                                           \
                v += wc[t] * (int32_t)x[t];                                                        \
            acc[r] = v;                                                                            \
        }                                                                                          \
    }                                                                                              \
    static GF_NOINLINE void gf_linear1_simd_##SFX(const XT *x, const int8_t *w, const int32_t *bias, int32_t k, int32_t o, \
                                      const gf_requant_t *rq, void *y)                             \
    {                                                                                              \
        int32_t buf[GF_SIMD_LIN1_CHUNK];                                                           \
        gf_rqc_t pc;                                                                               \
        int32_t c0, i;                                                                             \
        if (!rq) {                                                                                 \
            gf_linear1_sums_##SFX(x, w, bias, k, o, (int32_t *)y);                                 \
            return;                                                                                \
        }                                                                                          \
        if (rq->channels == 1) {                                                                   \
            if (rq->pre)                                                                           \
                pc = *(const gf_rqc_t *)rq->pre;                                                   \
            else                                                                                   \
                gf_rqc_init(&pc, rq, 0);                                                           \
        }                                                                                          \
        for (c0 = 0; c0 < o; c0 += GF_SIMD_LIN1_CHUNK) {                                           \
            const int32_t n = o - c0 < GF_SIMD_LIN1_CHUNK ? o - c0 : GF_SIMD_LIN1_CHUNK;           \
            uint8_t *yc = (uint8_t *)y + c0;                                                       \
            gf_linear1_sums_##SFX(x, w + (size_t)c0 * k, bias ? bias + c0 : NULL, k, n, buf);      \
            if (rq->channels == 1) {                                                               \
                gf_simd_rq_row(&pc, buf, n, 0, yc);                                                \
            } else {                                                                               \
                for (i = 0; i < n; i++) {                                                          \
                    gf_rqc_init(&pc, rq, c0 + i);                                                  \
                    yc[i] = (uint8_t)gf_rqc_apply(&pc, buf[i]);                                    \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
GF_SIMD_LINEAR1(int8_t, ss)
GF_SIMD_LINEAR1(uint8_t, us)

/* One row with K % 4 == 0 (the FC's linear layers): each block of rows' sums in registers (the bias, then
 * gf_simd_dot8r: 8 outputs per input word) and requantized (or stored) straight from them. Two functions, so
 * that the path a step runs is short and contiguous (each FC step fetches its code cold):
 *  - gf_linear8_rq_<sfx>: o >= 8, a per-tensor requantization with lo <= hi (rc its constants). The clamp
 *    is p.clipu where lo == 0 (ReLU: one instruction), else p.max / p.min (gf_rq_fast never reaches its own
 *    bounds INT32_MIN .. INT32_MAX). The last block of 8 ends at o: when 8 does not divide o it overlaps the
 *    previous one, whose last outputs it recomputes and stores again (the same values; y does not overlap x).
 *  - gf_linear8_i32_<sfx>: o >= 4, int32 sums. Blocks of 8 rows, then the rest (1..7 rows) as one block that
 *    ends at o: 4 rows (gf_simd_dot4r, 5 loads and 4 dot products per word) where at most 4 remain, else 8,
 *    overlapping the rows before (recomputed, the same values).
 * The same integers as gf_linear1_simd_<sfx>. */
/* Not inlined, and not cloned with fewer arguments either (gcc's constprop would reorder them): gf_linear_simd's
 * tail calls pass its own argument registers on. */
#if defined(__GNUC__) && !defined(__clang__)
#define GF_SIMD_NOIPA __attribute__((noipa))
#else
#define GF_SIMD_NOIPA GF_NOINLINE
#endif
#define GF_SIMD_LIN8_BIAS(a, b)                                                                    \
    do {                                                                                           \
        if (b)                                                                                     \
            a[0] = b[0], a[1] = b[1], a[2] = b[2], a[3] = b[3], a[4] = b[4], a[5] = b[5], a[6] = b[6], a[7] = b[7]; \
        else                                                                                       \
            a[0] = a[1] = a[2] = a[3] = a[4] = a[5] = a[6] = a[7] = 0;                             \
    } while (0)
/* the blocks of gf_linear8_rq_<sfx> with one clamp (CLAMP of v), unswitched: the loop a step runs holds no
 * test of the clamp kind */
#define GF_SIMD_LIN8_RQ_LOOP(SFX, CLAMP)                                                           \
    for (;;) {                                                                                     \
        int32_t a[8];                                                                              \
        GF_SIMD_LIN8_BIAS(a, b);                                                                   \
        gf_simd_dot8r_##SFX((const uint8_t *)x, (const uint8_t *)wr, k, nw, a);                    \
        GF_UNROLL                                                                                  \
        for (i = 0; i < 8; i++) {                                                                  \
            const int32_t v = gf_rq_fast(a[i], m_, oh_, mk_, k_, INT32_MIN, 0xFFFFFFFFu, rc);      \
            yb[i] = (uint8_t)(CLAMP);                                                              \
        }                                                                                          \
        if (yb == ye)                                                                              \
            return;                                                                                \
        /* the next block of 8, or the last one ending at o */                                     \
        i = ye - yb >= 8 ? 8 : (int32_t)(ye - yb);                                                 \
        yb += i, wr += i * k;                                                                      \
        if (b)                                                                                     \
            b += i;                                                                                \
    }
#define GF_SIMD_LINEAR8(XT, SFX)                                                                   \
    static GF_SIMD_NOIPA void gf_linear8_rq_##SFX(const void *xv, gf_dtype_t in_t, const int8_t *w, const int32_t *bias, \
                                                int32_t k, int32_t o, const void *rcv, void *yv)   \
    {                                                                                              \
        const XT *const x = (const XT *)xv;                                                        \
        const gf_rqc_t *const rc = (const gf_rqc_t *)rcv;                                          \
        uint8_t *const y = (uint8_t *)yv;                                                          \
        const int32_t nw = k >> 2, m_ = rc->m, oh_ = rc->oh1, k_ = rc->k, lo_ = rc->lo, hi_ = rc->hi; \
        const uint32_t mk_ = rc->mask;                                                             \
        const int32_t *b = bias;                                                                   \
        const int8_t *wr = w;                                                                      \
        uint8_t *yb = y, *const ye = y + o - 8; /* the last block's first output */                \
        int32_t i;                                                                                 \
        (void)in_t;                                                                                \
        if (lo_ == 0)                                                                              \
            GF_SIMD_LIN8_RQ_LOOP(SFX, gf_simd_clipu(v, hi_))                                       \
        else                                                                                       \
            GF_SIMD_LIN8_RQ_LOOP(SFX, gf_simd_min(gf_simd_max(v, lo_), hi_))                       \
    }                                                                                              \
    static GF_SIMD_NOIPA void gf_linear8_i32_##SFX(const void *xv, gf_dtype_t in_t, const int8_t *w, const int32_t *bias, \
                                                 int32_t k, int32_t o, const void *unused, void *yv) \
    {                                                                                              \
        const XT *const x = (const XT *)xv;                                                        \
        int32_t *const y = (int32_t *)yv;                                                          \
        const int32_t nw = k >> 2;                                                                 \
        int32_t r = 0;                                                                             \
        (void)in_t, (void)unused;                                                                  \
        for (;;) {                                                                                 \
            int32_t a[8];                                                                          \
            const int32_t *const b = bias ? bias + r : NULL;                                       \
            int32_t *const yw = y + r;                                                             \
            if (o - r >= 8) {                                                                      \
                GF_SIMD_LIN8_BIAS(a, b);                                                           \
                gf_simd_dot8r_##SFX((const uint8_t *)x, (const uint8_t *)(w + (size_t)r * k), k, nw, a); \
                yw[0] = a[0], yw[1] = a[1], yw[2] = a[2], yw[3] = a[3];                            \
                yw[4] = a[4], yw[5] = a[5], yw[6] = a[6], yw[7] = a[7];                            \
                r += 8;                                                                            \
                if (r == o)                                                                        \
                    return;                                                                        \
                if (o - r < 8) /* the rest: one block ending at o */                               \
                    r = o - (o - r <= 4 ? 4 : 8);                                                  \
            } else {                                                                               \
                if (b)                                                                             \
                    a[0] = b[0], a[1] = b[1], a[2] = b[2], a[3] = b[3];                            \
                else                                                                               \
                    a[0] = a[1] = a[2] = a[3] = 0;                                                 \
                gf_simd_dot4r_##SFX((const uint8_t *)x, (const uint8_t *)(w + (size_t)r * k), k, nw, a); \
                yw[0] = a[0], yw[1] = a[1], yw[2] = a[2], yw[3] = a[3];                            \
                if (r + 4 == o)                                                                    \
                    return;                                                                        \
                r += 4; /* 4 <= o < 8: the second block of 4 ends at o */                          \
                if (o - r < 4)                                                                     \
                    r = o - 4;                                                                     \
            }                                                                                      \
        }                                                                                          \
    }
GF_SIMD_LINEAR8(int8_t, ss)
GF_SIMD_LINEAR8(uint8_t, us)

void gf_linear_rows_simd(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias, int32_t rows,
                         int32_t k, int32_t o, const gf_requant_t *rq, void *y)
{
    const size_t out_row = (size_t)o * (rq ? 1u : 4u);
    gf_requant_t rl;
    gf_rqc_t pre;
    if (rq && rq->channels == 1 && !rq->pre && o > 1) { /* per tensor: its constants once, not per block of 4 */
        gf_rqc_pre_fill(rq, (uint32_t *)(void *)&pre);
        rl = *rq;
        rl.pre = &pre;
        rq = &rl;
    }
    if (in_t == GF_U8)
        gf_linear_simd_us((const uint8_t *)x, w, bias, rows, k, o, rq, y, out_row);
    else if (in_t == GF_S32)
        gf_linear_simd_s32((const int32_t *)x, w, bias, rows, k, o, rq, y, out_row);
    else
        gf_linear_simd_ss((const int8_t *)x, w, bias, rows, k, o, rq, y, out_row);
}

void gf_rqc_pre_fill(const gf_requant_t *rq, uint32_t *pre)
{
    _Static_assert(GF_RQC_PRE_WORDS * 4 == sizeof(gf_rqc_t), "GF_RQC_PRE_WORDS: the constants' words");
    gf_rqc_init((gf_rqc_t *)(void *)pre, rq, 0);
}

/* gf_linear_simd with a per-tensor requantization whose constants were not precomputed (rq->pre NULL; K % 4 == 0,
 * o >= 8, 8-bit input): the constants once, then the kernel gf_linear_simd would pick with them. Out of line, so that the FC's path
 * through gf_linear_simd keeps no frame. */
static GF_NOINLINE void gf_linear8_rq_init(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
                                           int32_t k, int32_t o, const gf_requant_t *rq, void *y)
{
    gf_rqc_t rc;
    gf_rqc_init(&rc, rq, 0);
    if (rc.lo > rc.hi) {
        if (in_t == GF_U8)
            gf_linear1_simd_us((const uint8_t *)x, w, bias, k, o, rq, y);
        else
            gf_linear1_simd_ss((const int8_t *)x, w, bias, k, o, rq, y);
    } else if (in_t == GF_U8) {
        gf_linear8_rq_us(x, in_t, w, bias, k, o, &rc, y);
    } else {
        gf_linear8_rq_ss(x, in_t, w, bias, k, o, &rc, y);
    }
}

/* int32 codes: gf_linear_rows_simd's one MAC at a time (out of line: a call of 9 arguments would give
 * gf_linear_simd a frame) */
static GF_NOINLINE void gf_linear1_simd_s32(const void *x, const int8_t *w, const int32_t *bias, int32_t k, int32_t o,
                                            const gf_requant_t *rq, void *y)
{
    gf_linear_rows_simd(x, GF_S32, w, bias, 1, k, o, rq, y);
}

/* gf_linear_simd's other cases (per-channel requantization, K % 4 != 0, int32 codes, few outputs, constants not
 * precomputed) */
static GF_SIMD_NOIPA void gf_linear_simd_other(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
                                               int32_t k, int32_t o, const gf_requant_t *rq, void *y)
{
    if ((k & 3) == 0 && in_t != GF_S32 && rq && !rq->pre && rq->channels == 1 && o >= 8) {
        gf_linear8_rq_init(x, in_t, w, bias, k, o, rq, y); /* the cluster's one-row tiles */
        return;
    }
    if (in_t == GF_U8)
        gf_linear1_simd_us((const uint8_t *)x, w, bias, k, o, rq, y);
    else if (in_t == GF_S32) /* the sums of a pooling */
        gf_linear1_simd_s32(x, w, bias, k, o, rq, y);
    else
        gf_linear1_simd_ss((const int8_t *)x, w, bias, k, o, rq, y);
}

/* Only tail calls with gf_linear_simd's own arguments (the SIMD kernels take them in its order; rq's place: its
 * precomputed constants), so that the FC's path through it has no frame and few instructions. rq->pre is set
 * only for a per-tensor requantization (gf_runtime.h). */
void gf_linear_simd(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias, int32_t k, int32_t o,
                    const gf_requant_t *rq, void *y)
{
    if ((k & 3) == 0 && in_t != GF_S32) {
        if (!rq) {
            if (o >= 4) {
                if (in_t == GF_U8)
                    gf_linear8_i32_us(x, in_t, w, bias, k, o, NULL, y);
                else
                    gf_linear8_i32_ss(x, in_t, w, bias, k, o, NULL, y);
                return;
            }
        } else if (o >= 8 && rq->pre) {
            const gf_rqc_t *rcp = (const gf_rqc_t *)rq->pre;
            if (rcp->lo <= rcp->hi) {
                if (in_t == GF_U8)
                    gf_linear8_rq_us(x, in_t, w, bias, k, o, rcp, y);
                else
                    gf_linear8_rq_ss(x, in_t, w, bias, k, o, rcp, y);
                return;
            }
        }
    }
    gf_linear_simd_other(x, in_t, w, bias, k, o, rq, y);
}

/* ---- matmul ---------------------------------------------------------------------------------- */

/* acc = sum (a - za)(b - zb) = sum ab - zb sum a - za sum b + k za zb, in wrapping 32 bits (the
 * exact int32 result whenever the portable kernel's int32 sum is exact). */
#define GF_SIMD_MATMUL(TA, TB, SFX)                                                                \
    static void gf_matmul_simd_##SFX(const TA *a, int32_t za, const TB *b, int32_t zb, int32_t g, int32_t m,  \
                                     int32_t k, int32_t n, const gf_requant_t *rq, void *y, uint8_t *col) \
    {                                                                                              \
        const int32_t k4 = gf_simd_round4(k), nw = k >> 2;                                         \
        const uint32_t kzz = (uint32_t)k * (uint32_t)za * (uint32_t)zb;                            \
        const size_t esz = rq ? 1u : 4u;                                                           \
        int32_t gi, j0, q, i, t;                                                                   \
        for (gi = 0; gi < g; gi++) {                                                               \
            const TA *ag = a + (size_t)gi * m * k;                                                 \
            const TB *bg = b + (size_t)gi * k * n;                                                 \
            uint8_t *yg = (uint8_t *)y + (size_t)gi * m * n * esz;                                 \
            for (j0 = 0; j0 < n; j0 += GF_SIMD_PIX) {                                              \
                const int32_t np = n - j0 < GF_SIMD_PIX ? n - j0 : GF_SIMD_PIX;                    \
                uint32_t sb[GF_SIMD_PIX];                                                          \
                gf_rqc_t rcb[GF_SIMD_PIX];                                                         \
                const gf_rqc_t *rc = NULL;                                                         \
                if (rq) {                                                                          \
                    for (q = 0; q < np; q++)                                                       \
                        gf_rqc_init(&rcb[q], rq, gf_rq_channel(rq, j0 + q));                       \
                    rc = rcb;                                                                      \
                }                                                                                  \
                for (q = 0; q < np; q++) {                                                         \
                    uint8_t *cq = col + (size_t)q * k4;                                            \
                    const TB *bq = bg + j0 + q;                                                    \
                    uint32_t sum = 0;                                                              \
                    for (t = 0; t < k; t++, bq += n) {                                             \
                        cq[t] = (uint8_t)*bq;                                                      \
                        sum += (uint32_t)(int32_t)*bq;                                             \
                    }                                                                              \
                    for (; t < k4; t++) { /* GF_KEEP: no memset call (byte-wise in pulpos) */ \
                        GF_KEEP(t);                                                                \
                        cq[t] = 0;                                                                 \
                    }                                                                              \
                    sb[q] = sum * (uint32_t)za;                                                    \
                }                                                                                  \
                for (i = 0; i < m; i++) {                                                          \
                    const TA *ai = ag + (size_t)i * k;                                             \
                    uint32_t sa = 0;                                                               \
                    int32_t acc[4] = {0, 0, 0, 0};                                                 \
                    if (zb)                                                                        \
                        for (t = 0; t < k; t++)                                                    \
                            sa += (uint32_t)(int32_t)ai[t];                                        \
                    sa *= (uint32_t)zb;                                                            \
                    if (np == 4) {                                                                 \
                        gf_simd_dot4r_##SFX((const uint8_t *)ai, col, k4, nw, acc);                \
                    } else {                                                                       \
                        for (q = 0; q < np; q++)                                                   \
                            acc[q] = gf_simd_dot1_##SFX((const uint8_t *)ai, col + (size_t)q * k4, nw, 0); \
                    }                                                                              \
                    for (t = 4 * nw; t < k; t++) {                                                 \
                        const int32_t av = ai[t];                                                  \
                        for (q = 0; q < np; q++)                                                   \
                            acc[q] += av * (int32_t)(TB)col[(size_t)q * k4 + t];                   \
                    }                                                                              \
                    for (q = 0; q < np; q++) {                                                     \
                        const int32_t v = (int32_t)((uint32_t)acc[q] - sa - sb[q] + kzz);          \
                        gf_simd_store(rc ? rc + q : NULL, yg, (size_t)i * n + (size_t)(j0 + q), v); \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
GF_SIMD_MATMUL(int8_t, int8_t, ss)
GF_SIMD_MATMUL(int8_t, uint8_t, su)
GF_SIMD_MATMUL(uint8_t, int8_t, us)
GF_SIMD_MATMUL(uint8_t, uint8_t, uu)

void gf_matmul_simd(const void *a, gf_dtype_t a_t, int32_t za, const void *b, gf_dtype_t b_t, int32_t zb, int32_t g,
                    int32_t m, int32_t k, int32_t n, const gf_requant_t *rq, void *y, uint8_t *col)
{
    if (a_t == GF_U8) {
        if (b_t == GF_U8)
            gf_matmul_simd_uu((const uint8_t *)a, za, (const uint8_t *)b, zb, g, m, k, n, rq, y, col);
        else
            gf_matmul_simd_us((const uint8_t *)a, za, (const int8_t *)b, zb, g, m, k, n, rq, y, col);
    } else {
        if (b_t == GF_U8)
            gf_matmul_simd_su((const int8_t *)a, za, (const uint8_t *)b, zb, g, m, k, n, rq, y, col);
        else
            gf_matmul_simd_ss((const int8_t *)a, za, (const int8_t *)b, zb, g, m, k, n, rq, y, col);
    }
}

#endif /* GF_K_SIMD */
