/*
 * Pooling kernels: gf_maxpool2d, gf_avgpool2d, gf_trunc_avgpool2d.
 *
 * Windows are clipped to the input once per output row (rows) and once per output pixel
 * (columns); the inner loops never test for padding. Zero padding contributes nothing to a sum,
 * and padded positions never win a max, so clipping is exact for all three kernels.
 */
#include "gf_internal.h"

/* Clipped window [*a, *b) of output index o (stride s, padding p, kernel k) over [0, n). */
GF_INLINE void gf_clip(int32_t o, int32_t s, int32_t p, int32_t k, int32_t n, int32_t *a, int32_t *b)
{
    int32_t lo = o * s - p, hi = lo + k;
    *a = lo < 0 ? 0 : lo;
    *b = hi > n ? n : hi;
}

/* ---------------------------------------------------------------------------------------------
 * maxpool2d
 */
#define GF_MAXPOOL(T, TMIN)                                                                        \
    do {                                                                                           \
        const T *xs = (const T *)x;                                                                \
        T *ys = (T *)y;                                                                            \
        int32_t c, oy, ox, iy, ix;                                                                 \
        for (c = 0; c < s->c; c++) {                                                               \
            const T *xc = xs + (size_t)c * s->h * s->w;                                            \
            for (oy = 0; oy < s->oh; oy++) {                                                       \
                int32_t y0, y1;                                                                    \
                gf_clip(oy, s->sy, s->pt, s->kh, s->h, &y0, &y1);                                  \
                for (ox = 0; ox < s->ow; ox++) {                                                   \
                    int32_t x0, x1;                                                                \
                    T best = TMIN;                                                                 \
                    gf_clip(ox, s->sx, s->pl, s->kw, s->w, &x0, &x1);                              \
                    for (iy = y0; iy < y1; iy++) {                                                 \
                        const T *row = xc + (size_t)iy * s->w;                                     \
                        for (ix = x0; ix < x1; ix++)                                               \
                            best = row[ix] > best ? row[ix] : best;                                \
                    }                                                                              \
                    *ys++ = best;                                                                  \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* 2x2 windows at stride 2 that all lie inside the input (no padding): the common downsampling, without the
 * clipping (the same maxima; about a fifth of the general loop's instructions per output on rv32). */
#define GF_MAXPOOL_2X2(T)                                                                          \
    do {                                                                                           \
        const T *xs = (const T *)x;                                                                \
        T *ys = (T *)y;                                                                            \
        const int32_t W = s->w, ow = s->ow;                                                        \
        int32_t c, oy, ox;                                                                         \
        for (c = 0; c < s->c; c++) {                                                               \
            const T *r0 = xs + (size_t)c * s->h * W;                                               \
            for (oy = 0; oy < s->oh; oy++, r0 += 2 * W) {                                          \
                const T *r1 = r0 + W;                                                              \
                for (ox = 0; ox < ow; ox++) {                                                      \
                    const T a = r0[2 * ox] > r0[2 * ox + 1] ? r0[2 * ox] : r0[2 * ox + 1];         \
                    const T b = r1[2 * ox] > r1[2 * ox + 1] ? r1[2 * ox] : r1[2 * ox + 1];         \
                    *ys++ = a > b ? a : b;                                                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#ifdef GF_K_MAXPOOL2D
void gf_maxpool2d(const void *x, gf_dtype_t t, const gf_conv_shape_t *s, void *y)
{
    if (s->kh == 2 && s->kw == 2 && s->sy == 2 && s->sx == 2 && s->pt == 0 && s->pl == 0 && 2 * s->oh <= s->h &&
        2 * s->ow <= s->w) {
        if (t == GF_S8)
            GF_MAXPOOL_2X2(int8_t);
        else if (t == GF_U8)
            GF_MAXPOOL_2X2(uint8_t);
        else
            GF_MAXPOOL_2X2(int32_t);
        return;
    }
    if (t == GF_S8)
        GF_MAXPOOL(int8_t, INT8_MIN);
    else if (t == GF_U8)
        GF_MAXPOOL(uint8_t, 0);
    else
        GF_MAXPOOL(int32_t, INT32_MIN);
}
#endif

/* ---------------------------------------------------------------------------------------------
 * Window sums for avgpool2d / trunc_avgpool2d, one channel plane at a time. EMIT(acc) consumes
 * each sum in output order.
 */
#define GF_WINDOW_SUMS(T, EMIT)                                                                    \
    do {                                                                                           \
        const T *xc = (const T *)x + (size_t)c * s->h * s->w;                                      \
        int32_t oy, ox, iy, ix;                                                                    \
        for (oy = 0; oy < s->oh; oy++) {                                                           \
            int32_t y0, y1;                                                                        \
            gf_clip(oy, s->sy, s->pt, s->kh, s->h, &y0, &y1);                                      \
            for (ox = 0; ox < s->ow; ox++) {                                                       \
                int32_t x0, x1, acc = 0;                                                           \
                gf_clip(ox, s->sx, s->pl, s->kw, s->w, &x0, &x1);                                  \
                for (iy = y0; iy < y1; iy++) {                                                     \
                    const T *row = xc + (size_t)iy * s->w;                                         \
                    for (ix = x0; ix < x1; ix++)                                                   \
                        acc += row[ix];                                                            \
                }                                                                                  \
                EMIT(acc);                                                                         \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#define GF_EMIT_RQ(acc) (*yb++ = (uint8_t)gf_rqc_apply(&rc, (acc)))
#define GF_EMIT_I32(acc) (*yi++ = (acc))

#ifdef GF_K_AVGPOOL2D
void gf_avgpool2d(const void *x, gf_dtype_t in_t, const gf_conv_shape_t *s, const gf_requant_t *rq, void *y)
{
    int32_t c;
    uint8_t *yb = (uint8_t *)y;
    int32_t *yi = (int32_t *)y;
    for (c = 0; c < s->c; c++) {
        if (rq) {
            gf_rqc_t rc;
            gf_rqc_init(&rc, rq, gf_rq_channel(rq, c));
            if (in_t == GF_S8)
                GF_WINDOW_SUMS(int8_t, GF_EMIT_RQ);
            else if (in_t == GF_U8)
                GF_WINDOW_SUMS(uint8_t, GF_EMIT_RQ);
            else
                GF_WINDOW_SUMS(int32_t, GF_EMIT_RQ);
        } else {
            if (in_t == GF_S8)
                GF_WINDOW_SUMS(int8_t, GF_EMIT_I32);
            else if (in_t == GF_U8)
                GF_WINDOW_SUMS(uint8_t, GF_EMIT_I32);
            else
                GF_WINDOW_SUMS(int32_t, GF_EMIT_I32);
        }
    }
}
#endif

/* ---------------------------------------------------------------------------------------------
 * trunc_avgpool2d: y = clamp(rne_shift(sum, shift)) or clamp(floor(sum / 2^shift)); shift <= 0
 * multiplies by 2^-shift.
 */
GF_INLINE int32_t gf_trunc_value(int32_t acc, int32_t shift, int32_t floor_rounding, int32_t lo, int32_t hi)
{
    int64_t v;
    if (shift <= 0) {
        int32_t l = -shift;
        if (acc == 0)
            v = 0;
        else if (l >= 32)
            v = acc > 0 ? INT64_MAX : INT64_MIN; /* saturates either way */
        else
            v = (int64_t)acc * ((int64_t)1 << l);
    } else if (floor_rounding) {
        v = shift >= 32 ? (acc < 0 ? -1 : 0) : (int64_t)(acc >> shift);
    } else {
        v = gf_rne_shift((int64_t)acc, shift > 62 ? 62 : shift);
    }
    return (int32_t)(v < lo ? lo : (v > hi ? hi : v));
}

#define GF_EMIT_TRUNC(acc) (*yb++ = (uint8_t)gf_trunc_value((acc), shift, floor_rounding, lo, hi))

#ifdef GF_K_TRUNC_AVGPOOL2D
void gf_trunc_avgpool2d(const void *x, gf_dtype_t in_t, const gf_conv_shape_t *s, int32_t shift,
                        int32_t floor_rounding, int32_t lo, int32_t hi, void *y)
{
    int32_t c;
    uint8_t *yb = (uint8_t *)y;
    for (c = 0; c < s->c; c++) {
        if (in_t == GF_S8)
            GF_WINDOW_SUMS(int8_t, GF_EMIT_TRUNC);
        else if (in_t == GF_U8)
            GF_WINDOW_SUMS(uint8_t, GF_EMIT_TRUNC);
        else
            GF_WINDOW_SUMS(int32_t, GF_EMIT_TRUNC);
    }
}
#endif
