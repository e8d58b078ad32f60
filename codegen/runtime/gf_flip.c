/*
 * gf_flip: one axis of a tensor seen as [outer][n][inner] reversed (torch.flip; atomic_ops/flip.py):
 * y[o][i] = x[o][n - 1 - i] for blocks of inner elements of elem_bytes (1 or 4) bytes. Not selectable
 * (always compiled, like gf_slice); buffers must not alias.
 */
#include <string.h>

#include "gf_internal.h"

void gf_flip(const void *x, int32_t elem_bytes, int32_t outer, int32_t n, int32_t inner, void *y)
{
    const size_t blk = (size_t)inner * (size_t)elem_bytes;
    const uint8_t *xb = (const uint8_t *)x;
    uint8_t *yb = (uint8_t *)y;
    for (int32_t o = 0; o < outer; o++) {
        const uint8_t *src = xb + (size_t)o * (size_t)n * blk;
        for (int32_t i = n - 1; i >= 0; i--, yb += blk)
            memcpy(yb, src + (size_t)i * blk, blk);
    }
}
