/*
 * Straightforward reference loops (the baseline of tools/benchmark_kernels.py and a second
 * implementation for the tests). Deliberately naive: one MAC per innermost iteration with the
 * padding test and the full index computation inside, exact 64-bit requantization.
 */
#include "gf_internal.h"

GF_INLINE int32_t gf_ref_load(const void *x, gf_dtype_t t, size_t i)
{
    return t == GF_U8 ? (int32_t)((const uint8_t *)x)[i] : (int32_t)((const int8_t *)x)[i];
}

void gf_conv2d_ref(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
                   const gf_conv_shape_t *s, const gf_requant_t *rq, void *y)
{
    int32_t cg = s->c / s->groups, og = s->o / s->groups;
    int32_t o, oy, ox, c, i, j;
    for (o = 0; o < s->o; o++) {
        int32_t g = o / og;
        for (oy = 0; oy < s->oh; oy++) {
            for (ox = 0; ox < s->ow; ox++) {
                int32_t acc = bias ? bias[o] : 0;
                size_t idx = ((size_t)o * s->oh + oy) * s->ow + ox;
                for (c = 0; c < cg; c++) {
                    for (i = 0; i < s->kh; i++) {
                        for (j = 0; j < s->kw; j++) {
                            int32_t iy = oy * s->sy - s->pt + i * s->dy;
                            int32_t ix = ox * s->sx - s->pl + j * s->dx;
                            if (iy >= 0 && iy < s->h && ix >= 0 && ix < s->w) {
                                size_t xi = ((size_t)(g * cg + c) * s->h + iy) * s->w + ix;
                                size_t wi = (((size_t)o * cg + c) * s->kh + i) * s->kw + j;
                                acc += (int32_t)w[wi] * gf_ref_load(x, in_t, xi);
                            }
                        }
                    }
                }
                if (rq)
                    ((uint8_t *)y)[idx] = (uint8_t)gf_requant1(rq, acc, gf_rq_channel(rq, o));
                else
                    ((int32_t *)y)[idx] = acc;
            }
        }
    }
}

void gf_linear_ref(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
                   int32_t k, int32_t o, const gf_requant_t *rq, void *y)
{
    int32_t r, i;
    for (r = 0; r < o; r++) {
        int32_t acc = bias ? bias[r] : 0;
        for (i = 0; i < k; i++)
            acc += (int32_t)w[(size_t)r * k + i] * gf_ref_load(x, in_t, (size_t)i);
        if (rq)
            ((uint8_t *)y)[r] = (uint8_t)gf_requant1(rq, acc, gf_rq_channel(rq, r));
        else
            ((int32_t *)y)[r] = acc;
    }
}
