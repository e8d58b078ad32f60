/*
 * Requantization helpers and the element-wise kernels: gf_requantize, gf_add, gf_relu.
 * See gf_internal.h for the exact 32-bit shortcut used by every requantizing kernel.
 */
#include "gf_internal.h"

/* Constants for multiplier m, shift sh and (already folded) offset o. In 32-bit operations where the 64-bit
 * ones are not needed (every kernel calls this per channel, every core per tile): the shortcut's
 * |o| < 2^62 is tested on o's high word, within (-2^30, 2^30) (the offsets of [-2^62 + 1, -2^62 + 2^32) with
 * that word -2^30 take the exact path instead: the same results), and e = o + 2^(sh-1) with sh - 1 >= 33 adds
 * 2^(sh-33) to the high word only. */
static void gf_rqc_set(gf_rqc_t *c, const gf_requant_t *rq, int32_t m, int32_t sh, int64_t o)
{
    const int32_t zp = rq->zp, lo = rq->lo, hi = rq->hi, oh = (int32_t)(o >> 32);

    c->m = m;
    c->o = o;
    c->sh = sh;
    c->zp = zp;
    c->lo = lo;
    c->hi = hi;
    c->range = (uint32_t)hi - (uint32_t)lo;
    c->k = 0;
    c->mask = 0; /* exact path for every element unless the shortcut applies */
    c->oh1 = 0;
    c->el = 0;
    if (sh >= 34 && sh <= 62 && oh > -(1 << 30) && oh < (1 << 30) && lo <= hi) {
        const int32_t k = sh - 32;
        const int32_t eh = oh + (1 << (sh - 33)); /* hi32(o + 2^(sh-1)); |eh| < 2^30 + 2^29 */
        const int64_t oh1 = (int64_t)eh + (int64_t)zp * ((int64_t)1 << k) + 1;
        const int64_t lim30 = (int64_t)1 << 30;
        if (oh1 > -lim30 && oh1 < lim30) {
            c->k = k;
            c->mask = ((uint32_t)1 << k) - 2u; /* see gf_rq_fast */
            c->oh1 = (int32_t)oh1;
            c->el = (uint32_t)o; /* lo32(o + 2^(sh-1)) = lo32(o) */
        }
    }
}

void gf_rqc_init(gf_rqc_t *c, const gf_requant_t *rq, int32_t ch)
{
    gf_rqc_set(c, rq, rq->m[ch], rq->sh[ch], rq->o[ch]);
}

void gf_rqc_init_bias(gf_rqc_t *c, const gf_requant_t *rq, int32_t ch, int32_t bias)
{
    /* o + bias*m, wrapping arithmetic (exact whenever the contract's bounds hold) */
    const int64_t o = (int64_t)((uint64_t)rq->o[ch] + (uint64_t)((int64_t)bias * rq->m[ch]));
    gf_rqc_set(c, rq, rq->m[ch], rq->sh[ch], o);
}

GF_NOINLINE int32_t gf_rqc_slow(const gf_rqc_t *c, int32_t q)
{
    /* wrapping add: with a folded bias (gf_rqc_init_bias) the sum equals o + acc*m of the contract */
    int64_t v = (int64_t)((uint64_t)c->o + (uint64_t)((int64_t)q * c->m));
    return gf_rne_finish64(v, c->sh, c->zp, c->lo, c->hi);
}

/* ---------------------------------------------------------------------------------------------
 * gf_requantize: channel of element i is (i / inner) % channels. The loop runs over slices of
 * `inner` elements that share one channel; the source type is resolved outside the loops.
 */
#define GF_RQ_LOOP(T)                                                                              \
    do {                                                                                           \
        const T *xs = (const T *)x;                                                                \
        int32_t i = 0, ch = 0;                                                                     \
        while (i < n) {                                                                            \
            int32_t end = (n - i < inner) ? n : i + inner;                                         \
            gf_rqc_t rc;                                                                           \
            gf_rqc_init(&rc, rq, ch);                                                              \
            for (; i < end; i++)                                                                   \
                yb[i] = (uint8_t)gf_rqc_apply(&rc, (int32_t)xs[i]);                                \
            if (++ch == nch)                                                                       \
                ch = 0;                                                                            \
        }                                                                                          \
    } while (0)

#ifdef GF_K_REQUANTIZE
void gf_requantize(const void *x, gf_dtype_t in_t, int32_t n, int32_t inner, const gf_requant_t *rq, void *y)
{
    uint8_t *yb = (uint8_t *)y;
    int32_t nch = rq->channels;
    if (nch <= 1) {
        nch = 1;
        inner = n;
    }
    if (inner < 1)
        inner = 1;
    switch (in_t) {
    case GF_S8:
        GF_RQ_LOOP(int8_t);
        break;
    case GF_U8:
        GF_RQ_LOOP(uint8_t);
        break;
    default:
        GF_RQ_LOOP(int32_t);
        break;
    }
}
#endif

/* ---------------------------------------------------------------------------------------------
 * gf_add: acc64 = o[c] + qa * m[c] + qb * m[channels + c] (exact 64-bit), or the int32 sum.
 *
 * 8-bit inputs, fast exact path (gf_add8_prep decides per channel): with E = o + 2^(sh-1) (|o| < 2^62: no
 * overflow), T = E + qa*ma + qb*mb is computed exactly in two 32-bit words (|qa|, |qb| <= 255 and |m| < 2^31:
 * |qa*ma + qb*mb| < 2^40, |T| < 2^63). Then floor(T / 2^sh) is the contract's round-half-up, and the tie
 * (T mod 2^sh == 0, i.e. acc mod 2^sh == 2^(sh-1)) is rounded to even by clearing the low bit. The channel
 * takes the path only if sh >= 11 and |E| <= 2^(sh+29), so that |T| < 2^(sh+30) and the rounded value r has
 * |r| <= 2^30, and |zp| < 2^30: r + zp then fits 32 bits and the clamp is exact. Otherwise (and for 32-bit
 * inputs) every element takes the exact 64-bit path.
 */
#ifdef GF_K_ADD
typedef struct {
    uint32_t el, tmask; /* lo32(E); low bits of T that are zero at a tie (sh < 32: 2^sh - 1; else 2^k - 1 of tH) */
    int32_t eh, sa, sb; /* hi32(E); sh < 32: shifts 32 - sh (of tH) and sh (of tL); else sa = k = sh - 32 */
} gf_add8_t;

/* 1: the channel's constants for the fast path are set (the conditions above), 0: the exact path. */
static int gf_add8_prep(gf_add8_t *f, int64_t o, int32_t sh, int32_t zp)
{
    int64_t e, t;
    if (sh < 11 || sh > 62 || zp <= -(1 << 30) || zp >= (1 << 30) || o >= ((int64_t)1 << 62) ||
        o < -((int64_t)1 << 62))
        return 0;
    e = o + ((int64_t)1 << (sh - 1));
    t = e >> (sh + 29 < 63 ? sh + 29 : 63); /* 0 or -1 <=> -2^(sh+29) <= E < 2^(sh+29) */
    if (t != 0 && t != -1)
        return 0;
    f->el = (uint32_t)e;
    f->eh = (int32_t)(e >> 32);
    if (sh < 32) {
        f->sa = 32 - sh;
        f->sb = sh;
        f->tmask = ((uint32_t)1 << sh) - 1u;
    } else {
        f->sa = sh - 32;
        f->sb = 0;
        f->tmask = ((uint32_t)1 << (sh - 32)) - 1u;
    }
    return 1;
}

/* clamp(rne_shift(o + qa*ma + qb*mb, sh) + zp, lo, hi) for the constants of gf_add8_prep; HI: sh >= 32. */
GF_INLINE int32_t gf_add8_one(int32_t qa, int32_t qb, int32_t ma, int32_t mb, uint32_t el, int32_t eh, int32_t sa,
                              int32_t sb, uint32_t tmask, int32_t zp, int32_t lo, int32_t hi, const int HI)
{
    const uint32_t al = (uint32_t)qa * (uint32_t)ma, bl = (uint32_t)qb * (uint32_t)mb;
    const uint32_t sl = al + bl;
    const uint32_t sh_ = (uint32_t)gf_mulh(qa, ma) + (uint32_t)gf_mulh(qb, mb) + (uint32_t)(sl < al);
    const uint32_t tl = sl + el;
    const int32_t th = (int32_t)(sh_ + (uint32_t)eh + (uint32_t)(tl < sl)); /* T = th * 2^32 + tl */
    int32_t r;
    if (HI) {
        r = th >> sa;
        if (GF_UNLIKELY(tl == 0u && ((uint32_t)th & tmask) == 0u)) /* exact tie: to even */
            r -= r & 1;
    } else {
        r = (int32_t)(((uint32_t)th << sa) | (tl >> sb));
        if (GF_UNLIKELY((tl & tmask) == 0u))
            r -= r & 1;
    }
    r += zp;
    return r < lo ? lo : (r > hi ? hi : r);
}
#endif

#define GF_ADD_LOOP(TA, TB)                                                                        \
    do {                                                                                           \
        const TA *as = (const TA *)a;                                                              \
        const TB *bs = (const TB *)b;                                                              \
        if (!rq) {                                                                                 \
            int32_t *yi = (int32_t *)y;                                                            \
            int32_t i;                                                                             \
            for (i = 0; i < n; i++)                                                                \
                yi[i] = (int32_t)as[i] + (int32_t)bs[i];                                           \
        } else {                                                                                   \
            uint8_t *yb = (uint8_t *)y;                                                            \
            int32_t i = 0, ch = 0;                                                                 \
            while (i < n) {                                                                        \
                int32_t end = (n - i < inner) ? n : i + inner;                                     \
                int64_t o = rq->o[ch];                                                             \
                int32_t ma32 = rq->m[ch], mb32 = rq->m[nch + ch];                                  \
                int32_t sh = rq->sh[ch];                                                           \
                gf_add8_t f;                                                                       \
                if (sizeof(TA) == 1 && sizeof(TB) == 1 && gf_add8_prep(&f, o, sh, zp)) {           \
                    /* the constants in locals: the byte stores may alias f */                     \
                    const uint32_t el = f.el, tm = f.tmask;                                        \
                    const int32_t eh = f.eh, sa = f.sa, sb = f.sb;                                 \
                    if (sh >= 32)                                                                  \
                        for (; i < end; i++)                                                       \
                            yb[i] = (uint8_t)gf_add8_one(as[i], bs[i], ma32, mb32, el, eh, sa, sb, tm, zp, lo, hi, 1); \
                    else                                                                           \
                        for (; i < end; i++)                                                       \
                            yb[i] = (uint8_t)gf_add8_one(as[i], bs[i], ma32, mb32, el, eh, sa, sb, tm, zp, lo, hi, 0); \
                } else {                                                                           \
                    const int64_t ma = ma32, mb = mb32;                                            \
                    for (; i < end; i++) {                                                         \
                        int64_t acc = o + (int64_t)as[i] * ma + (int64_t)bs[i] * mb;               \
                        yb[i] = (uint8_t)gf_rne_finish64(acc, sh, zp, lo, hi);                     \
                    }                                                                              \
                }                                                                                  \
                if (++ch == nch)                                                                   \
                    ch = 0;                                                                        \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#define GF_ADD_B(TA)                                                                               \
    do {                                                                                           \
        switch (b_t) {                                                                             \
        case GF_S8:                                                                                \
            GF_ADD_LOOP(TA, int8_t);                                                               \
            break;                                                                                 \
        case GF_U8:                                                                                \
            GF_ADD_LOOP(TA, uint8_t);                                                              \
            break;                                                                                 \
        default:                                                                                   \
            GF_ADD_LOOP(TA, int32_t);                                                              \
            break;                                                                                 \
        }                                                                                          \
    } while (0)

#ifdef GF_K_ADD
void gf_add(const void *a, gf_dtype_t a_t, const void *b, gf_dtype_t b_t, int32_t n, int32_t inner,
            const gf_requant_t *rq, void *y)
{
    int32_t nch = 1, zp = 0, lo = 0, hi = 0;
    if (rq) {
        nch = rq->channels < 1 ? 1 : rq->channels;
        zp = rq->zp;
        lo = rq->lo;
        hi = rq->hi;
        if (nch == 1)
            inner = n;
        if (inner < 1)
            inner = 1;
    }
    switch (a_t) {
    case GF_S8:
        GF_ADD_B(int8_t);
        break;
    case GF_U8:
        GF_ADD_B(uint8_t);
        break;
    default:
        GF_ADD_B(int32_t);
        break;
    }
}
#endif

/* ---------------------------------------------------------------------------------------------
 * gf_relu: y = max(x, zp); y may equal x.
 */
#ifdef GF_K_RELU
void gf_relu(const void *x, gf_dtype_t t, int32_t n, int32_t zp, void *y)
{
    int32_t i;
    if (t == GF_S8) {
        const int8_t *xs = (const int8_t *)x;
        int8_t *ys = (int8_t *)y;
        for (i = 0; i < n; i++) {
            int32_t v = xs[i];
            ys[i] = (int8_t)(v < zp ? zp : v);
        }
    } else if (t == GF_U8) {
        const uint8_t *xs = (const uint8_t *)x;
        uint8_t *ys = (uint8_t *)y;
        for (i = 0; i < n; i++) {
            int32_t v = xs[i];
            ys[i] = (uint8_t)(v < zp ? zp : v);
        }
    } else {
        const int32_t *xs = (const int32_t *)x;
        int32_t *ys = (int32_t *)y;
        for (i = 0; i < n; i++) {
            int32_t v = xs[i];
            ys[i] = v < zp ? zp : v;
        }
    }
}
#endif
