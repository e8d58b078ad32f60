/*
 * Straightforward reference loops: the baseline of tools/benchmark_kernels.py and a second,
 * independent implementation for the tests. Deliberately naive: one MAC per innermost iteration,
 * the padding test inside the loop, no register blocking, exact 64-bit requantization
 * (gf_requant1). Only the input signedness is resolved outside the loops.
 */
#include "gf_internal.h"

#define GF_CONV_REF(XT)                                                                            \
    do {                                                                                           \
        const XT *xs = (const XT *)x;                                                              \
        for (o = 0; o < O; o++) {                                                                  \
            const int32_t g = o / og;                                                              \
            for (oy = 0; oy < OH; oy++) {                                                          \
                for (ox = 0; ox < OW; ox++) {                                                      \
                    int32_t acc = bias ? bias[o] : 0;                                              \
                    const int8_t *wp = w + (size_t)o * cg * KH * KW;                               \
                    for (c = 0; c < cg; c++) {                                                     \
                        const XT *xc = xs + (size_t)(g * cg + c) * H * W;                          \
                        for (i = 0; i < KH; i++) {                                                 \
                            const int32_t iy = oy * SY - PT + i * DY;                              \
                            for (j = 0; j < KW; j++, wp++) {                                       \
                                const int32_t ix = ox * SX - PL + j * DX;                          \
                                if (iy >= 0 && iy < H && ix >= 0 && ix < W)                        \
                                    acc += (int32_t)*wp * (int32_t)xc[iy * W + ix];                \
                            }                                                                      \
                        }                                                                          \
                    }                                                                              \
                    if (rq)                                                                        \
                        ((uint8_t *)y)[idx] = (uint8_t)gf_requant1(rq, acc, gf_rq_channel(rq, o)); \
                    else                                                                           \
                        ((int32_t *)y)[idx] = acc;                                                 \
                    idx++;                                                                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)

void gf_conv2d_ref(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
                   const gf_conv_shape_t *s, const gf_requant_t *rq, void *y)
{
    const int32_t cg = s->c / s->groups, og = s->o / s->groups;
    const int32_t O = s->o, OH = s->oh, OW = s->ow, H = s->h, W = s->w, KH = s->kh, KW = s->kw;
    const int32_t SY = s->sy, SX = s->sx, PT = s->pt, PL = s->pl, DY = s->dy, DX = s->dx;
    int32_t o, oy, ox, c, i, j;
    size_t idx = 0;
    if (in_t == GF_U8)
        GF_CONV_REF(uint8_t);
    else
        GF_CONV_REF(int8_t);
}

#define GF_LINEAR_REF(XT)                                                                          \
    do {                                                                                           \
        const XT *xs = (const XT *)x;                                                              \
        for (r = 0; r < o; r++) {                                                                  \
            int32_t acc = bias ? bias[r] : 0;                                                      \
            for (i = 0; i < k; i++)                                                                \
                acc += (int32_t)w[(size_t)r * k + i] * (int32_t)xs[i];                             \
            if (rq)                                                                                \
                ((uint8_t *)y)[r] = (uint8_t)gf_requant1(rq, acc, gf_rq_channel(rq, r));           \
            else                                                                                   \
                ((int32_t *)y)[r] = acc;                                                           \
        }                                                                                          \
    } while (0)

void gf_linear_ref(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
                   int32_t k, int32_t o, const gf_requant_t *rq, void *y)
{
    int32_t r, i;
    if (in_t == GF_U8)
        GF_LINEAR_REF(uint8_t);
    else if (in_t == GF_S32)
        GF_LINEAR_REF(int32_t);
    else
        GF_LINEAR_REF(int8_t);
}
