/*
 * gapforge C runtime: kernels implementing docs/integer_contract.md exactly.
 *
 * Conventions (all kernels):
 *  - batch 1, C order; images are [C][H][W] (NCHW without the batch), exactly the byte layout of
 *    the golden .bin files; linear inputs/outputs are [K] / [O].
 *  - activations are bytes holding int8 (GF_S8) or uint8 (GF_U8) values of 1..8 bits, or int32
 *    accumulators (GF_S32). Outputs of requantizing kernels are written as one byte per element
 *    (the low 8 bits of a value already clamped to [lo, hi]); readers interpret them by type.
 *  - weights are int8 [O][C/groups][KH][KW] (PyTorch layout), biases int32 [O].
 *  - integer only: no float anywhere on this path; 64-bit arithmetic only in requantization.
 *  - kernels never allocate; buffers never alias unless a kernel says so.
 */
#ifndef GF_RUNTIME_H
#define GF_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { GF_S8 = 0, GF_U8 = 1, GF_S32 = 2 } gf_dtype_t;

/*
 * Kernel selection. By default every kernel below is compiled. A build that defines
 * GF_KERNELS_SELECTED compiles only the kernels named by a GF_K_<KERNEL> macro (GF_K_CONV2D_1X1
 * for gf_conv2d_1x1, ...), the convolutions only for the input types named by
 * GF_K_<KERNEL>_S8 / GF_K_<KERNEL>_U8; the GAP9 project does, with the macros generated from its
 * plan's kernel calls (codegen/gap9/resources.py), so that kernels the network does not use take
 * no code memory. gf_conv2d then dispatches only to the specialised convolutions compiled for the
 * type (the general kernel computes every shape exactly the same: one integer contract for all).
 * gf_concat, gf_permute, gf_slice, gf_flip, gf_upsample, gf_upsample_linear, gf_pad, gf_edge_pad,
 * gf_scan and the *_ref kernels are not selectable.
 * GF_K_SIMD compiles the SIMD kernels of gf_simd.c (a project generated with --kernels simd).
 */
#ifndef GF_KERNELS_SELECTED
#define GF_K_CONV2D 1
#define GF_K_CONV2D_S8 1
#define GF_K_CONV2D_U8 1
#define GF_K_CONV2D_3X3 1
#define GF_K_CONV2D_3X3_S8 1
#define GF_K_CONV2D_3X3_U8 1
#define GF_K_CONV2D_1X1 1
#define GF_K_CONV2D_1X1_S8 1
#define GF_K_CONV2D_1X1_U8 1
#define GF_K_DWCONV2D 1
#define GF_K_DWCONV2D_S8 1
#define GF_K_DWCONV2D_U8 1
#define GF_K_MAXPOOL2D 1
#define GF_K_AVGPOOL2D 1
#define GF_K_TRUNC_AVGPOOL2D 1
#define GF_K_LINEAR 1
#define GF_K_LINEAR_S32 1
#define GF_K_ADD 1
#define GF_K_REQUANTIZE 1
#define GF_K_RELU 1
#define GF_K_LUT 1
#define GF_K_THRESHOLDS 1
#define GF_K_MUL 1
#define GF_K_SOFTMAX 1
#define GF_K_LAYERNORM 1
#define GF_K_RMSNORM 1
#define GF_K_GROUPNORM 1
#define GF_K_LINCOMB 1
#define GF_K_MATMUL 1
#define GF_K_LINEAR_ROWS 1
#define GF_K_SIMD 1
#endif
#if defined(GF_K_LINEAR_ROWS) && !defined(GF_K_LINEAR)
#define GF_K_LINEAR 1 /* gf_linear_rows calls gf_linear */
#endif
#if defined(GF_K_LINEAR_ROWS_S32) && !defined(GF_K_LINEAR_S32)
#define GF_K_LINEAR_S32 1 /* int32 inputs of gf_linear (GF_K_<KERNEL>_S32: a call reads int32 codes) */
#endif

/*
 * Requantization (integer contract, section 3):
 *   acc64 = o[c] + sum_s q_s * m[s * channels + c]        (int64, never overflows: checked by the planner)
 *   y     = clamp(rne_shift(acc64, sh[c]) + zp, lo, hi)
 * channels == 1 means per-tensor (c is always 0). A fused ReLU is already folded into lo.
 */
typedef struct {
    const int32_t *m;   /* n_sources * channels mantissas, |m| < 2^31 */
    const uint8_t *sh;  /* channels shifts, 1..62 */
    const int64_t *o;   /* channels offsets, |o| < 2^62 */
    int32_t channels;
    int32_t zp, lo, hi;
    /* NULL, or (per-tensor requantization, channels == 1, only) one copy of the constants the kernels derive
     * from m, sh, o, zp, lo, hi (gf_internal.h gf_rqc_t, gf_rqc_init; 8-byte aligned), computed once by the
     * caller: the SIMD conv and linear kernels read it for every channel instead of computing the constants per
     * block of channels (the GAP9 cluster: the copy in the layer's run record, in L1). */
    const void *pre;
} gf_requant_t;

/* Round half to even of v / 2^sh, 1 <= sh <= 62 (arithmetic right shift on int64). */
static inline int64_t gf_rne_shift(int64_t v, int sh)
{
    int64_t f = v >> sh; /* floor: gcc/clang implement >> on negative values as arithmetic shift */
    int64_t r = v - (int64_t)((uint64_t)f << sh);
    int64_t half = (int64_t)1 << (sh - 1);
    return f + ((r > half) | ((r == half) & (f & 1)));
}

/* Final step of a requantization: rounding, zero point and saturation. */
static inline int32_t gf_requant_finish(int64_t acc64, int sh, int32_t zp, int32_t lo, int32_t hi)
{
    int64_t y = gf_rne_shift(acc64, sh) + zp;
    return (int32_t)(y < lo ? lo : (y > hi ? hi : y));
}

/* One source, channel c. */
static inline int32_t gf_requant1(const gf_requant_t *rq, int32_t q, int32_t c)
{
    int64_t acc = rq->o[c] + (int64_t)q * rq->m[c];
    return gf_requant_finish(acc, rq->sh[c], rq->zp, rq->lo, rq->hi);
}

/* Geometry of a 2-D convolution or pooling (output sizes are computed by the planner). */
typedef struct {
    int32_t c, h, w;                 /* input channels, height, width */
    int32_t o, oh, ow;               /* output channels (== c for pooling), height, width */
    int32_t kh, kw, sy, sx;          /* kernel, stride */
    int32_t pt, pl, pb, pr;          /* padding top, left, bottom, right */
    int32_t dy, dx, groups;          /* dilation, groups (conv only) */
} gf_conv_shape_t;

/*
 * conv2d: acc[o][y][x] = bias[o] + sum w[o][c][i][j] * x[g*Cg + c][y*sy - pt + i*dy][x*sx - pl + j*dx]
 * (zero padding), int32. With rq != NULL, y holds requantized bytes (channel = o), else int32 acc.
 * in_t is GF_S8 or GF_U8.
 *   gf_conv2d        any geometry (general, register-blocked)
 *   gf_conv2d_3x3    kh = kw = 3, sy = sx = 1, dy = dx = 1, groups = 1
 *   gf_conv2d_1x1    kh = kw = 1, no padding, dy = dx = 1, groups = 1 (any stride)
 *   gf_dwconv2d      groups == c == o (depthwise, multiplier 1), any kernel/stride/padding, dy = dx = 1
 *   gf_conv2d_ref    straightforward reference loop (benchmarks and tests only)
 */
void gf_conv2d(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
               const gf_conv_shape_t *s, const gf_requant_t *rq, void *y);
void gf_conv2d_3x3(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
                   const gf_conv_shape_t *s, const gf_requant_t *rq, void *y);
void gf_conv2d_1x1(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
                   const gf_conv_shape_t *s, const gf_requant_t *rq, void *y);
void gf_dwconv2d(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
                 const gf_conv_shape_t *s, const gf_requant_t *rq, void *y);
void gf_conv2d_ref(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
                   const gf_conv_shape_t *s, const gf_requant_t *rq, void *y);

/* linear: acc[o] = bias[o] + sum_k w[o][k] * x[k]; requantized (channel = o) or int32 out. in_t is GF_S8,
 * GF_U8 or GF_S32 (int32 codes, e.g. the sums of a global average pool; the planner proves |acc| < 2^31). */
void gf_linear(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
               int32_t k, int32_t o, const gf_requant_t *rq, void *y);
void gf_linear_ref(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
                   int32_t k, int32_t o, const gf_requant_t *rq, void *y);

/* linear_rows: gf_linear on each of `rows` rows of x ([rows][k] -> [rows][o]; y rows of o bytes, or o int32
 * without rq). Uses gf_linear: a build selecting GF_K_LINEAR_ROWS selects GF_K_LINEAR too. */
void gf_linear_rows(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias, int32_t rows, int32_t k,
                    int32_t o, const gf_requant_t *rq, void *y);

/* matmul: acc[g][i][j] = sum_k (a[g][i][k] - za) * (b[g][k][j] - zb) (int32), a [g][m][k], b [g][k][n];
 * requantized (per tensor, or channel = j) to bytes, or int32 out with rq == NULL. a_t, b_t: GF_S8 / GF_U8. */
void gf_matmul(const void *a, gf_dtype_t a_t, int32_t za, const void *b, gf_dtype_t b_t, int32_t zb, int32_t g,
               int32_t m, int32_t k, int32_t n, const gf_requant_t *rq, void *y);

/* SIMD kernels (gf_simd.c, GF_K_SIMD; primitives in gf_simd.h): the same integers as gf_conv2d (every
 * geometry), gf_linear, gf_linear_rows and gf_matmul with 4-way 8-bit dot products. `col` is a work
 * buffer: gf_simd_col_bytes(k) bytes for gf_matmul_simd; for gf_conv2d_simd col_bytes >= round4(K) bytes,
 * K = c/groups * kh * kw (gf_simd_conv_col_bytes(K): the size the GAP9 tiler plans); gf_conv2d_simd
 * computes the output pixels p0 .. p1-1 (flat index oy * ow + ox) of every channel (0, oh * ow: all).
 * Depthwise convolutions (groups == c == o, dx == 1, kernels of up to 16 words kh * ceil(kw/4)) for
 * which gf_simd_dw_col_bytes(s) is not 0 take the sliding-window kernel when col_bytes >=
 * gf_simd_dw_min_bytes(s) (rows of the padded input plane; gf_simd_dw_col_bytes: the size the
 * tiler plans, every row the output needs or as many as fit 2 KiB). */
uint32_t gf_simd_col_bytes(int32_t k);
uint32_t gf_simd_conv_col_bytes(int32_t k);
uint32_t gf_simd_dw_col_bytes(const gf_conv_shape_t *s);
uint32_t gf_simd_dw_min_bytes(const gf_conv_shape_t *s);
void gf_conv2d_simd(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias, const gf_conv_shape_t *s,
                    const gf_requant_t *rq, void *y, int32_t p0, int32_t p1, uint8_t *col, uint32_t col_bytes);
/* The share of core `core` of `ncores` computing one tile together (every output once over the
 * cores): some pixels of some channels, the split chosen from the geometry (gf_simd.c). */
void gf_conv2d_simd_core(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias,
                         const gf_conv_shape_t *s, const gf_requant_t *rq, void *y, int32_t core, int32_t ncores,
                         uint8_t *col, uint32_t col_bytes);
void gf_linear_simd(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias, int32_t k, int32_t o,
                    const gf_requant_t *rq, void *y);
/* A per-tensor requantization's constants (gf_requant_t.pre: one copy) into pre (GF_RQC_PRE_WORDS words, 8-byte
 * aligned): what a caller computes once for every call with the same parameters (the GAP9 FC steps: gf_fc_prepare,
 * before the first step). */
#define GF_RQC_PRE_WORDS 12
void gf_rqc_pre_fill(const gf_requant_t *rq, uint32_t *pre);
void gf_linear_rows_simd(const void *x, gf_dtype_t in_t, const int8_t *w, const int32_t *bias, int32_t rows,
                         int32_t k, int32_t o, const gf_requant_t *rq, void *y);
void gf_matmul_simd(const void *a, gf_dtype_t a_t, int32_t za, const void *b, gf_dtype_t b_t, int32_t zb, int32_t g,
                    int32_t m, int32_t k, int32_t n, const gf_requant_t *rq, void *y, uint8_t *col);

/* maxpool2d: max over the window, padded positions ignored; t is GF_S8, GF_U8 or GF_S32
 * (output has the input's type). Uses s->c, h, w, oh, ow, kh, kw, sy, sx, pt, pl. */
void gf_maxpool2d(const void *x, gf_dtype_t t, const gf_conv_shape_t *s, void *y);

/* avgpool2d: window sum (zero padding counted) then requantize (channel = c); rq == NULL: int32 sums. */
void gf_avgpool2d(const void *x, gf_dtype_t in_t, const gf_conv_shape_t *s, const gf_requant_t *rq, void *y);

/* trunc_avgpool2d: y = clamp(rne_shift(sum, shift)) (floor_rounding == 0) or clamp(sum >> shift)
 * (floor_rounding != 0); shift <= 0 multiplies by 2^-shift. Output bytes. */
void gf_trunc_avgpool2d(const void *x, gf_dtype_t in_t, const gf_conv_shape_t *s, int32_t shift,
                        int32_t floor_rounding, int32_t lo, int32_t hi, void *y);

/*
 * Element-wise kernels over n elements; for per-channel requantization the channel of element i
 * is (i / inner) % rq->channels (inner = number of elements per channel slice, e.g. H*W).
 *   gf_add:        two sources (rq->m holds 2 * channels mantissas, source-major); rq == NULL:
 *                  int32 sum written to y.
 *   gf_requantize: one source of type in_t (GF_S8, GF_U8 or GF_S32).
 *   gf_relu:       y = max(x, zp), type t (GF_S8, GF_U8 or GF_S32), y may equal x.
 */
void gf_add(const void *a, gf_dtype_t a_t, const void *b, gf_dtype_t b_t, int32_t n, int32_t inner,
            const gf_requant_t *rq, void *y);
void gf_requantize(const void *x, gf_dtype_t in_t, int32_t n, int32_t inner, const gf_requant_t *rq, void *y);
void gf_relu(const void *x, gf_dtype_t t, int32_t n, int32_t zp, void *y);

/*
 * gf_lut: table lookup of n elements, y[i] = table[c * entries + (x[i] - base)] with
 * c = (i / inner) % channels (channels == 1: one table). x is GF_S8 or GF_U8, every code in
 * [base, base + entries); the tables hold the output bytes. No arithmetic, no rounding.
 */
void gf_lut(const void *x, gf_dtype_t in_t, const uint8_t *table, int32_t entries, int32_t base, int32_t channels,
            int32_t n, int32_t inner, void *y);

/*
 * gf_thresholds: step function of n int32 accumulators, y[i] = codes_c[#{k : thr_c[k] <= x[i]}] with
 * c = (i / inner) % channels (channels == 1: one table). Table c starts at tables + c * table_bytes: n_thr
 * int32 thresholds sorted ascending, then n_thr + 1 output bytes. Integer compares only.
 */
void gf_thresholds(const void *x, const uint8_t *tables, int32_t n_thr, int32_t table_bytes, int32_t channels,
                   int32_t n, int32_t inner, void *y);

/*
 * gf_mul: element-wise product of two quantized tensors with broadcasting over a 4-D output shape
 * (leading 1s). acc = (a - za) * (b - zb) exactly (int32), then requantized (one source, channel of
 * output element j0 + i is (i / inner) % rq->channels) or written as int32 (rq == NULL).
 * Output elements j0 .. j0 + n - 1; the input element for output coordinate (c0..c3) is
 * a[sum c_d * sa[d] - a_org] (sa[d] = 0 on broadcast axes), likewise b. a_t, b_t: GF_S8 or GF_U8.
 */
typedef struct {
    int32_t shape[4];   /* output shape */
    int32_t sa[4];      /* element strides of a per output axis (0: broadcast) */
    int32_t sb[4];      /* element strides of b */
    int32_t za, zb;     /* zero points */
} gf_mul_shape_t;
void gf_mul(const void *a, gf_dtype_t a_t, const void *b, gf_dtype_t b_t, const gf_mul_shape_t *s, int32_t j0,
            int32_t n, int32_t a_org, int32_t b_org, int32_t inner, const gf_requant_t *rq, void *y);

/*
 * Row kernels: `rows` rows of n elements each (C order), one output byte per element; `p` is the
 * step's int64 parameter block (params.bin region <step>.p, layout in the kernel file).
 *   gf_softmax:   softmax over each row then the output quantizer, in_t GF_S8, GF_U8 or GF_S32
 *                 (integer contract "Softmax", gf_softmax.c); row0: the absolute index of the first row
 *                 (it selects the rows of a constant attention mask in p)
 *   gf_layernorm: LayerNorm over each row then the output quantizer, in_t GF_S8 or GF_U8
 *                 (integer contract "LayerNorm", gf_layernorm.c)
 *   gf_rmsnorm:   RMSNorm over each row then the output quantizer, in_t GF_S8 or GF_U8
 *                 (integer contract "RMSNorm", gf_layernorm.c)
 *   gf_groupnorm: GroupNorm, one group per row (row0: index of the first row, it selects the group's
 *                 affine parameters), then the output quantizer (integer contract "GroupNorm")
 *   gf_lincomb:   sums of products of a tensor's codes (gathered along the row) with constant tensors,
 *                 then the output quantizer (row0 as gf_groupnorm; integer contract "Products with
 *                 constant tensors", gf_lincomb.c)
 */
void gf_softmax(const void *x, gf_dtype_t in_t, int32_t row0, int32_t rows, int32_t n, const int64_t *p, void *y);
void gf_layernorm(const void *x, gf_dtype_t in_t, int32_t rows, int32_t n, const int64_t *p, void *y);
void gf_rmsnorm(const void *x, gf_dtype_t in_t, int32_t rows, int32_t n, const int64_t *p, void *y);
void gf_groupnorm(const void *x, gf_dtype_t in_t, int32_t row0, int32_t rows, int32_t n, const int64_t *p, void *y);
void gf_lincomb(const void *x, gf_dtype_t in_t, int32_t row0, int32_t rows, int32_t n, const int64_t *p, void *y);

/*
 * gf_scan: the selective state-space scan (Mamba) with a quantized state, then the output quantizer
 * (integer contract "Selective scan", gf_scan.c). delta, u: [L][D]; b, c: [L][N] (GF_S8 or GF_U8 each);
 * y: [L][D] output codes; p: the step's int64 parameter block. gf_scan_channels computes the
 * channels [d0, d1) only (each channel's recurrence is independent; its steps run in order).
 */
void gf_scan(const void *delta, gf_dtype_t d_t, const void *u, gf_dtype_t u_t, const void *b, gf_dtype_t b_t,
             const void *c, gf_dtype_t c_t, const int64_t *p, void *y);
void gf_scan_channels(const void *delta, gf_dtype_t d_t, const void *u, gf_dtype_t u_t, const void *b,
                      gf_dtype_t b_t, const void *c, gf_dtype_t c_t, const int64_t *p, int32_t d0, int32_t d1,
                      void *y);
/* gf_scan_block: channels [d0, d1) of a block of channels held apart (GAP9 L1 tile): delta, u, y rows of D codes
 * (the block's width), chan: the block's per-channel records [m3, m4, sh_y, o_y], T: its tables; p: the head */
void gf_scan_block(const void *delta, gf_dtype_t d_t, const void *u, gf_dtype_t u_t, const void *b, gf_dtype_t b_t,
                   const void *c, gf_dtype_t c_t, const int64_t *p, const int64_t *chan, const int16_t *T,
                   int32_t D, int32_t d0, int32_t d1, void *y);

/* concat: for each of `outer` blocks, copy block_bytes[i] bytes of input i in order. */
void gf_concat(const void *const *xs, const int32_t *block_bytes, int32_t n_inputs, int32_t outer, void *y);

/* permute of a tensor of up to 4 dims (shape padded with leading 1s): y[j] = x[perm(j)],
 * out dim d is in dim perm[d]; elem_size 1 or 4 bytes. */
void gf_permute(const void *x, int32_t elem_size, const int32_t shape[4], const int32_t perm[4], void *y);

/* slice along one axis of a tensor seen as [outer][n][inner]: y[o][i] = x[o][start + i * step] for
 * i < count (blocks of inner elements of elem_bytes 1 or 4). */
void gf_slice(const void *x, int32_t elem_bytes, int32_t outer, int32_t n, int32_t start, int32_t step,
              int32_t count, int32_t inner, void *y);

/* flip of one axis of a tensor seen as [outer][n][inner]: y[o][i] = x[o][n - 1 - i] (blocks of inner
 * elements of elem_bytes 1 or 4; torch.flip). */
void gf_flip(const void *x, int32_t elem_bytes, int32_t outer, int32_t n, int32_t inner, void *y);

/* nearest-neighbour upsampling by integer factors of a tensor seen as [outer][h][w]:
 * y[o][i][j] = x[o][i / fh][j / fw] (y is [outer][h * fh][w * fw]; elements of elem_bytes 1 or 4). */
void gf_upsample(const void *x, int32_t elem_bytes, int32_t outer, int32_t h, int32_t w, int32_t fh, int32_t fw,
                 void *y);

/* linear / bilinear upsampling by integer factors of int8 (is_signed) or uint8 codes with zero point zp, seen
 * as [outer][h][w], into int32 accumulators [outer][h * fh][w * fw]: the exact integer weighted sums of
 * atomic_ops/upsample.py upsample_linear (weights over 2 fh (factor 1: 1) per axis, or over h fh - 1 with
 * align_corners). */
void gf_upsample_linear(const void *x, int32_t is_signed, int32_t zp, int32_t outer, int32_t h, int32_t w,
                        int32_t fh, int32_t fw, int32_t align_corners, void *y);

/* pad along one axis of a byte tensor [outer][n][inner]: before and after blocks of the code `value`
 * around each x[o] (y is [outer][before + n + after][inner]). */
void gf_pad(const void *x, int32_t outer, int32_t n, int32_t before, int32_t after, int32_t inner, int32_t value,
            void *y);

/* padding of one axis of a tensor [outer][n][inner] with its own slices (torch's padding modes; elements of
 * elem_bytes 1 or 4): y[o][i] = x[o][src(i - before)] for i < before + n + after, src(j) = |j| mirrored at
 * both ends without repeating the edge (GF_PAD_REFLECT, before, after < n), j clamped to [0, n - 1]
 * (GF_PAD_REPLICATE), j mod n (GF_PAD_CIRCULAR, before, after <= n). */
typedef enum { GF_PAD_REFLECT = 0, GF_PAD_REPLICATE = 1, GF_PAD_CIRCULAR = 2 } gf_pad_mode_t;
void gf_edge_pad(const void *x, int32_t elem_bytes, int32_t outer, int32_t n, int32_t before, int32_t after,
                 int32_t inner, int32_t mode, void *y);

#ifdef __cplusplus
}
#endif

#endif /* GF_RUNTIME_H */
