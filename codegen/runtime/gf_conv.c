/*
 * Convolution kernels: gf_conv2d (general), gf_conv2d_3x3, gf_conv2d_1x1, gf_dwconv2d.
 *
 * Every kernel computes blocks of output channels x output pixels in registers and requantizes
 * them with the exact 32-bit shortcut of gf_internal.h. Structure (details in gf_conv_impl.h):
 *  - the input signedness is resolved once per call: gf_conv_impl.h is included twice and
 *    generates an int8_t and a uint8_t copy of every kernel;
 *  - padding is handled outside the inner loops: output rows get their valid kernel-row range
 *    once, blocks touching at most one padded column at each end are compile-time variants
 *    that substitute a constant 0 for the missing load, and the few remaining border or tail
 *    pixels go through a per-pixel path with clipped tap ranges;
 *  - pointers are incremented (loads use constant offsets), never recomputed per MAC.
 *
 * Block shapes chosen for rv32imc (no multiply-accumulate: 2 instructions per MAC plus loads):
 *  - 3x3: 3 output channels x 4 pixels, the 6 input columns of a kernel row loaded once and
 *    shared by the 3 taps (87 instructions per 36 MACs and kernel row).
 *  - 1x1, requantized, C <= 128: 8 output channels x 3 pixels, the 3 pixels' sums carried
 *    exactly in 2 words per channel ("3 in 2", gf_c1p_*; chunks of 64 int8 / 32 uint8 input
 *    channels): per input channel 3 input loads and 4 packing instructions shared by the 8
 *    output channels, then 8 weight loads and 16 multiply-adds for 24 MACs (50 instructions,
 *    2.08 per MAC, no spills).
 *  - 1x1 otherwise (int32 output, wider C, channel tails): 4 output channels x 4 pixels; the 4
 *    channels' weights are first interleaved into a small stack buffer (GF_CONV_WBUF_BYTES) so
 *    that one pointer addresses them all and the 16 accumulators fit the register file.
 *  - depthwise 3x3, stride 1 or 2, requantized: streaming rows (gf_dws_*): each input column is
 *    loaded once per output row (stride 2: per pair of output rows) and multiplied into every
 *    accumulator that uses it, an output is requantized as soon as it is complete, the 9
 *    weights and the requantization constants stay in registers for the whole channel.
 *  - general (and depthwise of other shapes): 4 channels x 4 pixels with kernel loops.
 * gcc needs three passes turned off for this code (pragma below), and the depthwise kernels two
 * more (GF_ONE_REGION); nothing else is assumed about the compiler flags (codegen.toolchains
 * builds everything with -O2).
 */
#include "gf_internal.h"

/* gcc's pre-allocation scheduler (-fschedule-insns) hoists all loads of an unrolled block to its
 * top on RISC-V, temporary expression replacement (-ftree-ter) regroups the streamed
 * multiply-adds per output, and reassociation (-ftree-reassoc) sums the unsigned (wrapping)
 * products of the 1x1 "3 in 2" words per unrolled step before adding them to the accumulators;
 * all three lengthen live ranges until the register-blocked accumulators spill. The kernels are
 * written in a good order already, so they are turned off here. */
#if defined(__GNUC__) && !defined(__clang__)
#if defined(__SANITIZE_ADDRESS__)
/* AddressSanitizer builds (tests only): -O1 for this file, a third of the compile time of the
 * instrumented unrolled blocks at -O2; the code and its results are the same. */
#pragma GCC optimize("O1")
#else
#pragma GCC optimize("no-schedule-insns", "no-tree-ter", "no-tree-reassoc")
#endif
#endif

/* For the streaming depthwise kernels: one register-allocation region per function (no
 * live-range splitting at loop boundaries: the rows would otherwise shuffle 15 registers on
 * entering and leaving each row's loop) and no code hoisting (it moves the loads and products
 * that both arms of a row's prologue share above the branch, where they spill). Only where it
 * helps; the blocked kernels allocate better with gcc's defaults. */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define GF_ONE_REGION __attribute__((optimize("ira-region=one", "no-code-hoisting")))
#else
#define GF_ONE_REGION
#endif

#ifndef GF_CONV_WBUF_BYTES
#define GF_CONV_WBUF_BYTES 1024 /* stack bytes for the interleaved 1x1 weights (4 channels x C) */
#endif

/* Store 4 accumulators (consecutive output pixels) of channel r of a block. */
#define GF_STORE4(rcs, r, y, idx, a0, a1, a2, a3)                                                  \
    do {                                                                                           \
        if (rcs) {                                                                                 \
            GF_RQ_DECL(&(rcs)[r]);                                                                 \
            uint8_t *yb_ = (uint8_t *)(y) + (idx);                                                 \
            GF_RQ_ONE(yb_, 0, a0);                                                                 \
            GF_RQ_ONE(yb_, 1, a1);                                                                 \
            GF_RQ_ONE(yb_, 2, a2);                                                                 \
            GF_RQ_ONE(yb_, 3, a3);                                                                 \
        } else {                                                                                   \
            int32_t *yi_ = (int32_t *)(y) + (idx);                                                 \
            yi_[0] = (a0);                                                                         \
            yi_[1] = (a1);                                                                         \
            yi_[2] = (a2);                                                                         \
            yi_[3] = (a3);                                                                         \
        }                                                                                          \
    } while (0)

GF_INLINE void gf_store1(const gf_rqc_t *rc, void *y, size_t idx, int32_t acc)
{
    if (rc)
        ((uint8_t *)y)[idx] = (uint8_t)gf_rqc_apply(rc, acc);
    else
        ((int32_t *)y)[idx] = acc;
}

/* Requantization constants of output channels o .. o+n-1 (NULL when rq is NULL). */
GF_MAYBE_UNUSED static const gf_rqc_t *gf_rqc_block(gf_rqc_t *rcs, const gf_requant_t *rq, int32_t o, int32_t n)
{
    int32_t r;
    if (!rq)
        return NULL;
    for (r = 0; r < n; r++)
        gf_rqc_init(&rcs[r], rq, gf_rq_channel(rq, o + r));
    return rcs;
}

GF_INLINE int32_t gf_bias(const int32_t *bias, int32_t o)
{
    return bias ? bias[o] : 0;
}

/* Index of the first output column whose window starts inside the input, and one past the last
 * output column whose window ends inside it (interior = all taps valid). */
GF_MAYBE_UNUSED static void gf_interior(int32_t n_out, int32_t n_in, int32_t s, int32_t p, int32_t span, int32_t *a, int32_t *b)
{
    int32_t lo = (p + s - 1) / s;
    int32_t num = n_in - span + p; /* ox*s - p + span <= n_in  <=>  ox <= num / s */
    int32_t hi = num < 0 ? 0 : num / s + 1;
    if (lo > n_out)
        lo = n_out;
    if (hi > n_out)
        hi = n_out;
    if (hi < lo)
        hi = lo;
    *a = lo;
    *b = hi;
}

/* A row of zeros: the input rows above and below the input for the streaming depthwise kernel. */
#define GF_DWS_ZERO_BYTES 256
GF_MAYBE_UNUSED static const uint8_t gf_dws_zero[GF_DWS_ZERO_BYTES];

GF_MAYBE_UNUSED static int gf_is_3x3(const gf_conv_shape_t *s)
{
    return s->kh == 3 && s->kw == 3 && s->sy == 1 && s->sx == 1 && s->dy == 1 && s->dx == 1 && s->groups == 1;
}

GF_MAYBE_UNUSED static int gf_is_1x1(const gf_conv_shape_t *s)
{
    return s->kh == 1 && s->kw == 1 && s->pt == 0 && s->pl == 0 && s->pb == 0 && s->pr == 0 && s->groups == 1;
}

GF_MAYBE_UNUSED static int gf_is_dw(const gf_conv_shape_t *s)
{
    return s->groups == s->c && s->c == s->o && s->dy == 1 && s->dx == 1;
}

/* One copy of the selected kernels per input type. In each copy GF_C_<KERNEL> says which of its
 * sections gf_conv_impl.h compiles: GF_K_<KERNEL>_S8 / _U8 (gf_runtime.h); the general kernel also
 * serves as the fallback of gf_conv2d_1x1 (stride > 2, wide inputs). */
#if defined(GF_K_CONV2D_S8) || defined(GF_K_CONV2D_3X3_S8) || defined(GF_K_CONV2D_1X1_S8) || defined(GF_K_DWCONV2D_S8)
#if defined(GF_K_CONV2D_S8)
#define GF_C_CONV2D 1
#endif
#if defined(GF_K_CONV2D_S8) || defined(GF_K_CONV2D_1X1_S8)
#define GF_C_GENERAL 1
#endif
#ifdef GF_K_CONV2D_3X3_S8
#define GF_C_3X3 1
#endif
#ifdef GF_K_CONV2D_1X1_S8
#define GF_C_1X1 1
#endif
#ifdef GF_K_DWCONV2D_S8
#define GF_C_DW 1
#endif
#define XT int8_t
#define GF_S(name) name##_s8
#include "gf_conv_impl.h"
#undef XT
#undef GF_S
#undef GF_C_CONV2D
#undef GF_C_GENERAL
#undef GF_C_3X3
#undef GF_C_1X1
#undef GF_C_DW
#endif

#if defined(GF_K_CONV2D_U8) || defined(GF_K_CONV2D_3X3_U8) || defined(GF_K_CONV2D_1X1_U8) || defined(GF_K_DWCONV2D_U8)
#if defined(GF_K_CONV2D_U8)
#define GF_C_CONV2D 1
#endif
#if defined(GF_K_CONV2D_U8) || defined(GF_K_CONV2D_1X1_U8)
#define GF_C_GENERAL 1
#endif
#ifdef GF_K_CONV2D_3X3_U8
#define GF_C_3X3 1
#endif
#ifdef GF_K_CONV2D_1X1_U8
#define GF_C_1X1 1
#endif
#ifdef GF_K_DWCONV2D_U8
#define GF_C_DW 1
#endif
#define XT uint8_t
#define GF_S(name) name##_u8
#include "gf_conv_impl.h"
#undef XT
#undef GF_S
#undef GF_C_CONV2D
#undef GF_C_GENERAL
#undef GF_C_3X3
#undef GF_C_1X1
#undef GF_C_DW
#endif

/* The public kernels dispatch on the input type to the compiled copies (the generator selects
 * every type a kernel is called with). */
#ifdef GF_K_CONV2D
void gf_conv2d(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
               const gf_conv_shape_t *s, const gf_requant_t *rq, void *y)
{
#ifdef GF_K_CONV2D_U8
    if (in_t == GF_U8)
        gf_conv2d_any_u8((const uint8_t *)x, w, bias, s, rq, y);
#endif
#ifdef GF_K_CONV2D_S8
    if (in_t != GF_U8)
        gf_conv2d_any_s8((const int8_t *)x, w, bias, s, rq, y);
#endif
}
#endif

#ifdef GF_K_CONV2D_3X3
void gf_conv2d_3x3(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
                   const gf_conv_shape_t *s, const gf_requant_t *rq, void *y)
{
#ifdef GF_K_CONV2D_3X3_U8
    if (in_t == GF_U8)
        gf_conv3x3_u8((const uint8_t *)x, w, bias, s, rq, y);
#endif
#ifdef GF_K_CONV2D_3X3_S8
    if (in_t != GF_U8)
        gf_conv3x3_s8((const int8_t *)x, w, bias, s, rq, y);
#endif
}
#endif

#ifdef GF_K_CONV2D_1X1
void gf_conv2d_1x1(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
                   const gf_conv_shape_t *s, const gf_requant_t *rq, void *y)
{
#ifdef GF_K_CONV2D_1X1_U8
    if (in_t == GF_U8)
        gf_conv1x1_u8((const uint8_t *)x, w, bias, s, rq, y);
#endif
#ifdef GF_K_CONV2D_1X1_S8
    if (in_t != GF_U8)
        gf_conv1x1_s8((const int8_t *)x, w, bias, s, rq, y);
#endif
}
#endif

#ifdef GF_K_DWCONV2D
void gf_dwconv2d(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
                 const gf_conv_shape_t *s, const gf_requant_t *rq, void *y)
{
#ifdef GF_K_DWCONV2D_U8
    if (in_t == GF_U8)
        gf_dwconv_u8((const uint8_t *)x, w, bias, s, rq, y);
#endif
#ifdef GF_K_DWCONV2D_S8
    if (in_t != GF_U8)
        gf_dwconv_s8((const int8_t *)x, w, bias, s, rq, y);
#endif
}
#endif
