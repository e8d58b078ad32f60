/*
 * GAP9 tile kernels: the portable kernels of gf_runtime.h called on one core's share of an L1 tile.
 *
 * gf_tiled.c fills a gf_tile_args_t for the layer's tiling kind (conv: a box of output channels,
 * rows and columns with its input box and padding; linear: a run of output features; eltwise: a
 * run of elements; rows: a run of output rows of one group) and calls the layer's tile kernel, which the code generator names after the
 * step's device kernel (gf_<kernel> -> gf_tile_<kernel>). A new operator that runs on the cluster
 * adds its adapter here and its prototype in gf_gap9.h; the executor does not change.
 *
 * Each adapter is compiled with its kernel's selection macro (GF_K_<KERNEL>, gf_runtime.h), so a
 * project links the adapters, and through them the kernels, its plan uses and no others.
 */
#include "gf_gap9.h"

#define IN_T(a) ((gf_dtype_t)(a)->L->in_t)

#ifdef GF_K_CONV2D
void gf_tile_conv2d(const gf_tile_args_t *a) { gf_conv2d(a->x, IN_T(a), a->w, a->bias, &a->s, a->rq, a->y); }
#endif

#ifdef GF_K_CONV2D_3X3
void gf_tile_conv2d_3x3(const gf_tile_args_t *a) { gf_conv2d_3x3(a->x, IN_T(a), a->w, a->bias, &a->s, a->rq, a->y); }
#endif

#ifdef GF_K_CONV2D_1X1
void gf_tile_conv2d_1x1(const gf_tile_args_t *a) { gf_conv2d_1x1(a->x, IN_T(a), a->w, a->bias, &a->s, a->rq, a->y); }
#endif

#ifdef GF_K_DWCONV2D
void gf_tile_dwconv2d(const gf_tile_args_t *a) { gf_dwconv2d(a->x, IN_T(a), a->w, a->bias, &a->s, a->rq, a->y); }
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
void gf_tile_linear(const gf_tile_args_t *a) { gf_linear(a->x, IN_T(a), a->w, a->bias, a->k, a->o, a->rq, a->y); }
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

#ifdef GF_K_MATMUL
void gf_tile_matmul(const gf_tile_args_t *a)
{
    gf_matmul(a->x, IN_T(a), a->zp_a, a->x2, (gf_dtype_t)a->L->in2_t, a->zp_b, 1, a->rows, a->k, a->o, a->rq, a->y);
}
#endif

#ifdef GF_K_LINEAR_ROWS
void gf_tile_linear_rows(const gf_tile_args_t *a)
{
    gf_linear_rows(a->x, IN_T(a), a->w, a->bias, a->rows, a->k, a->o, a->rq, a->y);
}
#endif
