/*
 * gf_linear: acc[o] = bias[o] + sum_k w[o][k] * x[k], requantized per output (channel = o) or
 * written as int32.
 *
 * Batch 1: every weight is used exactly once, so each MAC needs at least a byte load of its
 * weight, a mul and an add (3 instructions on rv32imc). Blocking 8 output rows shares each input
 * load among 8 MACs and the k loop is unrolled 8 times so that all loads use constant offsets:
 * per 64 MACs, 8 input loads + 64 weight loads + 128 arithmetic + 9 pointer increments + 1
 * branch, i.e. about 3.3 instructions per MAC.
 */
#include "gf_internal.h"

/* gcc's pre-allocation scheduler hoists all loads of an unrolled block to its top on RISC-V and
 * then spills the register-blocked accumulators; the kernels are written in a good order already. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-schedule-insns")
#endif

#define GF_LIN_ROWS 8

#define GF_LIN_U(u)                                                                                \
    do {                                                                                           \
        int32_t xv = xp[u];                                                                        \
        a0 += w0[u] * xv, a1 += w1[u] * xv, a2 += w2[u] * xv, a3 += w3[u] * xv;                    \
        a4 += w4[u] * xv, a5 += w5[u] * xv, a6 += w6[u] * xv, a7 += w7[u] * xv;                    \
    } while (0)

#define GF_LIN_IMPL(XT, SFX)                                                                       \
    static void gf_lin8_##SFX(const XT *x, const int8_t *w0, int32_t k, const int32_t *b, int32_t *out) \
    {                                                                                              \
        const int8_t *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k, *w4 = w3 + k;                       \
        const int8_t *w5 = w4 + k, *w6 = w5 + k, *w7 = w6 + k;                                     \
        int32_t a0 = b[0], a1 = b[1], a2 = b[2], a3 = b[3], a4 = b[4], a5 = b[5], a6 = b[6], a7 = b[7]; \
        const XT *xp = x, *xend = x + (k & ~7);                                                    \
        while (xp != xend) {                                                                       \
            GF_LIN_U(0);                                                                           \
            GF_LIN_U(1);                                                                           \
            GF_LIN_U(2);                                                                           \
            GF_LIN_U(3);                                                                           \
            GF_LIN_U(4);                                                                           \
            GF_LIN_U(5);                                                                           \
            GF_LIN_U(6);                                                                           \
            GF_LIN_U(7);                                                                           \
            xp += 8;                                                                               \
            w0 += 8, w1 += 8, w2 += 8, w3 += 8, w4 += 8, w5 += 8, w6 += 8, w7 += 8;                \
        }                                                                                          \
        xend = x + k;                                                                              \
        while (xp != xend) {                                                                       \
            GF_LIN_U(0);                                                                           \
            xp++;                                                                                  \
            w0++, w1++, w2++, w3++, w4++, w5++, w6++, w7++;                                        \
        }                                                                                          \
        out[0] = a0, out[1] = a1, out[2] = a2, out[3] = a3;                                        \
        out[4] = a4, out[5] = a5, out[6] = a6, out[7] = a7;                                        \
    }                                                                                              \
    static int32_t gf_lin1_##SFX(const XT *x, const int8_t *w0, int32_t k, int32_t a)              \
    {                                                                                              \
        const XT *xend = x + (k & ~3), *xe = x + k;                                                \
        while (x != xend) {                                                                        \
            a += w0[0] * x[0] + w0[1] * x[1] + w0[2] * x[2] + w0[3] * x[3];                        \
            x += 4;                                                                                \
            w0 += 4;                                                                               \
        }                                                                                          \
        while (x != xe)                                                                            \
            a += *w0++ * *x++;                                                                     \
        return a;                                                                                  \
    }                                                                                              \
    static void gf_linear_##SFX(const XT *x, const int8_t *w, const int32_t *bias, int32_t k, int32_t o, \
                                const gf_requant_t *rq, void *y)                                   \
    {                                                                                              \
        int32_t r = 0, j;                                                                          \
        for (; r + GF_LIN_ROWS <= o; r += GF_LIN_ROWS) {                                           \
            int32_t b[GF_LIN_ROWS], acc[GF_LIN_ROWS];                                              \
            for (j = 0; j < GF_LIN_ROWS; j++)                                                      \
                b[j] = bias ? bias[r + j] : 0;                                                     \
            gf_lin8_##SFX(x, w + (size_t)r * k, k, b, acc);                                        \
            gf_lin_store(acc, GF_LIN_ROWS, r, rq, y);                                              \
        }                                                                                          \
        for (; r < o; r++) {                                                                       \
            int32_t acc = gf_lin1_##SFX(x, w + (size_t)r * k, k, bias ? bias[r] : 0);              \
            gf_lin_store(&acc, 1, r, rq, y);                                                       \
        }                                                                                          \
    }

/* One requantization per output: the exact 64-bit path directly (cheaper than preparing the
 * per-channel shortcut constants for a single use). */
static void gf_lin_store(const int32_t *acc, int32_t n, int32_t r0, const gf_requant_t *rq, void *y)
{
    int32_t j;
    if (rq) {
        uint8_t *yb = (uint8_t *)y + r0;
        for (j = 0; j < n; j++) {
            const int32_t c = gf_rq_channel(rq, r0 + j);
            yb[j] = (uint8_t)gf_rne_finish64(rq->o[c] + (int64_t)acc[j] * rq->m[c], rq->sh[c], rq->zp, rq->lo, rq->hi);
        }
    } else {
        int32_t *yi = (int32_t *)y + r0;
        for (j = 0; j < n; j++)
            yi[j] = acc[j];
    }
}

GF_LIN_IMPL(int8_t, s8)
GF_LIN_IMPL(uint8_t, u8)

void gf_linear(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias, int32_t k, int32_t o,
               const gf_requant_t *rq, void *y)
{
    if (in_t == GF_U8)
        gf_linear_u8((const uint8_t *)x, w, bias, k, o, rq, y);
    else
        gf_linear_s8((const int8_t *)x, w, bias, k, o, rq, y);
}
