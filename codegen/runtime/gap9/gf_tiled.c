/*
 * gapforge GAP9 layer executor (see gf_gap9.h for the execution model).
 *
 * Everything here is target-independent C over the PMSIS API: it is compiled unchanged by the
 * GAP9 SDK and, for the gap9-emu target, against gapforge's host emulation of PMSIS
 * (codegen/runtime/gap9/emu), which enforces the memory budgets, completes DMA only at the wait
 * and runs the cores as deterministic coroutines.
 *
 * DMA rules (docs/gap9.md): every command moves less than 64 KiB, 2-D lines and strides stay
 * below 64 KiB, at most GF_MAX_CMDS commands are in flight per queue (the queue is drained
 * before issuing more), every command is waited by the core that issued it (core 0).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "gf_gap9.h"
#include "gf_internal.h" /* gf_rqc_t, gf_rqc_init: the precomputed per-tensor constants */
#ifdef GF_GAP9_EMU
#include "gf_emu.h"
#endif

#define GF_DMA_MAX 65535u
#define GF_ALIGN(n) (((n) + 7u) & ~7u)

static int32_t ceil_div(int32_t a, int32_t b) { return (a + b - 1) / b; }
/* ceil_div(n, per) for n, per >= 1, without the division when one tile holds all n */
static int32_t tile_count(int32_t n, int32_t per) { return n <= per ? 1 : ceil_div(n, per); }
static int32_t min32(int32_t a, int32_t b) { return a < b ? a : b; }

static int32_t elem_bytes(int32_t t) { return t == GF_S32 ? 4 : 1; }

int32_t gf_layer_tiles(const gf_layer_t *L)
{
    if (L->tiling == GF_TILING_CONV)
        return ceil_div(L->s.o, L->tile_co) * ceil_div(L->s.oh, L->tile_oh) * ceil_div(L->s.ow, L->tile_ow);
    if (L->tiling == GF_TILING_LINEAR || L->tiling == GF_TILING_SCAN)
        return ceil_div(L->o, L->tile_co);
    if (L->tiling == GF_TILING_ROWS)
        return ceil_div(L->chans, L->tile_planes);
    if (L->tiling == GF_TILING_GEMM)
        return L->chans * ceil_div(L->n, L->tile_rows) * ceil_div(L->o, L->tile_co);
    /* element-wise over [outer][chans][inner] (codegen/gap9/tiling.py tile_eltwise) */
    if (L->chans > 1 && L->tile_planes >= L->chans) /* whole [chans][inner] blocks, tile_planes / chans of them */
        return ceil_div(L->outer, L->tile_planes / L->chans);
    if (L->tile_planes > 1) /* blocks of channels of one outer index */
        return L->outer * ceil_div(L->chans, L->tile_planes);
    return L->outer * L->chans * ceil_div(L->inner, L->tile_elems); /* runs inside one channel slice */
}

/* Input rows [i0, i0 + n) needed by output rows [o0, o0 + on) and the tile's padding (as
 * codegen/gap9/tiling.py _rows). The windows [g0, g1) may lie wholly in the padding (a 1x1 conv
 * with padding, a padding wider than the kernel): the box then is the one input row nearest to
 * them (n >= 1, pa or pb negative), which no tap reads, so every output is bias-only. */
static void rows_of(int32_t o0, int32_t on, int32_t stride, int32_t pad, int32_t k, int32_t dil, int32_t size,
                    int32_t *i0, int32_t *n, int32_t *pa, int32_t *pb)
{
    int32_t g0 = o0 * stride - pad;
    int32_t g1 = (o0 + on - 1) * stride - pad + (k - 1) * dil + 1;
    int32_t a = g0 < 0 ? 0 : (g0 > size - 1 ? size - 1 : g0);
    int32_t b = g1 > size ? size : (g1 < a + 1 ? a + 1 : g1);
    *i0 = a;
    *n = b - a;
    *pa = a - g0;
    *pb = g1 - b;
}

_Static_assert(sizeof(gf_tile_args_t) % 4 == 0, "gf_tile_args_t: whole words");

static void tile_geometry(const gf_layer_t *L, int32_t t, gf_tile_t *T)
{
    _Static_assert(sizeof(gf_tile_t) % 4 == 0, "gf_tile_t: whole words");
    gf_clear_words(T, sizeof(*T));
    if (L->tiling == GF_TILING_CONV) {
        const gf_conv_shape_t *s = &L->s;
        int32_t icol = 0, ir = 0, ic = 0; /* tile 0 (most layers' only tile): no division */
        if (t > 0) {
            int32_t n_ow = tile_count(s->ow, L->tile_ow), n_oh = tile_count(s->oh, L->tile_oh), r = t;
            if (n_ow > 1) {
                r = t / n_ow;
                icol = t - r * n_ow;
            }
            ic = r;
            if (n_oh > 1) {
                ic = r / n_oh;
                ir = r - ic * n_oh;
            }
        }
        T->co0 = ic * L->tile_co;
        T->con = min32(L->tile_co, s->o - T->co0);
        T->oy0 = ir * L->tile_oh;
        T->ohn = min32(L->tile_oh, s->oh - T->oy0);
        T->ox0 = icol * L->tile_ow;
        T->own = min32(L->tile_ow, s->ow - T->ox0);
        rows_of(T->oy0, T->ohn, s->sy, s->pt, s->kh, s->dy, s->h, &T->iy0, &T->ihn, &T->pt, &T->pb);
        rows_of(T->ox0, T->own, s->sx, s->pl, s->kw, s->dx, s->w, &T->ix0, &T->iwn, &T->pl, &T->pr);
        if (L->in_plane) { /* whole input planes (codegen/gap9/tiling.py TilePlan.in_plane): the tile covers whole
                              output planes, so its crop starts at row and column 0 (iy0 = ix0 = 0) and the box
                              grows to every row and column; the padding stays the tile's, the kernel reads the
                              planes with their own strides (compute_conv: s.h, s.w) */
            T->ihn = s->h;
            T->iwn = s->w;
        }
        if (L->coupled) {
            T->ci0 = T->co0;
            T->cin = T->con;
        } else if (s->groups == 1) {
            T->ci0 = 0;
            T->cin = s->c;
        } else {
            int32_t og = s->o / s->groups, cg = s->c / s->groups;
            T->ci0 = T->co0 / og * cg;
            T->cin = T->con / og * cg;
        }
    } else if (L->tiling == GF_TILING_LINEAR || L->tiling == GF_TILING_SCAN) {
        T->co0 = t * L->tile_co;
        T->con = min32(L->tile_co, L->o - T->co0);
    } else if (L->tiling == GF_TILING_GEMM) { /* rows [e0, e0 + en) of group c0, outputs [co0, co0 + con) */
        int32_t jc = 0, j = 0;
        T->c0 = 0;
        if (t > 0) {
            int32_t per_c = tile_count(L->o, L->tile_co), per = tile_count(L->n, L->tile_rows);
            jc = t % per_c;
            j = (t / per_c) % per;
            T->c0 = t / (per_c * per);
        }
        T->cn = 1;
        T->e0 = j * L->tile_rows;
        T->en = min32(L->tile_rows, L->n - T->e0);
        T->co0 = jc * L->tile_co;
        T->con = min32(L->tile_co, L->o - T->co0);
    } else if (L->tiling == GF_TILING_ROWS) { /* rows: c = row */
        T->c0 = t * L->tile_planes;
        T->cn = min32(L->tile_planes, L->chans - T->c0);
        T->e0 = T->c0 * L->inner;
        T->en = T->cn * L->inner;
    } else if (L->chans > 1 && L->tile_planes >= L->chans) { /* eltwise: outer indices [r0, r0 + rn), every channel */
        int32_t r0 = 0, rn = L->outer; /* tile 0 holding every outer index (tile_planes / chans >= outer): no division */
        if (t > 0 || L->tile_planes < L->chans * L->outer) {
            int32_t per = L->tile_planes / L->chans;
            r0 = t * per;
            rn = min32(per, L->outer - r0);
        }
        T->c0 = 0;
        T->cn = L->chans;
        T->e0 = r0 * L->chans * L->inner;
        T->en = rn * L->chans * L->inner;
    } else if (L->tile_planes > 1) { /* eltwise: channels [c0, c0 + cn) of outer index r */
        int32_t per = t > 0 ? tile_count(L->chans, L->tile_planes) : 1, r = t > 0 ? t / per : 0;
        T->c0 = (t - r * per) * L->tile_planes;
        T->cn = min32(L->tile_planes, L->chans - T->c0);
        T->e0 = (r * L->chans + T->c0) * L->inner;
        T->en = T->cn * L->inner;
    } else { /* eltwise: a run inside the channel slice v (channel v % chans) */
        int32_t per = t > 0 ? tile_count(L->inner, L->tile_elems) : 1, v = t > 0 ? t / per : 0, j = t - v * per;
        T->c0 = v % L->chans;
        T->cn = 1;
        T->e0 = v * L->inner + j * L->tile_elems;
        T->en = min32(L->tile_elems, L->inner - j * L->tile_elems);
    }
}

static int32_t param_capacity(const gf_layer_t *L)
{
    if (L->tiling == GF_TILING_ELTWISE)
        return L->tile_planes > 1 ? min32(L->tile_planes, L->chans) : 1;
    return L->tile_co;
}

static gf_playout_t param_layout(const gf_layer_t *L)
{
    gf_playout_t p;
    int32_t cap = param_capacity(L);
    p.cap_rq = L->rq_channels > 1 ? cap : 1;
    p.bias = 0;
    p.m = L->b_off >= 0 ? GF_ALIGN((uint32_t)cap * 4u) : 0u;
    int32_t rq = L->rq_sources && !gf_rq_in_record(L); /* per tensor, one source: the constants are in the record */
    p.sh = p.m + (rq ? GF_ALIGN((uint32_t)(L->rq_sources * p.cap_rq) * 4u) : 0u);
    p.o = p.sh + (rq ? GF_ALIGN((uint32_t)p.cap_rq) : 0u);
    p.table = GF_ALIGN(p.o + (rq ? (uint32_t)p.cap_rq * 8u : 0u));
    return p;
}

/* ---- DMA helpers (core 0 only) ---- */
static void q_wait(gf_queue_t *q)
{
    for (int i = 0; i < q->n; i++)
        pi_cl_dma_cmd_wait(&q->cmd[i]);
    q->n = 0;
}

/* bind_layer's recording (gf_run_t.fast): the command noted, not issued; one it cannot replay (2-D, too many) turns
 * the layer back to the generic path (recording 2). The L1 end relative to the fake base of the recorded layout. */
#define GF_FAST_BASE 4096u
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void dma_note(gf_run_t *R, gf_queue_t *q, uint8_t *ext, uint8_t *loc, uint32_t size, int flat,
                     pi_cl_dma_dir_e dir)
{
    int32_t n = R->fast_loads + R->fast_stores;
    if (n < GF_FAST_CMDS && flat && q->n < GF_MAX_CMDS && (dir != PI_CL_DMA_DIR_EXT2LOC || R->fast_stores == 0)) {
        R->fast[n].ext = ext;
        R->fast[n].off = (uint32_t)((uintptr_t)loc - GF_FAST_BASE);
        R->fast[n].size = size;
    } else {
        R->recording = 2;
    }
    if (dir == PI_CL_DMA_DIR_EXT2LOC)
        R->fast_loads++;
    else
        R->fast_stores++;
    q->n++;
    R->st->dma_cmds++;
}

static void dma(gf_run_t *R, gf_queue_t *q, uint8_t *ext, uint8_t *loc, uint32_t size, uint32_t stride,
                uint32_t length, pi_cl_dma_dir_e dir)
{
    if (GF_UNLIKELY(R->recording)) {
        dma_note(R, q, ext, loc, size, stride == length, dir);
        return;
    }
    if (q->n == GF_MAX_CMDS)
        q_wait(q); /* never more than GF_MAX_CMDS transfers in flight */
    if (stride == length)
        pi_cl_dma_cmd((uintptr_t)ext, (uintptr_t)loc, size, dir, &q->cmd[q->n]);
    else
        pi_cl_dma_cmd_2d((uintptr_t)ext, (uintptr_t)loc, size, stride, length, dir, &q->cmd[q->n]);
    q->n++;
    R->st->dma_cmds++;
}

/* 1-D transfer of any size, split below 64 KiB. */
static void dma_1d(gf_run_t *R, gf_queue_t *q, uint8_t *ext, uint8_t *loc, uint32_t size, pi_cl_dma_dir_e dir)
{
    while (size > 0) {
        uint32_t n = size > GF_DMA_MAX ? GF_DMA_MAX : size;
        dma(R, q, ext, loc, n, n, n, dir);
        ext += n;
        loc += n;
        size -= n;
    }
}

typedef struct {
    gf_run_t *R;
    gf_queue_t *q;
    const gf_loc_t *loc;
    uint8_t *l1;
    uint8_t *bounce;
    pi_cl_dma_dir_e dir;
    int ram; /* 1: L3 operand (seg_ram), 0: L2 operand (seg_dma) */
} gf_xfer_t;

/* L2 operand: one DMA command per segment. */
static void seg_dma(gf_xfer_t *x, uint32_t ext_off, uint32_t loc_off, uint32_t size, uint32_t stride, uint32_t length)
{
    dma(x->R, x->q, x->loc->l2 + ext_off, x->l1 + loc_off, size, stride, length, x->dir);
    if (x->dir == PI_CL_DMA_DIR_EXT2LOC)
        x->R->st->l2_to_l1 += size;
    else
        x->R->st->l1_to_l2 += size;
}

/* L3 operand: cluster RAM transfer between L3 and the L2 bounce buffer (same layout as L1), waited. */
static void seg_ram(gf_xfer_t *x, uint32_t ext_off, uint32_t loc_off, uint32_t size, uint32_t stride, uint32_t length)
{
    pi_cl_ram_req_t req;
    if (x->dir == PI_CL_DMA_DIR_EXT2LOC) {
        if (stride == length)
            pi_cl_ram_read(x->R->ram, x->loc->l3 + ext_off, x->bounce + loc_off, size, &req);
        else
            pi_cl_ram_read_2d(x->R->ram, x->loc->l3 + ext_off, x->bounce + loc_off, size, stride, length, &req);
        pi_cl_ram_read_wait(&req);
        x->R->st->l3_to_l2 += size;
    } else {
        if (stride == length)
            pi_cl_ram_write(x->R->ram, x->loc->l3 + ext_off, x->bounce + loc_off, size, &req);
        else
            pi_cl_ram_write_2d(x->R->ram, x->loc->l3 + ext_off, x->bounce + loc_off, size, stride, length, &req);
        pi_cl_ram_write_wait(&req);
        x->R->st->l2_to_l3 += size;
    }
}

/* One segment of a box transfer. A direct call, not a function pointer: the stack analysis of the
 * cluster code (codegen/gap9/resources.py) bounds every call chain and refuses indirect calls. */
static void seg(gf_xfer_t *x, uint32_t ext_off, uint32_t loc_off, uint32_t size, uint32_t stride, uint32_t length)
{
    if (x->ram)
        seg_ram(x, ext_off, loc_off, size, stride, length);
    else
        seg_dma(x, ext_off, loc_off, size, stride, length);
}

/* A box [cn][yn][xn] of a tensor [C][H][W] (elements of eb bytes) as a list of contiguous or
 * strided segments. `seg(x, ext_offset, loc_offset, size, stride, length)` is called for each;
 * loc is the contiguous [cn][yn][xn] buffer. */
static void box_segments(int32_t H, int32_t W, int32_t eb, int32_t c0, int32_t cn, int32_t y0, int32_t yn,
                         int32_t x0, int32_t xn, gf_xfer_t *x)
{
    uint32_t plane = (uint32_t)(H * W * eb), row = (uint32_t)(W * eb);
    if (xn == W) {
        uint32_t block = (uint32_t)yn * row;
        uint32_t base = (uint32_t)c0 * plane + (uint32_t)y0 * row;
        if (yn == H) {
            uint32_t total = (uint32_t)cn * plane, done = 0;
            while (done < total) {
                uint32_t n = total - done > GF_DMA_MAX ? GF_DMA_MAX : total - done;
                seg(x, base + done, done, n, n, n);
                done += n;
            }
        } else if (block <= GF_DMA_MAX && plane <= GF_DMA_MAX && cn > 1) {
            int32_t per = (int32_t)(GF_DMA_MAX / block);
            for (int32_t c = 0; c < cn; c += per) {
                int32_t lines = min32(per, cn - c);
                seg(x, base + (uint32_t)c * plane, (uint32_t)c * block, (uint32_t)lines * block, plane, block);
            }
        } else {
            for (int32_t c = 0; c < cn; c++) {
                uint32_t done = 0;
                while (done < block) {
                    uint32_t n = block - done > GF_DMA_MAX ? GF_DMA_MAX : block - done;
                    seg(x, base + (uint32_t)c * plane + done, (uint32_t)c * block + done, n, n, n);
                    done += n;
                }
            }
        }
    } else {
        uint32_t line = (uint32_t)(xn * eb);
        int32_t per = line > GF_DMA_MAX ? 1 : (int32_t)(GF_DMA_MAX / line); /* lines are < 64 KiB (planner) */
        for (int32_t c = 0; c < cn; c++) {
            for (int32_t y = 0; y < yn; y += per) {
                int32_t lines = min32(per, yn - y);
                uint32_t ext = (uint32_t)(c0 + c) * plane + (uint32_t)(y0 + y) * row + (uint32_t)(x0 * eb);
                uint32_t loc = ((uint32_t)c * (uint32_t)yn + (uint32_t)y) * line;
                seg(x, ext, loc, (uint32_t)lines * line, row, line);
            }
        }
    }
}

/* A box of whole planes of an L2 operand (every row, every column: the common case of a layer of one tile) is one
 * contiguous run: moved by dma_1d directly, the same commands and bytes as box_segments' first case, without its
 * code: on gvsoc siracusa each new 16-B line of code costs core 0 about 20 cycles on every layer (the cluster's
 * 512 B instruction cache per core keeps nothing from one layer to the next), so the short path saves 0.3-0.6 k
 * cluster cycles a layer (docs/gap9.md). */
static int box_whole(const gf_loc_t *loc, int32_t H, int32_t W, int32_t yn, int32_t xn)
{
    return loc->level != GF_MEM_L3 && yn == H && xn == W;
}

/* Such a box of planes c0 .. c0 + cn - 1 moved in direction `dir` (load_box / store_box); returns its bytes. */
static uint32_t dma_whole(gf_run_t *R, gf_queue_t *q, const gf_loc_t *loc, uint8_t *l1, int32_t H, int32_t W,
                          int32_t eb, int32_t c0, int32_t cn, pi_cl_dma_dir_e dir)
{
    uint32_t plane = (uint32_t)(H * W * eb), size = (uint32_t)cn * plane;
    dma_1d(R, q, loc->l2 + (uint32_t)c0 * plane, l1, size, dir);
    return size;
}

/* Load a box of an operand into L1 (asynchronous for L2 sources; L3 goes through the bounce buffer). */
static void load_box(gf_run_t *R, gf_queue_t *q, const gf_loc_t *loc, uint8_t *l1, uint8_t *bounce, int32_t H,
                     int32_t W, int32_t eb, int32_t c0, int32_t cn, int32_t y0, int32_t yn, int32_t x0, int32_t xn)
{
    if (box_whole(loc, H, W, yn, xn)) {
        R->st->l2_to_l1 += dma_whole(R, q, loc, l1, H, W, eb, c0, cn, PI_CL_DMA_DIR_EXT2LOC);
        return;
    }
    gf_xfer_t x = {R, q, loc, l1, bounce, PI_CL_DMA_DIR_EXT2LOC, loc->level == GF_MEM_L3};
    box_segments(H, W, eb, c0, cn, y0, yn, x0, xn, &x);
    if (!x.ram)
        return;
    uint32_t total = (uint32_t)(cn * yn * xn * eb);
    dma_1d(R, q, bounce, l1, total, PI_CL_DMA_DIR_EXT2LOC);
    R->st->l2_to_l1 += total;
}

/* Contiguous L3 <-> L2-bounce transfer in chunks below 64 KiB, waited. */
static void ram_flat(gf_run_t *R, uint32_t l3, uint8_t *buf, uint32_t size, int read)
{
    while (size > 0) {
        uint32_t n = size > GF_DMA_MAX ? GF_DMA_MAX : size;
        pi_cl_ram_req_t req;
        if (read) {
            pi_cl_ram_read(R->ram, l3, buf, n, &req);
            pi_cl_ram_read_wait(&req);
            R->st->l3_to_l2 += n;
        } else {
            pi_cl_ram_write(R->ram, l3, buf, n, &req);
            pi_cl_ram_write_wait(&req);
            R->st->l2_to_l3 += n;
        }
        l3 += n;
        buf += n;
        size -= n;
    }
}

/* Load `size` contiguous bytes at offset `off` of an operand into L1. */
static void load_flat(gf_run_t *R, gf_queue_t *q, const gf_loc_t *loc, uint32_t off, uint8_t *l1, uint8_t *bounce,
                      uint32_t size)
{
    if (size == 0)
        return;
    if (loc->level == GF_MEM_L3) {
        ram_flat(R, loc->l3 + off, bounce, size, 1);
        dma_1d(R, q, bounce, l1, size, PI_CL_DMA_DIR_EXT2LOC);
    } else {
        dma_1d(R, q, loc->l2 + off, l1, size, PI_CL_DMA_DIR_EXT2LOC);
    }
    R->st->l2_to_l1 += size;
}

/* Store `size` contiguous L1 bytes at offset `off` of an operand (L3: synchronous, via the bounce). */
static void store_flat(gf_run_t *R, gf_queue_t *q, const gf_loc_t *loc, uint32_t off, uint8_t *l1, uint8_t *bounce,
                       uint32_t size)
{
    if (loc->level == GF_MEM_L3) {
        dma_1d(R, q, bounce, l1, size, PI_CL_DMA_DIR_LOC2EXT);
        R->st->l1_to_l2 += size;
        q_wait(q);
        ram_flat(R, loc->l3 + off, bounce, size, 0);
    } else {
        dma_1d(R, q, loc->l2 + off, l1, size, PI_CL_DMA_DIR_LOC2EXT);
        R->st->l1_to_l2 += size;
    }
}

/* Store an L1 box to its operand: asynchronous to L2; to L3 through the bounce buffer, synchronous. */
static void store_box(gf_run_t *R, gf_queue_t *q, const gf_loc_t *loc, uint8_t *l1, uint8_t *bounce, int32_t H,
                      int32_t W, int32_t eb, int32_t c0, int32_t cn, int32_t y0, int32_t yn, int32_t x0, int32_t xn)
{
    if (box_whole(loc, H, W, yn, xn)) { /* whole planes of an L2 operand: one contiguous run */
        R->st->l1_to_l2 += dma_whole(R, q, loc, l1, H, W, eb, c0, cn, PI_CL_DMA_DIR_LOC2EXT);
        return;
    }
    gf_xfer_t x = {R, q, loc, l1, bounce, PI_CL_DMA_DIR_LOC2EXT, loc->level == GF_MEM_L3};
    if (x.ram) {
        uint32_t total = (uint32_t)(cn * yn * xn * eb);
        dma_1d(R, q, bounce, l1, total, PI_CL_DMA_DIR_LOC2EXT);
        R->st->l1_to_l2 += total;
        q_wait(q);
    }
    box_segments(H, W, eb, c0, cn, y0, yn, x0, xn, &x);
}

/* The bias and requantization sections of a tile's parameters are contiguous alike in the blob and in the L1
 * parameter buffer (the blob stores a layer's bias, m, sh and o consecutively, each region 8-byte aligned like
 * param_layout: codegen/program.py) when the tile holds every channel, or, requantized per tensor without a bias,
 * always: then one DMA command moves them, padding included (codegen/gap9/tiling.py ParamSpec.payload counts the
 * same bytes). The offsets are checked, not assumed. */
static int params_merged(const gf_layer_t *L, const gf_playout_t *pl, int32_t c0, int32_t cn)
{
    if (!L->rq_sources || gf_rq_in_record(L)) /* (in the record: the tile loads its bias alone) */
        return 0;
    if (L->rq_channels > 1 && (c0 != 0 || cn != L->rq_channels || pl->cap_rq != L->rq_channels))
        return 0;
    if (L->b_off >= 0) {
        int32_t chans = L->tiling == GF_TILING_CONV ? L->s.o : L->tiling == GF_TILING_ELTWISE ? L->chans : L->o;
        if (c0 != 0 || cn != chans || pl->bias != 0u || (uint32_t)(L->m_off - L->b_off) != pl->m)
            return 0;
    }
    return (uint32_t)(L->sh_off - L->m_off) == pl->sh - pl->m && (uint32_t)(L->o_off - L->sh_off) == pl->o - pl->sh;
}

/* The sections one by one: the tile's slice of each. */
static void load_sections(gf_run_t *R, gf_queue_t *q, const gf_loc_t *loc, const gf_playout_t *pl0, int32_t c0,
                          int32_t cn, uint8_t *p, uint8_t *bp)
{
    const gf_layer_t *L = R->L;
    const gf_playout_t pl = *pl0;
    if (L->b_off >= 0)
        load_flat(R, q, loc, (uint32_t)L->b_off + (uint32_t)c0 * 4u, p + pl.bias, bp ? bp + pl.bias : NULL,
                  (uint32_t)cn * 4u);
    if (L->rq_sources && !gf_rq_in_record(L)) {
        int32_t rc0 = L->rq_channels > 1 ? c0 : 0, rcn = L->rq_channels > 1 ? cn : 1;
        for (int32_t s = 0; s < L->rq_sources; s++) {
            uint32_t off = (uint32_t)L->m_off + (uint32_t)(s * L->rq_channels + rc0) * 4u;
            uint32_t dst = pl.m + (uint32_t)(s * pl.cap_rq) * 4u;
            load_flat(R, q, loc, off, p + dst, bp ? bp + dst : NULL, (uint32_t)rcn * 4u);
        }
        load_flat(R, q, loc, (uint32_t)(L->sh_off + rc0), p + pl.sh, bp ? bp + pl.sh : NULL, (uint32_t)rcn);
        load_flat(R, q, loc, (uint32_t)L->o_off + (uint32_t)rc0 * 8u, p + pl.o, bp ? bp + pl.o : NULL,
                  (uint32_t)rcn * 8u);
    }
}

/* ---- per-tile loads and stores ---- */
static void load_params(gf_run_t *R, gf_queue_t *q, const gf_tile_t *T, int b)
{
    const gf_layer_t *L = R->L;
    const gf_playout_t pl = R->pl;
    int32_t c0 = L->tiling == GF_TILING_ELTWISE ? T->c0 : T->co0;
    int32_t cn = L->tiling == GF_TILING_ELTWISE ? T->cn : T->con;
    uint8_t *p = R->l1[b][GF_OP_P], *bp = R->bounce[b][GF_OP_P];
    const gf_loc_t *loc = &R->ops->params;
    if (L->tiling == GF_TILING_SCAN) { /* the block's head, the tile's channel records and tables */
        uint32_t rec = 24u * 8u, tab = (uint32_t)(L->k * L->inner) * 2u; /* table bytes per channel */
        uint32_t l1_tab = rec + (uint32_t)L->tile_co * 32u, l2_tab = (uint32_t)L->aux_off + rec + (uint32_t)L->o * 32u;
        load_flat(R, q, loc, (uint32_t)L->aux_off, p, bp, rec);
        load_flat(R, q, loc, (uint32_t)L->aux_off + rec + (uint32_t)T->co0 * 32u, p + rec, bp ? bp + rec : NULL,
                  (uint32_t)T->con * 32u);
        load_flat(R, q, loc, l2_tab + (uint32_t)T->co0 * tab, p + l1_tab, bp ? bp + l1_tab : NULL, (uint32_t)T->con * tab);
        return;
    }
    if (L->aux_off >= 0) /* rows: the whole parameter block, at the start of the buffer */
        load_flat(R, q, loc, (uint32_t)L->aux_off, p, bp, L->aux_bytes);
    if (params_merged(L, &pl, c0, cn)) { /* bias (if any), m, sh, o: one command */
        uint32_t src = (uint32_t)(L->b_off >= 0 ? L->b_off : L->m_off), dst = L->b_off >= 0 ? pl.bias : pl.m;
        uint32_t end = pl.o + (uint32_t)(L->rq_channels > 1 ? cn : 1) * 8u;
        load_flat(R, q, loc, src, p + dst, bp ? bp + dst : NULL, end - dst);
    } else {
        load_sections(R, q, loc, &pl, c0, cn, p, bp);
    }
    if (L->t_off >= 0) {
        int32_t tc0 = L->t_chans > 1 ? c0 : 0, tcn = L->t_chans > 1 ? cn : 1;
        load_flat(R, q, loc, (uint32_t)L->t_off + (uint32_t)(tc0 * L->t_bytes), p + pl.table,
                  bp ? bp + pl.table : NULL, (uint32_t)(tcn * L->t_bytes));
    }
}

static uint32_t weights_per_channel(const gf_layer_t *L)
{
    return L->tiling == GF_TILING_LINEAR || L->tiling == GF_TILING_GEMM ? (uint32_t)L->k : (uint32_t)(L->s.c / L->s.groups * L->s.kh * L->s.kw);
}

static void load_weights(gf_run_t *R, gf_queue_t *q, const gf_tile_t *T, int b)
{
    const gf_layer_t *L = R->L;
    int k = L->buf_wp ? GF_OP_WP : GF_OP_W;
    uint32_t per = L->buf_wp ? (uint32_t)L->w_row_bytes : weights_per_channel(L);
    load_flat(R, q, &R->ops->params, (uint32_t)L->w_off + (uint32_t)T->co0 * per, R->l1[b][k], R->bounce[b][k],
              (uint32_t)T->con * per);
}

/* Unpack `rows` rows of packed weights (w_bits bits each, sign-extended, least significant first,
 * each row padded to w_row_bytes) into int8 rows of weights_per_channel() values. */
static void unpack_rows(const gf_layer_t *L, const uint8_t *src, int8_t *dst, int32_t rows)
{
    uint32_t k = weights_per_channel(L), bits = (uint32_t)L->w_bits, per = 8u / bits;
    int32_t up = 32 - (int32_t)bits;
    for (int32_t r = 0; r < rows; r++) {
        const uint8_t *s = src + (uint32_t)r * (uint32_t)L->w_row_bytes;
        int8_t *d = dst + (uint32_t)r * k;
        for (uint32_t j = 0; j < k; j++) {
            uint32_t v = (uint32_t)s[j / per] >> (bits * (j % per));
            d[j] = (int8_t)((int32_t)(v << up) >> up); /* sign-extend the low `bits` bits */
        }
    }
}

/* Unpack the weight rows [co0, co0 + con) of the tile in buffer b (each core its own rows). */
static void unpack_tile_rows(gf_run_t *R, int b, int32_t co0, int32_t con)
{
    const gf_layer_t *L = R->L;
    if (!L->buf_wp || L->w_resident)
        return;
    unpack_rows(L, R->l1[b][GF_OP_WP] + (uint32_t)co0 * (uint32_t)L->w_row_bytes,
                (int8_t *)R->l1[b][GF_OP_W] + (uint32_t)co0 * weights_per_channel(L), con);
}

/* gemm tiling with tiled columns (and the SIMD convolution) with packed weights: the tile's weight rows,
 * unpacked once by core 0 before the barrier (every core reads all of them). Not inlined: keeps tile_loop's frame small. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void unpack_gemm_tile(gf_run_t *R, int b)
{
    unpack_rows(R->L, R->l1[b][GF_OP_WP], (int8_t *)R->l1[b][GF_OP_W], R->tiles[b].con);
}

/* The loads of the tile whose geometry is in slot b, into buffer b. */
static void load_tile_in(gf_run_t *R, int b)
{
    const gf_layer_t *L = R->L;
    gf_queue_t *q = &R->load_q[b];
    const gf_tile_t *T = &R->tiles[b];
    if (L->tiling == GF_TILING_CONV) {
        load_box(R, q, &R->ops->in, R->l1[b][GF_OP_IN], R->bounce[b][GF_OP_IN], L->s.h, L->s.w, elem_bytes(L->in_t),
                 T->ci0, T->cin, T->iy0, T->ihn, T->ix0, T->iwn);
        if (L->w_off >= 0 && !L->w_resident)
            load_weights(R, q, T, b);
    } else if (L->tiling == GF_TILING_LINEAR) {
        if (!L->w_resident)
            load_weights(R, q, T, b);
    } else if (L->tiling == GF_TILING_SCAN) { /* columns [co0, co0 + con) of delta and u, [L][D] */
        load_box(R, q, &R->ops->in, R->l1[b][GF_OP_IN], R->bounce[b][GF_OP_IN], L->n, L->o, 1, 0, 1, 0, L->n, T->co0, T->con);
        load_box(R, q, &R->ops->in2, R->l1[b][GF_OP_IN2], R->bounce[b][GF_OP_IN2], L->n, L->o, 1, 0, 1, 0, L->n, T->co0,
                 T->con);
    } else if (L->tiling == GF_TILING_GEMM) {
        uint32_t row0 = (uint32_t)(T->c0 * L->n + T->e0);
        int32_t eb = elem_bytes(L->in_t);
        load_flat(R, q, &R->ops->in, row0 * (uint32_t)(L->k * eb), R->l1[b][GF_OP_IN], R->bounce[b][GF_OP_IN],
                  (uint32_t)(T->en * L->k * eb));
        if (L->buf_in2) /* the tile's columns [k][co0, co0 + con) of the group's second operand [k][o] */
            load_box(R, q, &R->ops->in2, R->l1[b][GF_OP_IN2], R->bounce[b][GF_OP_IN2], L->k, L->o, elem_bytes(L->in2_t),
                     T->c0, 1, 0, L->k, T->co0, T->con);
        if (L->w_off >= 0 && !L->w_resident) /* columns tiled: the tile's weight rows */
            load_weights(R, q, T, b);
    } else {
        int32_t eb = elem_bytes(L->in_t);
        if (!L->in_resident)
            load_flat(R, q, &R->ops->in, (uint32_t)(T->e0 * eb), R->l1[b][GF_OP_IN], R->bounce[b][GF_OP_IN],
                      (uint32_t)(T->en * eb));
        if (L->buf_in2 && !L->in2_resident) {
            int32_t eb2 = elem_bytes(L->in2_t);
            load_flat(R, q, &R->ops->in2, (uint32_t)(T->e0 * eb2), R->l1[b][GF_OP_IN2], R->bounce[b][GF_OP_IN2],
                      (uint32_t)(T->en * eb2));
        }
    }
    if (R->nbuf[GF_OP_P] && !L->p_resident)
        load_params(R, q, T, b);
}

/* Tile t into buffer b: its geometry into slot b, then its loads. */
static void load_tile(gf_run_t *R, int32_t t, int b)
{
    tile_geometry(R->L, t, &R->tiles[b]);
    load_tile_in(R, b);
}

static void store_tile(gf_run_t *R, int b)
{
    const gf_layer_t *L = R->L;
    const gf_tile_t *T = &R->tiles[b];
    int32_t eb = elem_bytes(L->out_t);
    gf_queue_t *q = &R->store_q[b];
    if (L->tiling == GF_TILING_CONV && L->pool_kh) /* the pooled tile (whole windows) */
        store_box(R, q, &R->ops->out, R->l1[b][GF_OP_OUT], R->bounce[b][GF_OP_OUT], L->s.oh / L->pool_kh,
                  L->s.ow / L->pool_kw, eb, T->co0, T->con, T->oy0 / L->pool_kh, T->ohn / L->pool_kh,
                  T->ox0 / L->pool_kw, T->own / L->pool_kw);
    else if (L->tiling == GF_TILING_CONV)
        store_box(R, q, &R->ops->out, R->l1[b][GF_OP_OUT], R->bounce[b][GF_OP_OUT], L->s.oh, L->s.ow, eb, T->co0, T->con,
                  T->oy0, T->ohn, T->ox0, T->own);
    else if (L->tiling == GF_TILING_SCAN)
        store_box(R, q, &R->ops->out, R->l1[b][GF_OP_OUT], R->bounce[b][GF_OP_OUT], L->n, L->o, eb, 0, 1, 0, L->n, T->co0,
                  T->con);
    else if (L->tiling == GF_TILING_LINEAR)
        store_flat(R, q, &R->ops->out, (uint32_t)(T->co0 * eb), R->l1[b][GF_OP_OUT], R->bounce[b][GF_OP_OUT],
                   (uint32_t)(T->con * eb));
    else if (L->tiling == GF_TILING_GEMM) /* rows x columns block of the [chans * n][o] output */
        store_box(R, q, &R->ops->out, R->l1[b][GF_OP_OUT], R->bounce[b][GF_OP_OUT], L->chans * L->n, L->o, eb, 0, 1,
                  T->c0 * L->n + T->e0, T->en, T->co0, T->con);
    else
        store_flat(R, q, &R->ops->out, (uint32_t)(T->e0 * eb), R->l1[b][GF_OP_OUT], R->bounce[b][GF_OP_OUT],
                   (uint32_t)(T->en * eb));
}

/* ---- compute: each core takes its share of the tile ---- */
static gf_requant_t tile_requant(const gf_run_t *R, uint8_t *p, int32_t first)
{
    const gf_layer_t *L = R->L;
    const gf_playout_t pl = R->pl;
    int32_t off = L->rq_channels > 1 ? first : 0;
    gf_requant_t rq;
    if (gf_rq_in_record(L)) { /* per tensor, one source: the constants in the run record (its L1 copy in the run), and
                                 * the kernels' precomputed ones (gf_requant_t.pre: the same gf_rqc_t, one copy) */
        const gf_rqc_t *c = (const gf_rqc_t *)(const void *)R->pre_rqc;
        rq.m = &c->m;
        rq.sh = R->rq_sh;
        rq.o = &c->o;
        rq.pre = c;
    } else {
        rq.m = (const int32_t *)(p + pl.m) + off;
        rq.sh = p + pl.sh + off;
        rq.o = (const int64_t *)(p + pl.o) + off;
        rq.pre = NULL;
    }
    rq.channels = pl.cap_rq;
    rq.zp = L->zp;
    rq.lo = L->lo;
    rq.hi = L->hi;
    return rq;
}

/* The FC, binding a layer whose requantization is per tensor with one source (gf_rq_in_record): its constants read
 * once from the parameters (in L2, or in L3 by the FC's own RAM reads) into the run record, where every core reads
 * them in the record's L1 copy (tile_requant: m, sh, o and the SIMD kernels' precomputed gf_rqc_t). */
static void bind_rq(gf_run_t *R)
{
    const gf_layer_t *L = R->L;
    const gf_loc_t *p = &R->ops->params;
    _Static_assert(sizeof(gf_rqc_t) <= sizeof(R->pre_rqc) && sizeof(gf_rqc_t) % 4 == 0, "gf_run_t.pre_rqc holds a gf_rqc_t");
    if (!gf_rq_in_record(L))
        return;
    int32_t m;
    uint8_t sh;
    int64_t o;
    if (p->level == GF_MEM_L3) {
        pi_ram_read(R->ram, p->l3 + (uint32_t)L->m_off, &m, 4u);
        pi_ram_read(R->ram, p->l3 + (uint32_t)L->sh_off, &sh, 1u);
        pi_ram_read(R->ram, p->l3 + (uint32_t)L->o_off, &o, 8u);
    } else {
        m = *(const int32_t *)(const void *)(p->l2 + L->m_off);
        sh = p->l2[L->sh_off];
        o = *(const int64_t *)(const void *)(p->l2 + L->o_off);
    }
    R->rq_sh[0] = sh;
    R->rq_sh[1] = R->rq_sh[2] = R->rq_sh[3] = 0;
    gf_requant_t rq;
    rq.m = &m;
    rq.sh = &sh;
    rq.o = &o;
    rq.channels = 1;
    rq.zp = L->zp;
    rq.lo = L->lo;
    rq.hi = L->hi;
    rq.pre = NULL;
    gf_rqc_t c;
    gf_rqc_init(&c, &rq, 0);
    memcpy(R->pre_rqc, &c, sizeof(c));
}

/* The core's SIMD work buffer (im2col / gathered columns, L->buf_col bytes), or NULL. Not inlined:
 * keeps tile_loop's frame (the compute-core stack chain) as it was. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static uint8_t *core_col(const gf_run_t *R, int core)
{
    return R->L->buf_col ? R->l1[0][GF_OP_COL] + (uint32_t)core * GF_ALIGN(R->L->buf_col) : NULL;
}

static void compute_conv(gf_run_t *R, const gf_tile_t *T, int b, int core, int ncores)
{
    const gf_layer_t *L = R->L;
    int32_t grouped = !L->coupled && L->s.groups > 1;
    int32_t unit = grouped ? L->s.o / L->s.groups : 1;
    int32_t units = T->con / unit;
    /* SIMD convolution: every channel of the tile, the cores split its output pixels (the adapter);
     * the SIMD depthwise one (coupled) splits the channels like the portable kernels */
    int32_t psplit = L->buf_col && !L->coupled;
    int32_t u0 = psplit ? 0 : core * units / ncores, u1 = psplit ? units : (core + 1) * units / ncores;
    if (u0 == u1)
        return;
    int32_t co0 = u0 * unit, con = (u1 - u0) * unit;
    int32_t eb_in = elem_bytes(L->in_t), eb_out = elem_bytes(L->out_t);
    uint32_t in_plane = (uint32_t)(T->ihn * T->iwn * eb_in); /* bytes of one plane of the input box */
    gf_conv_shape_t s = L->s;
    s.h = T->ihn;
    s.w = T->iwn;
    s.oh = T->ohn;
    s.ow = T->own;
    s.pt = T->pt;
    s.pl = T->pl;
    s.pb = T->pb;
    s.pr = T->pr;
    s.o = con;
    const uint8_t *x = R->l1[b][GF_OP_IN];
    if (L->coupled) {
        s.c = con;
        x += (uint32_t)co0 * in_plane;
        if (L->s.groups > 1) /* depthwise: one group per channel */
            s.groups = con;
    } else if (grouped) {
        int32_t cg = L->s.c / L->s.groups;
        s.c = (u1 - u0) * cg;
        s.groups = u1 - u0;
        x += (uint32_t)(u0 * cg) * in_plane;
    } else {
        s.c = T->cin;
    }
    uint8_t *pbuf = R->l1[L->p_resident ? 0 : b][GF_OP_P];
    const gf_playout_t pl = R->pl;
    gf_requant_t rq;
    const gf_requant_t *rqp = NULL;
    if (L->rq_sources) {
        rq = tile_requant(R, pbuf, co0);
        rqp = &rq;
    }
    const int32_t *bias = L->b_off >= 0 ? (const int32_t *)(pbuf + pl.bias) + co0 : NULL;
    const int8_t *w = NULL;
    if (L->w_off >= 0) {
        if (!L->buf_col) /* SIMD: core 0 unpacked the whole tile before the barrier */
            unpack_tile_rows(R, b, co0, con);
        w = (const int8_t *)R->l1[L->w_resident ? 0 : b][GF_OP_W] + (uint32_t)co0 * weights_per_channel(L);
    }
    gf_tile_args_t a;
    gf_clear_words(&a, sizeof(a));
    a.L = L;
    a.x = x;
    a.w = w;
    a.bias = bias;
    a.rq = rqp;
    a.s = s;
    /* a fused max pool: the conv tile into its one L1 buffer (pooled by pool_tile) */
    a.y = (L->pool_kh ? R->l1[0][GF_OP_MID] : R->l1[b][GF_OP_OUT]) + (uint32_t)co0 * (uint32_t)(T->ohn * T->own * eb_out);
    a.u.col = core_col(R, core);
    a.e0 = core; /* SIMD: the adapter takes this core's share of the pixels */
    a.n = ncores;
    L->compute(&a);
}

/* A max pool fused behind the conv (L->pool_kh: window = stride, no padding, the tile whole windows): the conv tile
 * [con][ohn][own] in GF_OP_MID pooled into [con][ohn / kh][own / kw] in GF_OP_OUT buffer b; the cores split the
 * pooled rows of all the tile's channels. 8-bit codes, signed or not (the max of the same integers); 2x2 windows
 * (the common case) unrolled. */
#define GF_POOL_ROWS(NAME, T)                                                                                     \
    static void NAME(const T *src, T *dst, int32_t r0, int32_t r1, int32_t oh, int32_t ow, int32_t ihn, int32_t iw, \
                     int32_t kh, int32_t kw)                                                                      \
    {                                                                                                             \
        int32_t c = r0 / oh, y = r0 - c * oh;                                                                     \
        T *out = dst + r0 * ow;                                                                                   \
        for (int32_t r = r0; r < r1; r++) {                                                                       \
            const T *a = src + (c * ihn + y * kh) * iw;                                                           \
            if (kh == 2 && kw == 2) {                                                                             \
                const T *n = a + iw;                                                                              \
                for (int32_t x = 0; x < ow; x++, a += 2, n += 2) {                                                \
                    T m0 = a[0] > a[1] ? a[0] : a[1], m1 = n[0] > n[1] ? n[0] : n[1];                              \
                    *out++ = m0 > m1 ? m0 : m1;                                                                   \
                }                                                                                                 \
            } else {                                                                                              \
                for (int32_t x = 0; x < ow; x++, a += kw) {                                                       \
                    T m = a[0];                                                                                   \
                    for (int32_t i = 0; i < kh; i++)                                                              \
                        for (int32_t j = 0; j < kw; j++)                                                          \
                            m = a[i * iw + j] > m ? a[i * iw + j] : m;                                            \
                    *out++ = m;                                                                                   \
                }                                                                                                 \
            }                                                                                                     \
            if (++y == oh) {                                                                                      \
                y = 0;                                                                                            \
                c++;                                                                                              \
            }                                                                                                     \
        }                                                                                                         \
    }
GF_POOL_ROWS(pool_rows_s8, int8_t)
GF_POOL_ROWS(pool_rows_u8, uint8_t)

static void pool_tile(gf_run_t *R, const gf_tile_t *T, int b, int core, int ncores)
{
    const gf_layer_t *L = R->L;
    int32_t kh = L->pool_kh, kw = L->pool_kw, oh = T->ohn / kh, ow = T->own / kw;
    int32_t rows = T->con * oh, r0 = core * rows / ncores, r1 = (core + 1) * rows / ncores;
    if (r0 == r1)
        return;
    if (L->out_t == GF_S8)
        pool_rows_s8((const int8_t *)R->l1[0][GF_OP_MID], (int8_t *)R->l1[b][GF_OP_OUT], r0, r1, oh, ow, T->ohn, T->own,
                     kh, kw);
    else
        pool_rows_u8(R->l1[0][GF_OP_MID], R->l1[b][GF_OP_OUT], r0, r1, oh, ow, T->ohn, T->own, kh, kw);
}

static void compute_linear(gf_run_t *R, const gf_tile_t *T, int b, int core, int ncores)
{
    const gf_layer_t *L = R->L;
    int32_t u0 = core * T->con / ncores, u1 = (core + 1) * T->con / ncores;
    if (u0 == u1)
        return;
    uint8_t *pbuf = R->l1[L->p_resident ? 0 : b][GF_OP_P];
    const gf_playout_t pl = R->pl;
    gf_requant_t rq;
    const gf_requant_t *rqp = NULL;
    if (L->rq_sources) {
        rq = tile_requant(R, pbuf, u0);
        rqp = &rq;
    }
    const int32_t *bias = L->b_off >= 0 ? (const int32_t *)(pbuf + pl.bias) + u0 : NULL;
    unpack_tile_rows(R, b, u0, u1 - u0);
    gf_tile_args_t a;
    gf_clear_words(&a, sizeof(a));
    a.L = L;
    a.x = R->l1[0][GF_OP_IN];
    a.w = (const int8_t *)R->l1[L->w_resident ? 0 : b][GF_OP_W] + (uint32_t)u0 * (uint32_t)L->k;
    a.bias = bias;
    a.rq = rqp;
    a.k = L->k;
    a.o = u1 - u0;
    a.y = R->l1[b][GF_OP_OUT] + (uint32_t)(u0 * elem_bytes(L->out_t));
    L->compute(&a);
}

/* gemm tiling: each core a run of the tile's rows, all the tile's output columns (weights and parameters
 * resident when the tile holds every column, else the tile's slices in buffer b) */
static void compute_gemm(gf_run_t *R, const gf_tile_t *T, int b, int core, int ncores)
{
    const gf_layer_t *L = R->L;
    int32_t r0 = core * T->en / ncores, r1 = (core + 1) * T->en / ncores;
    if (r0 == r1)
        return;
    int32_t con = T->con;
    int rb = con == L->o ? 0 : b; /* every column: weights and parameters resident, else the tile's slices */
    uint8_t *pbuf = R->l1[rb][GF_OP_P];
    const gf_playout_t pl = R->pl;
    gf_requant_t rq;
    const gf_requant_t *rqp = NULL;
    if (L->rq_sources) {
        rq = tile_requant(R, pbuf, 0);
        rqp = &rq;
    }
    gf_tile_args_t a;
    gf_clear_words(&a, sizeof(a));
    a.L = L;
    a.x = R->l1[b][GF_OP_IN] + (uint32_t)(r0 * L->k * elem_bytes(L->in_t));
    a.x2 = L->buf_in2 ? R->l1[b][GF_OP_IN2] : NULL;
    a.w = L->w_off >= 0 ? (const int8_t *)R->l1[rb][GF_OP_W] : NULL;
    a.bias = L->b_off >= 0 ? (const int32_t *)(pbuf + pl.bias) : NULL;
    a.rq = rqp;
    a.k = L->k;
    a.o = con;
    a.rows = r1 - r0;
    a.y = R->l1[b][GF_OP_OUT] + (uint32_t)(r0 * con * elem_bytes(L->out_t));
    a.u.col = core_col(R, core);
    L->compute(&a);
}

static void compute_eltwise(gf_run_t *R, const gf_tile_t *T, int b, int core, int ncores)
{
    const gf_layer_t *L = R->L;
    int32_t per_plane = L->chans > 1 && L->tile_planes > 1; /* per-channel requantization or tables */
    /* the cores split whole [chans][inner] blocks (tiles of several outer indices), else channel slices, else
     * elements */
    int32_t blocks = per_plane && L->tile_planes > L->chans;
    int32_t unit = blocks ? L->chans * L->inner : per_plane ? L->inner : 1;
    int32_t units = T->en / unit;
    int32_t u0 = core * units / ncores, u1 = (core + 1) * units / ncores;
    if (u0 == u1)
        return;
    int32_t e0 = u0 * unit, en = (u1 - u0) * unit;
    int32_t first = per_plane && !blocks ? u0 : 0; /* the core's first channel in the parameter buffer */
    int32_t eb = elem_bytes(L->in_t), eb2 = elem_bytes(L->in2_t), ebo = elem_bytes(L->out_t);
    uint8_t *pbuf = R->l1[L->p_resident ? 0 : b][GF_OP_P];
    gf_requant_t rq;
    const gf_requant_t *rqp = NULL;
    if (L->rq_sources) {
        rq = tile_requant(R, pbuf, first);
        rqp = &rq;
    }
    gf_tile_args_t a;
    gf_clear_words(&a, sizeof(a));
    a.L = L;
    a.e0 = T->e0 + e0;
    a.x = L->in_resident ? R->l1[0][GF_OP_IN] : R->l1[b][GF_OP_IN] + (uint32_t)(e0 * eb);
    a.x2 = !L->buf_in2 ? NULL : L->in2_resident ? R->l1[0][GF_OP_IN2] : R->l1[b][GF_OP_IN2] + (uint32_t)(e0 * eb2);
    a.rq = rqp;
    a.n = en;
    a.inner = L->chans > 1 ? L->inner : en;
    a.y = R->l1[b][GF_OP_OUT] + (uint32_t)(e0 * ebo);
    if (L->t_off >= 0) /* lookup tables: those of the core's planes (per-channel tables), else the tile's one */
        a.w = (const int8_t *)(pbuf + R->pl.table + (L->t_chans > 1 ? (uint32_t)(first * L->t_bytes) : 0u));
    L->compute(&a);
}

/* Rows tiling: each core takes a run of whole rows of the tile; the parameter block is resident. */
static void compute_rows(gf_run_t *R, const gf_tile_t *T, int b, int core, int ncores)
{
    const gf_layer_t *L = R->L;
    int32_t u0 = core * T->cn / ncores, u1 = (core + 1) * T->cn / ncores;
    if (u0 == u1)
        return;
    gf_tile_args_t a;
    gf_clear_words(&a, sizeof(a));
    a.L = L;
    a.x = R->l1[b][GF_OP_IN] + (uint32_t)(u0 * L->inner * elem_bytes(L->in_t));
    a.p = (const int64_t *)R->l1[0][GF_OP_P];
    a.n = u1 - u0;
    a.inner = L->inner;
    a.e0 = T->c0 + u0;
    a.y = R->l1[b][GF_OP_OUT] + (uint32_t)(u0 * L->inner * elem_bytes(L->out_t));
    L->compute(&a);
}

/* Scan tiling: each core a run of the tile's channels, over every step (the channels are independent); B and C
 * are resident, whole. */
static void compute_scan(gf_run_t *R, const gf_tile_t *T, int b, int core, int ncores)
{
    const gf_layer_t *L = R->L;
    int32_t u0 = core * T->con / ncores, u1 = (core + 1) * T->con / ncores;
    if (u0 == u1)
        return;
    gf_tile_args_t a;
    gf_clear_words(&a, sizeof(a));
    a.L = L;
    a.x = R->l1[b][GF_OP_IN];
    a.x2 = R->l1[b][GF_OP_IN2];
    a.x3 = R->l1[0][GF_OP_IN3];
    a.u.x4 = R->l1[0][GF_OP_IN4];
    a.p = (const int64_t *)R->l1[L->p_resident ? 0 : b][GF_OP_P];
    a.k = T->con;
    a.e0 = u0;
    a.n = u1 - u0;
    a.y = R->l1[b][GF_OP_OUT];
    L->compute(&a);
}

#ifdef GF_FAULT_DEEP_CALL
/* Test-only fault (emulation build only, see gf_gap9.h): a call chain of about `bytes` bytes of
 * stack, in frames of 256 bytes that are each written, so that the stack is really used. */
static __attribute__((noinline)) uint32_t gf_fault_deep_call(uint32_t bytes)
{
    volatile uint8_t frame[256];
    frame[0] = (uint8_t)bytes;
    frame[sizeof(frame) - 1] = (uint8_t)(bytes >> 8);
    if (bytes > sizeof(frame))
        return gf_fault_deep_call(bytes - (uint32_t)sizeof(frame)) + frame[0] + frame[sizeof(frame) - 1];
    return frame[0];
}
#endif

/* Core 0, before a layer's first tile: its resident operands (loaded once, before the pipeline starts) and tile 0's
 * loads, all on load queue 0. Also what bind_layer records for a one-tile layer (gf_run_t.fast). */
static void issue_prologue(gf_run_t *R)
{
    const gf_layer_t *L = R->L;
    /* resident operands: loaded once, before the pipeline starts (tile 0's geometry: its slot, bound with the run
     * record: bind_layer) */
    const gf_tile_t *T0 = &R->tiles[0];
    if (L->tiling == GF_TILING_LINEAR)
        load_flat(R, &R->load_q[0], &R->ops->in, 0, R->l1[0][GF_OP_IN], R->bounce[0][GF_OP_IN],
                  (uint32_t)(L->k * elem_bytes(L->in_t)));
    if (L->tiling == GF_TILING_ELTWISE && L->in_resident) /* broadcast operands: whole, once */
        load_flat(R, &R->load_q[0], &R->ops->in, 0, R->l1[0][GF_OP_IN], R->bounce[0][GF_OP_IN], L->buf_in);
    if (L->tiling == GF_TILING_ELTWISE && L->in2_resident)
        load_flat(R, &R->load_q[0], &R->ops->in2, 0, R->l1[0][GF_OP_IN2], R->bounce[0][GF_OP_IN2], L->buf_in2);
    if (L->tiling == GF_TILING_SCAN) { /* B and C: whole, once */
        load_flat(R, &R->load_q[0], &R->ops->in3, 0, R->l1[0][GF_OP_IN3], R->bounce[0][GF_OP_IN3], L->buf_in3);
        load_flat(R, &R->load_q[0], &R->ops->in4, 0, R->l1[0][GF_OP_IN4], R->bounce[0][GF_OP_IN4], L->buf_in4);
    }
    if (L->w_resident)
        load_weights(R, &R->load_q[0], T0, 0);
    if (L->p_resident)
        load_params(R, &R->load_q[0], T0, 0);
    if (L->w_resident && L->buf_wp) { /* resident packed weights: unpacked once, before any barrier */
        q_wait(&R->load_q[0]);
        unpack_rows(L, R->l1[0][GF_OP_WP], (int8_t *)R->l1[0][GF_OP_W], T0->con);
    }
    /* tile 0's loads join the resident ones in flight: the first tile's wait covers both */
    load_tile_in(R, 0);
}

/* Core 0: n recorded commands (gf_run_t.fast) issued on the empty queue q, the L1 ends from the layer's first buffer. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void fast_issue(gf_run_t *R, gf_queue_t *q, const gf_fast_cmd_t *c, int32_t n, pi_cl_dma_dir_e dir)
{
    uint8_t *base = R->l1_base;
    for (int32_t i = 0; i < n; i++)
        pi_cl_dma_cmd((uintptr_t)c[i].ext, (uintptr_t)(base + c[i].off), c[i].size, dir, &q->cmd[i]);
    q->n = n;
    R->st->dma_cmds += (uint32_t)n;
}

/* ---- the tile loop of one layer, run by every forked core ---- */
/* The layer's tiles on `core`. The task's fork has the most cores of its layers: the layer's own `cores`
 * (L->cores) compute, the others only take part in the barriers (an empty share). Inlined into tile_loop (called
 * once): the compute cores' deepest call chain is tile_loop's frame and the kernel's, as with one fork per layer. */
static inline void layer_tiles(gf_run_t *R, int core)
{
    const gf_layer_t *L = R->L;
    int ncores = L->cores;
    int computes = core < ncores;
    int32_t nt = R->ntiles;
    /* this core's counters around its share of the layer: reset and started after the barrier that publishes the
     * layer's control block, read before the layer's last barrier (so that where PI_PERF_CYCLES is one timer for the
     * whole cluster, pulp-sdk, every core reads it before core 0 resets it for its bookkeeping: layer_out) */
    pi_perf_reset();
    pi_perf_start();
#ifdef GF_FAULT_DEEP_CALL
    if (core == 0)
        (void)gf_fault_deep_call(GF_FAULT_DEEP_CALL);
#endif
    if (core == 0) {
        if (R->fast_loads) { /* a one-tile layer over L2: its recorded loads (bind_layer) */
            fast_issue(R, &R->load_q[0], R->fast, R->fast_loads, PI_CL_DMA_DIR_EXT2LOC);
            R->st->l2_to_l1 += R->fast_in_bytes;
        } else {
            issue_prologue(R);
        }
    }
    for (int32_t t = 0; t < nt; t++) {
        int b = R->nbuf[GF_OP_OUT] == 2 ? (int)(t & 1) : 0;
        if (core == 0) {
            if (!(L->fault & GF_FAULT_NO_DMA_WAIT))
                q_wait(&R->load_q[b]);
            if ((L->tiling == GF_TILING_GEMM || (L->tiling == GF_TILING_CONV && L->buf_col)) && L->buf_wp &&
                !L->w_resident)
                unpack_gemm_tile(R, b);
            if (t + 1 < nt && !L->single_buffer)
                load_tile(R, t + 1, b ^ 1);
        }
        if (!(L->fault & GF_FAULT_NO_BARRIER))
            pi_cl_team_barrier(); /* tile t is in L1 for every core */
        const gf_tile_t *T = &R->tiles[b]; /* written by core 0 before the barrier */
        if (!computes)
            ; /* a core of the task's fork beyond the layer's cores: the barriers only */
        else if (L->tiling == GF_TILING_CONV)
            compute_conv(R, T, b, core, ncores);
        else if (L->tiling == GF_TILING_LINEAR)
            compute_linear(R, T, b, core, ncores);
        else if (L->tiling == GF_TILING_ROWS)
            compute_rows(R, T, b, core, ncores);
        else if (L->tiling == GF_TILING_GEMM)
            compute_gemm(R, T, b, core, ncores);
        else if (L->tiling == GF_TILING_SCAN)
            compute_scan(R, T, b, core, ncores);
        else
            compute_eltwise(R, T, b, core, ncores);
        pi_cl_team_barrier(); /* every core finished writing tile t */
        if (L->pool_kh) { /* a fused max pool: the conv tile pooled into the output buffer */
            if (computes)
                pool_tile(R, T, b, core, ncores);
            pi_cl_team_barrier(); /* every core finished pooling tile t */
        }
        if (core == 0 && R->fast_loads) { /* its recorded store (one tile) */
            fast_issue(R, &R->store_q[0], R->fast + R->fast_loads, R->fast_stores, PI_CL_DMA_DIR_LOC2EXT);
            R->st->l1_to_l2 += R->fast_out_bytes;
        } else if (core == 0) {
            if (L->single_buffer) { /* one buffer per operand: store, then load the next tile into it */
                store_tile(R, 0);
                q_wait(&R->store_q[0]);
                if (t + 1 < nt)
                    load_tile(R, t + 1, 0);
            } else {
                if (t > 0)
                    q_wait(&R->store_q[b ^ 1]);
                store_tile(R, b);
            }
        }
    }
    if (core == 0) {
        q_wait(&R->store_q[0]);
        q_wait(&R->store_q[1]);
        q_wait(&R->load_q[0]);
        q_wait(&R->load_q[1]);
    }
    if (core < GF_CLUSTER_CORES) {
        R->core_cycles[core] = pi_perf_read(PI_PERF_CYCLES);
        R->core_instr[core] = pi_perf_read(PI_PERF_INSTR);
    }
    pi_cl_team_barrier(); /* every core read its counters; the layer's tiles are stored */
}

/* L1 bytes of the layer's buffers: every buffer of every operand, each 8-byte aligned. */
static uint32_t l1_total(const gf_run_t *R)
{
    uint32_t total = 0;
    for (int k = 0; k < GF_OP_N; k++)
        total += (uint32_t)R->nbuf[k] * GF_ALIGN(R->bytes[k]);
    return total;
}

/* The layer's buffers: bytes and count of each operand, and the tile count. Every field it sets is
 * set unconditionally, so it clears nothing: clearing costs the FC a byte-wise memset where the libc
 * has only that (pulp-sdk's pulpos: about 4 k FC cycles per layer measured on gvsoc siracusa,
 * docs/gap9.md). */
static void buffer_layout(gf_run_t *R, const gf_layer_t *L, const gf_operands_t *ops)
{
    R->L = L;
    R->ops = ops;
    R->ntiles = gf_layer_tiles(L);
    int nb = R->ntiles > 1 && !L->single_buffer ? 2 : 1;
    R->bytes[GF_OP_IN] = L->buf_in;
    R->bytes[GF_OP_IN2] = L->buf_in2;
    R->bytes[GF_OP_W] = L->buf_w;
    R->bytes[GF_OP_P] = L->buf_p;
    R->bytes[GF_OP_OUT] = L->buf_out;
    R->bytes[GF_OP_WP] = L->buf_wp;
    R->bytes[GF_OP_IN3] = L->buf_in3;
    R->bytes[GF_OP_IN4] = L->buf_in4;
    R->nbuf[GF_OP_IN3] = L->buf_in3 ? 1 : 0; /* scan: B and C, resident */
    R->nbuf[GF_OP_IN4] = L->buf_in4 ? 1 : 0;
    R->nbuf[GF_OP_IN] = L->buf_in ? (L->in_resident ? 1 : nb) : 0;
    R->nbuf[GF_OP_IN2] = L->buf_in2 ? (L->in2_resident ? 1 : nb) : 0;
    R->nbuf[GF_OP_W] = L->buf_w ? (L->w_resident ? 1 : nb) : 0;
    R->nbuf[GF_OP_P] = L->buf_p ? (L->p_resident ? 1 : nb) : 0;
    R->nbuf[GF_OP_OUT] = L->buf_out ? nb : 0;
    R->nbuf[GF_OP_WP] = L->buf_wp ? (L->w_resident ? 1 : nb) : 0;
    R->bytes[GF_OP_COL] = (uint32_t)L->cores * GF_ALIGN(L->buf_col); /* SIMD kernels: one work buffer per core */
    R->nbuf[GF_OP_COL] = L->buf_col ? 1 : 0;
    R->bytes[GF_OP_MID] = L->buf_mid; /* a fused max pool's conv tile: one buffer, L1 only */
    R->nbuf[GF_OP_MID] = L->buf_mid ? 1 : 0;
}

static int operand_in_l3(const gf_run_t *R, int k)
{
    const gf_operands_t *o = R->ops;
    switch (k) {
    case GF_OP_IN: return o->in.level == GF_MEM_L3;
    case GF_OP_IN2: return o->in2.level == GF_MEM_L3;
    case GF_OP_OUT: return o->out.level == GF_MEM_L3;
    case GF_OP_IN3: return o->in3.level == GF_MEM_L3;
    case GF_OP_IN4: return o->in4.level == GF_MEM_L3;
    case GF_OP_W: return !R->L->buf_wp && o->params.level == GF_MEM_L3; /* packed: GF_OP_W never leaves L1 */
    case GF_OP_COL: return 0; /* the SIMD kernels' work buffers: L1 only */
    case GF_OP_MID: return 0; /* a fused max pool's conv tile: L1 only */
    default: return o->params.level == GF_MEM_L3;
    }
}

/* One cluster task: the consecutive cluster layers the FC sent at once (gf_run_task). */
typedef struct {
    gf_net_rec_t *recs;
    int n;
    int status; /* 0, or the first failing layer's GF_ERR_* */
    int failed; /* the index of that layer */
} gf_task_run_t;

/* A one-tile layer with every operand in L2 and int8 weights: the DMA commands core 0 would issue for it (its
 * prologue, then its tile's store) recorded into the run record (gf_run_t.fast), with their bytes, by running the same
 * code with dma() noting each command (the L1 buffers laid out as layer_in lays them, from GF_FAST_BASE). Core 0 then
 * replays them (fast_issue): the same commands, bytes and counters. Anything it cannot replay (a 2-D command, more
 * than GF_FAST_CMDS, more than a queue holds) leaves the generic path. The L1 pointers, queues and slots it sets are
 * the L1 copy's in the run (layer_in sets them again). */
static void bind_fast(gf_run_t *R)
{
    static gf_queue_t q[4]; /* the recording's queues: only their counts are used */
    const gf_layer_t *L = R->L;
    gf_layer_stats_t *keep = R->st, st;
    R->fast_loads = R->fast_stores = 0;
    R->recording = 0;
    if (R->ntiles != 1 || R->l3_ops || L->buf_wp || L->fault)
        return;
    gf_clear_words(&st, sizeof(st));
    R->st = &st;
    R->load_q = &q[0];
    R->store_q = &q[2];
    for (int i = 0; i < 4; i++)
        q[i].n = 0;
    R->tiles = R->slot;
    for (int j = 0, off = 0; j < GF_OP_N; j++)
        for (int i = 0; i < 2; i++) {
            R->l1[i][j] = i < R->nbuf[j] ? (uint8_t *)(uintptr_t)(GF_FAST_BASE + (uint32_t)off) : NULL;
            off += i < R->nbuf[j] ? (int)GF_ALIGN(R->bytes[j]) : 0;
        }
    R->recording = 1;
    issue_prologue(R);
    uint64_t in_bytes = st.l2_to_l1;
    store_tile(R, 0);
    int ok = R->recording == 1 && R->fast_loads > 0 && R->fast_stores > 0 && st.l3_to_l2 == 0 && st.l2_to_l3 == 0 &&
             st.dma_cmds == (uint32_t)(R->fast_loads + R->fast_stores);
    R->recording = 0;
    R->fast_in_bytes = (uint32_t)in_bytes;
    R->fast_out_bytes = (uint32_t)(st.l1_to_l2);
    if (!ok)
        R->fast_loads = R->fast_stores = 0;
    R->st = keep;
}

/* Binds a layer's run record, beside its descriptor and operands in its record (one block: layer_in copies it with
 * one DMA command): its buffers (buffer_layout), stats pointer, L1 bytes, cores and L3 operands; returns the L2 bytes
 * of its L3 operands' bounce buffers. The L1 pointers are set by core 0 in the record's L1 copy, the stats are
 * cleared there, the bounce pointers by gf_net_bounce (read only for L3 operands). */
static uint32_t bind_layer(gf_net_rec_t *rec, gf_layer_stats_t *stats, struct pi_device *ram)
{
    _Static_assert(sizeof(gf_layer_stats_t) % 4 == 0, "gf_layer_stats_t: whole words");
    gf_run_t *R = &rec->run;
    const gf_layer_t *L = &rec->layer;
    buffer_layout(R, L, &rec->ops);
    R->pl = param_layout(L);
    tile_geometry(L, 0, &R->slot[0]);
    R->st = stats;
    R->ram = ram;
    R->l1_bytes = l1_total(R);
    R->cores = L->cores;
    uint32_t bounce = 0;
    R->l3_ops = 0;
    for (int k = 0; k < GF_OP_N; k++)
        if (R->nbuf[k] && operand_in_l3(R, k)) {
            R->l3_ops |= 1u << k;
            bounce += (uint32_t)R->nbuf[k] * GF_ALIGN(R->bytes[k]);
        }
    bind_fast(R);
    bind_rq(R);
    return bounce;
}

uint32_t gf_net_bind(gf_net_rec_t *recs, gf_layer_stats_t *stats, int n, struct pi_device *ram)
{
    uint32_t most = 0;
    for (int k = 0; k < n; k++) {
        uint32_t b = bind_layer(&recs[k], &stats[k], ram);
        most = b > most ? b : most;
    }
    return most;
}

void gf_net_bounce(gf_net_rec_t *recs, int n, uint8_t *bounce)
{
    for (int j = 0; j < n; j++) { /* each layer's L3 operands from the area's start (one layer runs at a time) */
        gf_run_t *R = &recs[j].run;
        uint8_t *b = bounce;
        for (int k = 0; R->l3_ops && k < GF_OP_N; k++)
            if (R->l3_ops & (1u << k))
                for (int i = 0; i < R->nbuf[k]; i++) {
                    R->bounce[i][k] = b;
                    b += GF_ALIGN(R->bytes[k]);
                }
    }
}

/* The task's control block in L1, at the start of the task's L1 block: the running layer's control block (what the
 * cores read throughout the layer: its descriptor, run record and operand locations, and the counters core 0 updates
 * per DMA command), copied by core 0 from L2 into L1 before each layer and its counters copied back after it, and the
 * task's own fields, set by the controller before the fork. The cores' accesses to L2 cost tens of cycles each (gvsoc
 * siracusa, docs/gap9.md "The fixed per-layer cost on the cluster"); L1 takes one. */
typedef struct {
    gf_net_rec_t rec; /* the running layer's record (run record, descriptor, operands): one DMA command from L2 */
    gf_layer_stats_t st;
    gf_queue_t load_q[2], store_q[2]; /* core 0's DMA queues (each command's slot is written by core 0 at issue
                                       * and read at its wait: in L2 they cost about 25 cycles an access) */
    /* the task (the controller, before the fork) */
    gf_net_rec_t *recs; /* the layers' records (L2) */
    uint8_t *buf;     /* the layers' buffers: the block after the control block (each layer from its start) */
    int32_t n;        /* layers */
    /* core 0's bookkeeping counters of the running layer: its control block's copy in (layer_in) */
    uint32_t in_cycles, in_instr;
    /* the controller's counters before the fork (allocation, the task's fields): the first layer's */
    uint32_t cc_cycles0, cc_instr0;
} gf_ctl_t;

_Static_assert(sizeof(gf_ctl_t) % 4 == 0 && sizeof(gf_run_t) % 4 == 0 && sizeof(gf_layer_t) % 4 == 0 &&
                   sizeof(gf_operands_t) % 4 == 0 && sizeof(gf_net_rec_t) % 4 == 0,
               "the control block: whole words");
#if UINTPTR_MAX == 0xffffffffu
_Static_assert(sizeof(gf_ctl_t) <= GF_L1_CONTROL_BYTES, "the control block exceeds its L1 reserve (GF_L1_CONTROL_BYTES)");
#define GF_CTL_AT(block) ((gf_ctl_t *)(block))
#else
/* 64-bit host (gap9-emu): the structs are wider than the device's, so they live in host memory; the task still
 * allocates the device's GF_L1_CONTROL_BYTES with its buffers, so the emulated L1 use is the device's. */
static gf_ctl_t gf_emu_ctl;
#define GF_CTL_AT(block) ((void)(block), &gf_emu_ctl)
#endif

/* The control block's copies between L2 and L1: on the device by the cluster DMA (one command of about 1 KB in, one
 * back: the controller's own L2 loads cost it about 25 cycles a word on gvsoc siracusa, docs/gap9.md), in the
 * emulation by word copies (its DMA moves only between its L1 and L2 pools, and counts what it moves as the
 * layer's traffic). Neither counts in the layer's DMA counters: the plan's bytes are the tiles'. */
static void ctl_copy(void *l1, void *l2, uint32_t bytes, pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd)
{
#ifdef GF_GAP9_EMU
    (void)cmd;
    if (dir == PI_CL_DMA_DIR_EXT2LOC)
        gf_copy_words(l1, l2, bytes);
    else
        gf_copy_words(l2, l1, bytes);
#else
    pi_cl_dma_cmd((uintptr_t)l2, (uintptr_t)l1, bytes, dir, cmd);
#endif
}

static void ctl_wait(pi_cl_dma_cmd_t *cmd, int n)
{
#ifdef GF_GAP9_EMU
    (void)cmd;
    (void)n;
#else
    for (int i = 0; i < n; i++)
        pi_cl_dma_cmd_wait(&cmd[i]);
#endif
}

/* Core 0, before layer k (the other cores wait at the barrier after it): the layer's control block into L1 (its run
 * record, descriptor and operands; its stats cleared there), its L1 pointers (the buffers from the start of the task's buffer area),
 * its empty DMA queues. Its own counters around it: the first part of the layer's bookkeeping (cc_cycles). Not
 * inlined: keeps tile_loop's frame, on the compute cores' deepest call chain, as it was. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void layer_in(gf_ctl_t *C, int k)
{
    gf_run_t *X = &C->rec.run;
    pi_perf_reset();
    pi_perf_start();
    pi_cl_dma_cmd_t cmd;
    ctl_copy(&C->rec, &C->recs[k], sizeof(C->rec), PI_CL_DMA_DIR_EXT2LOC, &cmd); /* record, descriptor, operands */
    gf_clear_words(&C->st, sizeof(C->st)); /* the layer's counters start here, in L1 (copied back: layer_out) */
    ctl_wait(&cmd, 1);
    C->st.tiles = (uint32_t)X->ntiles;
    X->L = &C->rec.layer;
    X->ops = &C->rec.ops;
    X->st = &C->st;
    X->tiles = X->slot;
    X->load_q = C->load_q;
    X->store_q = C->store_q;
    C->load_q[0].n = C->load_q[1].n = C->store_q[0].n = C->store_q[1].n = 0;
    uint8_t *buf = C->buf;
    X->l1_base = buf;
    for (int j = 0, off = 0; j < GF_OP_N; j++)
        for (int i = 0; i < 2; i++) {
            X->l1[i][j] = i < X->nbuf[j] ? buf + off : NULL;
            off += i < X->nbuf[j] ? (int)GF_ALIGN(X->bytes[j]) : 0;
        }
    C->st.l1_bytes = X->l1_bytes; /* the layer's own buffers (GF MEM l1; the task's block holds its largest) */
    C->in_cycles = pi_perf_read(PI_PERF_CYCLES);
    C->in_instr = pi_perf_read(PI_PERF_INSTR);
}

/* Core 0, after layer k's last barrier (every core read its counters): the busiest core's counters into the layer's
 * stats, the stats back to L2, then the layer's bookkeeping figures (layer_in's and this copy back; on the first
 * layer also the controller's before the fork) straight into its L2 stats. Not inlined (as layer_in). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void layer_out(gf_ctl_t *C, int k)
{
    gf_run_t *R = &C->recs[k].run, *X = &C->rec.run;
    pi_perf_reset();
    pi_perf_start();
    pi_cl_dma_cmd_t cmd;
    for (int c = 0; c < X->cores && c < GF_CLUSTER_CORES; c++) { /* the busiest core (first of equals) */
        if (X->core_cycles[c] > C->st.cycles_max) {
            C->st.cycles_max = X->core_cycles[c];
            C->st.cycles_core = (uint32_t)c;
        }
        if (X->core_instr[c] > C->st.instr_max) {
            C->st.instr_max = X->core_instr[c];
            C->st.instr_core = (uint32_t)c;
        }
    }
    gf_layer_stats_t *st = R->st; /* the layer's stats in L2 */
    ctl_copy(&C->st, st, sizeof(*st), PI_CL_DMA_DIR_LOC2EXT, &cmd);
    ctl_wait(&cmd, 1);
    uint32_t cycles = C->in_cycles + pi_perf_read(PI_PERF_CYCLES), instr = C->in_instr + pi_perf_read(PI_PERF_INSTR);
    st->bk_cycles = cycles;
    st->bk_instr = instr;
    if (k == 0) {
        cycles += C->cc_cycles0;
        instr += C->cc_instr0;
    }
    st->cc_cycles = cycles;
    st->cc_instr = instr;
#ifdef GF_GAP9_EMU
    gf_emu_layer_end(); /* the emulator's per-step counters (GF EMU, GF CORES): this layer's (core 0, in the fork) */
#endif
}

/* ---- the task's fork, run by every forked core ---- */
/* The task's layers in order, in one fork: per layer core 0 copies its control block in (layer_in), a barrier
 * publishes it, every core runs the layer's tile loop (layer_tiles, ending with a barrier), core 0 copies its counters
 * back (layer_out); a last barrier, then the counters stop (after core 0's last read: pulp-sdk's cycle counter is
 * the cluster's). */
static void tile_loop(void *arg)
{
    gf_ctl_t *C = (gf_ctl_t *)arg;
    int core = pi_core_id();
    int32_t n = C->n;
    pi_perf_conf(1 << PI_PERF_CYCLES | 1 << PI_PERF_INSTR);
    for (int32_t k = 0; k < n; k++) {
        if (core == 0)
            layer_in(C, (int)k);
        pi_cl_team_barrier(); /* layer k's control block is in L1 */
        layer_tiles(&C->rec.run, core);
        if (core == 0)
            layer_out(C, (int)k);
    }
    pi_cl_team_barrier();
    pi_perf_stop();
}

/* Cluster controller (core 8): one L1 block for the task (the control block, then the buffers of its largest
 * layer: the layers use them one after the other), one fork of the most cores of its layers, one free. A failed
 * allocation is reported (the block's bytes, the task and its largest layer) and fails the task before any layer
 * runs (GF_ERR_L1_ALLOC, *failed = that layer); nothing is forked, so no core ever touches a NULL buffer. The
 * controller's own counters cover its work outside the fork: before it (allocation, the task's fields) counted
 * on the first layer's cc_cycles, after it (the free) on the last layer's. */
static void cluster_entry(void *arg)
{
    gf_task_run_t *T = (gf_task_run_t *)arg;
    pi_perf_conf(1 << PI_PERF_CYCLES | 1 << PI_PERF_INSTR);
    pi_perf_reset();
    pi_perf_start();
    uint32_t most = 0;
    int32_t cores = 1;
    int big = 0;
    for (int k = 0; k < T->n; k++) {
        const gf_run_t *R = &T->recs[k].run;
        if (R->l1_bytes > most) {
            most = R->l1_bytes;
            big = k;
        }
        cores = R->cores > cores ? R->cores : cores;
    }
    uint32_t block_bytes = GF_L1_CONTROL_BYTES + most;
    uint8_t *block = (uint8_t *)pi_cl_l1_malloc(NULL, (int)block_bytes);
    if (block == NULL) {
        printf("GF ERROR L1 allocation of %u bytes failed (task of %d layers from %s: its control block and the %u "
               "bytes of L1 buffers of its largest layer %s)\n", (unsigned)block_bytes, T->n, T->recs[0].layer.name,
               (unsigned)most, T->recs[big].layer.name);
        pi_perf_stop();
        T->status = GF_ERR_L1_ALLOC;
        T->failed = big;
        return;
    }
    gf_ctl_t *C = GF_CTL_AT(block);
    C->recs = T->recs;
    C->buf = block + GF_L1_CONTROL_BYTES;
    C->n = T->n;
    pi_perf_stop();
    C->cc_cycles0 = pi_perf_read(PI_PERF_CYCLES);
    C->cc_instr0 = pi_perf_read(PI_PERF_INSTR);
    pi_cl_team_fork(cores, tile_loop, C);
    pi_perf_conf(1 << PI_PERF_CYCLES | 1 << PI_PERF_INSTR);
    pi_perf_reset();
    pi_perf_start();
    pi_cl_l1_free(NULL, block, (int)block_bytes);
    pi_perf_stop();
    gf_layer_stats_t *st = T->recs[T->n - 1].run.st;
    st->cc_cycles += pi_perf_read(PI_PERF_CYCLES);
    st->cc_instr += pi_perf_read(PI_PERF_INSTR);
}

int gf_run_task(struct pi_device *cluster, gf_net_rec_t *recs, int n, int core_stack_bytes, int *failed)
{
    static gf_task_run_t T; /* read by the cluster controller (L2) */
    struct pi_cluster_task task;
    *failed = 0;
    if (n < 1 || n > GF_TASK_MAX_LAYERS)
        return GF_ERR_TASK;
    T.recs = recs;
    T.n = n;
    T.status = 0;
    T.failed = 0;
    pi_cluster_task(&task, cluster_entry, &T);
    pi_cluster_task_stacks(&task, NULL, core_stack_bytes); /* compute-core stacks, allocated in L1 by PMSIS */
    if (pi_cluster_send_task_to_cl(cluster, &task) != 0)
        return GF_ERR_CLUSTER;
    *failed = T.failed;
    return T.status;
}
