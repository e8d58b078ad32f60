/*
 * gf_lut: table lookup (integer contract, "Tables (element-wise functions)").
 *   y[i] = table[c * entries + (x[i] - base)],  c = (i / inner) % channels
 * The tables hold the output bytes (int8 or uint8 values); x is GF_S8 or GF_U8 and every code lies
 * in [base, base + entries) (entries = 2^bits of the input; the planner guarantees it).
 */
#include "gf_internal.h"

#define GF_LUT_LOOP(T)                                                                             \
    do {                                                                                           \
        const T *xs = (const T *)x;                                                                \
        int32_t i = 0, ch = 0;                                                                     \
        while (i < n) {                                                                            \
            int32_t end = (n - i < inner) ? n : i + inner;                                         \
            const uint8_t *t = table + (size_t)ch * (size_t)entries - base;                        \
            for (; i + 4 <= end; i += 4) {                                                         \
                uint8_t v0 = t[xs[i]], v1 = t[xs[i + 1]], v2 = t[xs[i + 2]], v3 = t[xs[i + 3]];    \
                yb[i] = v0;                                                                        \
                yb[i + 1] = v1;                                                                    \
                yb[i + 2] = v2;                                                                    \
                yb[i + 3] = v3;                                                                    \
            }                                                                                      \
            for (; i < end; i++)                                                                   \
                yb[i] = t[xs[i]];                                                                  \
            if (++ch == channels)                                                                  \
                ch = 0;                                                                            \
        }                                                                                          \
    } while (0)

#ifdef GF_K_LUT
void gf_lut(const void *x, gf_dtype_t in_t, const uint8_t *table, int32_t entries, int32_t base, int32_t channels,
            int32_t n, int32_t inner, void *y)
{
    uint8_t *yb = (uint8_t *)y;
    if (channels <= 1) {
        channels = 1;
        inner = n;
    }
    if (inner < 1)
        inner = 1;
    if (in_t == GF_S8)
        GF_LUT_LOOP(int8_t);
    else
        GF_LUT_LOOP(uint8_t);
}
#endif
