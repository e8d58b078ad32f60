/*
 * gf_softmax: integer softmax over rows, then the output quantizer (docs/integer_contract.md,
 * "Softmax"; atomic_ops/softmax.py is the same arithmetic in numpy).
 *
 * Parameter block p (int64 words, built by the planner): [0] r digit bits, [1] J digits,
 * [2] g output shift, [3] R = rne(2^g / s_out) (2^27 <= R < 2^28), [4] zp, [5] lo, [6] hi,
 * [7] P mask rows (0: no mask), then J tables of 2^r uint64 entries T[j][v] = rne(2^62 exp(-s_in v 2^(r j)))
 * (Q62, T[j][0] = 2^62), then P rows of W = ceil(n / 64) uint64 mask words: bit i % 64 of word i / 64
 * set when key i is allowed; row row0 + k of x (k < rows) uses mask row (row0 + k) mod P. A masked key
 * takes no part in the max nor the sum and its output is clamp(zp) (e = 0); every mask row allows one.
 * Per row of n values x (int8, uint8 or int32):
 *   d = max - x (0 <= d < 2^32); e62 = T[0][digit 0] * T[1][digit 1] * ... (Q62, each product
 *   rounded half to even; zero digits skipped; 0 when d >= 2^(r J)); e = rne(e62 / 2^26) (Q36);
 *   S = sum e (exact, uint64); y = clamp(rne(e * R / (S * 2^g)) + zp, lo, hi) with one exact
 *   uint64 division and the rounding decided on its quotient and remainder.
 * The max element has e = 2^36 exactly, so S >= 2^36, e * R < 2^64 and the quotient < 2^28.
 * The exact division is done without a 64-bit divide per element: with inv = floor((2^64 - 1) / S)
 * (one division per row), Qe = hi64(N * inv) satisfies Q - 2 < Qe <= Q for Q = floor(N / S) and any
 * N < 2^64, so at most two corrections (rem = N - Qe * S >= S) give the exact quotient and remainder.
 * No scratch memory: e is computed again for the output pass.
 */
#include "gf_internal.h"

#ifdef GF_K_SOFTMAX

/* rne(a * b / 2^62) for a, b <= 2^62, from 32-bit halves (the 128-bit product never leaves registers). */
static uint64_t gf_mul_q62(uint64_t a, uint64_t b)
{
    const uint64_t m32 = 0xFFFFFFFFu;
    uint64_t a0 = a & m32, a1 = a >> 32, b0 = b & m32, b1 = b >> 32;
    uint64_t lo = a0 * b0, mid = a1 * b0 + a0 * b1, hi = a1 * b1; /* mid < 2^63 */
    uint64_t low = lo + (mid << 32);
    uint64_t high = hi + (mid >> 32) + (low < lo);
    uint64_t res = (high << 2) | (low >> 62);
    uint64_t rem = low & (((uint64_t)1 << 62) - 1u), half = (uint64_t)1 << 61;
    return res + (rem > half || (rem == half && (res & 1u)));
}

/* High 64 bits of the 128-bit product a * b. */
static uint64_t gf_mulhi64(uint64_t a, uint64_t b)
{
    const uint64_t m32 = 0xFFFFFFFFu;
    uint64_t a0 = a & m32, a1 = a >> 32, b0 = b & m32, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & m32) + (p10 & m32);
    return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

typedef struct {
    int32_t r, J, g;
    uint64_t R;
    uint32_t mask;
    const uint64_t *T;
} gf_sm_t;

/* e = exp(-s d) in Q36, as the contract computes it (d < 2^32 and r * J <= 32). */
GF_INLINE uint64_t gf_sm_exp(const gf_sm_t *c, uint32_t d)
{
    uint64_t e = c->T[d & c->mask];
    int32_t j;
    if (c->r * c->J < 32 && (d >> (c->r * c->J)) != 0)
        return 0;
    for (j = 1; j < c->J; j++) {
        uint32_t v = (d >> (c->r * j)) & c->mask;
        if (v)
            e = gf_mul_q62(e, c->T[((uint32_t)j << c->r) + v]);
    }
    {
        uint64_t f = e >> 26, rem = e & ((1u << 26) - 1u);
        return f + (rem > (1u << 25) || (rem == (1u << 25) && (f & 1u)));
    }
}

#define GF_SM_ON(i) (!mb || ((mb[(i) >> 6] >> ((i) & 63)) & 1u))

#define GF_SM_ROWS(TYPE)                                                                           \
    do {                                                                                           \
        const TYPE *xs = (const TYPE *)x;                                                          \
        for (row = 0; row < rows; row++, xs += n, yb += n) {                                       \
            const uint64_t *mb = P ? M + (size_t)((row0 + row) % P) * W : 0;                       \
            int32_t mx = INT32_MIN, i;                                                             \
            uint64_t S = 0, inv;                                                                   \
            for (i = 0; i < n; i++)                                                                \
                if (GF_SM_ON(i))                                                                   \
                    mx = xs[i] > mx ? xs[i] : mx;                                                  \
            for (i = 0; i < n; i++)                                                                \
                if (GF_SM_ON(i))                                                                   \
                    S += gf_sm_exp(&c, (uint32_t)((int64_t)mx - xs[i]));                           \
            inv = ~(uint64_t)0 / S;                                                                \
            for (i = 0; i < n; i++) {                                                              \
                uint64_t num = GF_SM_ON(i) ? gf_sm_exp(&c, (uint32_t)((int64_t)mx - xs[i])) * c.R : 0; \
                uint64_t q = gf_mulhi64(num, inv), rem = num - q * S;                              \
                while (rem >= S) { /* at most twice: the exact quotient and remainder */           \
                    q++;                                                                           \
                    rem -= S;                                                                      \
                }                                                                                  \
                uint64_t f = q >> c.g, low = q & (((uint64_t)1 << c.g) - 1u);                      \
                uint64_t half = (uint64_t)1 << (c.g - 1);                                          \
                int64_t v = (int64_t)f + (low > half || (low == half && (rem != 0 || (f & 1u)))) + zp; \
                yb[i] = (uint8_t)(v < lo ? lo : (v > hi ? hi : v));                                \
            }                                                                                      \
        }                                                                                          \
    } while (0)

void gf_softmax(const void *x, gf_dtype_t in_t, int32_t row0, int32_t rows, int32_t n, const int64_t *p, void *y)
{
    gf_sm_t c;
    uint8_t *yb = (uint8_t *)y;
    int32_t row;
    const int32_t zp = (int32_t)p[4], lo = (int32_t)p[5], hi = (int32_t)p[6], P = (int32_t)p[7];
    const int32_t W = (n + 63) / 64;
    const uint64_t *M = (const uint64_t *)(p + 8) + ((size_t)p[1] << p[0]);
    c.r = (int32_t)p[0];
    c.J = (int32_t)p[1];
    c.g = (int32_t)p[2];
    c.R = (uint64_t)p[3];
    c.mask = ((uint32_t)1 << c.r) - 1u;
    c.T = (const uint64_t *)(p + 8);
    if (n <= 0)
        return;
    if (in_t == GF_S8)
        GF_SM_ROWS(int8_t);
    else if (in_t == GF_U8)
        GF_SM_ROWS(uint8_t);
    else
        GF_SM_ROWS(int32_t);
}

#endif /* GF_K_SOFTMAX */
