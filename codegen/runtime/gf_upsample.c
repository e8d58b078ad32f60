/*
 * gf_upsample: nearest-neighbour upsampling by integer factors (nn.Upsample / F.interpolate, mode
 * 'nearest'; atomic_ops/upsample.py) of a tensor seen as [outer][h][w] (NCHW: outer = N * C; (N, C, T):
 * h = 1, fh = 1): y[o][i][j] = x[o][i / fh][j / fw], elements of elem_bytes (1 or 4) bytes. Each input row
 * is widened once into the output, then copied fh - 1 times. Not selectable (always compiled, like
 * gf_flip); buffers must not alias.
 *
 * gf_upsample_linear: linear / bilinear upsampling by integer factors (mode 'linear' / 'bilinear', either
 * align_corners; atomic_ops/upsample.py upsample_linear) of int8 / uint8 codes with zero point zp into
 * int32 accumulators: y[o][i][j] = sum of the <= 4 integer weights of (i, j) times (x - zp), the weights of
 * each axis over a fixed denominator (linear_taps). The planner proves the sums stay below 2^31.
 */
#include <string.h>

#include "gf_internal.h"

void gf_upsample(const void *x, int32_t elem_bytes, int32_t outer, int32_t h, int32_t w, int32_t fh, int32_t fw,
                 void *y)
{
    const size_t row = (size_t)w * (size_t)fw * (size_t)elem_bytes; /* one output row, bytes */
    const uint8_t *xb = (const uint8_t *)x;
    uint8_t *yb = (uint8_t *)y;
    for (int32_t r = 0; r < outer * h; r++) {
        uint8_t *first = yb;
        if (elem_bytes == 1) {
            for (int32_t j = 0; j < w; j++, xb++)
                for (int32_t k = 0; k < fw; k++)
                    *yb++ = *xb;
        } else {
            for (int32_t j = 0; j < w; j++, xb += elem_bytes)
                for (int32_t k = 0; k < fw; k++, yb += elem_bytes)
                    memcpy(yb, xb, (size_t)elem_bytes);
        }
        for (int32_t k = 1; k < fh; k++, yb += row)
            memcpy(yb, first, row);
    }
}

/* Output index i of an axis of n_in inputs grown by f: the taps i0, i1 and the weight w1 of i1 over d
 * (the weight of i0 is d - w1); atomic_ops/upsample.py linear_taps. */
static void linear_tap(int32_t i, int32_t n_in, int32_t f, int32_t align_corners, int32_t *i0, int32_t *i1,
                       int32_t *w1, int32_t *d)
{
    int32_t n;
    if (f == 1) {
        *i0 = *i1 = i;
        *w1 = 0;
        *d = 1;
        return;
    }
    if (align_corners) {
        *d = n_in * f - 1;
        n = i * (n_in - 1);
    } else {
        *d = 2 * f;
        n = 2 * i + 1 - f;
        if (n < 0)
            n = 0;
    }
    *i0 = n / *d;
    *w1 = n % *d;
    *i1 = *i0 < n_in - 1 ? *i0 + 1 : *i0;
}

void gf_upsample_linear(const void *x, int32_t is_signed, int32_t zp, int32_t outer, int32_t h, int32_t w,
                        int32_t fh, int32_t fw, int32_t align_corners, void *y)
{
    const int32_t oh = h * fh, ow = w * fw;
    int32_t *out = (int32_t *)y;
    for (int32_t o = 0; o < outer; o++) {
        const size_t base = (size_t)o * (size_t)h * (size_t)w;
        for (int32_t i = 0; i < oh; i++) {
            int32_t a0, a1, wa1, dh;
            linear_tap(i, h, fh, align_corners, &a0, &a1, &wa1, &dh);
            const int32_t wa0 = dh - wa1;
            for (int32_t j = 0; j < ow; j++) {
                int32_t b0, b1, wb1, dw;
                linear_tap(j, w, fw, align_corners, &b0, &b1, &wb1, &dw);
                const int32_t wb0 = dw - wb1;
                const size_t p00 = base + (size_t)a0 * (size_t)w + (size_t)b0;
                const size_t p01 = base + (size_t)a0 * (size_t)w + (size_t)b1;
                const size_t p10 = base + (size_t)a1 * (size_t)w + (size_t)b0;
                const size_t p11 = base + (size_t)a1 * (size_t)w + (size_t)b1;
                int32_t x00, x01, x10, x11;
                if (is_signed) {
                    const int8_t *xs = (const int8_t *)x;
                    x00 = xs[p00]; x01 = xs[p01]; x10 = xs[p10]; x11 = xs[p11];
                } else {
                    const uint8_t *xu = (const uint8_t *)x;
                    x00 = xu[p00]; x01 = xu[p01]; x10 = xu[p10]; x11 = xu[p11];
                }
                *out++ = wa0 * (wb0 * (x00 - zp) + wb1 * (x01 - zp)) + wa1 * (wb0 * (x10 - zp) + wb1 * (x11 - zp));
            }
        }
    }
}
