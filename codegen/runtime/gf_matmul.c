/*
 * gf_matmul: acc[g][i][j] = sum_k (a[g][i][k] - za) * (b[g][k][j] - zb), int32, requantized
 * (per tensor, or channel = j) or written as int32; gf_linear_rows: gf_linear on each of `rows`
 * rows (docs/integer_contract.md, "Matrix product of activations").
 *
 * The product walks b row by row (its natural layout) and keeps a block of GF_MM_J accumulators of
 * one output row in registers: per MAC one load of b, a subtraction of its zero point, a mul and
 * an add; the load and zero point of a[i][k] are shared by the block.
 */
#include "gf_internal.h"

#ifdef GF_K_MATMUL

#ifndef GF_MM_J
#define GF_MM_J 8 /* output columns per register block */
#endif

static void gf_mm_store(const int32_t *acc, int32_t n, int32_t j0, const gf_requant_t *rq, void *yrow)
{
    int32_t j;
    if (rq) {
        uint8_t *yb = (uint8_t *)yrow;
        for (j = 0; j < n; j++) {
            int32_t c = rq->channels > 1 ? j0 + j : 0;
            yb[j0 + j] = (uint8_t)gf_requant1(rq, acc[j], c);
        }
    } else {
        int32_t *yi = (int32_t *)yrow;
        for (j = 0; j < n; j++)
            yi[j0 + j] = acc[j];
    }
}

#define GF_MM_IMPL(TA, TB, SFX)                                                                    \
    static void gf_matmul_##SFX(const TA *a, int32_t za, const TB *b, int32_t zb, int32_t g, int32_t m, \
                                int32_t k, int32_t n, const gf_requant_t *rq, void *y)             \
    {                                                                                              \
        const int32_t eb = rq ? 1 : 4;                                                             \
        for (int32_t gi = 0; gi < g; gi++) {                                                       \
            const TB *bg = b + (size_t)gi * (size_t)k * (size_t)n;                                 \
            for (int32_t i = 0; i < m; i++) {                                                      \
                const TA *ar = a + ((size_t)gi * (size_t)m + (size_t)i) * (size_t)k;               \
                uint8_t *yr = (uint8_t *)y + ((size_t)gi * (size_t)m + (size_t)i) * (size_t)n * (size_t)eb; \
                for (int32_t j0 = 0; j0 < n; j0 += GF_MM_J) {                                      \
                    const int32_t nj = n - j0 < GF_MM_J ? n - j0 : GF_MM_J;                        \
                    int32_t acc[GF_MM_J] = {0};                                                    \
                    const TB *bp = bg + j0;                                                        \
                    for (int32_t kk = 0; kk < k; kk++, bp += n) {                                  \
                        const int32_t av = (int32_t)ar[kk] - za;                                   \
                        if (nj == GF_MM_J) {                                                       \
                            GF_UNROLL for (int32_t jj = 0; jj < GF_MM_J; jj++)                     \
                                acc[jj] += av * ((int32_t)bp[jj] - zb);                            \
                        } else {                                                                   \
                            for (int32_t jj = 0; jj < nj; jj++)                                    \
                                acc[jj] += av * ((int32_t)bp[jj] - zb);                            \
                        }                                                                          \
                    }                                                                              \
                    gf_mm_store(acc, nj, j0, rq, yr);                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

GF_MM_IMPL(int8_t, int8_t, ss)
GF_MM_IMPL(int8_t, uint8_t, su)
GF_MM_IMPL(uint8_t, int8_t, us)
GF_MM_IMPL(uint8_t, uint8_t, uu)

void gf_matmul(const void *a, gf_dtype_t a_t, int32_t za, const void *b, gf_dtype_t b_t, int32_t zb, int32_t g,
               int32_t m, int32_t k, int32_t n, const gf_requant_t *rq, void *y)
{
    if (a_t == GF_U8) {
        if (b_t == GF_U8)
            gf_matmul_uu((const uint8_t *)a, za, (const uint8_t *)b, zb, g, m, k, n, rq, y);
        else
            gf_matmul_us((const uint8_t *)a, za, (const int8_t *)b, zb, g, m, k, n, rq, y);
    } else {
        if (b_t == GF_U8)
            gf_matmul_su((const int8_t *)a, za, (const uint8_t *)b, zb, g, m, k, n, rq, y);
        else
            gf_matmul_ss((const int8_t *)a, za, (const int8_t *)b, zb, g, m, k, n, rq, y);
    }
}

#endif /* GF_K_MATMUL */

#ifdef GF_K_LINEAR_ROWS
void gf_linear_rows(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias, int32_t rows, int32_t k,
                    int32_t o, const gf_requant_t *rq, void *y)
{
    const size_t out_row = (size_t)o * (rq ? 1u : 4u);
    for (int32_t r = 0; r < rows; r++)
        gf_linear((const uint8_t *)x + (size_t)r * (size_t)k, in_t, w, bias, k, o, rq, (uint8_t *)y + (size_t)r * out_row);
}
#endif /* GF_K_LINEAR_ROWS */
