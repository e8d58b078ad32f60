/*
 * gf_upsample: nearest-neighbour upsampling by integer factors (nn.Upsample / F.interpolate, mode
 * 'nearest'; atomic_ops/upsample.py) of a tensor seen as [outer][h][w] (NCHW: outer = N * C; (N, C, T):
 * h = 1, fh = 1): y[o][i][j] = x[o][i / fh][j / fw], elements of elem_bytes (1 or 4) bytes. Each input row
 * is widened once into the output, then copied fh - 1 times. Not selectable (always compiled, like
 * gf_flip); buffers must not alias.
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
