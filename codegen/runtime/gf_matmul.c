/*
 * gf_matmul: acc[g][i][j] = sum_k (a[g][i][k] - za) * (b[g][k][j] - zb), int32, requantized
 * (per tensor, or channel = j) or written as int32; gf_linear_rows: gf_linear on each of `rows`
 * rows (docs/integer_contract.md, "Matrix product of activations").
 *
 * The product walks b row by row (its natural layout) with a 3 x 4 block of outputs in registers
 * (gf_mm_blk: symmetric operands); edge blocks and operands with zero points take the general loop.
 */
#include "gf_internal.h"

#ifdef GF_K_MATMUL

/* Outputs j0 .. j0+n-1 of one row from their accumulators (rc: the per-tensor constants, or NULL to
 * compute each column's own with per-channel requantization). */
static void gf_mm_store(const int32_t *acc, int32_t n, int32_t j0, const gf_requant_t *rq, const gf_rqc_t *rc,
                        void *yrow)
{
    int32_t j;
    if (rq) {
        uint8_t *yb = (uint8_t *)yrow + j0;
        if (rc) {
            for (j = 0; j < n; j++)
                yb[j] = (uint8_t)gf_rqc_apply(rc, acc[j]);
        } else {
            for (j = 0; j < n; j++)
                yb[j] = (uint8_t)gf_requant1(rq, acc[j], j0 + j);
        }
    } else {
        int32_t *yi = (int32_t *)yrow + j0;
        for (j = 0; j < n; j++)
            yi[j] = acc[j];
    }
}

/* Symmetric operands (za == zb == 0, the usual activations): rows i..i+2 times columns j..j+3 with
 * twelve accumulators in registers; per k 3 loads of a, 4 of b, 12 mul and 12 add (3.0 instructions
 * per MAC plus the pointer steps). */
#define GF_MM_BLOCK(TA, TB, SFX)                                                                   \
    static GF_NOINLINE void gf_mm_blk_##SFX(const TA *a0, int32_t k, const TB *b, int32_t n, int32_t *acc) \
    {                                                                                              \
        const TA *a1 = a0 + k, *a2 = a1 + k, *ae = a0 + k;                                         \
        int32_t c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;            \
        int32_t c20 = 0, c21 = 0, c22 = 0, c23 = 0;                                                \
        for (; a0 != ae; a0++, a1++, a2++, b += n) {                                               \
            const int32_t b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];                              \
            const int32_t x0 = *a0, x1 = *a1, x2 = *a2;                                            \
            c00 += x0 * b0, c01 += x0 * b1, c02 += x0 * b2, c03 += x0 * b3;                        \
            c10 += x1 * b0, c11 += x1 * b1, c12 += x1 * b2, c13 += x1 * b3;                        \
            c20 += x2 * b0, c21 += x2 * b1, c22 += x2 * b2, c23 += x2 * b3;                        \
        }                                                                                          \
        acc[0] = c00, acc[1] = c01, acc[2] = c02, acc[3] = c03;                                    \
        acc[4] = c10, acc[5] = c11, acc[6] = c12, acc[7] = c13;                                    \
        acc[8] = c20, acc[9] = c21, acc[10] = c22, acc[11] = c23;                                  \
    }

/* Symmetric operands, one row times columns j..j+3 (the rows left over by the 3-row blocks). */
#define GF_MM_ROW(TA, TB, SFX)                                                                     \
    static GF_NOINLINE void gf_mm_row_##SFX(const TA *a0, int32_t k, const TB *b, int32_t n, int32_t *acc) \
    {                                                                                              \
        const TA *ae = a0 + k;                                                                     \
        int32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;                                                    \
        for (; a0 != ae; a0++, b += n) {                                                           \
            const int32_t x0 = *a0;                                                                \
            c0 += x0 * b[0], c1 += x0 * b[1], c2 += x0 * b[2], c3 += x0 * b[3];                    \
        }                                                                                          \
        acc[0] = c0, acc[1] = c1, acc[2] = c2, acc[3] = c3;                                        \
    }

/* Any zero points, any block: rows i..i+mi-1, columns j0..j0+nj-1 (mi <= 3, nj <= 4). */
#define GF_MM_GENERIC(TA, TB, SFX)                                                                 \
    static void gf_mm_gen_##SFX(const TA *a, int32_t za, int32_t mi, int32_t k, const TB *b, int32_t zb, \
                                int32_t n, int32_t nj, int32_t *acc)                               \
    {                                                                                              \
        for (int32_t r = 0; r < mi; r++)                                                           \
            for (int32_t jj = 0; jj < nj; jj++) {                                                  \
                int32_t sum = 0;                                                                   \
                const TB *bp = b + jj;                                                             \
                for (int32_t kk = 0; kk < k; kk++, bp += n)                                        \
                    sum += ((int32_t)a[(size_t)r * (size_t)k + (size_t)kk] - za) * ((int32_t)*bp - zb); \
                acc[r * 4 + jj] = sum;                                                             \
            }                                                                                      \
    }

#define GF_MM_IMPL(TA, TB, SFX)                                                                    \
    GF_MM_BLOCK(TA, TB, SFX)                                                                       \
    GF_MM_GENERIC(TA, TB, SFX)                                                                     \
    GF_MM_ROW(TA, TB, SFX)                                                                         \
    static void gf_matmul_##SFX(const TA *a, int32_t za, const TB *b, int32_t zb, int32_t g, int32_t m, \
                                int32_t k, int32_t n, const gf_requant_t *rq, void *y)             \
    {                                                                                              \
        const size_t eb = rq ? 1u : 4u;                                                            \
        int32_t acc[12];                                                                           \
        gf_rqc_t rc;                                                                               \
        const gf_rqc_t *rcp = NULL;                                                                \
        if (rq && rq->channels == 1) {                                                             \
            gf_rqc_init(&rc, rq, 0);                                                               \
            rcp = &rc;                                                                             \
        }                                                                                          \
        for (int32_t gi = 0; gi < g; gi++) {                                                       \
            const TB *bg = b + (size_t)gi * (size_t)k * (size_t)n;                                 \
            for (int32_t i = 0; i < m; i += 3) {                                                   \
                const int32_t mi = m - i < 3 ? m - i : 3;                                          \
                const TA *ar = a + ((size_t)gi * (size_t)m + (size_t)i) * (size_t)k;               \
                uint8_t *yr = (uint8_t *)y + ((size_t)gi * (size_t)m + (size_t)i) * (size_t)n * eb; \
                for (int32_t j0 = 0; j0 < n; j0 += 4) {                                            \
                    const int32_t nj = n - j0 < 4 ? n - j0 : 4;                                    \
                    if (mi == 3 && nj == 4 && za == 0 && zb == 0)                                  \
                        gf_mm_blk_##SFX(ar, k, bg + j0, n, acc);                                   \
                    else if (nj == 4 && za == 0 && zb == 0)                                        \
                        for (int32_t r = 0; r < mi; r++)                                           \
                            gf_mm_row_##SFX(ar + (size_t)r * (size_t)k, k, bg + j0, n, acc + r * 4); \
                    else                                                                           \
                        gf_mm_gen_##SFX(ar, za, mi, k, bg + j0, zb, n, nj, acc);                   \
                    for (int32_t r = 0; r < mi; r++)                                               \
                        gf_mm_store(acc + r * 4, nj, j0, rq, rcp, yr + (size_t)r * (size_t)n * eb); \
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
    const size_t out_row = (size_t)o * (rq ? 1u : 4u), in_row = (size_t)k * (in_t == GF_S32 ? 4u : 1u);
    for (int32_t r = 0; r < rows; r++)
        gf_linear((const uint8_t *)x + (size_t)r * in_row, in_t, w, bias, k, o, rq, (uint8_t *)y + (size_t)r * out_row);
}
#endif /* GF_K_LINEAR_ROWS */
