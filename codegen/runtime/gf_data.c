/*
 * Data movement kernels: gf_concat, gf_permute (integers copied unchanged).
 */
#include <string.h>

#include "gf_internal.h"

void gf_concat(const void *const *xs, const int32_t *block_bytes, int32_t n_inputs, int32_t outer, void *y)
{
    uint8_t *dst = (uint8_t *)y;
    int32_t b, i;
    for (b = 0; b < outer; b++) {
        for (i = 0; i < n_inputs; i++) {
            size_t nb = (size_t)block_bytes[i];
            if (nb) {
                memcpy(dst, (const uint8_t *)xs[i] + (size_t)b * nb, nb);
                dst += nb;
            }
        }
    }
}

#define GF_PERMUTE_LOOP(T)                                                                         \
    do {                                                                                           \
        const T *src = (const T *)x;                                                               \
        T *dst = (T *)y;                                                                           \
        int32_t i0, i1, i2, i3;                                                                    \
        for (i0 = 0; i0 < n[0]; i0++) {                                                            \
            const T *p0 = src + (size_t)i0 * st[0];                                                \
            for (i1 = 0; i1 < n[1]; i1++) {                                                        \
                const T *p1 = p0 + (size_t)i1 * st[1];                                             \
                for (i2 = 0; i2 < n[2]; i2++) {                                                    \
                    const T *p2 = p1 + (size_t)i2 * st[2];                                         \
                    if (st[3] == 1) {                                                              \
                        memcpy(dst, p2, (size_t)n[3] * sizeof(T));                                 \
                        dst += n[3];                                                               \
                    } else {                                                                       \
                        for (i3 = 0; i3 < n[3]; i3++) {                                            \
                            *dst++ = *p2;                                                          \
                            p2 += st[3];                                                           \
                        }                                                                          \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)

void gf_permute(const void *x, int32_t elem_size, const int32_t shape[4], const int32_t perm[4], void *y)
{
    int32_t in_stride[4], n[4], d;
    size_t st[4];
    in_stride[3] = 1;
    for (d = 2; d >= 0; d--)
        in_stride[d] = in_stride[d + 1] * shape[d + 1];
    for (d = 0; d < 4; d++) {
        n[d] = shape[perm[d]];
        st[d] = (size_t)in_stride[perm[d]];
    }
    if (n[0] == 0 || n[1] == 0 || n[2] == 0 || n[3] == 0)
        return;
    if (elem_size == 4)
        GF_PERMUTE_LOOP(int32_t);
    else
        GF_PERMUTE_LOOP(uint8_t);
}
