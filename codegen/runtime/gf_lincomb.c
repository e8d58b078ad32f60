/*
 * gf_lincomb: sums of products of a tensor's codes with constant tensors, then the output quantizer
 * (docs/integer_contract.md, "Products with constant tensors"; atomic_ops/lincomb.py is the same
 * arithmetic in numpy). RoPE: q * cos + rotate_half(q) * sin.
 *
 * Parameter block p (int64 words, built by the planner): [0] n, [1] K, [2] P, [3] h, [4] zin,
 * [5] zp, [6] lo, [7] hi, then g[K][n] (int32 indices into the row, padded to 8 bytes), then
 * M[K][P][n] (int64 multipliers, |M| < 2^40). Row r (absolute index row0 + r) of n codes q:
 *   y_i = clamp(rne_shift(sum_k (q[g_k[i]] - zin) M_k[(row0 + r) % P][i], h) + zp, lo, hi)
 * |sum| <= K 255 2^40 < 2^63 (K < 2^12); 1 <= h <= 62.
 */
#include "gf_internal.h"

#ifdef GF_K_LINCOMB

#define GF_LINCOMB_ROWS(TYPE)                                                                      \
    do {                                                                                           \
        const TYPE *xs = (const TYPE *)x;                                                          \
        for (row = 0; row < rows; row++, xs += n, yb += n) {                                       \
            int32_t ph = (int32_t)((row0 + row) % P), i, k;                                        \
            for (i = 0; i < n; i++) {                                                              \
                int64_t acc = 0;                                                                   \
                for (k = 0; k < K; k++)                                                            \
                    acc += (int64_t)((int32_t)xs[g[k * n + i]] - zin) *                            \
                           M[((int64_t)k * P + ph) * n + i];                              \
                yb[i] = (uint8_t)gf_requant_finish(acc, h, zp, lo, hi);                            \
            }                                                                                      \
        }                                                                                          \
    } while (0)

void gf_lincomb(const void *x, gf_dtype_t in_t, int32_t row0, int32_t rows, int32_t n, const int64_t *p, void *y)
{
    uint8_t *yb = (uint8_t *)y;
    int32_t row;
    const int32_t K = (int32_t)p[1], P = (int32_t)p[2], h = (int32_t)p[3], zin = (int32_t)p[4];
    const int32_t zp = (int32_t)p[5], lo = (int32_t)p[6], hi = (int32_t)p[7];
    const int32_t *g = (const int32_t *)(p + 8);
    const int64_t *M = p + 8 + ((int64_t)K * n + 1) / 2;
    if (n <= 0 || K <= 0 || P <= 0 || n != (int32_t)p[0])
        return;
    if (in_t == GF_U8)
        GF_LINCOMB_ROWS(uint8_t);
    else
        GF_LINCOMB_ROWS(int8_t);
}

#endif /* GF_K_LINCOMB */
