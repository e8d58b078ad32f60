/*
 * gf_linear: acc[o] = bias[o] + sum_k w[o][k] * x[k], requantized per output (channel = o) or
 * written as int32.
 *
 * Batch 1: every weight is used exactly once, so each MAC needs at least a byte load of its
 * weight, a mul and an add: 3 instructions per MAC on rv32imc is the floor (no multiply-
 * accumulate; a word load of 4 weights costs more to unpack than 4 byte loads). Blocking R output
 * rows shares each input load among R MACs, and unrolling the k loop U times lets every load use
 * a constant offset, so per R*U MACs the kernel adds U input loads, R + 1 pointer increments and
 * one branch: 3 + 1/R + (R + 2)/(R*U) instructions per MAC. R = 8, U = 16 gives 3.20 (the inner
 * loop is exactly 410 instructions per 128 MACs); R = 10 or 12 would give 3.18 / 3.16 but their
 * 2R + 4 live values exceed what gcc keeps in the 28 allocatable registers (R = 10 spills 22
 * times per iteration: 3.38). On top come, per block of R rows, about 120 instructions of call,
 * pointer and bias setup, and per output the exact requantization (gf_lin_rq, about 35 with its
 * loads), i.e. roughly (120/R + 35)/K per MAC.
 */
#include "gf_internal.h"

#ifdef GF_K_LINEAR /* the whole file is gf_linear (kernel selection: gf_runtime.h) */

/* gcc's pre-allocation scheduler hoists all loads of an unrolled block to its top on RISC-V and
 * then spills the register-blocked accumulators; the kernels are written in a good order already. */
#if defined(__GNUC__) && !defined(__clang__)
#if defined(__SANITIZE_ADDRESS__)
#pragma GCC optimize("O1")
#else
#pragma GCC optimize("no-schedule-insns", "no-tree-ter", "no-tree-reassoc")
#endif
#endif

#ifndef GF_LIN_R
#define GF_LIN_R 8 /* output rows per block (<= 12) */
#endif
#ifndef GF_LIN_U
#define GF_LIN_U 16 /* k unrolling */
#endif

/* y = clamp(rne_shift(o + q*m, sh) + zp, lo, hi) for one value (exact 64-bit sum, the shift done on
 * the high word when sh >= 33): the requantization of a linear layer's outputs, where each
 * channel's constants are used once. */
GF_INLINE uint8_t gf_lin_rq(int32_t q, int32_t m, int32_t sh, int64_t o, int32_t zp, int32_t lo, int32_t hi)
{
    int32_t y;
    if (sh >= 33) {
        const int32_t k = sh - 32;
        const uint32_t ol = (uint32_t)o, pl = (uint32_t)q * (uint32_t)m, vl = pl + ol;
        /* high word of o + q*m + 2^(sh-1) (no overflow: |o|, |q*m| < 2^62) */
        const int32_t vh = (int32_t)((uint32_t)gf_mulh(q, m) + (uint32_t)(int32_t)(o >> 32) + (uint32_t)(vl < pl) +
                                     ((uint32_t)1 << (k - 1)));
        int32_t r = vh >> k;
        if (GF_UNLIKELY(vl == 0u && ((uint32_t)vh << (32 - k)) == 0u)) /* exact tie: to even */
            r -= r & 1;
        y = r + zp;
        y = y < lo ? lo : (y > hi ? hi : y);
    } else {
        y = gf_requant_finish(o + (int64_t)q * m, sh, zp, lo, hi);
    }
    return (uint8_t)y;
}

/* Outputs r0 .. r0+n-1 from their accumulators. */
static void gf_lin_store(const int32_t *acc, int32_t n, int32_t r0, const gf_requant_t *rq, void *y)
{
    int32_t j;
    if (rq) {
        const int32_t zp = rq->zp, lo = rq->lo, hi = rq->hi, c0 = gf_rq_channel(rq, r0), st = rq->channels == 1 ? 0 : 1;
        const int32_t *mp = rq->m + c0;
        const uint8_t *shp = rq->sh + c0;
        const int64_t *op = rq->o + c0;
        uint8_t *yb = (uint8_t *)y + r0;
        for (j = 0; j < n; j++, mp += st, shp += st, op += st)
            yb[j] = gf_lin_rq(acc[j], *mp, *shp, *op, zp, lo, hi);
    } else {
        int32_t *yi = (int32_t *)y + r0;
        for (j = 0; j < n; j++)
            yi[j] = acc[j];
    }
}

/* Per-row statements for rows 0 .. R-1 (explicit scalars: gcc keeps them in registers). */
#define GF_LIN_IF(i, stmt)                                                                         \
    if ((i) < R) {                                                                                 \
        stmt;                                                                                      \
    }
#define GF_LIN_ALL(M)                                                                              \
    M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11)
#define GF_LIN_DECL(i) const int8_t *wp##i = w0 + (size_t)((i) < R ? (i) : 0) * k; int32_t a##i = (i) < R ? b[(i) < R ? (i) : 0] : 0;
#define GF_LIN_MAC(i) GF_LIN_IF(i, a##i += wp##i[u] * xv)
#define GF_LIN_MAC1(i) GF_LIN_IF(i, a##i += *wp##i++ * xv)
#define GF_LIN_INC(i) GF_LIN_IF(i, wp##i += GF_LIN_U)
#define GF_LIN_OUT(i) GF_LIN_IF(i, acc[i] = a##i)

#define GF_LIN_CAT_(a, b) a##b
#define GF_LIN_CAT(a, b) GF_LIN_CAT_(a, b)
#define GF_LIN_FN(SFX, RR) GF_LIN_CAT(gf_lin_##SFX##_r, RR)

/* R rows (R <= 12) of w starting at w0 (rows k apart) times x; acc[r] = b[r] + sum. */
#define GF_LIN_BLOCK(XT, SFX, RR)                                                                  \
    static GF_NOINLINE void GF_LIN_FN(SFX, RR)(const XT *x, const int8_t *w0, int32_t k, const int32_t *b,   \
                                               int32_t *acc)                                       \
    {                                                                                              \
        enum { R = RR };                                                                           \
        GF_LIN_ALL(GF_LIN_DECL)                                                                    \
        const XT *xp = x, *xe = x + (k & (GF_LIN_U - 1));                                          \
        int u;                                                                                     \
        for (; xp != xe; xp++) { /* the k % U first columns: nothing is left after the main loop */ \
            const int32_t xv = *xp;                                                                \
            GF_LIN_ALL(GF_LIN_MAC1)                                                                \
        }                                                                                          \
        for (xe = x + k; xp != xe; xp += GF_LIN_U) {                                               \
            GF_UNROLL for (u = 0; u < GF_LIN_U; u++) {                                             \
                const int32_t xv = xp[u];                                                          \
                GF_LIN_ALL(GF_LIN_MAC)                                                             \
            }                                                                                      \
            GF_LIN_ALL(GF_LIN_INC)                                                                 \
        }                                                                                          \
        GF_LIN_ALL(GF_LIN_OUT)                                                                     \
    }

/* The row loop over blocks of RB (GF_LIN_R or 4), 4 and 1 rows. */
#define GF_LIN_DRIVER(XT, SFX, RB)                                                                 \
    static void gf_linear_##SFX(const XT *x, const int8_t *w, const int32_t *bias, int32_t k, int32_t o,   \
                                const gf_requant_t *rq, void *y)                                   \
    {                                                                                              \
        int32_t r = 0, j, b[GF_LIN_R], acc[GF_LIN_R];                                              \
        while (r < o) {                                                                            \
            const int32_t n = o - r >= (RB) ? (RB) : (o - r >= 4 ? 4 : 1);                         \
            const int8_t *wr = w + (size_t)r * k;                                                  \
            for (j = 0; j < n; j++)                                                                \
                b[j] = bias ? bias[r + j] : 0;                                                     \
            if (n == (RB))                                                                         \
                GF_LIN_FN(SFX, RB)(x, wr, k, b, acc);                                              \
            else if (n == 4)                                                                       \
                GF_LIN_FN(SFX, 4)(x, wr, k, b, acc);                                               \
            else                                                                                   \
                GF_LIN_FN(SFX, 1)(x, wr, k, b, acc);                                               \
            gf_lin_store(acc, n, r, rq, y);                                                        \
            r += n;                                                                                \
        }                                                                                          \
    }

#define GF_LIN_IMPL(XT, SFX)                                                                       \
    GF_LIN_BLOCK(XT, SFX, GF_LIN_R)                                                                \
    GF_LIN_BLOCK(XT, SFX, 4)                                                                       \
    GF_LIN_BLOCK(XT, SFX, 1)                                                                       \
    GF_LIN_DRIVER(XT, SFX, GF_LIN_R)

GF_LIN_IMPL(int8_t, s8)
GF_LIN_IMPL(uint8_t, u8)

#ifdef GF_K_LINEAR_S32
/* int32 codes (the sums of a global average pool; the planner proves |acc| < 2^31): blocks of 4 rows
 * (a classifier head of a few outputs; half the code of the 8-row blocks) */
GF_LIN_BLOCK(int32_t, s32, 4)
GF_LIN_BLOCK(int32_t, s32, 1)
GF_LIN_DRIVER(int32_t, s32, 4)
#endif

void gf_linear(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias, int32_t k, int32_t o,
               const gf_requant_t *rq, void *y)
{
    if (in_t == GF_U8)
        gf_linear_u8((const uint8_t *)x, w, bias, k, o, rq, y);
#ifdef GF_K_LINEAR_S32
    else if (in_t == GF_S32)
        gf_linear_s32((const int32_t *)x, w, bias, k, o, rq, y);
#endif
    else
        gf_linear_s8((const int8_t *)x, w, bias, k, o, rq, y);
}

#endif /* GF_K_LINEAR */
