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
 *   round-half-even. Otherwise (probability 2/2^k, or always when the shortcut is disabled by
 *   mask = 0, i.e. sh < 34 or an offset out of range) the element takes the exact 64-bit path.
 */
#ifndef GF_INTERNAL_H
#define GF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "gf_runtime.h"

#if defined(__GNUC__)
#define GF_INLINE static inline __attribute__((always_inline))
#define GF_NOINLINE __attribute__((noinline))
#define GF_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Keeps a pointer in one register across unrolled steps (stops gcc from splitting one
 * induction variable into several, which costs registers and spills). Emits no instruction. */
#define GF_KEEP(p) __asm__("" : "+r"(p))
#else
#define GF_INLINE static inline
#define GF_NOINLINE
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

/* Exact 64-bit path (rare branch of the shortcut, or every element when mask == 0). */
int32_t gf_rqc_slow(const gf_rqc_t *c, int32_t q);

/* High 32 bits of the 64-bit signed product (one mulh on RV32M). */
GF_INLINE int32_t gf_mulh(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * (int64_t)b) >> 32);
}

/* The shortcut with the channel constants already in registers (see the top of this file).
 * mask = 2^k - 2: (h & mask) == 0 <=> h mod 2^k is 0 or 1 (the cases the shortcut cannot
 * decide); mask = 0 sends every element to the exact path. The rare branches are laid out of
 * line, so the common case is mulh, add, and, beqz, sra, blt, bgt. */
GF_INLINE int32_t gf_rq_fast(int32_t q, int32_t m, int32_t oh1, uint32_t mask, int32_t k, int32_t lo, uint32_t range,
                             const gf_rqc_t *c)
{
    int32_t h = gf_mulh(q, m) + oh1;
    int32_t r;
    if (GF_UNLIKELY(((uint32_t)h & mask) == 0u))
        return gf_rqc_slow(c, q);
    r = h >> k;
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
 * 0 <= base + t*d < n. */
GF_INLINE void gf_tap_range(int32_t base, int32_t d, int32_t k, int32_t n, int32_t *a, int32_t *b)
{
    int32_t lo = 0, hi = k;
    if (base < 0)
        lo = (-base + d - 1) / d;
    if (base + (k - 1) * d > n - 1)
        hi = (n - 1 - base) < 0 ? 0 : (n - 1 - base) / d + 1;
    if (hi < lo)
        hi = lo;
    *a = lo;
    *b = hi;
}

#endif /* GF_INTERNAL_H */
