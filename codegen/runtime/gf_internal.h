/*
 * gapforge C runtime, internal helpers shared by the kernel files (not part of the public API).
 *
 * Fast exact requantization
 * -------------------------
 * The contract (docs/integer_contract.md, section 3) rounds acc64 = o + q * m by
 * rne_shift(acc64, sh). On a 32-bit core the full 64-bit sequence (mul, mulh, 64-bit add with
 * carry, two-word shift with rounding) costs 30+ instructions; the kernels use an exact shortcut
 * whose common case is 8 instructions (mulh, add, and, bltu, sra, 2 clamp branches, store):
 *
 *   For sh = 32 + k with k >= 2, write q*m = H*2^32 + L and E = o + 2^(sh-1) = Eh*2^32 + El
 *   (H = mulh(q, m), L, El unsigned 32-bit). Then o + q*m + 2^(sh-1) = (H + Eh + c)*2^32 + rest
 *   with a carry c in {0, 1} and 0 <= rest < 2^32, so
 *      round_half_up((o + q*m) / 2^sh) = floor((H + Eh + c) / 2^k).
 *   Let h = H + Eh + zp*2^k + 1 (32-bit, no overflow: |H| <= 2^30, |Eh + zp*2^k + 1| < 2^30 is
 *   checked once per channel). If (h mod 2^k) >= 2, then (H + Eh) mod 2^k lies in [1, 2^k - 2]:
 *   adding c cannot cross a multiple of 2^k, so floor((H + Eh + c)/2^k) + zp = h >> k, and the
 *   value cannot be a tie (a tie needs (H + Eh + c) mod 2^k == 0), so round-half-up equals
 *   round-half-even. Otherwise (probability 2/2^k) the carry c is computed from the low words
 *   (one mul: t = L + El mod 2^32, c = t < El), giving floor((H + Eh + c) / 2^k) + zp =
 *   (h - 1 + c) >> k, and an exact tie (t == 0 and (h - 1 + c) mod 2^k == 0) is rounded to even
 *   (gf_rq_amb, about 10 instructions, inline on the cold path). When the shortcut is disabled
 *   (mask = 0: sh < 34 or an offset out of range) every element takes the exact 64-bit path.
 */
#ifndef GF_INTERNAL_H
#define GF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "gf_runtime.h"

#if defined(__GNUC__)
#define GF_INLINE static inline __attribute__((always_inline))
#define GF_NOINLINE __attribute__((noinline))
/* A static helper some kernel selections (GF_K_*) do not use: no warning, no code then. */
#define GF_MAYBE_UNUSED __attribute__((unused))
#define GF_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Keeps a pointer in one register across unrolled steps (stops gcc from splitting one
 * induction variable into several, which costs registers and spills). Emits no instruction. */
#define GF_KEEP(p) __asm__("" : "+r"(p))
#else
#define GF_INLINE static inline
#define GF_NOINLINE
#define GF_MAYBE_UNUSED
#define GF_UNLIKELY(x) (x)
#define GF_KEEP(p) ((void)0)
#endif

/* Per-channel requantization constants (computed once per channel, outside pixel loops). */
typedef struct {
    int32_t m;     /* mantissa */
    int32_t oh1;   /* hi32(o + 2^(sh-1)) + zp * 2^k + 1 (shortcut only) */
    int32_t k;     /* sh - 32 (shortcut only) */
    uint32_t mask; /* 2^k - 2, or 0 when the shortcut is unusable (every element takes the exact path) */
    int32_t lo, hi;
    uint32_t range; /* hi - lo */
    int32_t sh, zp;
    uint32_t el;   /* lo32(o + 2^(sh-1)) (shortcut only, see gf_rq_amb) */
    int64_t o;
} gf_rqc_t;

/* clamp(rne_shift(v, sh) + zp, lo, hi) for any v and 1 <= sh <= 62, exactly as
 * gf_requant_finish, but for sh >= 32 (every multiplier below 2^-1) with 32-bit operations on the
 * high word instead of a variable 64-bit shift (about 20 instructions on RV32 instead of 40). */
GF_INLINE int32_t gf_rne_finish64(int64_t v, int32_t sh, int32_t zp, int32_t lo, int32_t hi)
{
    if (sh >= 32) {
        const uint32_t vl = (uint32_t)v;
        const int32_t vh = (int32_t)(v >> 32);
        const int32_t k = sh - 32;
        const int32_t f = vh >> k;
        int32_t up;
        int64_t y;
        if (k == 0) {
            up = vl > 0x80000000u || (vl == 0x80000000u && (f & 1));
        } else {
            const uint32_t rh = (uint32_t)vh & (((uint32_t)1 << k) - 1u), hh = (uint32_t)1 << (k - 1);
            up = rh > hh || (rh == hh && (vl != 0u || (f & 1)));
        }
        y = (int64_t)f + up + zp;
        return (int32_t)(y < lo ? lo : (y > hi ? hi : y));
    }
    return gf_requant_finish(v, sh, zp, lo, hi);
}

/* Constants of channel ch of rq (ch is already reduced: 0 for per-tensor). */
void gf_rqc_init(gf_rqc_t *c, const gf_requant_t *rq, int32_t ch);

/* The same for accumulators that exclude the bias: the constants requantize q = acc - bias, with
 * bias * m folded into the 64-bit offset (o + bias*m + q*m == o + acc*m exactly; |o| < 2^62 and
 * |bias * m| < 2^62, so the folded offset fits an int64). Kernels that use it skip the bias add. */
void gf_rqc_init_bias(gf_rqc_t *c, const gf_requant_t *rq, int32_t ch, int32_t bias);

/* Exact 64-bit path (rare branch of the shortcut, or every element when mask == 0). */
int32_t gf_rqc_slow(const gf_rqc_t *c, int32_t q);

/* High 32 bits of the 64-bit signed product (one mulh on RV32M). */
GF_INLINE int32_t gf_mulh(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * (int64_t)b) >> 32);
}

/* The case the shortcut cannot decide (h mod 2^k is 0 or 1, shortcut enabled): the exact result,
 * zero point included, before clamping (see the top of this file). */
GF_INLINE int32_t gf_rq_amb(int32_t q, int32_t h, int32_t m, int32_t k, const gf_rqc_t *c)
{
    const uint32_t el = c->el;
    const uint32_t t = (uint32_t)q * (uint32_t)m + el; /* lo32(q*m + o + 2^(sh-1)) */
    const int32_t g = h - 1 + (int32_t)(t < el);        /* H + Eh + carry + zp * 2^k */
    int32_t r = g >> k;
    if (GF_UNLIKELY(t == 0u && ((uint32_t)g & (c->mask | 1u)) == 0u)) /* exact tie: to even */
        r -= (r - c->zp) & 1;
    return r;
}

/* The shortcut with the channel constants already in registers (see the top of this file).
 * mask = 2^k - 2: (h & mask) == 0 <=> h mod 2^k is 0 or 1 (the cases the shortcut cannot
 * decide, resolved by gf_rq_amb); mask = 0 sends every element to the exact path. The rare
 * branches are laid out of line, so the common case is mulh, add, and, beqz, sra, sub, bgtu. */
GF_INLINE int32_t gf_rq_fast(int32_t q, int32_t m, int32_t oh1, uint32_t mask, int32_t k, int32_t lo, uint32_t range,
                             const gf_rqc_t *c)
{
    int32_t h = gf_mulh(q, m) + oh1;
    int32_t r;
    if (GF_UNLIKELY(((uint32_t)h & mask) == 0u)) {
        if (mask == 0u)
            return gf_rqc_slow(c, q);
        r = gf_rq_amb(q, h, m, k, c);
    } else {
        r = h >> k;
    }
    /* one unsigned test for both bounds; the saturating assignments are out of line */
    if (GF_UNLIKELY((uint32_t)r - (uint32_t)lo > range))
        r = r < lo ? lo : c->hi;
    return r;
}

/* y = clamp(rne_shift(o + q*m, sh) + zp, lo, hi), exactly. */
GF_INLINE int32_t gf_rqc_apply(const gf_rqc_t *c, int32_t q)
{
    return gf_rq_fast(q, c->m, c->oh1, c->mask, c->k, c->lo, c->range, c);
}

/* The shortcut for a compile-time k = K (2 <= K <= 11: the mask 2^K - 2 and the shift are
 * immediates), for constants made by gf_rqc_init_shift with c->k == K. */
GF_INLINE int32_t gf_rq_fixk(int32_t q, int32_t m, int32_t oh1, int32_t lo, uint32_t range, const gf_rqc_t *c,
                             const int K)
{
    int32_t h = gf_mulh(q, m) + oh1;
    int32_t r;
    if (GF_UNLIKELY(((uint32_t)h & (((uint32_t)1 << K) - 2u)) == 0u))
        r = gf_rq_amb(q, h, m, K, c);
    else
        r = h >> K;
    if (GF_UNLIKELY((uint32_t)r - (uint32_t)lo > range))
        r = r < lo ? lo : c->hi;
    return r;
}

/* Constants for accumulators scaled by 2^s (q' = q * 2^s, e.g. from weights pre-shifted by s):
 * sh' = sh + s, o' = (o + bias*m) * 2^s describe the same value, so the results are identical.
 * Returns s = 32 + K - sh if 0 <= s <= smax (smax <= 20) and the shortcut applies with k == K
 * (2 <= K <= 20), else -1 (the caller uses its general path; *c is then unspecified). Only the
 * fields gf_rq_fixk and gf_rq_amb read are set (m, oh1, lo, hi, range, zp, mask, el). */
GF_INLINE int32_t gf_rqc_init_shift(gf_rqc_t *c, const gf_requant_t *rq, int32_t ch, int32_t bias, const int K,
                                    int32_t smax)
{
    const int32_t sh = rq->sh[ch], s = 32 + K - sh, m = rq->m[ch], zp = rq->zp, lo = rq->lo, hi = rq->hi;
    /* o + bias*m (wrapping add, exact within the contract's bounds), as two 32-bit words */
    const int64_t o = (int64_t)((uint64_t)rq->o[ch] + (uint64_t)((int64_t)bias * m));
    const uint32_t ol = (uint32_t)o;
    const int32_t oh = (int32_t)(o >> 32);
    int32_t hs, t;
    if ((uint32_t)s > (uint32_t)smax || lo > hi || zp <= -(1 << (28 - K)) || zp >= (1 << (28 - K)))
        return -1;
    t = oh >> (29 - s); /* |o * 2^s| < 2^61 (conservative): the sums below fit 32 bits */
    if (t != 0 && t != -1)
        return -1;
    /* o * 2^s: high word hs, low word ol << s; E = o * 2^s + 2^(31+K) adds 2^(K-1) to the high word */
    hs = (int32_t)(((uint32_t)oh << s) | (s ? ol >> (32 - s) : 0u));
    c->m = m;
    c->oh1 = hs + (1 << (K - 1)) + zp * (1 << K) + 1; /* |oh1| < 2^29 + 2^19 + 2^28 + 1 < 2^30 */
    c->el = ol << s;
    c->zp = zp;
    c->lo = lo;
    c->hi = hi;
    c->range = (uint32_t)hi - (uint32_t)lo;
    c->mask = ((uint32_t)1 << K) - 2u;
    return s;
}

/* Channel index used for output channel / slice ch. */
GF_INLINE int32_t gf_rq_channel(const gf_requant_t *rq, int32_t ch)
{
    return rq->channels == 1 ? 0 : ch;
}

/* Requantize P (1..8) accumulators of one channel into consecutive bytes y[0..P-1]. The channel
 * constants are copied to locals first: byte stores may alias anything, so reading them through
 * the pointer would reload them after every store. */
#define GF_RQ_DECL(rcp)                                                                            \
    const gf_rqc_t *rc_ = (rcp);                                                                   \
    const int32_t m_ = rc_->m, oh_ = rc_->oh1, k_ = rc_->k, lo_ = rc_->lo;                         \
    const uint32_t mk_ = rc_->mask, rg_ = rc_->range
#define GF_RQ_ONE(yb, i, a) ((yb)[i] = (uint8_t)gf_rq_fast((a), m_, oh_, mk_, k_, lo_, rg_, rc_))

/* Full unrolling of small constant-trip loops (gcc >= 8, clang); harmless elsewhere. */
#if defined(__clang__)
#define GF_UNROLL _Pragma("unroll")
#elif defined(__GNUC__) && (__GNUC__ >= 8)
#define GF_UNROLL _Pragma("GCC unroll 32")
#else
#define GF_UNROLL
#endif

/* Taps t in [*a, *b) of a kernel of k taps (dilation d) starting at input index base, such that
 * 0 <= base + t*d < n; 0 <= *a <= *b <= k. A window wholly in the padding gives an empty range
 * inside [0, k] (*a = *b = k before the input, 0 after it): callers fill taps [0, *a) and [*b, k)
 * with zeros, so *a may never pass k. */
GF_INLINE void gf_tap_range(int32_t base, int32_t d, int32_t k, int32_t n, int32_t *a, int32_t *b)
{
    int32_t lo = 0, hi = k;
    if (base < 0)
        lo = (-base + d - 1) / d;
    if (lo > k)
        lo = k;
    if (base + (k - 1) * d > n - 1)
        hi = (n - 1 - base) < 0 ? 0 : (n - 1 - base) / d + 1;
    if (hi < lo)
        hi = lo;
    *a = lo;
    *b = hi;
}

#endif /* GF_INTERNAL_H */
