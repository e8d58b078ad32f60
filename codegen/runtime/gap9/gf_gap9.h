/*
 * gapforge GAP9 layer executor: runs one fused step of the plan with its inputs, weights and
 * outputs in L2 or L3, moving tiles into the cluster's L1 with double-buffered DMA and
 * splitting each tile over the compute cores.
 *
 * Execution model (per cluster task: the consecutive cluster layers of the plan's gap9.tasks):
 *   FC:      once, before the first step, binds every cluster layer's run record and allocates the L2
 *            bounce area its largest layer needs for L3-resident operands (gf_net_bind); then per task
 *            sends one cluster task for all its layers (gf_run_task).
 *   core 8:  (cluster controller, runs the task) allocates one L1 block for the whole task (the control
 *            block and the buffers of its largest layer), forks the compute cores once (the most cores
 *            of its layers) for all its layers, then frees the block.
 *   core 0:  inside the fork, for each layer: copies the layer's control block into L1, then drives
 *            the DMA pipeline: loads tile t+1 (L3 -> L2 bounce -> L1, or L2 -> L1) while all cores
 *            compute tile t, stores tile t-1 (L1 -> L2 [-> L3]); then copies the layer's counters back.
 *   cores 0..n-1: compute their share of each tile (output channels, or elements for element-wise
 *            steps) with the portable kernels of gf_runtime.h; barriers separate "tile t loaded"
 *            from "compute" and "compute" from "tile t stored", and the layers from each other; the
 *            cores of the fork beyond a layer's own `cores` only take part in its barriers.
 * The tile geometry is derived from the tile sizes chosen by codegen/gap9/tiling.py, which also
 * predicts the bytes every layer moves; the executor counts them (gf_layer_stats_t).
 */
#ifndef GF_GAP9_H
#define GF_GAP9_H

#include <stdint.h>

#include "pmsis.h"
#ifdef GF_PULP_SDK /* the pulp-sdk build (the project's Makefile): GAP9 names mapped */
#include "gf_pulp_sdk.h"
#endif
#ifndef GF_TABLE /* where network.c's descriptor tables go: .rodata, but for the pulp-sdk build (gf_pulp_sdk.h) */
#define GF_TABLE
#endif
#include "gf_runtime.h"

#define GF_MEM_L2 0
#define GF_MEM_L3 1

enum { GF_TILING_CONV = 0, GF_TILING_LINEAR = 1, GF_TILING_ELTWISE = 2, GF_TILING_ROWS = 3, GF_TILING_GEMM = 4, GF_TILING_SCAN = 5 };

/* Test-only fault injection (codegen --inject-fault): each bit removes one safety step. */
#define GF_FAULT_NO_BARRIER 1u  /* skip the barrier between "tile loaded" and "compute" */
#define GF_FAULT_NO_DMA_WAIT 2u /* skip waiting for the input DMA of each tile */
/* (--inject-fault deep-call compiles gf_tiled.c with -DGF_FAULT_DEEP_CALL=<bytes> in the emulation
 * build only: core 0 makes a call chain that deep before its first tile.) */

/* Where an operand lives: an L2 pointer or an L3 address (uint32_t, not a pointer). */
typedef struct {
    int32_t level;
    uint8_t *l2;
    uint32_t l3;
} gf_loc_t;

typedef struct gf_layer gf_layer_t;

/*
 * What one core computes of one tile: its operands in L1 and its share of the geometry, filled by
 * the code of the layer's tiling kind (gf_tiled.c) and passed to the layer's tile kernel.
 */
typedef struct {
    const gf_layer_t *L;
    const void *x, *x2;       /* input tile (x2: second input of two-input steps) */
    const int8_t *w;          /* int8 weights of the core's output channels (unpacked), the lookup tables of
                               * its channels (eltwise tiling, lut), or NULL */
    const int32_t *bias;      /* biases of the core's output channels, or NULL */
    const gf_requant_t *rq;   /* requantization of the core's channels, or NULL */
    gf_conv_shape_t s;        /* conv tiling: geometry of the core's share of the tile */
    int32_t n, inner;         /* eltwise tiling: elements, elements per channel slice;
                                 rows tiling: rows of the core's share, elements per row */
    int32_t k, o;             /* linear tiling: inputs, outputs of the core's share; scan tiling: k = the tile's
                                 channels (row width of x, x2, y), e0 / n = the core's first channel / count */
    const int64_t *p;         /* rows tiling: the step's parameter block in L1 (resident) */
    void *y;                  /* output of the core's share in L1 */
    int32_t e0;               /* eltwise tiling: flat output index of the core's first element;
                                 rows tiling: index of the core's first row in the step */
    int32_t rows;             /* gemm tiling: rows of the core's share ([rows][k] in x, [rows][o] in y) */
    const void *x3;           /* scan tiling: the third input (B: resident, whole) */
    union {                   /* one word for two tiling kinds (tile_loop's frame sets the compute-core stack) */
        const void *x4;       /* scan tiling: the fourth input (C: resident, whole) */
        uint8_t *col;         /* SIMD kernels (conv, gemm tiling): the core's work buffer in L1, or NULL; the
                                 SIMD conv computes every channel of the tile for core e0's share of
                                 its output pixels among n cores (flat, row-major) */
    } u;
} gf_tile_args_t;

/* A tile kernel: one per device kernel of gf_runtime.h that runs on the cluster (gf_tile_kernels.c);
 * the code generator names it in the layer descriptor (gf_tile_<kernel>). */
typedef void (*gf_tile_fn)(const gf_tile_args_t *a);

void gf_tile_conv2d(const gf_tile_args_t *a);
void gf_tile_conv2d_3x3(const gf_tile_args_t *a);
void gf_tile_conv2d_1x1(const gf_tile_args_t *a);
void gf_tile_dwconv2d(const gf_tile_args_t *a);
void gf_tile_maxpool2d(const gf_tile_args_t *a);
void gf_tile_avgpool2d(const gf_tile_args_t *a);
void gf_tile_trunc_avgpool2d(const gf_tile_args_t *a);
void gf_tile_linear(const gf_tile_args_t *a);
void gf_tile_add(const gf_tile_args_t *a);
void gf_tile_requantize(const gf_tile_args_t *a);
void gf_tile_relu(const gf_tile_args_t *a);
void gf_tile_lut(const gf_tile_args_t *a);
void gf_tile_thresholds(const gf_tile_args_t *a);
void gf_tile_mul(const gf_tile_args_t *a);
void gf_tile_softmax(const gf_tile_args_t *a);
void gf_tile_layernorm(const gf_tile_args_t *a);
void gf_tile_rmsnorm(const gf_tile_args_t *a);
void gf_tile_groupnorm(const gf_tile_args_t *a);
void gf_tile_lincomb(const gf_tile_args_t *a);
void gf_tile_matmul(const gf_tile_args_t *a);
void gf_tile_linear_rows(const gf_tile_args_t *a);
void gf_tile_scan(const gf_tile_args_t *a);

struct gf_layer {
    const char *name;
    int32_t tiling;                       /* GF_TILING_* */
    gf_tile_fn compute;                   /* the op's tile kernel */
    int32_t coupled;                      /* conv tiling: input channels follow output channels */
    gf_conv_shape_t s;                    /* whole-layer geometry (conv-like steps) */
    int32_t in_t, in2_t, out_t;           /* gf_dtype_t of the operands */
    int32_t w_off, b_off, m_off, sh_off, o_off; /* regions in the parameter blob, -1 = none */
    int32_t rq_sources, rq_channels, zp, lo, hi; /* rq_sources == 0: no requantization (zp: output zero point) */
    int32_t shift, floor_rounding;        /* trunc_avgpool2d */
    int32_t k, o;                         /* linear: inputs, outputs; scan: N (state), D (channels) */
    int32_t n, inner, chans;              /* element-wise: elements, elements per channel, channels;
                                             rows: elements, elements per row, rows */
    int32_t tile_co, tile_oh, tile_ow;    /* conv / linear output tile; gemm: output columns per tile */
    int32_t tile_planes, tile_elems;      /* element-wise tile; rows: rows and elements per tile */
    uint32_t buf_in, buf_in2, buf_w, buf_p, buf_out; /* bytes of one L1 buffer of each operand */
    uint32_t buf_wp;                      /* packed weights staging buffer (0: weights not packed) */
    int32_t w_bits, w_row_bytes;          /* weight container bits (8, 4, 2) and bytes per output channel */
    int32_t w_resident, p_resident, in_resident;     /* loaded once per layer, single buffer */
    int32_t cores;                        /* compute cores to fork */
    int32_t single_buffer;                /* several tiles but one buffer each: no overlap of DMA and compute */
    uint32_t fault;
    int32_t t_off, t_bytes, t_chans;      /* lookup tables (lut): region, bytes per table, tables (1: one for all) */
    int32_t in2_resident;                 /* eltwise: the second input is loaded once, whole (broadcast) */
    gf_mul_shape_t mp;                    /* mul: broadcast geometry and zero points */
    int32_t aux_off;                      /* rows: the step's parameter block in the blob (-1 = none) */
    uint32_t aux_bytes;                   /* its size (loaded once into the L1 parameter buffer) */
    int32_t tile_rows;                    /* gemm tiling: output rows per tile (tile_co: columns); chans groups of n rows, k inputs, o outputs */
    int32_t zp_a, zp_b;                   /* gemm tiling (matmul): zero points of the two inputs */
    int32_t outer;                        /* element-wise: the output is [outer][chans][inner] */
    int32_t in3_t, in4_t;                 /* scan: gf_dtype_t of the third and fourth inputs */
    uint32_t buf_in3, buf_in4;            /* scan: their L1 buffers (resident, whole) */
    uint32_t buf_col;                     /* SIMD kernels: bytes of each compute core's work buffer (0: none) */
    int32_t pool_kh, pool_kw;             /* conv tiling: a max pool fused behind the conv (codegen/gap9/fusion.py:
                                           * window = stride, no padding, whole windows per tile), 0: none; the
                                           * conv tile goes to GF_OP_MID, the cores pool it into GF_OP_OUT, the
                                           * pooled tile is stored (the output is [o][s.oh / pool_kh][s.ow / pool_kw]) */
    uint32_t buf_mid;                     /* its conv tile: bytes of the one GF_OP_MID buffer */
    int32_t in_plane;                     /* conv tiling: the tiles cover whole output planes and load whole input
                                           * planes [cin][s.h][s.w], not the crop their windows read (the last
                                           * rows / columns no window reaches): one contiguous transfer; the kernel
                                           * reads the planes with their own strides (codegen/gap9/tiling.py
                                           * TilePlan.in_plane) */
};

/* Operand locations of one layer, bound at run time (bases are allocated by the FC). */
typedef struct {
    gf_loc_t in, in2, out, params;
    gf_loc_t in3, in4; /* scan: B and C */
} gf_operands_t;

/* Compute cores a layer may fork (the run record keeps one counter pair per core). */
#define GF_CLUSTER_CORES 8

typedef struct {
    uint32_t tiles, dma_cmds, l1_bytes;
    uint64_t l3_to_l2, l2_to_l1, l1_to_l2, l2_to_l3;
    /* the cluster's own pi_perf counters (PI_PERF_CYCLES, PI_PERF_INSTR): the busiest of the layer's cores,
     * each read by the core around its share of the layer's tile loop (cycles_core: the core with the most
     * cycles, instr_core: with the most instructions), and the layer's bookkeeping (cc_*): core 0's copy of
     * the layer's control block into L1 and of its counters back, plus the controller's work outside the
     * task's one fork, on the task's first layer (L1 allocation) and last (free); bk_*: core 0's part alone */
    uint32_t cycles_max, instr_max, cycles_core, instr_core;
    uint32_t cc_cycles, cc_instr, bk_cycles, bk_instr;
} gf_layer_stats_t;

/* ---- the executor's run record of one layer (gf_tiled.c): bound once by the FC before the first task
 * (gf_net_bind), copied into the L1 control block by core 0 before the layer runs ---- */
#define GF_MAX_CMDS 8 /* DMA commands in flight per queue at most */

/* GF_OP_W holds the weights the kernels read (int8); sub-byte packed weights (codegen/packing.py)
 * are transferred into GF_OP_WP and unpacked into GF_OP_W in L1. */
enum { GF_OP_IN = 0, GF_OP_IN2, GF_OP_W, GF_OP_P, GF_OP_OUT, GF_OP_WP, GF_OP_IN3, GF_OP_IN4, GF_OP_COL, GF_OP_MID, GF_OP_N };

typedef struct {
    pi_cl_dma_cmd_t cmd[GF_MAX_CMDS];
    int n;
} gf_queue_t;

typedef struct {
    int32_t co0, con, oy0, ohn, ox0, own; /* output box */
    int32_t ci0, cin, iy0, ihn, ix0, iwn; /* input box */
    int32_t pt, pl, pb, pr;               /* padding of this tile */
    int32_t e0, en, c0, cn;               /* element-wise: elements and channels of the tile */
} gf_tile_t;

/* ---- parameter buffer layout: [bias x cap][m x sources x cap_rq][sh x cap_rq][o x cap_rq] ---- */
typedef struct {
    uint32_t bias, m, sh, o; /* offsets in the L1 parameter buffer */
    uint32_t table;          /* lookup tables (after the requantization part, 8-byte aligned) */
    int32_t cap_rq;          /* channel stride of m/sh/o in L1 */
} gf_playout_t;

/* A one-tile layer whose operands are all in L2 (int8 weights): its DMA commands, recorded once when the FC binds its
 * run record (bind_layer: the calls core 0 makes for the layer, each command's L1 end as an offset in the layer's
 * buffers), replayed by core 0 with one small loop instead of the per-operand load and store code (gf_tiled.c
 * fast_issue: fewer lines of code fetched cold per layer). At most GF_FAST_CMDS, every one 1-D. */
#define GF_FAST_CMDS 8
typedef struct {
    uint8_t *ext;  /* the L2 end */
    uint32_t off;  /* the L1 end: offset from the layer's first buffer */
    uint32_t size; /* bytes (below 64 KiB: dma_1d's chunks) */
} gf_fast_cmd_t;

typedef struct {
    const gf_layer_t *L;
    const gf_operands_t *ops;
    struct pi_device *ram;
    gf_layer_stats_t *st;
    uint8_t *l1[2][GF_OP_N];
    uint8_t *bounce[2][GF_OP_N];
    uint32_t bytes[GF_OP_N]; /* one buffer of each operand */
    int nbuf[GF_OP_N];       /* 0 (unused), 1 (single / resident) or 2 (double buffered) */
    int32_t ntiles;
    /* each forked core's pi_perf counters around its share of the layer's tile loop (layer_tiles), in the L1 copy
     * (core 0 keeps the busiest core's in the layer's stats: layer_out) */
    uint32_t core_cycles[GF_CLUSTER_CORES], core_instr[GF_CLUSTER_CORES];
    /* core 0's DMA queues (2 each: double buffering): the layer's, in its control block (empty at the start,
     * drained at the end of its tile loop) */
    gf_queue_t *load_q, *store_q;
    uint32_t l3_ops; /* bit k: operand k is in L3 (bind_layer) */
    uint32_t l1_bytes; /* l1_total(): every L1 buffer of the layer (bind_layer; the controller reads one word) */
    int32_t cores;     /* the layer's compute cores (bind_layer: the controller forks the most of the task's) */
    /* the geometry of the tile in each buffer: computed once by core 0 when it issues the tile's loads
     * (load_tile), read by every core for its share and by core 0 for the store (the control block's slots) */
    gf_tile_t *tiles;
    /* bound once with the record (bind_layer): the parameter buffer's layout, tile 0's geometry in slot 0 (the L1
     * copy's slots: `tiles`) */
    gf_playout_t pl;
    gf_tile_t slot[2];
    /* the recorded commands (gf_fast_cmd_t above; fast_loads 0: the generic path): fast_loads loads (tile 0 and the
     * resident operands, on load queue 0) then fast_stores stores (store queue 0), and their bytes; recording is set
     * only while bind_layer records them (dma() notes each command instead of issuing it) */
    int32_t fast_loads, fast_stores, recording;
    uint8_t *l1_base; /* the layer's first buffer (layer_in): the recorded offsets' origin */
    /* a per-tensor requantization of one source (gf_rq_in_record): its constants, bound once by the FC from the
     * parameters in L2 or L3 (bind_rq), read by the kernels in the record's L1 copy (tile_requant: m and o in that
     * gf_rqc_t, sh in rq_sh[0], and the gf_rqc_t itself as the SIMD kernels' precomputed constants,
     * gf_requant_t.pre); never in the L1 parameter buffer, never moved per tile. */
    uint8_t rq_sh[4];
    uint64_t pre_rqc[6]; /* a gf_rqc_t, 8-byte aligned as uint64_t (its int64 o read in place: tile_requant) */
    uint32_t fast_in_bytes, fast_out_bytes;
    gf_fast_cmd_t fast[GF_FAST_CMDS];
} gf_run_t;

/* One cluster layer's control data in L2 (network.c gf_net_recs: the descriptor generated in place, the operand
 * locations set by the FC once the arenas are allocated, the run record bound once before the first step:
 * gf_net_bind), contiguous so that core 0 brings the whole block into the task's L1 control block with one DMA
 * command before the layer (gf_tiled.c layer_in; the run record's L and ops point into the block: into this L2 copy
 * here, into the L1 copy there). */
typedef struct {
    gf_run_t run;
    gf_layer_t layer;
    gf_operands_t ops;
} gf_net_rec_t;

/* A layer whose requantization is per tensor with one source (conv, linear, matmul, requantize, ...): its constants
 * (m, sh, o) live in its run record (gf_run_t.pre_rqc, rq_sh), bound once, not in the L1 parameter buffer
 * (codegen/gap9/tiling.py ParamSpec.in_record mirrors this). */
static inline int gf_rq_in_record(const gf_layer_t *L)
{
    return L->rq_sources == 1 && L->rq_channels == 1;
}

/* gf_run_task results */
#define GF_ERR_L1_ALLOC (-1) /* the task's L1 block could not be allocated (reported on stdout) */
#define GF_ERR_CLUSTER (-2)  /* pi_cluster_send_task_to_cl failed */
#define GF_ERR_TASK (-3)     /* a task of no layer or of more than GF_TASK_MAX_LAYERS */

/* Zero a struct of whole words. A word loop, not memset: pulp-sdk's minimal libc clears byte by byte
 * (gvsoc siracusa, docs/gap9.md); the empty asm keeps GCC from turning the loop back into a memset call. */
static inline void gf_clear_words(void *p, uint32_t bytes)
{
    uint32_t *w = (uint32_t *)p;
    for (uint32_t i = 0; i < bytes / 4u; i++) {
        w[i] = 0u;
        __asm__ volatile("" ::: "memory");
    }
}

/* Copy a struct of whole words (the controller's copy of a layer's control block into L1, and back). */
static inline void gf_copy_words(void *dst, const void *src, uint32_t bytes)
{
    uint32_t *d = (uint32_t *)dst;
    const uint32_t *s = (const uint32_t *)src;
    for (uint32_t i = 0; i < bytes / 4u; i++) {
        d[i] = s[i];
        __asm__ volatile("" ::: "memory");
    }
}

/* L1 bytes of the task's control block (the running layer's descriptor, run record, operands and counters, copied
 * into L1 by core 0 before each layer so that the cores read them there, not in L2, and the task's fields),
 * allocated at the start of the task's L1 block and reserved beside the stacks (codegen/gap9/hw.py l1_control: the
 * same figure). */
#define GF_L1_CONTROL_BYTES 1536u

/* Cluster layers one task runs at most (codegen/gap9/program.py TASK_MAX_LAYERS plans the tasks with the same
 * bound). */
#define GF_TASK_MAX_LAYERS 16

/* The network's cluster layers, bound once on the FC before the first task (their operands are fixed once the
 * arenas are allocated): gf_net_bind binds each layer's run record (`recs[k]`, static, in L2, its descriptor and
 * operands in place; its counters go to `stats[k]`; the cluster only allocates, forks and frees) and returns the L2
 * bytes of the bounce area for L3 operands: the largest layer's (one layer runs at a time); gf_net_bounce gives the
 * records that area (allocated by the caller, NULL if 0 bytes), kept for the whole program. */
uint32_t gf_net_bind(gf_net_rec_t *recs, gf_layer_stats_t *stats, int n, struct pi_device *ram);
void gf_net_bounce(gf_net_rec_t *recs, int n, uint8_t *bounce);

/* A cluster task of the `n` consecutive bound layers from `recs` (at most GF_TASK_MAX_LAYERS): the cluster controller
 * allocates one L1 block (GF_L1_CONTROL_BYTES + the largest layer's buffers) and forks the compute cores once; the
 * cores run the layers in order, and each layer's stats are filled (the busiest core's counters included).
 * `core_stack_bytes`: each compute core's stack (pi_cluster_task_stacks). Returns 0 or the GF_ERR_* of the task
 * (GF_ERR_L1_ALLOC: the task's block could not be allocated, no layer ran, *failed = the index of its largest
 * layer). */
int gf_run_task(struct pi_device *cluster, gf_net_rec_t *recs, int n, int core_stack_bytes, int *failed);

/* Number of tiles of a layer. */
int32_t gf_layer_tiles(const gf_layer_t *L);

#endif /* GF_GAP9_H */
