/*
 * gf_thresholds: step function of an int32 accumulator (integer contract, "Step functions of an
 * accumulator").
 *   y[i] = codes_c[#{k : thr_c[k] <= x[i]}],  c = (i / inner) % channels
 * Each channel's table is table_bytes bytes: n_thr int32 thresholds sorted ascending, then n_thr + 1 code
 * bytes (int8 or uint8 values). A binary search per element: int32 compares only.
 */
#include "gf_internal.h"

#ifdef GF_K_THRESHOLDS
void gf_thresholds(const void *x, const uint8_t *tables, int32_t n_thr, int32_t table_bytes, int32_t channels,
                   int32_t n, int32_t inner, void *y)
{
    const int32_t *xs = (const int32_t *)x;
    uint8_t *yb = (uint8_t *)y;
    int32_t i = 0, ch = 0;
    if (channels <= 1) {
        channels = 1;
        inner = n;
    }
    if (inner < 1)
        inner = 1;
    while (i < n) {
        int32_t end = (n - i < inner) ? n : i + inner;
        const uint8_t *tab = tables + (size_t)ch * (size_t)table_bytes;
        const int32_t *t = (const int32_t *)tab;
        const uint8_t *codes = tab + 4 * (size_t)n_thr;
        for (; i < end; i++) {
            int32_t v = xs[i], lo = 0, len = n_thr;
            while (len > 0) { /* lo: the number of thresholds <= v among the first lo + len */
                int32_t half = len >> 1;
                if (t[lo + half] <= v) {
                    lo += half + 1;
                    len -= half + 1;
                } else {
                    len = half;
                }
            }
            yb[i] = codes[lo];
        }
        if (++ch == channels)
            ch = 0;
    }
}
#endif
