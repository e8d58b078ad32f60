/*
 * Row normalizations, then the output quantizer: gf_layernorm, gf_rmsnorm, gf_groupnorm share one
 * integer form (docs/integer_contract.md, "LayerNorm", "RMSNorm", "GroupNorm"; atomic_ops/layernorm.py
 * norm_rows is the same arithmetic in numpy).
 *
 * Parameter block p (int64 words, built by the planner): [0] n, [1] Fc (even), [2] C, [3] h,
 * [4] zp, [5] lo, [6] hi, [7] kc, [8] center, [9] zin, [10] groups, [11] rep, then b[E] (int64,
 * rne(2^h beta / s_out)), then m[E] (int32, rne(2^h gamma / s_out), padded to 8 bytes), with
 * E = groups * n / rep affine entries: row r uses set (row0 + r) % groups, each entry covering rep
 * consecutive elements (LayerNorm, RMSNorm: 1 set, rep 1; GroupNorm: one set per group, rep = H*W).
 * Per row of n codes q (int8 or uint8):
 *   A = sum q, K = center ? A : n zin, V = n sum q^2 - 2 A K + K^2, D = n q - K      (exact)
 *   V == 0: y = clamp(rne_shift(b, h) + zp, lo, hi)
 *   else:   W = V 2^Fc + C; e2 even with 2^62 <= W 2^e2 < 2^64; u = floor(2^63 / isqrt(W 2^e2));
 *           c = rne_shift(m u, 32 - kc); SH = h + kc + 31 - (Fc + e2) / 2;
 *           y = clamp(rne_shift(c D + b 2^(SH - h), SH) + zp, lo, hi)
 * The planner bounds every product (|m u| < 2^63, |c D + b 2^(SH-h)| < 2^61), 0 <= kc <= 24 and 1 <= h <= SH <= 62.
 */
#include "gf_internal.h"

#if defined(GF_K_LAYERNORM) || defined(GF_K_RMSNORM) || defined(GF_K_GROUPNORM)

/* floor(sqrt(v)) (bit by bit, exact). */
static uint64_t gf_isqrt64(uint64_t v)
{
    uint64_t r = 0, bit = (uint64_t)1 << 62;
    while (bit > v)
        bit >>= 2;
    while (bit) {
        if (v >= r + bit) {
            v -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return r;
}

#define GF_NORM_ROWS(TYPE)                                                                         \
    do {                                                                                           \
        const TYPE *xs = (const TYPE *)x;                                                          \
        for (row = 0; row < rows; row++, xs += n, yb += n) {                                       \
            int32_t A = 0, i, e, j;                                                                \
            int64_t Q2 = 0, V, K;                                                                  \
            int32_t set = groups > 1 ? (int32_t)((row0 + row) % groups) : 0;                       \
            const int64_t *bs = b + set * nch;                                                     \
            const int32_t *ms = m + set * nch;                                                     \
            for (i = 0; i < n; i++) {                                                              \
                A += xs[i];                                                                        \
                Q2 += (int32_t)xs[i] * (int32_t)xs[i];                                             \
            }                                                                                      \
            K = center ? (int64_t)A : (int64_t)n * zin;                                            \
            V = (int64_t)n * Q2 - 2 * (int64_t)A * K + K * K;                                      \
            if (V == 0) {                                                                          \
                for (e = 0, i = 0; e < nch; e++)                                                   \
                    for (j = 0; j < rep; j++, i++)                                                 \
                        yb[i] = (uint8_t)gf_requant_finish(bs[e], h, zp, lo, hi);                  \
            } else {                                                                               \
                uint64_t W = ((uint64_t)V << Fc) + C, u;                                           \
                int32_t e2 = 0, SH, k, K32 = (int32_t)K;                                           \
                while ((W << e2) < ((uint64_t)1 << 62))                                            \
                    e2 += 2;                                                                       \
                u = ((uint64_t)1 << 63) / gf_isqrt64(W << e2);                                     \
                SH = h + kc + 31 - (Fc + e2) / 2;                                                  \
                k = SH - h;                                                                        \
                if (rep == 1) { /* LayerNorm, RMSNorm: one affine entry per element */             \
                    for (i = 0; i < n; i++) {                                                      \
                        int64_t ci = gf_rne_shift((int64_t)ms[i] * (int64_t)u, 32 - kc);           \
                        int64_t acc = ci * (int64_t)(n * (int32_t)xs[i] - K32)                     \
                                      + (int64_t)((uint64_t)bs[i] << k);                           \
                        yb[i] = (uint8_t)gf_requant_finish(acc, SH, zp, lo, hi);                   \
                    }                                                                              \
                } else { /* GroupNorm: one entry per channel of rep elements */                    \
                    for (e = 0, i = 0; e < nch; e++) {                                             \
                        int64_t ci = gf_rne_shift((int64_t)ms[e] * (int64_t)u, 32 - kc);           \
                        int64_t bk = (int64_t)((uint64_t)bs[e] << k);                              \
                        for (j = 0; j < rep; j++, i++) {                                           \
                            int64_t acc = ci * (int64_t)(n * (int32_t)xs[i] - K32) + bk;           \
                            yb[i] = (uint8_t)gf_requant_finish(acc, SH, zp, lo, hi);               \
                        }                                                                          \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* The shared row normalization; row0: index of the first row (selects the affine sets). */
static void gf_norm_rows(const void *x, gf_dtype_t in_t, int32_t row0, int32_t rows, int32_t n, const int64_t *p,
                         void *y)
{
    uint8_t *yb = (uint8_t *)y;
    int32_t row;
    const int32_t Fc = (int32_t)p[1], h = (int32_t)p[3], kc = (int32_t)p[7];
    const uint64_t C = (uint64_t)p[2];
    const int32_t zp = (int32_t)p[4], lo = (int32_t)p[5], hi = (int32_t)p[6];
    const int32_t center = (int32_t)p[8], zin = (int32_t)p[9], groups = (int32_t)p[10], rep = (int32_t)p[11];
    const int32_t nch = rep > 0 ? n / rep : 0;
    const int64_t *b = p + 12;
    const int32_t *m = (const int32_t *)(p + 12 + groups * nch);
    if (n <= 0 || rep <= 0 || groups <= 0)
        return;
    if (in_t == GF_U8)
        GF_NORM_ROWS(uint8_t);
    else
        GF_NORM_ROWS(int8_t);
}

#endif

#ifdef GF_K_LAYERNORM
void gf_layernorm(const void *x, gf_dtype_t in_t, int32_t rows, int32_t n, const int64_t *p, void *y)
{
    gf_norm_rows(x, in_t, 0, rows, n, p, y);
}
#endif /* GF_K_LAYERNORM */

#ifdef GF_K_RMSNORM
void gf_rmsnorm(const void *x, gf_dtype_t in_t, int32_t rows, int32_t n, const int64_t *p, void *y)
{
    gf_norm_rows(x, in_t, 0, rows, n, p, y);
}
#endif /* GF_K_RMSNORM */

#ifdef GF_K_GROUPNORM
void gf_groupnorm(const void *x, gf_dtype_t in_t, int32_t row0, int32_t rows, int32_t n, const int64_t *p, void *y)
{
    gf_norm_rows(x, in_t, row0, rows, n, p, y);
}
#endif /* GF_K_GROUPNORM */
