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
 *   mask = 0) the element takes the exact 64-bit path gf_requant_finish().
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
#define GF_LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define GF_INLINE static inline
#define GF_NOINLINE
#define GF_UNLIKELY(x) (x)
#define GF_LIKELY(x) (x)
#endif

/* Per-channel requantization constants (computed once per channel, outside pixel loops). */
typedef struct {
    int32_t m;     /* mantissa */
    int32_t oh1;   /* hi32(o + 2^(sh-1)) + zp * 2^k + 1 (shortcut only) */
    int32_t k;     /* sh - 32 (shortcut only) */
    uint32_t mask; /* 2^k - 1, or 0 when the shortcut is unusable (every element takes the exact path) */
    int32_t lo, hi;
    int32_t sh, zp;
    int64_t o;
} gf_rqc_t;

/* Constants of channel ch of rq (ch is already reduced: 0 for per-tensor). */
void gf_rqc_init(gf_rqc_t *c, const gf_requant_t *rq, int32_t ch);

/* Exact 64-bit path (rare branch of gf_rqc_apply, or every element when mask == 0). */
int32_t gf_rqc_slow(const gf_rqc_t *c, int32_t q);

/* High 32 bits of the 64-bit signed product (one mulh on RV32M). */
GF_INLINE int32_t gf_mulh(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * (int64_t)b) >> 32);
}

/* y = clamp(rne_shift(o + q*m, sh) + zp, lo, hi), exactly. */
GF_INLINE int32_t gf_rqc_apply(const gf_rqc_t *c, int32_t q)
{
    int32_t h = gf_mulh(q, c->m) + c->oh1;
    int32_t r;
    if (GF_UNLIKELY(((uint32_t)h & c->mask) < 2u))
        return gf_rqc_slow(c, q);
    r = h >> c->k;
    if (r < c->lo)
        r = c->lo;
    if (r > c->hi)
        r = c->hi;
    return r;
}

/* Channel index used for output channel / slice ch. */
GF_INLINE int32_t gf_rq_channel(const gf_requant_t *rq, int32_t ch)
{
    return rq->channels == 1 ? 0 : ch;
}

/* Store one conv/linear accumulator: requantized byte (rc != NULL) or int32. */
GF_INLINE void gf_store_acc(void *y, size_t idx, const gf_rqc_t *rc, int32_t acc)
{
    if (rc)
        ((uint8_t *)y)[idx] = (uint8_t)gf_rqc_apply(rc, acc);
    else
        ((int32_t *)y)[idx] = acc;
}

/* Full unrolling of small constant-trip loops (gcc >= 8, clang); harmless elsewhere. */
#if defined(__GNUC__) && !defined(__clang__) && (__GNUC__ >= 8)
#define GF_UNROLL _Pragma("GCC unroll 64")
#elif defined(__clang__)
#define GF_UNROLL _Pragma("unroll")
#else
#define GF_UNROLL
#endif

#endif /* GF_INTERNAL_H */
