/*
 * Token data movement (docs/integer_contract.md, "Token ops"): gf_slice (a strided range of one
 * axis), gf_pad (slices of one code inserted before / after along one axis) and gf_edge_pad (one
 * axis padded with the tensor's own slices: reflect, replicate, circular; section 13). Elements
 * are opaque bytes (elem_bytes 1 or 4); the tensor is seen as [outer][n][inner elements].
 */
#include <string.h>

#include "gf_runtime.h"

void gf_slice(const void *x, int32_t elem_bytes, int32_t outer, int32_t n, int32_t start, int32_t step,
              int32_t count, int32_t inner, void *y)
{
    const size_t blk = (size_t)inner * (size_t)elem_bytes;
    const uint8_t *xb = (const uint8_t *)x;
    uint8_t *yb = (uint8_t *)y;
    for (int32_t o = 0; o < outer; o++) {
        const uint8_t *src = xb + ((size_t)o * (size_t)n + (size_t)start) * blk;
        for (int32_t i = 0; i < count; i++, yb += blk)
            memcpy(yb, src + (size_t)i * (size_t)step * blk, blk);
    }
}

void gf_pad(const void *x, int32_t outer, int32_t n, int32_t before, int32_t after, int32_t inner, int32_t value,
            void *y)
{
    const size_t blk = (size_t)inner;
    const uint8_t *xb = (const uint8_t *)x;
    uint8_t *yb = (uint8_t *)y;
    for (int32_t o = 0; o < outer; o++) {
        memset(yb, (uint8_t)value, (size_t)before * blk);
        yb += (size_t)before * blk;
        memcpy(yb, xb + (size_t)o * (size_t)n * blk, (size_t)n * blk);
        yb += (size_t)n * blk;
        memset(yb, (uint8_t)value, (size_t)after * blk);
        yb += (size_t)after * blk;
    }
}

/* The input position output position i (of before + n + after) copies; atomic_ops/edge_pad.py source_indices. */
static int32_t edge_src(int32_t i, int32_t n, int32_t mode)
{
    if (mode == GF_PAD_REFLECT)
        return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i);
    if (mode == GF_PAD_REPLICATE)
        return i < 0 ? 0 : (i >= n ? n - 1 : i);
    return i < 0 ? i + n : (i >= n ? i - n : i); /* GF_PAD_CIRCULAR: |pad| <= n wraps at most once */
}

void gf_edge_pad(const void *x, int32_t elem_bytes, int32_t outer, int32_t n, int32_t before, int32_t after,
                 int32_t inner, int32_t mode, void *y)
{
    const size_t blk = (size_t)inner * (size_t)elem_bytes;
    const uint8_t *xb = (const uint8_t *)x;
    uint8_t *yb = (uint8_t *)y;
    for (int32_t o = 0; o < outer; o++) {
        const uint8_t *src = xb + (size_t)o * (size_t)n * blk;
        for (int32_t i = -before; i < 0; i++, yb += blk)
            memcpy(yb, src + (size_t)edge_src(i, n, mode) * blk, blk);
        memcpy(yb, src, (size_t)n * blk);
        yb += (size_t)n * blk;
        for (int32_t i = n; i < n + after; i++, yb += blk)
            memcpy(yb, src + (size_t)edge_src(i, n, mode) * blk, blk);
    }
}
