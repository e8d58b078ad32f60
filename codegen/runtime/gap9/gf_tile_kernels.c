/*
 * GAP9 tile kernels: the portable kernels of gf_runtime.h called on one core's share of an L1 tile.
 *
 * gf_tiled.c fills a gf_tile_args_t for the layer's tiling kind (conv: a box of output channels,
 * rows and columns with its input box and padding; linear: a run of output features; eltwise: a
 * run of elements; rows: a run of whole rows with the step's parameter block; gemm: a run of output rows
 * of one group, with every output column or a block of them; scan: a run of the tile's channels) and calls the layer's tile kernel, which
 * the code generator names after the step's device kernel (gf_<kernel> -> gf_tile_<kernel>). A new
 * operator that runs on the cluster adds its adapter here and its prototype in gf_gap9.h; the executor
 * does not change.
 *
 * Each adapter is compiled with its kernel's selection macro (GF_K_<KERNEL>, gf_runtime.h), so a
 * project links the adapters, and through them the kernels, its plan uses and no others.
 *
 * GF_SIMD_KERNELS (plan.json build.defines of a project generated with --kernels simd; with
 * GF_K_SIMD): the convolutions, linear, linear_rows and matmul run the SIMD kernels of gf_simd.c
 * instead, the same integers; conv and matmul use the core's work buffer a->u.col, planned in L1
 * (a convolution the tiler gave none, e.g. a depthwise one with column dilation, keeps its portable
 * kernel; depthwise ones with a buffer run the sliding-window kernel on the core's channels).
 */
#include "gf_gap9.h"

#define IN_T(a) ((gf_dtype_t)(a)->L->in_t)

#if defined(GF_SIMD_KERNELS) && !defined(GF_K_SIMD)
#error "GF_SIMD_KERNELS needs GF_K_SIMD (the SIMD kernels of gf_simd.c)"
#endif

#ifdef GF_SIMD_KERNELS /* the layers the tiler gave a work buffer */
#define GF_TILE_CONV(kernel)                                                                       \
    do {                                                                                           \
        if (a->u.col) { /* e0, n: this core and the cores sharing the tile's pixels; depthwise     \
                           (coupled): the executor split the channels, every pixel */               \
            if (a->L->coupled)                                                                     \
                gf_conv2d_simd(a->x, IN_T(a), a->w, a->bias, &a->s, a->rq, a->y, 0, a->s.oh * a->s.ow, \
                               a->u.col, a->L->buf_col);                                           \
            else /* the pixels, and for small maps the channels too (gf_conv2d_simd_core) */       \
                gf_conv2d_simd_core(a->x, IN_T(a), a->w, a->bias, &a->s, a->rq, a->y, a->e0, a->n, \
                                    a->u.col, a->L->buf_col);                                      \
        }                                                                                          \
        else                                                                                       \
            kernel(a->x, IN_T(a), a->w, a->bias, &a->s, a->rq, a->y);                              \
    } while (0)
#else
#define GF_TILE_CONV(kernel) kernel(a->x, IN_T(a), a->w, a->bias, &a->s, a->rq, a->y)
#endif

#ifdef GF_K_CONV2D
void gf_tile_conv2d(const gf_tile_args_t *a) { GF_TILE_CONV(gf_conv2d); }
#endif

#ifdef GF_K_CONV2D_3X3
void gf_tile_conv2d_3x3(const gf_tile_args_t *a) { GF_TILE_CONV(gf_conv2d_3x3); }
#endif

#ifdef GF_K_CONV2D_1X1
void gf_tile_conv2d_1x1(const gf_tile_args_t *a) { GF_TILE_CONV(gf_conv2d_1x1); }
#endif

#ifdef GF_K_DWCONV2D
void gf_tile_dwconv2d(const gf_tile_args_t *a) { GF_TILE_CONV(gf_dwconv2d); }
#endif

#ifdef GF_K_MAXPOOL2D
void gf_tile_maxpool2d(const gf_tile_args_t *a) { gf_maxpool2d(a->x, IN_T(a), &a->s, a->y); }
#endif

#ifdef GF_K_AVGPOOL2D
void gf_tile_avgpool2d(const gf_tile_args_t *a) { gf_avgpool2d(a->x, IN_T(a), &a->s, a->rq, a->y); }
#endif

#ifdef GF_K_TRUNC_AVGPOOL2D
void gf_tile_trunc_avgpool2d(const gf_tile_args_t *a)
{
    const gf_layer_t *L = a->L;
    gf_trunc_avgpool2d(a->x, IN_T(a), &a->s, L->shift, L->floor_rounding, L->lo, L->hi, a->y);
}
#endif

#ifdef GF_K_LINEAR
void gf_tile_linear(const gf_tile_args_t *a)
{
#ifdef GF_SIMD_KERNELS
    gf_linear_simd(a->x, IN_T(a), a->w, a->bias, a->k, a->o, a->rq, a->y);
#else
    gf_linear(a->x, IN_T(a), a->w, a->bias, a->k, a->o, a->rq, a->y);
#endif
}
#endif

#ifdef GF_K_ADD
void gf_tile_add(const gf_tile_args_t *a)
{
    gf_add(a->x, IN_T(a), a->x2, (gf_dtype_t)a->L->in2_t, a->n, a->inner, a->rq, a->y);
}
#endif

#ifdef GF_K_REQUANTIZE
void gf_tile_requantize(const gf_tile_args_t *a) { gf_requantize(a->x, IN_T(a), a->n, a->inner, a->rq, a->y); }
#endif

#ifdef GF_K_RELU
void gf_tile_relu(const gf_tile_args_t *a) { gf_relu(a->x, IN_T(a), a->n, a->L->zp, a->y); }
#endif

#if defined(GF_K_LUT) || defined(GF_K_THRESHOLDS)
/* The per-channel tables a->w holds for the core's share (lut, thresholds): those of its planes when the tables
 * are per channel and the tile holds whole planes (a->n / inner of them, at most every channel: the kernels'
 * channel index wraps at that count), else the one table of the tile. */
static inline int32_t tile_tables(const gf_tile_args_t *a)
{
    const gf_layer_t *L = a->L;
    int32_t planes = a->n / L->inner;
    return L->t_chans > 1 && L->chans > 1 && L->tile_planes > 1 ? (planes < L->chans ? planes : L->chans) : 1;
}
#endif

#ifdef GF_K_LUT
void gf_tile_lut(const gf_tile_args_t *a)
{
    /* tables of 2^b entries; entry 0 is code -2^(b-1) for signed inputs, 0 for unsigned ones */
    int32_t entries = a->L->t_bytes;
    int32_t base = IN_T(a) == GF_S8 ? -(entries / 2) : 0;
    gf_lut(a->x, IN_T(a), (const uint8_t *)a->w, entries, base, tile_tables(a), a->n, a->inner, a->y);
}
#endif

#ifdef GF_K_THRESHOLDS
void gf_tile_thresholds(const gf_tile_args_t *a)
{
    /* t_bytes: bytes of one channel's table, n_thr int32 thresholds then n_thr + 1 codes, n_thr + 1 a multiple of 4 */
    const gf_layer_t *L = a->L;
    int32_t n_thr = (L->t_bytes - 1) / 5;
    gf_thresholds(a->x, (const uint8_t *)a->w, n_thr, L->t_bytes, tile_tables(a), a->n, a->inner, a->y);
}
#endif

#ifdef GF_K_MUL
void gf_tile_mul(const gf_tile_args_t *a)
{
    /* an operand resident whole (broadcast) is indexed from 0, a tiled one from the core's first element */
    const gf_layer_t *L = a->L;
    gf_mul(a->x, IN_T(a), a->x2, (gf_dtype_t)L->in2_t, &L->mp, a->e0, a->n, L->in_resident ? 0 : a->e0,
           L->in2_resident ? 0 : a->e0, a->inner, a->rq, a->y);
}
#endif

#ifdef GF_K_SOFTMAX
/* e0: the absolute index of the core's first row (it selects the rows of an attention mask) */
void gf_tile_softmax(const gf_tile_args_t *a) { gf_softmax(a->x, IN_T(a), a->e0, a->n, a->inner, a->p, a->y); }
#endif

#ifdef GF_K_LAYERNORM
void gf_tile_layernorm(const gf_tile_args_t *a) { gf_layernorm(a->x, IN_T(a), a->n, a->inner, a->p, a->y); }
#endif
#ifdef GF_K_RMSNORM
void gf_tile_rmsnorm(const gf_tile_args_t *a) { gf_rmsnorm(a->x, IN_T(a), a->n, a->inner, a->p, a->y); }
#endif
#ifdef GF_K_GROUPNORM /* e0: the absolute index of the core's first row (it selects the groups) */
void gf_tile_groupnorm(const gf_tile_args_t *a) { gf_groupnorm(a->x, IN_T(a), a->e0, a->n, a->inner, a->p, a->y); }
#endif
#ifdef GF_K_LINCOMB /* e0: the absolute index of the core's first row (it selects the coefficient rows) */
void gf_tile_lincomb(const gf_tile_args_t *a) { gf_lincomb(a->x, IN_T(a), a->e0, a->n, a->inner, a->p, a->y); }
#endif

#ifdef GF_K_MATMUL
void gf_tile_matmul(const gf_tile_args_t *a)
{
#ifdef GF_SIMD_KERNELS
    gf_matmul_simd(a->x, IN_T(a), a->L->zp_a, a->x2, (gf_dtype_t)a->L->in2_t, a->L->zp_b, 1, a->rows, a->k, a->o, a->rq,
                   a->y, a->u.col);
#else
    gf_matmul(a->x, IN_T(a), a->L->zp_a, a->x2, (gf_dtype_t)a->L->in2_t, a->L->zp_b, 1, a->rows, a->k, a->o, a->rq, a->y);
#endif
}
#endif

#ifdef GF_K_SCAN
void gf_tile_scan(const gf_tile_args_t *a)
{
    /* L1 parameter buffer of a tile of up to tile_co channels: [head: 24 words][4 words per channel][tables] */
    const gf_layer_t *L = a->L;
    const int64_t *chan = a->p + 24;
    const int16_t *T = (const int16_t *)(const void *)(chan + 4 * L->tile_co);
    gf_scan_block(a->x, IN_T(a), a->x2, (gf_dtype_t)L->in2_t, a->x3, (gf_dtype_t)L->in3_t, a->u.x4, (gf_dtype_t)L->in4_t,
                  a->p, chan, T, a->k, a->e0, a->e0 + a->n, a->y);
}
#endif

#ifdef GF_K_LINEAR_ROWS
void gf_tile_linear_rows(const gf_tile_args_t *a)
{
#ifdef GF_SIMD_KERNELS
    gf_linear_rows_simd(a->x, IN_T(a), a->w, a->bias, a->rows, a->k, a->o, a->rq, a->y);
#else
    gf_linear_rows(a->x, IN_T(a), a->w, a->bias, a->rows, a->k, a->o, a->rq, a->y);
#endif
}
#endif
