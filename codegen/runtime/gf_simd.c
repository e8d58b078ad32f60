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

/* Requantization constants of channels ch .. ch+n-1 (NULL without requantization). */
static const gf_rqc_t *gf_simd_rqc(gf_rqc_t *rc, const gf_requant_t *rq, int32_t ch, int32_t n)
{
    int32_t r;
    if (!rq)
        return NULL;
    for (r = 0; r < n; r++)
        gf_rqc_init(&rc[r], rq, gf_rq_channel(rq, ch + r));
    return rc;
}

/* ---- convolution --------------------------------------------------------------------------- */

/* Receptive field of output pixel (oy, ox) of one group into cp (K4 bytes, zeros for padding). */
#define GF_SIMD_GATHER(XT)                                                                         \
    static void gf_simd_gather_##XT(const XT *xg, int32_t cg, const gf_conv_shape_t *s, int32_t oy, int32_t ox, \
                                    uint8_t *cp, int32_t k4)                                       \
    {                                                                                              \
        const int32_t hw = s->h * s->w, by = oy * s->sy - s->pt, bx = ox * s->sx - s->pl;          \
        uint8_t *const c0 = cp;                                                                    \
        int32_t c, i, j;                                                                           \
        if (by >= 0 && bx >= 0 && by + (s->kh - 1) * s->dy < s->h && bx + (s->kw - 1) * s->dx < s->w) { \
            const XT *xc = xg + (size_t)by * s->w + bx; /* every tap inside: no tests */           \
            const int32_t rs = s->dy * s->w, dx = s->dx, kw = s->kw;                               \
            for (c = 0; c < cg; c++, xc += hw) {                                                   \
                const XT *xr = xc;                                                                 \
                for (i = 0; i < s->kh; i++, xr += rs) {                                            \
                    const XT *xq = xr;                                                             \
                    for (j = 0; j < kw; j++, xq += dx)                                             \
                        *cp++ = (uint8_t)*xq;                                                      \
                }                                                                                  \
            }                                                                                      \
            while (cp != c0 + k4)                                                                  \
                *cp++ = 0;                                                                         \
            return;                                                                                \
        }                                                                                          \
        for (c = 0; c < cg; c++) {                                                                 \
            const XT *xc = xg + (size_t)c * hw;                                                    \
            for (i = 0; i < s->kh; i++) {                                                          \
                const int32_t iy = by + i * s->dy;                                                 \
                if (iy < 0 || iy >= s->h) {                                                        \
                    for (j = 0; j < s->kw; j++)                                                    \
                        *cp++ = 0;                                                                 \
                    continue;                                                                      \
                }                                                                                  \
                {                                                                                  \
                    const XT *xr = xc + (size_t)iy * s->w;                                         \
                    int32_t ix = bx;                                                               \
                    for (j = 0; j < s->kw; j++, ix += s->dx)                                       \
                        *cp++ = (ix >= 0 && ix < s->w) ? (uint8_t)xr[ix] : 0;                      \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        while (cp != c0 + k4)                                                                      \
            *cp++ = 0;                                                                             \
    }
GF_SIMD_GATHER(int8_t)
GF_SIMD_GATHER(uint8_t)

/* XT: input type, SFX: lanes (x, w) of the dot product. */
#define GF_SIMD_CONV(XT, SFX)                                                                      \
    static GF_NOINLINE void gf_conv_simd_##SFX(const XT *x, const int8_t *w, const int32_t *bias, const gf_conv_shape_t *s, \
                                   const gf_requant_t *rq, void *y, int32_t pa, int32_t pb, uint8_t *col, \
                                   uint32_t col_bytes)                                             \
    {                                                                                              \
        const int32_t cg = s->c / s->groups, og = s->o / s->groups, K = cg * s->kh * s->kw;        \
        const int32_t k4 = gf_simd_round4(K), nw = K >> 2, kt = K & 3, hw = s->h * s->w;           \
        const int32_t npix = (int32_t)(col_bytes / (uint32_t)k4); /* pixels per pass (>= 1) */     \
        const int32_t ohw = s->oh * s->ow;                                                         \
        int32_t g, p0, q, o, r, t;                                                                 \
        for (g = 0; g < s->groups; g++) {                                                          \
            const XT *xg = x + (size_t)g * cg * hw;                                                \
            for (p0 = pa; p0 < pb; p0 += npix) {                                                   \
                const int32_t np = pb - p0 < npix ? pb - p0 : npix;                                \
                int32_t oy = p0 / s->ow, ox = p0 - oy * s->ow;                                     \
                for (q = 0; q < np; q++) {                                                         \
                    gf_simd_gather_##XT(xg, cg, s, oy, ox, col + (size_t)q * k4, k4);              \
                    if (++ox == s->ow)                                                             \
                        ox = 0, oy++;                                                              \
                }                                                                                  \
                for (o = g * og; o < (g + 1) * og;) {                                              \
                    const int32_t R = (g + 1) * og - o >= 4 ? 4 : 1;                               \
                    const int8_t *wo = w + (size_t)o * K;                                          \
                    gf_rqc_t rcb[4];                                                               \
                    const gf_rqc_t *rc = gf_simd_rqc(rcb, rq, o, R);                               \
                    for (q = 0; R == 4 && q + 2 <= np; q += 2) { /* two pixels x 4 channels */    \
                        const uint8_t *cq = col + (size_t)q * k4;                                  \
                        const size_t yi = (size_t)o * ohw + (size_t)(p0 + q);                      \
                        int32_t acc[8];                                                            \
                        for (r = 0; r < 4; r++)                                                    \
                            acc[r] = acc[4 + r] = bias ? bias[o + r] : 0;                          \
                        gf_simd_dot4r2_##SFX(cq, cq + k4, (const uint8_t *)wo, K, nw, acc);        \
                        for (t = 4 * nw; t < 4 * nw + kt; t++) {                                   \
                            const int32_t xv = (XT)cq[t], xw = (XT)cq[k4 + t];                     \
                            for (r = 0; r < 4; r++)                                                \
                                acc[r] += wo[(size_t)r * K + t] * xv, acc[4 + r] += wo[(size_t)r * K + t] * xw; \
                        }                                                                          \
                        for (r = 0; r < 4; r++) {                                                  \
                            gf_simd_store(rc ? rc + r : NULL, y, yi + (size_t)r * ohw, acc[r]);    \
                            gf_simd_store(rc ? rc + r : NULL, y, yi + (size_t)r * ohw + 1, acc[4 + r]); \
                        }                                                                          \
                    }                                                                              \
                    for (; q < np; q++) {                                                          \
                        const uint8_t *cq = col + (size_t)q * k4;                                  \
                        const size_t yi = (size_t)o * ohw + (size_t)(p0 + q);                      \
                        int32_t acc[4];                                                            \
                        for (r = 0; r < R; r++)                                                    \
                            acc[r] = bias ? bias[o + r] : 0;                                       \
                        if (R == 4)                                                                \
                            gf_simd_dot4r_##SFX(cq, (const uint8_t *)wo, K, nw, acc);              \
                        else                                                                       \
                            acc[0] = gf_simd_dot1_##SFX(cq, (const uint8_t *)wo, nw, acc[0]);      \
                        for (t = 4 * nw; t < 4 * nw + kt; t++) {                                   \
                            const int32_t xv = (XT)cq[t];                                          \
                            for (r = 0; r < R; r++)                                                \
                                acc[r] += wo[(size_t)r * K + t] * xv;                              \
                        }                                                                          \
                        for (r = 0; r < R; r++)                                                    \
                            gf_simd_store(rc ? rc + r : NULL, y, yi + (size_t)r * ohw, acc[r]);    \
                    }                                                                              \
                    o += R;                                                                        \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
GF_SIMD_CONV(int8_t, ss)
GF_SIMD_CONV(uint8_t, us)

void gf_conv2d_simd(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias, const gf_conv_shape_t *s,
                    const gf_requant_t *rq, void *y, int32_t p0, int32_t p1, uint8_t *col, uint32_t col_bytes)
{
    if (in_t == GF_U8)
        gf_conv_simd_us((const uint8_t *)x, w, bias, s, rq, y, p0, p1, col, col_bytes);
    else
        gf_conv_simd_ss((const int8_t *)x, w, bias, s, rq, y, p0, p1, col, col_bytes);
}

/* ---- linear ---------------------------------------------------------------------------------- */

#define GF_SIMD_LINEAR(XT, SFX)                                                                    \
    static void gf_linear_simd_##SFX(const XT *x, const int8_t *w, const int32_t *bias, int32_t k, int32_t o,   \
                                     const gf_requant_t *rq, void *y)                              \
    {                                                                                              \
        const int32_t nw = k >> 2;                                                                 \
        int32_t c, r, t;                                                                           \
        for (c = 0; c < o;) {                                                                      \
            const int32_t R = o - c >= 4 ? 4 : 1;                                                  \
            const int8_t *wc = w + (size_t)c * k;                                                  \
            gf_rqc_t rcb[4];                                                                       \
            const gf_rqc_t *rc = gf_simd_rqc(rcb, rq, c, R);                                       \
            int32_t acc[4];                                                                        \
            for (r = 0; r < R; r++)                                                                \
                acc[r] = bias ? bias[c + r] : 0;                                                   \
            if (R == 4)                                                                            \
                gf_simd_dot4r_##SFX((const uint8_t *)x, (const uint8_t *)wc, k, nw, acc);          \
            else                                                                                   \
                acc[0] = gf_simd_dot1_##SFX((const uint8_t *)x, (const uint8_t *)wc, nw, acc[0]);  \
            for (t = 4 * nw; t < k; t++)                                                           \
                for (r = 0; r < R; r++)                                                            \
                    acc[r] += wc[(size_t)r * k + t] * (int32_t)x[t];                               \
            for (r = 0; r < R; r++)                                                                \
                gf_simd_store(rc ? rc + r : NULL, y, (size_t)(c + r), acc[r]);                     \
            c += R;                                                                                \
        }                                                                                          \
    }
GF_SIMD_LINEAR(int8_t, ss)
GF_SIMD_LINEAR(uint8_t, us)

void gf_linear_simd(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias, int32_t k, int32_t o,
                    const gf_requant_t *rq, void *y)
{
    if (in_t == GF_U8)
        gf_linear_simd_us((const uint8_t *)x, w, bias, k, o, rq, y);
    else
        gf_linear_simd_ss((const int8_t *)x, w, bias, k, o, rq, y);
}

void gf_linear_rows_simd(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias, int32_t rows,
                         int32_t k, int32_t o, const gf_requant_t *rq, void *y)
{
    const size_t out_row = (size_t)o * (rq ? 1u : 4u);
    int32_t r;
    for (r = 0; r < rows; r++)
        gf_linear_simd((const uint8_t *)x + (size_t)r * (size_t)k, in_t, w, bias, k, o, rq,
                       (uint8_t *)y + (size_t)r * out_row);
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
                    for (; t < k4; t++)                                                            \
                        cq[t] = 0;                                                                 \
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
