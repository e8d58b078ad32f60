/*
 * gf_mul: element-wise product of two quantized tensors with broadcasting (integer contract,
 * "Element-wise product"):
 *   acc = (a - za) * (b - zb)  (exact int32: |acc| <= 255 * 255)
 *   y   = requantized acc (one source, channel (i / inner) % channels), or the int32 acc (rq NULL)
 * Output elements j0 .. j0 + n - 1 (flat index j over the 4-D output shape); input element of j
 * along axis d moves by s->sa[d] / s->sb[d] (0: broadcast axis), read at a[index - a_org], so a
 * tile holding a run of a full-shape operand passes a_org = its first index, a whole operand 0.
 */
#include "gf_internal.h"

#define GF_MUL_LOOP(TA, TB)                                                                        \
    do {                                                                                           \
        const TA *as = (const TA *)a;                                                              \
        const TB *bs = (const TB *)b;                                                              \
        if (contiguous) {                                                                          \
            const TA *ap = as + (j0 - a_org);                                                      \
            const TB *bp = bs + (j0 - b_org);                                                      \
            if (!rq) {                                                                             \
                for (i = 0; i < n; i++)                                                            \
                    yi[i] = ((int32_t)ap[i] - za) * ((int32_t)bp[i] - zb);                         \
            } else {                                                                               \
                int32_t ch = 0;                                                                    \
                i = 0;                                                                             \
                while (i < n) {                                                                    \
                    int32_t end = (n - i < inner) ? n : i + inner;                                 \
                    gf_rqc_t rc;                                                                   \
                    gf_rqc_init(&rc, rq, ch);                                                      \
                    for (; i < end; i++)                                                           \
                        yb[i] = (uint8_t)gf_rqc_apply(&rc, ((int32_t)ap[i] - za) * ((int32_t)bp[i] - zb)); \
                    if (++ch == nch)                                                               \
                        ch = 0;                                                                    \
                }                                                                                  \
            }                                                                                      \
        } else {                                                                                   \
            int32_t ch = 0, k = 0;                                                                 \
            gf_rqc_t rc;                                                                           \
            if (rq)                                                                                \
                gf_rqc_init(&rc, rq, 0);                                                           \
            for (i = 0; i < n; i++) {                                                              \
                int32_t p = ((int32_t)as[ia] - za) * ((int32_t)bs[ib] - zb);                       \
                if (rq) {                                                                          \
                    yb[i] = (uint8_t)gf_rqc_apply(&rc, p);                                         \
                    if (++k == inner) {                                                            \
                        k = 0;                                                                     \
                        if (++ch == nch)                                                           \
                            ch = 0;                                                                \
                        gf_rqc_init(&rc, rq, ch);                                                  \
                    }                                                                              \
                } else {                                                                           \
                    yi[i] = p;                                                                     \
                }                                                                                  \
                /* next output coordinate (odometer over the 4 axes) */                            \
                int32_t ax = 3;                                                                    \
                ia += s->sa[3];                                                                    \
                ib += s->sb[3];                                                                    \
                while (++c[ax] == s->shape[ax] && ax > 0) {                                        \
                    c[ax] = 0;                                                                     \
                    ia -= s->sa[ax] * s->shape[ax];                                                \
                    ib -= s->sb[ax] * s->shape[ax];                                                \
                    ax--;                                                                          \
                    ia += s->sa[ax];                                                               \
                    ib += s->sb[ax];                                                               \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#define GF_MUL_B(TA)                                                                               \
    do {                                                                                           \
        if (b_t == GF_S8)                                                                          \
            GF_MUL_LOOP(TA, int8_t);                                                               \
        else                                                                                       \
            GF_MUL_LOOP(TA, uint8_t);                                                              \
    } while (0)

#ifdef GF_K_MUL
void gf_mul(const void *a, gf_dtype_t a_t, const void *b, gf_dtype_t b_t, const gf_mul_shape_t *s, int32_t j0,
            int32_t n, int32_t a_org, int32_t b_org, int32_t inner, const gf_requant_t *rq, void *y)
{
    uint8_t *yb = (uint8_t *)y;
    int32_t *yi = (int32_t *)y;
    int32_t za = s->za, zb = s->zb, nch = 1, i, d;
    int32_t c[4], ia = -a_org, ib = -b_org, contiguous = 1, st = 1;
    if (rq) {
        nch = rq->channels < 1 ? 1 : rq->channels;
        if (nch == 1)
            inner = n;
        if (inner < 1)
            inner = 1;
    }
    /* both operands full-shape and contiguous: flat indices */
    for (d = 3; d >= 0; d--) {
        if (s->shape[d] != 1 && (s->sa[d] != st || s->sb[d] != st))
            contiguous = 0;
        st *= s->shape[d];
    }
    if (!contiguous) {
        int32_t rem = j0;
        for (d = 3; d >= 0; d--) {
            c[d] = rem % s->shape[d];
            rem /= s->shape[d];
            ia += c[d] * s->sa[d];
            ib += c[d] * s->sb[d];
        }
    }
    if (a_t == GF_S8)
        GF_MUL_B(int8_t);
    else
        GF_MUL_B(uint8_t);
}
#endif
