/*
 * gf_scan: the selective state-space scan (Mamba) with a quantized state, then the output quantizer
 * (docs/integer_contract.md, "Selective scan"; atomic_ops/scan.py is the same arithmetic in numpy).
 *
 * Inputs (codes, token-major [L][D] / [L][N], GF_S8 or GF_U8 each): delta, u, B, C. Parameter block p
 * (int64 words, built by the planner): [0] D, [1] N, [2] L, [3] entries, [4] base, [5] z_d, [6] z_u,
 * [7] z_b, [8] z_c, [9] z_h, [10] lo_h, [11] hi_h, [12] m1, [13] m2, [14] sh_h, [15] o_h, [16] z_y,
 * [17] lo_y, [18] hi_y, [19] y_signed, [20..23] 0; then per channel d: [m3, m4, sh_y, o_y]; then the
 * A_bar table as int16 T[(d * N + n) * entries + (delta - base)] (A_bar code minus its zero point).
 * Per channel d (independent of the others), the state h[0..N) starts at 0 (= z_h) and for t = 0..L-1:
 *   h[n] = clamp(rne_shift(m1 * a * h[n] + m2 * (delta - z_d)(B[t, n] - z_b)(u - z_u) + o_h, sh_h) + z_h)
 *   y[t, d] = clamp(rne_shift(m3 * sum_n h[n] (C[t, n] - z_c) + m4 * (u - z_u) + o_y, sh_y) + z_y)
 * (h kept minus z_h). Every product is exact in int32 (|a h| <= 2^16, |delta B u| <= 2^24,
 * |sum| <= N 2^16), the two sums of m * q in int64 (< 2^56): one rounding per state and per output.
 * gf_scan_channels runs channels [d0, d1) only (any split of the channels gives the same integers);
 * gf_scan_block does so on a block of channels held apart (a GAP9 L1 tile, codegen/runtime/gap9/gf_tiled.c):
 * rows of D (its row stride) codes of delta, u and y, the channel records chan[4 d..] and tables
 * T + d N entries of the block's channel d. Not selectable (always compiled: host and rv32 call gf_scan).
 */
#include "gf_internal.h"

#define GF_SCAN_MAX_STATE 64

GF_INLINE int32_t gf_scan_ld(const void *x, gf_dtype_t t, int32_t i)
{
    return t == GF_U8 ? (int32_t)((const uint8_t *)x)[i] : (int32_t)((const int8_t *)x)[i];
}

/* The state update and the C product of one channel and step, for B and C of container types TB, TC. */
#define GF_SCAN_STEP(TB, TC)                                                                       \
    do {                                                                                           \
        const TB *bt = (const TB *)b + (size_t)t * (size_t)N;                                      \
        const TC *ct = (const TC *)c + (size_t)t * (size_t)N;                                      \
        for (n = 0; n < N; n++) {                                                                  \
            const int32_t p1 = (int32_t)Tn[(size_t)n * (size_t)E] * h[n];                          \
            const int32_t p2 = du * ((int32_t)bt[n] - zb);                                         \
            const int32_t hn = gf_rne_finish64(oh + (int64_t)m1 * p1 + (int64_t)m2 * p2, shh, zh, loh, hih) - zh; \
            h[n] = hn;                                                                             \
            s += hn * ((int32_t)ct[n] - zc);                                                       \
        }                                                                                          \
    } while (0)

void gf_scan_block(const void *delta, gf_dtype_t d_t, const void *u, gf_dtype_t u_t, const void *b, gf_dtype_t b_t,
                   const void *c, gf_dtype_t c_t, const int64_t *p, const int64_t *chan, const int16_t *T,
                   int32_t D, int32_t d0, int32_t d1, void *y)
{
    const int32_t N = (int32_t)p[1], L = (int32_t)p[2], E = (int32_t)p[3];
    const int32_t base = (int32_t)p[4], zd = (int32_t)p[5], zu = (int32_t)p[6], zb = (int32_t)p[7];
    const int32_t zc = (int32_t)p[8], zh = (int32_t)p[9], loh = (int32_t)p[10], hih = (int32_t)p[11];
    const int32_t m1 = (int32_t)p[12], m2 = (int32_t)p[13], shh = (int32_t)p[14]; /* |m| < 2^31 */
    const int64_t oh = p[15];
    const int32_t zy = (int32_t)p[16], loy = (int32_t)p[17], hiy = (int32_t)p[18];
    const int32_t kind = (b_t == GF_U8) * 2 + (c_t == GF_U8);
    uint8_t *yb = (uint8_t *)y;
    int32_t h[GF_SCAN_MAX_STATE];
    int32_t d, t, n;
    for (d = d0; d < d1; d++) {
        const int32_t m3 = (int32_t)chan[4 * d], m4 = (int32_t)chan[4 * d + 1];
        const int64_t oy = chan[4 * d + 3];
        const int32_t shy = (int32_t)chan[4 * d + 2];
        const int16_t *Td = T + (size_t)d * (size_t)N * (size_t)E - base;
        for (n = 0; n < N; n++)
            h[n] = 0;
        for (t = 0; t < L; t++) {
            const int32_t dq = gf_scan_ld(delta, d_t, t * D + d);
            const int32_t uq = gf_scan_ld(u, u_t, t * D + d) - zu;
            const int32_t du = (dq - zd) * uq; /* |du| <= 2^16 */
            const int16_t *Tn = Td + dq;
            int32_t s = 0;
            if (kind == 0)
                GF_SCAN_STEP(int8_t, int8_t);
            else if (kind == 1)
                GF_SCAN_STEP(int8_t, uint8_t);
            else if (kind == 2)
                GF_SCAN_STEP(uint8_t, int8_t);
            else
                GF_SCAN_STEP(uint8_t, uint8_t);
            yb[t * D + d] = (uint8_t)gf_rne_finish64(oy + (int64_t)m3 * s + (int64_t)m4 * uq, shy, zy, loy, hiy);
        }
    }
}

void gf_scan_channels(const void *delta, gf_dtype_t d_t, const void *u, gf_dtype_t u_t, const void *b,
                      gf_dtype_t b_t, const void *c, gf_dtype_t c_t, const int64_t *p, int32_t d0, int32_t d1, void *y)
{
    const int32_t D = (int32_t)p[0];
    const int64_t *chan = p + 24;
    gf_scan_block(delta, d_t, u, u_t, b, b_t, c, c_t, p, chan, (const int16_t *)(const void *)(chan + 4 * (size_t)D), D,
                  d0, d1, y);
}

void gf_scan(const void *delta, gf_dtype_t d_t, const void *u, gf_dtype_t u_t, const void *b, gf_dtype_t b_t,
             const void *c, gf_dtype_t c_t, const int64_t *p, void *y)
{
    gf_scan_channels(delta, d_t, u, u_t, b, b_t, c, c_t, p, 0, (int32_t)p[0], y);
}
