/*
 * gf_mul: element-wise product of two quantized tensors with broadcasting (integer contract,
 * "Element-wise product"):
 *   acc = (a - za) * (b - zb)  (exact int32: |acc| <= 255 * 255)
 *   y   = requantized acc (one source, channel (i / inner) % channels), or the int32 acc (rq NULL)
 * Output elements j0 .. j0 + n - 1 (flat index j over the 4-D output shape); the input element of
 * output coordinate (c0..c3) is a[sum c_d * sa[d] - a_org] (sa[d] = 0 on broadcast axes), so a
 * tile holding a run of a full-shape operand passes a_org = its first index, a whole operand 0.
 *
 * The output is walked as rows of the innermost axis after merging trailing axes along which both
 * operands are contiguous (a gate [C][H][W] * [C][1][1] becomes C rows of H*W elements with a
 * constant b); each row is cut at the requantization channel boundaries, and the inner loop is
 * specialised for unit / zero strides.
 */
#include <string.h>

#include "gf_internal.h"

#define GF_MUL_RQ(q) gf_rq_fast((q), m_, oh1_, mask_, k_, lo_, range_, &rc)

/* One segment of len elements: a at pa (stride ia), b at pb (stride ib), channel constants rc. */
#define GF_MUL_SEG(TA, TB)                                                                         \
    do {                                                                                           \
        const TA *pa = (const TA *)a + oa;                                                         \
        const TB *pb = (const TB *)b + ob;                                                         \
        /* channel constants in registers (the byte stores could alias rc) */                     \
        const int32_t m_ = rc.m, oh1_ = rc.oh1, k_ = rc.k, lo_ = rc.lo;                            \
        const uint32_t mask_ = rc.mask, range_ = rc.range;                                         \
        int32_t e;                                                                                 \
        if (!rq) {                                                                                 \
            for (e = 0; e < len; e++)                                                              \
                yi[e] = ((int32_t)pa[e * ia] - za) * ((int32_t)pb[e * ib] - zb);                   \
        } else if (ia == 1 && ib == 0) {                                                           \
            const int32_t g = (int32_t)pb[0] - zb;                                                 \
            for (e = 0; e < len; e++)                                                              \
                yb[e] = (uint8_t)GF_MUL_RQ(((int32_t)pa[e] - za) * g);                     \
        } else if (ia == 0 && ib == 1) {                                                           \
            const int32_t g = (int32_t)pa[0] - za;                                                 \
            for (e = 0; e < len; e++)                                                              \
                yb[e] = (uint8_t)GF_MUL_RQ(((int32_t)pb[e] - zb) * g);                     \
        } else if (ia == 1 && ib == 1) {                                                           \
            for (e = 0; e < len; e++)                                                              \
                yb[e] = (uint8_t)GF_MUL_RQ(((int32_t)pa[e] - za) * ((int32_t)pb[e] - zb)); \
        } else {                                                                                   \
            for (e = 0; e < len; e++)                                                              \
                yb[e] = (uint8_t)GF_MUL_RQ(((int32_t)pa[e * ia] - za) * ((int32_t)pb[e * ib] - zb)); \
        }                                                                                          \
    } while (0)

#define GF_MUL_DISPATCH()                                                                          \
    do {                                                                                           \
        if (a_t == GF_S8 && b_t == GF_S8)                                                          \
            GF_MUL_SEG(int8_t, int8_t);                                                            \
        else if (a_t == GF_S8)                                                                     \
            GF_MUL_SEG(int8_t, uint8_t);                                                           \
        else if (b_t == GF_S8)                                                                     \
            GF_MUL_SEG(uint8_t, int8_t);                                                           \
        else                                                                                       \
            GF_MUL_SEG(uint8_t, uint8_t);                                                          \
    } while (0)

#ifdef GF_K_MUL
void gf_mul(const void *a, gf_dtype_t a_t, const void *b, gf_dtype_t b_t, const gf_mul_shape_t *s, int32_t j0,
            int32_t n, int32_t a_org, int32_t b_org, int32_t inner, const gf_requant_t *rq, void *y)
{
    const int32_t za = s->za, zb = s->zb;
    int32_t shape[4], sa[4], sb[4], c[4], nd = 0, d, nch = 1, ch = 0, left, done = 0;
    int32_t oa = -a_org, ob = -b_org;
    gf_rqc_t rc;
    memset(&rc, 0, sizeof rc);
    if (n <= 0)
        return;
    if (rq) {
        nch = rq->channels < 1 ? 1 : rq->channels;
        if (nch == 1)
            inner = n;
        if (inner < 1)
            inner = 1;
        gf_rqc_init(&rc, rq, 0);
    }
    /* merge adjacent axes across which both operands step contiguously */
    for (d = 0; d < 4; d++) {
        if (s->shape[d] == 1)
            continue; /* size-1 axes never move */
        if (nd > 0 && sa[nd - 1] == s->sa[d] * s->shape[d] && sb[nd - 1] == s->sb[d] * s->shape[d]) {
            shape[nd - 1] *= s->shape[d];
            sa[nd - 1] = s->sa[d];
            sb[nd - 1] = s->sb[d];
        } else {
            shape[nd] = s->shape[d];
            sa[nd] = s->sa[d];
            sb[nd] = s->sb[d];
            nd++;
        }
    }
    if (nd == 0) {
        shape[0] = 1, sa[0] = 0, sb[0] = 0;
        nd = 1;
    }
    /* coordinates of j0 */
    {
        int32_t rem = j0;
        for (d = nd - 1; d >= 0; d--) {
            c[d] = rem % shape[d];
            rem /= shape[d];
            oa += c[d] * sa[d];
            ob += c[d] * sb[d];
        }
    }
    left = inner; /* elements left in the current requantization channel */
    while (done < n) {
        const int32_t ia = sa[nd - 1], ib = sb[nd - 1];
        int32_t len = shape[nd - 1] - c[nd - 1];
        uint8_t *yb = (uint8_t *)y + done;
        int32_t *yi = (int32_t *)y + done;
        if (len > n - done)
            len = n - done;
        if (rq && len > left)
            len = left;
        GF_MUL_DISPATCH();
        done += len;
        oa += len * ia;
        ob += len * ib;
        c[nd - 1] += len;
        if (rq && (left -= len) == 0) {
            left = inner;
            if (++ch == nch)
                ch = 0;
            gf_rqc_init(&rc, rq, ch);
        }
        /* carry into the outer axes */
        for (d = nd - 1; d > 0 && c[d] == shape[d]; d--) {
            c[d] = 0;
            oa += sa[d - 1] - shape[d] * sa[d];
            ob += sb[d - 1] - shape[d] * sb[d];
            c[d - 1]++;
        }
    }
}
#endif
