/*
 * Test driver for the GAP9 PMSIS emulator (tests/test_pmsis_emu.py): `emu_check SCENARIO [ARGS]`
 * runs one scenario written the way gapforge's generated GAP9 code uses PMSIS. Scenarios that
 * must succeed print their results and exit 0; scenarios that exercise a misuse are expected to
 * be stopped by the emulator (exit 3, "GF EMU ERROR ..."), so reaching their end exits 1.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmsis.h"
#include "bsp/bsp.h"
#ifdef GF_GAP9_EMU
#include "gf_emu.h"
#endif

static struct pi_device cluster;
static struct pi_device ram;

static void open_cluster(void)
{
    struct pi_cluster_conf conf;
    pi_cluster_conf_init(&conf);
    conf.id = 0;
    conf.cc_stack_size = 4096;
    conf.icache_conf = 1;
    pi_open_from_conf(&cluster, &conf);
    if (pi_cluster_open(&cluster)) {
        printf("cluster open failed\n");
        exit(1);
    }
}

static void open_ram(void)
{
    static struct pi_default_ram_conf conf;
    pi_default_ram_conf_init(&conf);
    pi_open_from_conf(&ram, &conf);
    if (pi_ram_open(&ram)) {
        printf("ram open failed\n");
        exit(1);
    }
}

static void run_task(void (*entry)(void *), void *arg)
{
    struct pi_cluster_task task;
    pi_cluster_task(&task, entry, arg);
    pi_cluster_task_stacks(&task, NULL, 1024);
    pi_cluster_send_task_to_cl(&cluster, &task);
}

static uint8_t f(uint8_t x)
{
    return (uint8_t)(x * 3u + 1u);
}

/* ---- pipeline: L3 -> L2 (FC), double-buffered L2 <-> L1 DMA driven by core 0 inside one fork,
 * compute split over the cores with barriers, L2 -> L3 (FC). */

static struct {
    uint8_t *l2_in, *l2_out; /* whole tensors in L2 */
    uint8_t *in[2], *out[2]; /* L1 double buffers */
    pi_cl_dma_cmd_t load[2], store[2];
    int tiles, tile_bytes, cores;
} P;

static void pipeline_worker(void *arg)
{
    int id = pi_core_id(), n = pi_cl_team_nb_cores(), t, j;
    (void)arg;
    if (id == 0)
        pi_cl_dma_cmd((uintptr_t)P.l2_in, (uintptr_t)P.in[0], (uint32_t)P.tile_bytes, PI_CL_DMA_DIR_EXT2LOC,
                      &P.load[0]);
    for (t = 0; t < P.tiles; t++) {
        int b = t % 2, lo = P.tile_bytes * id / n, hi = P.tile_bytes * (id + 1) / n;
        if (id == 0) {
            pi_cl_dma_cmd_wait(&P.load[b]);
            if (t + 1 < P.tiles) /* prefetch the next tile while this one is computed */
                pi_cl_dma_cmd((uintptr_t)(P.l2_in + (size_t)(t + 1) * P.tile_bytes), (uintptr_t)P.in[1 - b],
                              (uint32_t)P.tile_bytes, PI_CL_DMA_DIR_EXT2LOC, &P.load[1 - b]);
            if (t >= 2) /* out[b] is free again once the store of tile t-2 completed */
                pi_cl_dma_cmd_wait(&P.store[b]);
        }
        pi_cl_team_barrier(); /* tile t loaded, out[b] free */
        for (j = lo; j < hi; j++)
            P.out[b][j] = f(P.in[b][j]);
        pi_cl_team_barrier(); /* tile t computed */
        if (id == 0)
            pi_cl_dma_cmd((uintptr_t)(P.l2_out + (size_t)t * P.tile_bytes), (uintptr_t)P.out[b],
                          (uint32_t)P.tile_bytes, PI_CL_DMA_DIR_LOC2EXT, &P.store[b]);
    }
    if (id == 0) {
        if (P.tiles >= 2)
            pi_cl_dma_cmd_wait(&P.store[P.tiles % 2]);
        pi_cl_dma_cmd_wait(&P.store[(P.tiles - 1) % 2]);
    }
}

static void pipeline_task(void *arg)
{
    int i;
    (void)arg;
    for (i = 0; i < 2; i++) {
        P.in[i] = (uint8_t *)pi_cl_l1_malloc(NULL, P.tile_bytes);
        P.out[i] = (uint8_t *)pi_cl_l1_malloc(NULL, P.tile_bytes);
    }
    pi_cl_team_fork(P.cores, pipeline_worker, NULL);
    for (i = 0; i < 2; i++) {
        pi_cl_l1_free(NULL, P.in[i], P.tile_bytes);
        pi_cl_l1_free(NULL, P.out[i], P.tile_bytes);
    }
}

static int scenario_pipeline(int argc, char **argv)
{
    int total, i, bad = 0;
    uint32_t a_in, a_out;
    uint8_t *host;
    if (argc < 5)
        return 2;
    P.tiles = atoi(argv[2]);
    P.tile_bytes = atoi(argv[3]);
    P.cores = atoi(argv[4]);
    total = P.tiles * P.tile_bytes;
    open_cluster();
    open_ram();
    host = (uint8_t *)malloc((size_t)total);
    for (i = 0; i < total; i++)
        host[i] = (uint8_t)(i * 7 + 3);
    pi_ram_alloc(&ram, &a_in, (uint32_t)total);
    pi_ram_alloc(&ram, &a_out, (uint32_t)total);
    pi_ram_write(&ram, a_in, host, (uint32_t)total);
    P.l2_in = (uint8_t *)pi_l2_malloc(total);
    P.l2_out = (uint8_t *)pi_l2_malloc(total);
    pi_ram_read(&ram, a_in, P.l2_in, (uint32_t)total);
    run_task(pipeline_task, NULL);
    pi_ram_write(&ram, a_out, P.l2_out, (uint32_t)total);
    memset(P.l2_out, 0, (size_t)total);
    pi_ram_read(&ram, a_out, host, (uint32_t)total);
    for (i = 0; i < total; i++)
        if (host[i] != f((uint8_t)(i * 7 + 3)))
            bad++;
    printf("pipeline mismatches=%d\n", bad);
    gf_emu_print_stats("pipeline");
    pi_l2_free(P.l2_in, total);
    pi_l2_free(P.l2_out, total);
    pi_ram_free(&ram, a_in, (uint32_t)total);
    pi_ram_free(&ram, a_out, (uint32_t)total);
    pi_ram_close(&ram);
    pi_cluster_close(&cluster);
    free(host);
    return bad != 0;
}

/* ---- poison: the destination holds 0xA5 between issue and wait, the data after the wait. */

static struct {
    uint8_t *l2, *l1;
    int n;
} Q;

static int all_are(const uint8_t *p, int n, uint8_t v)
{
    int i;
    for (i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

static void poison_task(void *arg)
{
    pi_cl_dma_cmd_t cmd;
    int i, ok;
    (void)arg;
    Q.l1 = (uint8_t *)pi_cl_l1_malloc(NULL, Q.n);
    pi_cl_dma_cmd((uintptr_t)Q.l2, (uintptr_t)Q.l1, (uint32_t)Q.n, PI_CL_DMA_DIR_EXT2LOC, &cmd);
    printf("ext2loc before_wait_all_a5=%d\n", all_are(Q.l1, Q.n, 0xA5));
    pi_cl_dma_cmd_wait(&cmd);
    ok = 1;
    for (i = 0; i < Q.n; i++)
        ok &= Q.l1[i] == (uint8_t)i;
    printf("ext2loc after_wait_ok=%d\n", ok);
    for (i = 0; i < Q.n; i++)
        Q.l1[i] = (uint8_t)(255 - i);
    pi_cl_dma_cmd((uintptr_t)Q.l2, (uintptr_t)Q.l1, (uint32_t)Q.n, PI_CL_DMA_DIR_LOC2EXT, &cmd);
    printf("loc2ext before_wait_all_a5=%d\n", all_are(Q.l2, Q.n, 0xA5));
    pi_cl_dma_cmd_wait(&cmd);
    ok = 1;
    for (i = 0; i < Q.n; i++)
        ok &= Q.l2[i] == (uint8_t)(255 - i);
    printf("loc2ext after_wait_ok=%d\n", ok);
    pi_cl_l1_free(NULL, Q.l1, Q.n);
}

static void setup_q(int n)
{
    int i;
    open_cluster();
    Q.n = n;
    Q.l2 = (uint8_t *)pi_l2_malloc(n);
    for (i = 0; i < n; i++)
        Q.l2[i] = (uint8_t)i;
}

static int scenario_poison(void)
{
    setup_q(200);
    run_task(poison_task, NULL);
    gf_emu_print_stats("poison");
    return 0;
}

/* ---- misuses of cluster DMA, each stopped by the emulator */

static int g_mode;
static uint8_t host_buffer[256];

static void dma_misuse_task(void *arg)
{
    pi_cl_dma_cmd_t cmd, cmds[17];
    int i;
    (void)arg;
    Q.l1 = (uint8_t *)pi_cl_l1_malloc(NULL, Q.n);
    switch (g_mode) {
    case 0: /* never waited: reported when the task returns */
        pi_cl_dma_cmd((uintptr_t)Q.l2, (uintptr_t)Q.l1, 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
        return;
    case 1: /* source modified before the wait */
        pi_cl_dma_cmd((uintptr_t)Q.l2, (uintptr_t)Q.l1, 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
        Q.l2[10] ^= 1;
        pi_cl_dma_cmd_wait(&cmd);
        break;
    case 2: /* destination written before the wait */
        pi_cl_dma_cmd((uintptr_t)Q.l2, (uintptr_t)Q.l1, 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
        Q.l1[3] = 0;
        pi_cl_dma_cmd_wait(&cmd);
        break;
    case 3: /* waited twice */
        pi_cl_dma_cmd((uintptr_t)Q.l2, (uintptr_t)Q.l1, 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
        pi_cl_dma_cmd_wait(&cmd);
        pi_cl_dma_cmd_wait(&cmd);
        break;
    case 4: /* never issued */
        memset(&cmd, 0, sizeof cmd);
        pi_cl_dma_cmd_wait(&cmd);
        break;
    case 5: /* 17 commands in flight */
        for (i = 0; i < 17; i++)
            pi_cl_dma_cmd((uintptr_t)(Q.l2 + 8 * i), (uintptr_t)(Q.l1 + 8 * i), 8, PI_CL_DMA_DIR_EXT2LOC, &cmds[i]);
        break;
    case 6: /* ext in host memory (a static array, not from pi_l2_malloc) */
        pi_cl_dma_cmd((uintptr_t)host_buffer, (uintptr_t)Q.l1, 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
        break;
    case 7: /* ext in L1 */
        pi_cl_dma_cmd((uintptr_t)Q.l1, (uintptr_t)Q.l1, 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
        break;
    case 8: /* loc in L2 */
        pi_cl_dma_cmd((uintptr_t)Q.l2, (uintptr_t)Q.l2, 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
        break;
    case 9: /* loc range runs past its L1 allocation */
        pi_cl_dma_cmd((uintptr_t)Q.l2, (uintptr_t)(Q.l1 + Q.n - 8), 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
        break;
    case 10: /* ext range runs past its L2 allocation */
        pi_cl_dma_cmd((uintptr_t)(Q.l2 + Q.n - 8), (uintptr_t)Q.l1, 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
        break;
    case 11: /* 1-D size not below 64 KiB */
        pi_cl_dma_cmd((uintptr_t)Q.l2, (uintptr_t)Q.l1, 65536, PI_CL_DMA_DIR_EXT2LOC, &cmd);
        break;
    case 12: /* 2-D size not a multiple of the line length */
        pi_cl_dma_cmd_2d((uintptr_t)Q.l2, (uintptr_t)Q.l1, 100, 64, 30, PI_CL_DMA_DIR_EXT2LOC, &cmd);
        break;
    case 13: /* 2-D stride not below 64 KiB */
        pi_cl_dma_cmd_2d((uintptr_t)Q.l2, (uintptr_t)Q.l1, 64, 65536, 32, PI_CL_DMA_DIR_EXT2LOC, &cmd);
        break;
    case 14: /* flushed command waited afterwards */
        pi_cl_dma_cmd((uintptr_t)Q.l2, (uintptr_t)Q.l1, 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
        pi_cl_dma_flush();
        pi_cl_dma_cmd_wait(&cmd);
        break;
    case 15: /* L2 buffer freed while a transfer uses it */
        pi_cl_dma_cmd((uintptr_t)Q.l2, (uintptr_t)Q.l1, 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
        pi_l2_free(Q.l2, Q.n);
        break;
    case 16: /* size 0 */
        pi_cl_dma_cmd((uintptr_t)Q.l2, (uintptr_t)Q.l1, 0, PI_CL_DMA_DIR_EXT2LOC, &cmd);
        break;
    default:
        break;
    }
    printf("misuse %d not detected\n", g_mode);
    exit(1);
}

static int scenario_dma_misuse(int mode)
{
    setup_q(1024);
    g_mode = mode;
    run_task(dma_misuse_task, NULL);
    return 1;
}

static int scenario_dma_from_fc(void)
{
    pi_cl_dma_cmd_t cmd;
    setup_q(64);
    Q.l1 = (uint8_t *)pi_cl_l1_malloc(&cluster, 64);
    pi_cl_dma_cmd((uintptr_t)Q.l2, (uintptr_t)Q.l1, 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
    return 1;
}

/* ---- flush completes every command in flight, in order */

static void flush_task(void *arg)
{
    pi_cl_dma_cmd_t cmds[16];
    int i, ok = 1;
    (void)arg;
    Q.l1 = (uint8_t *)pi_cl_l1_malloc(NULL, Q.n);
    for (i = 0; i < 16; i++)
        pi_cl_dma_cmd((uintptr_t)(Q.l2 + 64 * i), (uintptr_t)(Q.l1 + 64 * i), 64, PI_CL_DMA_DIR_EXT2LOC, &cmds[i]);
    pi_cl_dma_flush();
    for (i = 0; i < Q.n; i++)
        ok &= Q.l1[i] == (uint8_t)i;
    printf("flush ok=%d\n", ok);
    pi_cl_l1_free(NULL, Q.l1, Q.n);
}

static int scenario_flush(void)
{
    setup_q(1024);
    run_task(flush_task, NULL);
    gf_emu_print_stats("flush");
    return 0;
}

/* ---- 2-D DMA: a strided box of an L2 image to contiguous L1 and back to another L2 image */

#define IMG_H 9
#define IMG_W 70
static void dma2d_task(void *arg)
{
    /* box: rows 2..6 (5 lines), columns 11..33 (23 bytes) of a 9 x 70 image */
    uint8_t *src = Q.l2, *dst = Q.l2 + IMG_H * IMG_W;
    pi_cl_dma_cmd_t cmd;
    int r, c, ok = 1, untouched = 1;
    (void)arg;
    Q.l1 = (uint8_t *)pi_cl_l1_malloc(NULL, 5 * 23);
    pi_cl_dma_cmd_2d((uintptr_t)(src + 2 * IMG_W + 11), (uintptr_t)Q.l1, 5 * 23, IMG_W, 23, PI_CL_DMA_DIR_EXT2LOC,
                     &cmd);
    pi_cl_dma_cmd_wait(&cmd);
    for (r = 0; r < 5; r++)
        for (c = 0; c < 23; c++)
            ok &= Q.l1[r * 23 + c] == (uint8_t)((2 + r) * 31 + (11 + c));
    printf("dma2d ext2loc ok=%d\n", ok);
    /* back into the second image at rows 1..5, columns 40..62 */
    pi_cl_dma_cmd_2d((uintptr_t)(dst + 1 * IMG_W + 40), (uintptr_t)Q.l1, 5 * 23, IMG_W, 23, PI_CL_DMA_DIR_LOC2EXT,
                     &cmd);
    pi_cl_dma_cmd_wait(&cmd);
    ok = 1;
    for (r = 0; r < IMG_H; r++)
        for (c = 0; c < IMG_W; c++) {
            uint8_t v = dst[r * IMG_W + c];
            if (r >= 1 && r < 6 && c >= 40 && c < 63)
                ok &= v == (uint8_t)((2 + r - 1) * 31 + (11 + c - 40));
            else
                untouched &= v == 0x11;
        }
    printf("dma2d loc2ext ok=%d untouched=%d\n", ok, untouched);
    pi_cl_l1_free(NULL, Q.l1, 5 * 23);
}

static int scenario_dma2d(void)
{
    int r, c;
    open_cluster();
    Q.l2 = (uint8_t *)pi_l2_malloc(2 * IMG_H * IMG_W);
    for (r = 0; r < IMG_H; r++)
        for (c = 0; c < IMG_W; c++)
            Q.l2[r * IMG_W + c] = (uint8_t)(r * 31 + c);
    memset(Q.l2 + IMG_H * IMG_W, 0x11, IMG_H * IMG_W);
    run_task(dma2d_task, NULL);
    gf_emu_print_stats("dma2d");
    return 0;
}

/* ---- cores: ids, team size, execution order, barriers */

static char order_log[64];
static int order_len;
static uint8_t *shared_l1;
static int32_t results[8];
static int use_barrier;

static void order_worker(void *arg)
{
    (void)arg;
    order_log[order_len++] = (char)('0' + pi_core_id());
    pi_cl_team_barrier();
    order_log[order_len++] = (char)('0' + pi_core_id());
    order_log[order_len++] = (char)('0' + pi_cl_team_nb_cores());
}

static void order_task(void *arg)
{
    (void)arg;
    printf("task core=%d\n", pi_core_id());
    pi_cl_team_fork(4, order_worker, NULL);
    order_log[order_len] = '\0';
    printf("order=%s\n", order_log);
    order_len = 0;
    pi_cl_team_fork(0, order_worker, NULL); /* 0: all 8 cores; nb_cores is then 8 */
    order_log[order_len] = '\0';
    printf("order8=%s\n", order_log);
    printf("after fork core=%d\n", pi_core_id());
}

static int scenario_cores(void)
{
    open_cluster();
    run_task(order_task, NULL);
    return 0;
}

/* Two phases: each core fills its slice of an L1 array, then sums the slice of core id+1. */
#define SLICE 16
static void phases_worker(void *arg)
{
    int id = pi_core_id(), n = pi_cl_team_nb_cores(), i, other;
    int32_t sum = 0;
    (void)arg;
    for (i = 0; i < SLICE; i++)
        shared_l1[id * SLICE + i] = (uint8_t)(id + 1);
    if (use_barrier)
        pi_cl_team_barrier();
    other = (id + 1) % n;
    for (i = 0; i < SLICE; i++)
        sum += shared_l1[other * SLICE + i];
    results[id] = sum;
}

static void phases_task(void *arg)
{
    (void)arg;
    shared_l1 = (uint8_t *)pi_cl_l1_malloc(NULL, 8 * SLICE);
    pi_cl_team_fork(8, phases_worker, NULL);
    pi_cl_l1_free(NULL, shared_l1, 8 * SLICE);
}

static int scenario_phases(int barrier)
{
    int id, ok = 1;
    open_cluster();
    use_barrier = barrier;
    run_task(phases_task, NULL);
    for (id = 0; id < 8; id++)
        ok &= results[id] == SLICE * ((id + 1) % 8 + 1);
    printf("phases result=%s\n", ok ? "ok" : "wrong");
    return 0;
}

static void mismatch_worker(void *arg)
{
    (void)arg;
    if (pi_core_id() != 2)
        pi_cl_team_barrier();
}

static void mismatch_task(void *arg)
{
    (void)arg;
    pi_cl_team_fork(4, mismatch_worker, NULL);
}

static int scenario_mismatch(void)
{
    open_cluster();
    run_task(mismatch_task, NULL);
    return 1;
}

static pi_cl_dma_cmd_t race_cmd;

static void core_misuse_worker(void *arg)
{
    int id = pi_core_id();
    (void)arg;
    if (g_mode == 1 && id == 1)
        pi_cl_team_fork(2, core_misuse_worker, NULL);
    if (g_mode == 3) { /* core 3 loads, core 2 overwrites the source before the load is waited */
        if (id == 3)
            pi_cl_dma_cmd((uintptr_t)Q.l2, (uintptr_t)Q.l1, 64, PI_CL_DMA_DIR_EXT2LOC, &race_cmd);
        if (id == 2)
            Q.l2[5] = 0;
        pi_cl_team_barrier();
        if (id == 3)
            pi_cl_dma_cmd_wait(&race_cmd);
    }
    if (g_mode == 4 && id == 0)
        pi_cl_team_critical_exit();
    if (g_mode == 5 && id == 0) {
        pi_cl_team_critical_enter();
        pi_cl_team_barrier();
    }
}

static void core_misuse_task(void *arg)
{
    (void)arg;
    Q.l1 = (uint8_t *)pi_cl_l1_malloc(NULL, Q.n);
    if (g_mode == 0)
        pi_cl_team_barrier();
    if (g_mode == 2)
        pi_cl_team_fork(9, core_misuse_worker, NULL);
    pi_cl_team_fork(4, core_misuse_worker, NULL);
    printf("misuse %d not detected\n", g_mode);
    exit(1);
}

static int scenario_core_misuse(int mode)
{
    setup_q(256);
    g_mode = mode;
    run_task(core_misuse_task, NULL);
    return 1;
}

/* ---- memory budgets and allocator misuse */

static int scenario_l1_budget(void)
{
    void *a, *b;
    open_cluster();
    a = pi_cl_l1_malloc(&cluster, 4000);
    printf("first allocation done\n");
    fflush(stdout);
    b = pi_cl_l1_malloc(&cluster, 200);
    (void)a;
    (void)b;
    return 1;
}

static int scenario_l2_budget(void)
{
    void *a = pi_l2_malloc(1000);
    printf("first allocation done\n");
    fflush(stdout);
    a = pi_l2_malloc(1000);
    (void)a;
    return 1;
}

static int scenario_reuse(void)
{
    /* freed memory is reusable: allocate/free more than the budget in total */
    int i;
    uint8_t *p[3];
    open_cluster();
    for (i = 0; i < 100; i++) {
        p[0] = (uint8_t *)pi_cl_l1_malloc(NULL, 40000);
        p[1] = (uint8_t *)pi_cl_l1_malloc(NULL, 40000);
        pi_cl_l1_free(NULL, p[0], 40000);
        p[2] = (uint8_t *)pi_cl_l1_malloc(NULL, 30000);
        if (p[2] != p[0]) { /* first fit puts it where p[0] was */
            printf("not first fit\n");
            return 1;
        }
        if (((uintptr_t)p[1] | (uintptr_t)p[2]) % 8 != 0) {
            printf("misaligned\n");
            return 1;
        }
        pi_cl_l1_free(NULL, p[1], 40000);
        pi_cl_l1_free(NULL, p[2], 30000);
    }
    p[0] = (uint8_t *)pi_l2_malloc_align(100, 64);
    printf("aligned64=%d\n", (int)((uintptr_t)p[0] % 64 == 0));
    pi_l2_free(p[0], 100);
    gf_emu_print_stats("reuse");
    pi_cluster_close(&cluster);
    return 0;
}

static int scenario_alloc_misuse(int mode)
{
    uint8_t *p;
    uint32_t a;
    switch (mode) {
    case 0: /* L1 before pi_cluster_open */
        p = (uint8_t *)pi_cl_l1_malloc(NULL, 64);
        break;
    case 1: /* free with the wrong size */
        p = (uint8_t *)pi_l2_malloc(64);
        pi_l2_free(p, 32);
        break;
    case 2: /* free of something that is not an allocation */
        p = (uint8_t *)pi_l2_malloc(64);
        pi_l2_free(p + 8, 56);
        break;
    case 3: /* L3 beyond GF_EMU_L3_SIZE */
        open_ram();
        pi_ram_alloc(&ram, &a, 4096);
        pi_ram_alloc(&ram, &a, 8192);
        break;
    case 4: /* double free */
        p = (uint8_t *)pi_l2_malloc(64);
        pi_l2_free(p, 64);
        pi_l2_free(p, 64);
        break;
    case 5: { /* fragmentation (run with GF_EMU_L2_BUDGET=4096): 2040 free bytes, not contiguous */
        uint8_t *q = (uint8_t *)pi_l2_malloc(2000);
        p = (uint8_t *)pi_l2_malloc(2000);
        pi_l2_free(q, 2000);
        q = (uint8_t *)pi_l2_malloc(2040);
        (void)q;
        break;
    }
    case 6: { /* overflow of an L1 buffer: caught by AddressSanitizer (pool poisoning) */
        volatile int idx = 64;
        open_cluster();
        p = (uint8_t *)pi_cl_l1_malloc(NULL, 64);
        p[idx] = 1;
        printf("overflow not caught (expected without ASan)\n");
        return 0;
    }
    case 7: { /* read of freed L2 memory: caught by AddressSanitizer */
        volatile uint8_t v;
        p = (uint8_t *)pi_l2_malloc(64);
        pi_l2_free(p, 64);
        v = p[3];
        printf("use after free not caught (expected without ASan) v=%d\n", v);
        return 0;
    }
    default:
        break;
    }
    printf("misuse %d not detected\n", mode);
    return 1;
}

/* ---- L3 RAM: FC round trip, cluster requests (poison then data), 2-D, range checks */

static struct {
    uint32_t addr;
    uint8_t *l2;
    int n;
} R;

static void l3_task(void *arg)
{
    pi_cl_ram_req_t req;
    int i, ok = 1;
    (void)arg;
    /* read the second half of the L3 buffer */
    pi_cl_ram_read(&ram, R.addr + 256, R.l2, 256, &req);
    printf("cl_read before_wait_all_a5=%d\n", all_are(R.l2, 256, 0xA5));
    pi_cl_ram_read_wait(&req);
    for (i = 0; i < 256; i++)
        ok &= R.l2[i] == (uint8_t)((256 + i) * 5);
    printf("cl_read after_wait_ok=%d\n", ok);
    /* write it back, incremented, over the first half */
    for (i = 0; i < 256; i++)
        R.l2[i] = (uint8_t)(R.l2[i] + 1);
    pi_cl_ram_write(&ram, R.addr, R.l2, 256, &req);
    pi_cl_ram_write_wait(&req);
    /* 2-D: 4 lines of 16 bytes, 64 apart, starting at offset 8 */
    pi_cl_ram_read_2d(&ram, R.addr + 8, R.l2, 64, 64, 16, &req);
    pi_cl_ram_read_wait(&req);
    ok = 1;
    for (i = 0; i < 64; i++)
        ok &= R.l2[i] == (uint8_t)((256 + 8 + (i / 16) * 64 + i % 16) * 5 + 1);
    printf("cl_read_2d ok=%d\n", ok);
    pi_cl_ram_write_2d(&ram, R.addr + 256, R.l2, 64, 128, 32, &req);
    pi_cl_ram_write_wait(&req);
}

static int scenario_l3(void)
{
    uint8_t host[512], back[512];
    int i, ok = 1;
    open_cluster();
    open_ram();
    R.n = 512;
    pi_ram_alloc(&ram, &R.addr, 512);
    for (i = 0; i < 512; i++)
        host[i] = (uint8_t)(i * 5);
    pi_ram_write(&ram, R.addr, host, 512);
    pi_ram_read(&ram, R.addr, back, 512);
    printf("fc_round_trip ok=%d\n", memcmp(host, back, 512) == 0);
    R.l2 = (uint8_t *)pi_l2_malloc(256);
    run_task(l3_task, NULL);
    pi_ram_read(&ram, R.addr, back, 512);
    for (i = 0; i < 256; i++)
        ok &= back[i] == (uint8_t)((256 + i) * 5 + 1);
    /* the 2-D write put lines 0..1 (32 bytes each) at 256 and 384 */
    for (i = 256; i < 512; i++) {
        int rel = i - 256, line = rel / 128, col = rel % 128;
        uint8_t want = host[i];
        if (line < 2 && col < 32)
            want = (uint8_t)((256 + 8 + ((line * 32 + col) / 16) * 64 + (line * 32 + col) % 16) * 5 + 1);
        ok &= back[i] == want;
    }
    printf("after_cluster ok=%d\n", ok);
    /* FC 2-D read: 3 lines of 10 bytes, 100 apart */
    pi_ram_read_2d(&ram, R.addr + 1, back, 30, 100, 10);
    ok = 1;
    for (i = 0; i < 30; i++) {
        uint32_t off = 1u + (uint32_t)(i / 10) * 100u + (uint32_t)(i % 10);
        uint8_t want = off < 256 ? (uint8_t)((256 + off) * 5 + 1) : host[off];
        ok &= back[i] == want;
    }
    printf("fc_read_2d ok=%d\n", ok);
    gf_emu_print_stats("l3");
    return 0;
}

static void l3_misuse_task(void *arg)
{
    pi_cl_ram_req_t req;
    (void)arg;
    switch (g_mode) {
    case 0: /* cluster read past the allocation */
        pi_cl_ram_read(&ram, R.addr + 500, R.l2, 64, &req);
        break;
    case 1: /* never waited */
        pi_cl_ram_read(&ram, R.addr, R.l2, 64, &req);
        return;
    case 2: /* cluster buffer not in L2 */
        pi_cl_ram_read(&ram, R.addr, host_buffer, 64, &req);
        break;
    case 3: /* source (L2) modified before a write completes */
        pi_cl_ram_write(&ram, R.addr, R.l2, 64, &req);
        R.l2[0] ^= 0xff;
        pi_cl_ram_write_wait(&req);
        break;
    case 4: /* FC-side API from the cluster */
        pi_ram_read(&ram, R.addr, R.l2, 64);
        break;
    default:
        break;
    }
    printf("misuse %d not detected\n", g_mode);
    exit(1);
}

static int scenario_l3_misuse(int mode)
{
    uint8_t buf[64];
    open_cluster();
    open_ram();
    pi_ram_alloc(&ram, &R.addr, 512);
    R.l2 = (uint8_t *)pi_l2_malloc(256);
    g_mode = mode;
    if (mode == 5) { /* FC read past the allocation */
        pi_ram_read(&ram, R.addr + 480, buf, 64);
        return 1;
    }
    if (mode == 6) { /* FC read from an address never allocated */
        pi_ram_read(&ram, R.addr + 4096, buf, 16);
        return 1;
    }
    run_task(l3_misuse_task, NULL);
    return 1;
}

/* ---- ReadFS, perf counters, frequency */

static int scenario_fs(void)
{
    struct pi_device flash, fs;
    struct pi_default_flash_conf fconf;
    struct pi_readfs_conf rconf;
    pi_fs_file_t *f;
    uint8_t buf[64];
    FILE *fp = fopen("emu_fs_test.bin", "wb");
    int i, got, total = 0;
    for (i = 0; i < 100; i++)
        fputc(i, fp);
    fclose(fp);
    pi_default_flash_conf_init(&fconf);
    pi_open_from_conf(&flash, &fconf);
    if (pi_flash_open(&flash))
        return 1;
    pi_readfs_conf_init(&rconf);
    rconf.fs.flash = &flash;
    pi_open_from_conf(&fs, &rconf);
    if (pi_fs_mount(&fs))
        return 1;
    printf("missing=%d\n", pi_fs_open(&fs, "no_such_file.bin", 0) == NULL);
    f = pi_fs_open(&fs, "emu_fs_test.bin", 0);
    printf("size=%u\n", (unsigned)f->size);
    while ((got = pi_fs_read(f, buf, 64)) > 0)
        total += got;
    printf("total=%d last=%d\n", total, buf[got > 0 ? got - 1 : 35]);
    printf("seek=%d\n", pi_fs_seek(f, 90));
    got = pi_fs_read(f, buf, 64);
    printf("after_seek got=%d first=%d\n", got, buf[0]);
    pi_fs_close(f);
    pi_fs_unmount(&fs);
    return 0;
}

static int scenario_perf(void)
{
    volatile uint32_t x = 0;
    unsigned c0, c1, c2;
    int i;
    pi_freq_set(PI_FREQ_DOMAIN_FC, 370000000);
    pi_freq_set(PI_FREQ_DOMAIN_CL, 370000000);
    pi_freq_set(PI_FREQ_DOMAIN_PERIPH, 370000000);
    pi_perf_conf(1 << PI_PERF_CYCLES | 1 << PI_PERF_INSTR);
    pi_perf_reset();
    pi_perf_start();
    c0 = pi_perf_read(PI_PERF_CYCLES);
    for (i = 0; i < 2000000; i++)
        x += (uint32_t)i;
    c1 = pi_perf_read(PI_PERF_CYCLES);
    pi_perf_stop();
    c2 = pi_perf_read(PI_PERF_CYCLES);
    printf("increasing=%d stopped_stable=%d instr=%u\n", c1 > c0, c2 == pi_perf_read(PI_PERF_CYCLES),
           pi_perf_read(PI_PERF_INSTR));
    return 0;
}

/* ---- stacks: `deep CORE BYTES` makes a call chain of BYTES bytes on core CORE (0..7, or 8 = the
 * cluster controller); every core then prints the stack it used. */
static struct {
    int core;
    uint32_t bytes;
} D;

static __attribute__((noinline)) uint32_t deep_call(uint32_t bytes)
{
    volatile uint8_t frame[256];
    frame[0] = (uint8_t)bytes;
    frame[sizeof(frame) - 1] = (uint8_t)(bytes >> 8);
    if (bytes > sizeof(frame))
        return deep_call(bytes - (uint32_t)sizeof(frame)) + frame[0] + frame[sizeof(frame) - 1];
    return frame[0];
}

static void deep_worker(void *arg)
{
    (void)arg;
    if (pi_core_id() == D.core)
        (void)deep_call(D.bytes);
    pi_cl_team_barrier();
}

static void deep_task(void *arg)
{
    (void)arg;
    if (D.core == 8)
        (void)deep_call(D.bytes);
    pi_cl_team_fork(8, deep_worker, NULL);
}

static int scenario_deep(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    D.core = atoi(argv[2]);
    D.bytes = (uint32_t)strtoul(argv[3], NULL, 10);
    open_cluster();
    run_task(deep_task, NULL);
    gf_emu_print_stats("deep");
    return 0;
}

/* ---- allocation failures: five allocations of each level, the result of each printed */
static int scenario_alloc_fail(void)
{
    uint32_t a = 0;
    int i;
    open_cluster();
    open_ram();
    for (i = 1; i <= 5; i++)
        printf("L2 %d %s\n", i, pi_l2_malloc(64) != NULL ? "ok" : "NULL");
    for (i = 1; i <= 5; i++)
        printf("L3 %d %s\n", i, pi_ram_alloc(&ram, &a, 64) == 0 ? "ok" : "failed");
    for (i = 1; i <= 5; i++)
        printf("L1 %d %s\n", i, pi_cl_l1_malloc(NULL, 64) != NULL ? "ok" : "NULL");
    return 0;
}

/* ---- layers: one task running two layers (two forks), each recorded apart (gf_emu_layer_end), as gf_run_task
 * does; modes 1-3: misuse of the record calls. */

static struct {
    uint8_t *l2;
    int mode;
} LY;

static void layers_worker(void *arg)
{
    int n = *(int *)arg;
    if (LY.mode == 2 && pi_core_id() == 1)
        gf_emu_layer_end(); /* a compute core: refused */
    if (pi_core_id() == 0) {
        uint8_t *l1 = (uint8_t *)pi_cl_l1_malloc(NULL, n);
        pi_cl_dma_cmd_t cmd;
        pi_cl_dma_cmd((uintptr_t)LY.l2, (uintptr_t)l1, (uint32_t)n, PI_CL_DMA_DIR_EXT2LOC, &cmd);
        pi_cl_dma_cmd_wait(&cmd);
        pi_cl_l1_free(NULL, l1, n);
    }
    pi_cl_team_barrier();
}

/* mode 4: gf_run_task's pattern since one fork per task: the two layers in one fork, core 0 records each after
 * the layer's last barrier (the L1 block, the larger layer's, allocated once for both) */
static void layers_one_fork(void *arg)
{
    static int sizes[2] = {100, 40};
    (void)arg;
    for (int k = 0; k < 2; k++) {
        if (pi_core_id() == 0) {
            uint8_t *l1 = (uint8_t *)pi_cl_l1_malloc(NULL, sizes[k]);
            pi_cl_dma_cmd_t cmd;
            pi_cl_dma_cmd((uintptr_t)LY.l2, (uintptr_t)l1, (uint32_t)sizes[k], PI_CL_DMA_DIR_EXT2LOC, &cmd);
            pi_cl_dma_cmd_wait(&cmd);
            pi_cl_l1_free(NULL, l1, sizes[k]);
        }
        pi_cl_team_barrier();
        if (pi_core_id() == 0)
            gf_emu_layer_end();
    }
}

static void layers_task(void *arg)
{
    static int sizes[2] = {100, 40};
    (void)arg;
    if (LY.mode == 4) {
        uint8_t *l1 = (uint8_t *)pi_cl_l1_malloc(NULL, 128); /* the task's block */
        pi_cl_team_fork(4, layers_one_fork, NULL);
        pi_cl_l1_free(NULL, l1, 128);
        return;
    }
    for (int k = 0; k < 2; k++) {
        uint8_t *l1 = (uint8_t *)pi_cl_l1_malloc(NULL, 64 * (k + 1)); /* the layer's own L1 (the peak) */
        pi_cl_team_fork(k == 0 ? 4 : 2, layers_worker, &sizes[k]);
        pi_cl_l1_free(NULL, l1, 64 * (k + 1));
        gf_emu_layer_end();
    }
}

static int scenario_layers(int mode)
{
    open_cluster();
    LY.mode = mode;
    LY.l2 = (uint8_t *)pi_l2_malloc(128);
    memset(LY.l2, 7, 128);
    if (mode == 1)
        gf_emu_layer_end(); /* the FC: refused */
    gf_emu_reset_counters();
    gf_emu_reset_peaks();
    run_task(layers_task, NULL);
    gf_emu_print_layer_stats(0, "layer0");
    gf_emu_print_layer_stats(1, "layer1");
    if (mode == 3)
        gf_emu_print_layer_stats(2, "layer2"); /* the task recorded two */
    return 0;
}

int main(int argc, char **argv)
{
    const char *s = argc > 1 ? argv[1] : "";
    int mode = argc > 2 ? atoi(argv[2]) : 0;
    if (strcmp(s, "pipeline") == 0)
        return scenario_pipeline(argc, argv);
    if (strcmp(s, "poison") == 0)
        return scenario_poison();
    if (strcmp(s, "dma_misuse") == 0)
        return scenario_dma_misuse(mode);
    if (strcmp(s, "dma_from_fc") == 0)
        return scenario_dma_from_fc();
    if (strcmp(s, "flush") == 0)
        return scenario_flush();
    if (strcmp(s, "dma2d") == 0)
        return scenario_dma2d();
    if (strcmp(s, "cores") == 0)
        return scenario_cores();
    if (strcmp(s, "phases") == 0)
        return scenario_phases(mode);
    if (strcmp(s, "core_misuse") == 0)
        return scenario_core_misuse(mode);
    if (strcmp(s, "mismatch") == 0)
        return scenario_mismatch();
    if (strcmp(s, "l1_budget") == 0)
        return scenario_l1_budget();
    if (strcmp(s, "l2_budget") == 0)
        return scenario_l2_budget();
    if (strcmp(s, "reuse") == 0)
        return scenario_reuse();
    if (strcmp(s, "alloc_misuse") == 0)
        return scenario_alloc_misuse(mode);
    if (strcmp(s, "l3") == 0)
        return scenario_l3();
    if (strcmp(s, "l3_misuse") == 0)
        return scenario_l3_misuse(mode);
    if (strcmp(s, "fs") == 0)
        return scenario_fs();
    if (strcmp(s, "perf") == 0)
        return scenario_perf();
    if (strcmp(s, "deep") == 0)
        return scenario_deep(argc, argv);
    if (strcmp(s, "alloc_fail") == 0)
        return scenario_alloc_fail();
    if (strcmp(s, "layers") == 0)
        return scenario_layers(mode);
    printf("unknown scenario %s\n", s);
    return 2;
}
