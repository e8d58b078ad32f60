/*
 * gapforge GAP9 PMSIS emulator: host implementation of pmsis.h (and of gf_emu.h).
 *
 * Purpose: run gapforge's generated GAP9 code on the host and make the mistakes that would
 * corrupt data or crash on the chip fail loudly and deterministically here. Every detected
 * misuse prints one line "GF EMU ERROR <what>" on stdout and exits with status 3.
 *
 * Emulated semantics
 * ------------------
 * Memory levels. L1 (cluster TCDM), L2 and L3 are pools of host memory: L1 is GF_EMU_L1_SIZE
 * bytes (128 KiB), L2 GF_EMU_L2_SIZE (1.5 MiB), L3 the environment's GF_EMU_L3_SIZE (default
 * 8 MiB). The usable part of L1 and L2 is the budget of GF_EMU_L1_BUDGET / GF_EMU_L2_BUDGET
 * (bytes, default the whole pool). Allocators are first-fit over [0, budget) of their pool;
 * every size is rounded up to 8 bytes (that is what the usage and peak figures count) and every
 * block is at least 8-byte aligned. Exceeding the budget, running out of contiguous space
 * (fragmentation), freeing with a size other than the allocated one, freeing something that is
 * not an allocation, or L1 use before pi_cluster_open are errors. pi_cluster_close releases the
 * whole L1 heap (its contents are lost on the chip). New blocks are filled with 0xCD and freed
 * ones with 0xDD, so reads of uninitialised or freed memory give visibly wrong data; under
 * AddressSanitizer the unallocated parts of the pools are also poisoned for ASan.
 * L1/L2 pointers are host pointers into the pools; L3 addresses are uint32_t offsets into the
 * L3 pool.
 *
 * Transfers. Cluster DMA commands (pi_cl_dma_cmd, _2d) and cluster L3 requests (pi_cl_ram_*)
 * are checked at issue (issuer is a cluster core; ext inside one live L2 allocation, loc inside
 * one live L1 allocation; L3 ranges inside one live L3 allocation; the cluster-side L3 buffer
 * inside one live L2 allocation; 1-D DMA size < 64 KiB, 2-D line length and stride < 64 KiB,
 * 2-D size a multiple of the line length and < 128 KiB (17-bit MCHAN length); at most 16 DMA
 * commands in flight). At issue the destination bytes are filled with the poison 0xA5 and a
 * copy of the source is kept; nothing is copied until the wait (pi_cl_dma_cmd_wait,
 * pi_cl_dma_flush, pi_cl_ram_*_wait). At the wait, a source that changed since the issue, or a
 * destination that was written by someone else, is an error; then the copy is done. Waiting
 * twice, waiting on a command never issued, reusing a command structure still in flight, and
 * returning from the cluster task with a transfer not waited are errors. pi_cl_dma_flush
 * completes and retires every DMA command in flight (like the hardware it releases their
 * transfer ids: waiting on a flushed command afterwards is "waited twice"). The blocking FC-side
 * pi_ram_read/write(_2d) copy immediately. Transfer counters (gf_emu.h) count payload bytes at
 * completion.
 *
 * Cores. pi_cluster_send_task_to_cl runs the entry as core 8 (the GAP9 cluster controller) on a
 * stack of its own. pi_cl_team_fork runs the entry on cores 0..n-1 as cooperative coroutines
 * (ucontext, one private stack per core), scheduled deterministically: in each round every
 * runnable core runs, in order n-1..0 (GF_EMU_CORE_ORDER=reverse, the default) or 0..n-1
 * (GF_EMU_CORE_ORDER=forward), until it reaches pi_cl_team_barrier or returns. When all cores
 * wait at the barrier they are released for the next round; a core returning while others wait
 * at a barrier is a barrier mismatch (error). A missing barrier therefore shows up as a wrong
 * result, the same on every run. Critical sections are no-ops (only depth is checked).
 *
 * Stacks (section "Stacks" below). Every emulated stack has guard pages below it (an overflow is
 * reported, exit 3) and is painted to measure its peak use. With GF_EMU_CORE_STACK_RATIO set the
 * stacks are modelled: each is the size the program configured (cc_stack_size at
 * pi_cluster_open, pi_cluster_task_stacks per task) times the ratio (GF_EMU_CC_STACK_RATIO for
 * the controller, default the core ratio), and those configured bytes are reserved in L1 (budget
 * + controller + 8 compute-core stacks <= L1). Otherwise each stack is GF_EMU_CC_STACK /
 * GF_EMU_CORE_STACK host bytes (default 256 KiB) and nothing is reserved. Errors raised on an
 * emulated stack are printed from a separate error stack. Programs that model their stacks must
 * be linked with -z now (no lazy symbol binding on the emulated stacks).
 *
 * Allocation failures. GF_EMU_FAIL_ALLOC=L1|L2|L3[:N] makes the N-th allocation of that level
 * (default the first) fail the way the SDK reports it: NULL from pi_cl_l1_malloc / pi_l2_malloc
 * (_align), -1 from pi_ram_alloc.
 *
 * Not modelled: timing, bandwidth and latency (only ordering and completion points), true
 * parallelism and memory races other than those on in-flight transfer buffers, caches,
 * frequency and voltage, statically placed PI_L1/PI_L2 data (the attributes expand to nothing,
 * so such data is host memory and is refused by the DMA checks), cycles (the performance
 * counters count the core's own share: instructions on rv32, host nanoseconds on the host, see
 * "Performance counters" below), ReadFS internals (files are read from the current directory).
 *
 * Environment: GF_EMU_L1_BUDGET, GF_EMU_L2_BUDGET, GF_EMU_L3_SIZE (bytes), GF_EMU_CORE_ORDER
 * (forward | reverse), GF_EMU_CORE_STACK_RATIO / GF_EMU_CC_STACK_RATIO (host bytes per configured
 * byte), GF_EMU_CORE_STACK / GF_EMU_CC_STACK (host bytes of unmodelled stacks, default 256 KiB),
 * GF_EMU_FAIL_ALLOC.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bare-metal rv32 (picolibc, no operating system): run_generated --target gap9-qemu. */
#if defined(__riscv) && !defined(__linux__)
#define GF_EMU_BARE 1
#include "gf_emu_bare.h"
#else
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#endif

#include "pmsis.h"
#include "gf_emu.h"

#if defined(__SANITIZE_ADDRESS__)
#define GF_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GF_EMU_ASAN 1
#endif
#endif

#ifdef GF_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__GNUC__)
#define GF_NORETURN __attribute__((noreturn))
#define GF_NOINLINE __attribute__((noinline))
#define GF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define GF_NO_ASAN __attribute__((no_sanitize_address))
#define GF_ALIGNED16 __attribute__((aligned(16)))
#else
#define GF_NORETURN
#define GF_NOINLINE
#define GF_PRINTF(a, b)
#define GF_NO_ASAN
#define GF_ALIGNED16
#endif

#ifndef GF_EMU_L1_SIZE
#define GF_EMU_L1_SIZE 131072u
#endif
#ifndef GF_EMU_L2_SIZE
#define GF_EMU_L2_SIZE 1572864u
#endif
#define GF_EMU_L3_DEFAULT (8u * 1024u * 1024u)
#define GF_EMU_L3_MAX (1024u * 1024u * 1024u)
#define GF_EMU_NB_CORES 8
#define GF_EMU_CC_CORE 8
#define GF_EMU_FC_CORE (-1)
#define GF_EMU_DMA_SLOTS 16
#define GF_EMU_ALIGN 8u
#define GF_EMU_POOL_ALIGN 65536u
#define GF_EMU_POISON 0xA5
#define GF_EMU_FILL_NEW 0xCD
#define GF_EMU_FILL_FREED 0xDD
#define GF_EMU_STACK_DEFAULT (256u * 1024u) /* host bytes of an emulated stack when stacks are not modelled */
#define GF_EMU_GUARD_BYTES (64u * 1024u)    /* inaccessible pages below every emulated stack */
#define GF_EMU_CANARY_BYTES 64u             /* bottom bytes of a stack checked at every switch */
#define GF_EMU_STACK_PAINT 0xB7             /* unused stack bytes (measures the peak use) */
#define GF_EMU_ERROR_STACK (256u * 1024u)   /* where errors raised on an emulated stack are printed */
#define GF_EMU_HISTORY 64

/* Magic values: configurations initialised by their *_init, devices opened by their driver. */
#define MAGIC_CLUSTER_CONF 0x47460c01u
#define MAGIC_RAM_CONF 0x47460c02u
#define MAGIC_FLASH_CONF 0x47460c03u
#define MAGIC_READFS_CONF 0x47460c04u
#define MAGIC_TASK 0x47460c05u
#define MAGIC_FILE 0x47460c06u
#define KIND_CLUSTER 0x4746d001
#define KIND_RAM 0x4746d002
#define KIND_FLASH 0x4746d003
#define KIND_FS 0x4746d004

typedef unsigned long long ull;

/* ---------------------------------------------------------------------------------------------
 * Errors
 */

static void gf_fail(const char *fmt, ...) GF_NORETURN GF_PRINTF(1, 2);
struct gf_xfer_s;
static void gf_fail_xfer(const struct gf_xfer_s *x, const char *fmt, ...) GF_NORETURN GF_PRINTF(2, 3);
static void xfer_describe(const struct gf_xfer_s *x, char *buf, size_t n);
static void fail_elsewhere(void);

/* The failure being reported (printed by fail_report, possibly on the error stack): a message,
 * and the transfer it concerns (described in parentheses) or NULL. */
static const char *g_fail_fmt;
static va_list g_fail_ap;
static const struct gf_xfer_s *g_fail_xfer;

static void fail_report(void) GF_NORETURN;

static void fail_report(void)
{
    fflush(stdout);
    fputs("GF EMU ERROR ", stdout);
    vfprintf(stdout, g_fail_fmt, g_fail_ap);
    if (g_fail_xfer != NULL) {
        char what[200];
        xfer_describe(g_fail_xfer, what, sizeof what);
        fprintf(stdout, " (%s)", what);
    }
    fputc('\n', stdout);
    fflush(stdout);
    exit(3);
}

/* Errors are formatted and printed on a stack of their own when raised on an emulated core's
 * stack (fail_elsewhere): stdio needs more stack than the emulated stacks have to spare, and the
 * report must not overflow them itself. gf_fail's frame (holding the arguments) stays intact. */
static void gf_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_fail_fmt = fmt;
    va_copy(g_fail_ap, ap);
    fail_elsewhere();
    fail_report();
}

static void gf_fail_xfer(const struct gf_xfer_s *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_fail_fmt = fmt;
    g_fail_xfer = x;
    va_copy(g_fail_ap, ap);
    fail_elsewhere();
    fail_report();
}

static uint64_t env_bytes(const char *name, uint64_t def, uint64_t max)
{
    const char *s = getenv(name);
    char *end = NULL;
    unsigned long long v;
    if (s == NULL || *s == '\0')
        return def;
    if (*s < '0' || *s > '9')
        gf_fail("%s=%s is not a number of bytes", name, s);
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0)
        gf_fail("%s=%s is not a positive number of bytes", name, s);
    if (v > max)
        gf_fail("%s=%llu exceeds the %llu bytes of the emulated memory", name, v, (ull)max);
    return (uint64_t)v;
}

/* ---------------------------------------------------------------------------------------------
 * Pools and first-fit allocators (offsets relative to the pool base)
 */

typedef struct {
    uint64_t off, rsize, req; /* rsize: rounded to GF_EMU_ALIGN; req: the size asked for */
} gf_blk;

typedef struct {
    const char *name; /* "L1", "L2", "L3" */
    uint8_t *base;
    uint64_t pool;   /* bytes of host memory behind the pool */
    uint64_t budget; /* usable bytes: the allocator's arena is [0, budget) */
    uint64_t cur, peak;
    gf_blk *blk; /* sorted by offset */
    size_t n, cap;
} gf_heap;

/* Instruction accounting (rv32 build only): the instructions the emulator itself executes for a
 * DMA transfer, an L3 request, an allocation or a stack check (work the chip's hardware or a few
 * SDK register writes do) are counted in g_excl and subtracted from the cores' counts, so that
 * the per-core figures are the program's own instructions. Per core (0..7, 8 = the controller):
 * g_core_instr; per barrier round the busiest core's count is added to g_core_crit. */
#ifdef GF_EMU_BARE
static uint64_t g_excl, g_excl_t0;
static int g_excl_depth;
static uint64_t g_core_instr[GF_EMU_NB_CORES + 1], g_core_crit, g_cluster_instr, g_round_max;
static uint64_t instr_now(void)
{
    return gf_bare_instret() - g_excl;
}
static void excl_begin(void)
{
    if (g_excl_depth++ == 0)
        g_excl_t0 = gf_bare_instret();
}
static void excl_end(void)
{
    if (--g_excl_depth == 0)
        g_excl += gf_bare_instret() - g_excl_t0;
}
#else
static void excl_begin(void)
{
}
static void excl_end(void)
{
}
#endif
/* Per-layer records of the last cluster task (gf_emu_layer_end, gf_emu.h): the counters, peaks and (rv32) the
 * per-core instructions of each layer of a task that runs several. */
typedef struct {
    gf_emu_stats_t s;
#ifdef GF_EMU_BARE
    uint64_t core_instr[GF_EMU_NB_CORES + 1], core_crit, cluster_instr;
#endif
} gf_layer_rec;
static gf_layer_rec *g_recs;
static int g_nrecs, g_recs_cap;
#ifdef GF_EMU_BARE
/* instr_now(), each core's count (g_core_instr) and g_core_crit at the task start / the last record: a record is the
 * difference (the counts are not reset inside a task: the compute cores' pi_perf clocks are their counts) */
static uint64_t g_mark_t0, g_mark_core[GF_EMU_NB_CORES + 1], g_mark_crit;
#endif

/* pi_perf's per-core clocks (section "Performance counters"): the start of the running compute
 * core's current slice (run_core), and on the host each compute core's nanoseconds so far. */
static uint64_t g_slice_t0;
static uint64_t now_ns(void);
#ifdef GF_EMU_BARE
#define CORE_CLOCK(c) g_core_instr[c] /* a compute core's own instructions so far (its slices) */
#else
static uint64_t g_core_ns[GF_EMU_NB_CORES];
#define CORE_CLOCK(c) g_core_ns[c] /* its host nanoseconds so far */
#endif

static gf_heap g_l1 = {"L1", NULL, 0, 0, 0, 0, NULL, 0, 0};
static gf_heap g_l2 = {"L2", NULL, 0, 0, 0, 0, NULL, 0, 0};
static gf_heap g_l3 = {"L3", NULL, 0, 0, 0, 0, NULL, 0, 0};

static void mem_poison(void *p, uint64_t n)
{
#ifdef GF_EMU_ASAN
    ASAN_POISON_MEMORY_REGION(p, (size_t)n);
#else
    (void)p;
    (void)n;
#endif
}

static void mem_unpoison(void *p, uint64_t n)
{
#ifdef GF_EMU_ASAN
    ASAN_UNPOISON_MEMORY_REGION(p, (size_t)n);
#else
    (void)p;
    (void)n;
#endif
}

static void heap_init(gf_heap *h, uint64_t pool, uint64_t budget)
{
    void *p = NULL;
    if (posix_memalign(&p, GF_EMU_POOL_ALIGN, (size_t)pool) != 0 || p == NULL)
        gf_fail("cannot allocate %llu host bytes for the %s pool", (ull)pool, h->name);
    h->base = (uint8_t *)p;
    h->pool = pool;
    h->budget = budget;
    h->cur = h->peak = 0;
    h->n = 0;
    memset(h->base, GF_EMU_FILL_FREED, (size_t)pool);
    mem_poison(h->base, pool);
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

/* Allocates `req` bytes aligned to `align` (power of two, >= 8); returns the offset. */
static uint64_t heap_alloc_body(gf_heap *h, uint64_t req, uint64_t align, const char *api)
{
    uint64_t rsize = align_up(req, GF_EMU_ALIGN), start = 0, at = 0;
    size_t i;
    if (h->cur + rsize > h->budget)
        gf_fail("%s budget exceeded: requested %llu bytes, %llu in use, budget %llu", h->name, (ull)req,
                (ull)h->cur, (ull)h->budget);
    for (i = 0; i < h->n; i++) {
        at = align_up(start, align);
        if (at + rsize <= h->blk[i].off)
            break;
        start = h->blk[i].off + h->blk[i].rsize;
    }
    if (i == h->n) {
        at = align_up(start, align);
        if (at + rsize > h->budget)
            gf_fail("%s out of memory (fragmentation): requested %llu bytes, %llu in use, budget %llu, no free "
                    "block large enough (%s)", h->name, (ull)req, (ull)h->cur, (ull)h->budget, api);
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        gf_blk *nb = (gf_blk *)realloc(h->blk, cap * sizeof *nb);
        if (nb == NULL)
            gf_fail("host out of memory");
        h->blk = nb;
        h->cap = cap;
    }
    memmove(&h->blk[i + 1], &h->blk[i], (h->n - i) * sizeof h->blk[0]);
    h->blk[i].off = at;
    h->blk[i].rsize = rsize;
    h->blk[i].req = req;
    h->n++;
    h->cur += rsize;
    if (h->cur > h->peak)
        h->peak = h->cur;
    mem_unpoison(h->base + at, req);
    memset(h->base + at, GF_EMU_FILL_NEW, (size_t)req);
    return at;
}

/* Emulator work: not counted as the program's instructions on the rv32 build (EXCL_*). */
static uint64_t heap_alloc(gf_heap *h, uint64_t req, uint64_t align, const char *api)
{
    uint64_t r;
    excl_begin();
    r = heap_alloc_body(h, req, align, api);
    excl_end();
    return r;
}

/* Index of the live block holding [off, off + len), or -1. */
static long heap_find(const gf_heap *h, uint64_t off, uint64_t len)
{
    size_t lo = 0, hi = h->n;
    while (lo < hi) { /* first block with off > `off` */
        size_t mid = (lo + hi) / 2;
        if (h->blk[mid].off <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -1;
    lo--;
    if (off + len <= h->blk[lo].off + h->blk[lo].req && off + len >= off)
        return (long)lo;
    return -1;
}

static void heap_release(gf_heap *h, size_t i)
{
    uint8_t *p = h->base + h->blk[i].off;
    memset(p, GF_EMU_FILL_FREED, (size_t)h->blk[i].req);
    mem_poison(p, h->blk[i].rsize);
    h->cur -= h->blk[i].rsize;
    memmove(&h->blk[i], &h->blk[i + 1], (h->n - i - 1) * sizeof h->blk[0]);
    h->n--;
}

static void check_not_in_flight(const gf_heap *h, uint64_t off, uint64_t len, const char *api);

static void heap_free_body(gf_heap *h, uint64_t off, uint64_t req, const char *api)
{
    long i = heap_find(h, off, 1);
    if (i < 0 || h->blk[i].off != off)
        gf_fail("%s: %s offset 0x%llx is not the start of a live %s allocation", api, h->name, (ull)off, h->name);
    if (h->blk[i].req != req)
        gf_fail("%s: %s free with the wrong size: allocated %llu bytes, freed with %llu", api, h->name,
                (ull)h->blk[i].req, (ull)req);
    check_not_in_flight(h, off, h->blk[i].rsize, api);
    heap_release(h, (size_t)i);
}

/* Emulator work: not counted as the program's instructions on the rv32 build (EXCL_*). */
static void heap_free(gf_heap *h, uint64_t off, uint64_t req, const char *api)
{
    excl_begin();
    heap_free_body(h, off, req, api);
    excl_end();
}

static int in_pool(const gf_heap *h, uintptr_t p)
{
    return h->base != NULL && p >= (uintptr_t)h->base && p - (uintptr_t)h->base < h->pool;
}

/* ---------------------------------------------------------------------------------------------
 * Global state
 */

static int g_ready;
static int g_reverse = 1;

/* Emulated stacks (see "Stacks" below). Not modelled (GF_EMU_CORE_STACK_RATIO unset): every core
 * gets GF_EMU_CORE_STACK host bytes and the controller GF_EMU_CC_STACK. Modelled: each gets the
 * bytes its program configured (cc_stack_size, pi_cluster_task_stacks) times the ratio. */
static size_t g_core_stack_host = GF_EMU_STACK_DEFAULT, g_cc_stack_host = GF_EMU_STACK_DEFAULT;
static int g_stack_model;
static double g_core_ratio = 1.0, g_cc_ratio = 1.0;

/* GF_EMU_FAIL_ALLOC=L<level>:<n>: the n-th allocation of that level returns failure. */
static int g_fail_level;
static uint64_t g_fail_nth, g_alloc_seen[4];

static struct pi_device *g_cluster;    /* the open cluster device, or NULL */
static int g_cc_stack_conf;            /* its cc_stack_size */
static struct pi_device *g_ram;        /* the open RAM device, or NULL */
static int g_in_task;                  /* inside pi_cluster_send_task_to_cl */
static int g_cur_core = GF_EMU_FC_CORE; /* -1: FC, 8: cluster controller, 0..7: forked core */
static int g_cc_critical;              /* critical depth of core 8 */

static gf_emu_stats_t g_stats;
static uint32_t g_freq[3];

static void install_guard_handler(void);


static double env_ratio(const char *name, double def)
{
    const char *s = getenv(name);
    char *end = NULL;
    double v;
    if (s == NULL || *s == '\0')
        return def;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(v > 0.0) || v > 1000.0)
        gf_fail("%s=%s is not a ratio in (0, 1000]", name, s);
    return v;
}

static void parse_fail_alloc(void)
{
    const char *s = getenv("GF_EMU_FAIL_ALLOC");
    char *end = NULL;
    unsigned long long n = 1;
    if (s == NULL || *s == '\0')
        return;
    if (s[0] != 'L' || s[1] < '1' || s[1] > '3' || (s[2] != '\0' && s[2] != ':'))
        gf_fail("GF_EMU_FAIL_ALLOC=%s: expected L1, L2 or L3, optionally with :N (the N-th allocation, default 1)", s);
    if (s[2] == ':') {
        errno = 0;
        n = strtoull(s + 3, &end, 10);
        if (errno != 0 || *end != '\0' || n == 0 || s[3] < '0' || s[3] > '9')
            gf_fail("GF_EMU_FAIL_ALLOC=%s: N must be a positive number", s);
    }
    g_fail_level = s[1] - '0';
    g_fail_nth = (uint64_t)n;
}

/* Counts an allocation of `level`; 1 if it is the one GF_EMU_FAIL_ALLOC makes fail. */
static int injected_alloc_failure(int level)
{
    return ++g_alloc_seen[level] == g_fail_nth && level == g_fail_level;
}

static void emu_init(void)
{
    const char *order;
    if (g_ready)
        return;
    g_ready = 1;
    heap_init(&g_l1, GF_EMU_L1_SIZE, env_bytes("GF_EMU_L1_BUDGET", GF_EMU_L1_SIZE, GF_EMU_L1_SIZE));
    heap_init(&g_l2, GF_EMU_L2_SIZE, env_bytes("GF_EMU_L2_BUDGET", GF_EMU_L2_SIZE, GF_EMU_L2_SIZE));
    order = getenv("GF_EMU_CORE_ORDER");
    if (order == NULL || *order == '\0' || strcmp(order, "reverse") == 0)
        g_reverse = 1;
    else if (strcmp(order, "forward") == 0)
        g_reverse = 0;
    else
        gf_fail("GF_EMU_CORE_ORDER=%s: expected forward or reverse", order);
    g_core_stack_host = (size_t)env_bytes("GF_EMU_CORE_STACK", GF_EMU_STACK_DEFAULT, 64u * 1024u * 1024u);
    if (g_core_stack_host < 16384)
        gf_fail("GF_EMU_CORE_STACK=%llu is too small (at least 16384)", (ull)g_core_stack_host);
    g_cc_stack_host = (size_t)env_bytes("GF_EMU_CC_STACK", GF_EMU_STACK_DEFAULT, 64u * 1024u * 1024u);
    if (g_cc_stack_host < 16384)
        gf_fail("GF_EMU_CC_STACK=%llu is too small (at least 16384)", (ull)g_cc_stack_host);
    g_stack_model = getenv("GF_EMU_CORE_STACK_RATIO") != NULL && *getenv("GF_EMU_CORE_STACK_RATIO") != '\0';
    g_core_ratio = env_ratio("GF_EMU_CORE_STACK_RATIO", 1.0);
    g_cc_ratio = env_ratio("GF_EMU_CC_STACK_RATIO", g_core_ratio);
    parse_fail_alloc();
    install_guard_handler();
}

static int in_cluster(void)
{
    return g_in_task && g_cur_core != GF_EMU_FC_CORE;
}

/* Cluster-side APIs do not call emu_init: a cluster task exists only after pi_cluster_open (FC
 * side, which initialises the emulator), and keeping the initialisation (getenv, the pools'
 * allocation, ...) off the cluster call chains keeps their measured stack bound to what runs
 * there (codegen/gap9/resources.py). */
static void need_cluster(const char *api)
{
    if (!in_cluster())
        gf_fail("%s called outside a cluster task (it is a cluster-side API)", api);
}

static void need_fc(const char *api)
{
    emu_init();
    if (g_cur_core != GF_EMU_FC_CORE)
        gf_fail("%s called from cluster core %d (it is an FC-side API)", api, g_cur_core);
}

static void need_ram(struct pi_device *dev, const char *api)
{
    if (dev == NULL || dev->gf_kind != KIND_RAM || dev != g_ram)
        gf_fail("%s: the device is not an open RAM device (pi_ram_open)", api);
}

/* ---------------------------------------------------------------------------------------------
 * Devices, cluster configuration
 */

void pi_open_from_conf(struct pi_device *dev, void *conf)
{
    emu_init();
    if (dev == NULL)
        gf_fail("pi_open_from_conf: NULL device");
    dev->config = conf;
    dev->data = NULL;
    dev->gf_kind = 0;
}

static void need_conf(struct pi_device *dev, uint32_t magic, const char *api, const char *init)
{
    emu_init();
    if (dev == NULL)
        gf_fail("%s: NULL device", api);
    if (dev->config == NULL || *(const uint32_t *)dev->config != magic)
        gf_fail("%s: the device's configuration was not initialised with %s (pi_open_from_conf first)", api, init);
}

void pi_cluster_conf_init(struct pi_cluster_conf *conf)
{
    emu_init();
    if (conf == NULL)
        gf_fail("pi_cluster_conf_init: NULL configuration");
    memset(conf, 0, sizeof *conf);
    conf->gf_magic = MAGIC_CLUSTER_CONF;
    conf->id = 0;
    conf->cc_stack_size = 0x800;
}

int pi_cluster_open(struct pi_device *dev)
{
    const struct pi_cluster_conf *conf;
    need_fc("pi_cluster_open");
    need_conf(dev, MAGIC_CLUSTER_CONF, "pi_cluster_open", "pi_cluster_conf_init");
    conf = (const struct pi_cluster_conf *)dev->config;
    if (conf->id != 0)
        gf_fail("pi_cluster_open: cluster id %d (GAP9 has one cluster, id 0)", conf->id);
    if (g_cluster != NULL)
        gf_fail("pi_cluster_open: the cluster is already open");
    dev->gf_kind = KIND_CLUSTER;
    g_cluster = dev;
    g_cc_stack_conf = conf->cc_stack_size; /* read at open, like the SDK: conf may be a local */
    return 0;
}

void pi_cluster_close(struct pi_device *dev)
{
    need_fc("pi_cluster_close");
    if (dev == NULL || dev != g_cluster || dev->gf_kind != KIND_CLUSTER)
        gf_fail("pi_cluster_close: the device is not the open cluster");
    /* The cluster is powered down: the L1 heap and its contents are gone. */
    while (g_l1.n > 0)
        heap_release(&g_l1, g_l1.n - 1);
    dev->gf_kind = 0;
    g_cluster = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Memory allocation API
 */

static uint64_t check_size(int size, const char *api)
{
    if (size <= 0)
        gf_fail("%s: size %d (must be > 0)", api, size);
    return (uint64_t)size;
}

void *pi_cl_l1_malloc(struct pi_device *dev, int size)
{
    uint64_t req;
    if (g_cluster == NULL) /* (no emu_init: see need_cluster) */
        gf_fail("pi_cl_l1_malloc called before pi_cluster_open (the L1 heap exists only while the cluster is open)");
    if (dev != NULL && dev != g_cluster)
        gf_fail("pi_cl_l1_malloc: the device is not the open cluster (pass it or NULL)");
    req = check_size(size, "pi_cl_l1_malloc");
    if (injected_alloc_failure(1))
        return NULL;
    return g_l1.base + heap_alloc(&g_l1, req, GF_EMU_ALIGN, "pi_cl_l1_malloc");
}

void pi_cl_l1_free(struct pi_device *dev, void *p, int size)
{
    if (g_cluster == NULL)
        gf_fail("pi_cl_l1_free called while the cluster is not open");
    if (dev != NULL && dev != g_cluster)
        gf_fail("pi_cl_l1_free: the device is not the open cluster (pass it or NULL)");
    if (!in_pool(&g_l1, (uintptr_t)p))
        gf_fail("pi_cl_l1_free: %p is not an L1 allocation", p);
    heap_free(&g_l1, (uint64_t)((uint8_t *)p - g_l1.base), check_size(size, "pi_cl_l1_free"), "pi_cl_l1_free");
}

void *pi_l2_malloc(int size)
{
    emu_init();
    if (check_size(size, "pi_l2_malloc") && injected_alloc_failure(2))
        return NULL;
    return g_l2.base + heap_alloc(&g_l2, check_size(size, "pi_l2_malloc"), GF_EMU_ALIGN, "pi_l2_malloc");
}

void *pi_l2_malloc_align(int size, int align)
{
    uint64_t a;
    emu_init();
    if (align <= 0 || (align & (align - 1)) != 0 || (unsigned)align > GF_EMU_POOL_ALIGN)
        gf_fail("pi_l2_malloc_align: alignment %d is not a power of two in 1..%u", align, GF_EMU_POOL_ALIGN);
    a = (uint64_t)align < GF_EMU_ALIGN ? GF_EMU_ALIGN : (uint64_t)align;
    if (check_size(size, "pi_l2_malloc_align") && injected_alloc_failure(2))
        return NULL;
    return g_l2.base + heap_alloc(&g_l2, check_size(size, "pi_l2_malloc_align"), a, "pi_l2_malloc_align");
}

void pi_l2_free(void *p, int size)
{
    emu_init();
    if (!in_pool(&g_l2, (uintptr_t)p))
        gf_fail("pi_l2_free: %p is not an L2 allocation", p);
    heap_free(&g_l2, (uint64_t)((uint8_t *)p - g_l2.base), check_size(size, "pi_l2_free"), "pi_l2_free");
}

/* ---------------------------------------------------------------------------------------------
 * Transfers in flight (cluster DMA commands and cluster L3 requests)
 *
 * A transfer moves `size` bytes between a strided side `ext` (lines of `length` bytes, `stride`
 * apart; 1-D: one line) and a contiguous side `loc`. For DMA ext is L2 and loc L1; for L3
 * requests ext is the L3 pool and loc the L2 buffer.
 */

enum { XFER_DMA = 1, XFER_RAM = 2 };

typedef struct gf_xfer_s {
    int used;
    int kind;
    const void *handle; /* the pi_cl_dma_cmd_t / pi_cl_ram_req_t */
    uint32_t serial;
    const char *api;
    int ext_is_src; /* DMA EXT2LOC, L3 read */
    uint8_t *ext, *loc;
    const gf_heap *ext_heap, *loc_heap;
    uint32_t size, stride, length;
    uint8_t *snap; /* the source bytes at issue */
    int core;
} gf_xfer;

static gf_xfer g_dma[GF_EMU_DMA_SLOTS];
static gf_xfer *g_ram_reqs;
static size_t g_ram_cap;
static uint32_t g_serial = 0x6f000000u;

static struct {
    const void *handle;
    uint32_t serial;
    int kind;
} g_history[GF_EMU_HISTORY];
static unsigned g_history_next;

static uint32_t next_serial(void)
{
    if (++g_serial == 0)
        ++g_serial;
    return g_serial;
}

static uint64_t ext_span(const gf_xfer *x)
{
    uint64_t lines = x->size / x->length;
    return (lines - 1) * (uint64_t)x->stride + x->length;
}

static const char *xfer_dir(const gf_xfer *x)
{
    if (x->kind == XFER_DMA)
        return x->ext_is_src ? "EXT2LOC" : "LOC2EXT";
    return x->ext_is_src ? "read" : "write";
}

static void xfer_gather_src(const gf_xfer *x, uint8_t *out)
{
    uint32_t i, lines = x->size / x->length;
    if (!x->ext_is_src) {
        memcpy(out, x->loc, x->size);
        return;
    }
    for (i = 0; i < lines; i++)
        memcpy(out + (size_t)i * x->length, x->ext + (size_t)i * x->stride, x->length);
}

static void xfer_poison_dst(const gf_xfer *x)
{
    uint32_t i, lines = x->size / x->length;
    if (x->ext_is_src) {
        memset(x->loc, GF_EMU_POISON, x->size);
        return;
    }
    for (i = 0; i < lines; i++)
        memset(x->ext + (size_t)i * x->stride, GF_EMU_POISON, x->length);
}

static int xfer_dst_intact(const gf_xfer *x)
{
    uint32_t i, j, lines = x->size / x->length;
    for (i = 0; i < lines; i++) {
        const uint8_t *d = x->ext_is_src ? x->loc + (size_t)i * x->length : x->ext + (size_t)i * x->stride;
        for (j = 0; j < x->length; j++)
            if (d[j] != GF_EMU_POISON)
                return 0;
    }
    return 1;
}

static void xfer_describe(const struct gf_xfer_s *x, char *buf, size_t n)
{
    if (x->length == x->size)
        snprintf(buf, n, "%s %s of %u bytes issued by core %d", x->api, xfer_dir(x), x->size, x->core);
    else
        snprintf(buf, n, "%s %s of %u bytes in lines of %u, stride %u, issued by core %d", x->api, xfer_dir(x),
                 x->size, x->length, x->stride, x->core);
}

/* Issue: record, snapshot the source, poison the destination. */
static void xfer_start(gf_xfer *x)
{
    x->snap = (uint8_t *)malloc(x->size);
    if (x->snap == NULL)
        gf_fail("host out of memory");
    xfer_gather_src(x, x->snap);
    xfer_poison_dst(x);
}

/* Completion: check source and destination were left alone, copy, count. */
static void xfer_complete_body(gf_xfer *x)
{
    uint32_t i, lines = x->size / x->length;
    uint8_t *now = (uint8_t *)malloc(x->size);
    if (now == NULL)
        gf_fail("host out of memory");
    xfer_gather_src(x, now);
    i = memcmp(now, x->snap, x->size) != 0;
    free(now); /* before a failure too: LeakSanitizer does not scan the emulated stacks */
    if (i)
        gf_fail_xfer(x, "DMA source modified before completion");
    if (!xfer_dst_intact(x))
        gf_fail_xfer(x, "DMA destination modified before completion");
    for (i = 0; i < lines; i++) {
        uint8_t *e = x->ext + (size_t)i * x->stride, *l = x->loc + (size_t)i * x->length;
        if (x->ext_is_src)
            memcpy(l, x->snap + (size_t)i * x->length, x->length);
        else
            memcpy(e, x->snap + (size_t)i * x->length, x->length);
    }
    free(x->snap);
    x->snap = NULL;
    if (x->kind == XFER_DMA) {
        if (x->ext_is_src)
            g_stats.l2_to_l1 += x->size;
        else
            g_stats.l1_to_l2 += x->size;
        g_stats.dma_cmds++;
    } else {
        if (x->ext_is_src)
            g_stats.l3_to_l2 += x->size;
        else
            g_stats.l2_to_l3 += x->size;
        g_stats.ram_reqs++;
    }
    g_history[g_history_next % GF_EMU_HISTORY].handle = x->handle;
    g_history[g_history_next % GF_EMU_HISTORY].serial = x->serial;
    g_history[g_history_next % GF_EMU_HISTORY].kind = x->kind;
    g_history_next++;
    x->used = 0;
}

/* Emulator work: not counted as the program's instructions on the rv32 build (EXCL_*). */
static void xfer_complete(gf_xfer *x)
{
    excl_begin();
    xfer_complete_body(x);
    excl_end();
}

static int in_history(const void *handle, uint32_t serial, int kind)
{
    unsigned i;
    for (i = 0; i < GF_EMU_HISTORY; i++)
        if (g_history[i].handle == handle && g_history[i].serial == serial && g_history[i].kind == kind)
            return 1;
    return 0;
}

static int ranges_overlap(uintptr_t a, uint64_t na, uintptr_t b, uint64_t nb)
{
    return a < b + nb && b < a + na;
}

static int xfer_touches(const gf_xfer *x, const gf_heap *h, uintptr_t p, uint64_t n)
{
    if (!x->used)
        return 0;
    if (x->ext_heap == h && ranges_overlap((uintptr_t)x->ext, ext_span(x), p, n))
        return 1;
    if (x->loc_heap == h && ranges_overlap((uintptr_t)x->loc, x->size, p, n))
        return 1;
    return 0;
}

static void check_not_in_flight(const gf_heap *h, uint64_t off, uint64_t len, const char *api)
{
    size_t i;
    uintptr_t p = (uintptr_t)(h->base + off);
    for (i = 0; i < GF_EMU_DMA_SLOTS; i++)
        if (xfer_touches(&g_dma[i], h, p, len))
            gf_fail_xfer(&g_dma[i], "%s: freeing %s memory used by a transfer in flight", api, h->name);
    for (i = 0; i < g_ram_cap; i++)
        if (xfer_touches(&g_ram_reqs[i], h, p, len))
            gf_fail_xfer(&g_ram_reqs[i], "%s: freeing %s memory used by a transfer in flight", api, h->name);
}

/* Geometry checks shared by DMA and L3 transfers; 1-D callers pass length = stride = size. */
static void check_lines(uint32_t size, uint32_t stride, uint32_t length, int ext_is_dst, const char *api)
{
    if (size == 0)
        gf_fail("%s: size 0", api);
    if (length == 0)
        gf_fail("%s: line length 0", api);
    if (size % length != 0)
        gf_fail("%s: size %u is not a multiple of the line length %u", api, size, length);
    if (ext_is_dst && stride < length && size > length)
        gf_fail("%s: stride %u < line length %u: destination lines overlap", api, stride, length);
}

/* The live allocation of heap h holding [p, p + n) or a loud error naming the role. */
static void check_in_heap(const gf_heap *h, uintptr_t p, uint64_t n, const char *role, const char *api)
{
    if (!in_pool(h, p)) {
        const char *where = in_pool(&g_l1, p) ? "L1" : in_pool(&g_l2, p) ? "L2" : "host memory outside the pools";
        gf_fail("%s: %s address %p is in %s, not %s (%s buffers must come from %s)", api, role, (void *)p, where,
                h->name, h->name, h == &g_l1 ? "pi_cl_l1_malloc" : "pi_l2_malloc");
    }
    if (heap_find(h, (uint64_t)(p - (uintptr_t)h->base), n) < 0)
        gf_fail("%s: %s range [%p, +%llu) is not inside one live %s allocation", api, role, (void *)p, (ull)n,
                h->name);
}

static void check_l3_range(uint32_t addr, uint64_t n, const char *api)
{
    if (g_l3.base == NULL || heap_find(&g_l3, addr, n) < 0)
        gf_fail("%s: L3 range [0x%x, +%llu) is not inside one live L3 allocation (pi_ram_alloc)", api, addr, (ull)n);
}

/* ---------------------------------------------------------------------------------------------
 * Cluster DMA
 */

static void dma_issue_body(uintptr_t ext, uintptr_t loc, uint32_t size, uint32_t stride, uint32_t length, int two_d,
                      pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd, const char *api)
{
    gf_xfer *x = NULL;
    size_t i, inflight = 0;
    uint64_t span;
    need_cluster(api);
    if (cmd == NULL)
        gf_fail("%s: NULL command", api);
    if (dir != PI_CL_DMA_DIR_EXT2LOC && dir != PI_CL_DMA_DIR_LOC2EXT)
        gf_fail("%s: invalid direction %d", api, (int)dir);
    if (!two_d) {
        if (size == 0)
            gf_fail("%s: size 0", api);
        if (size >= 65536u)
            gf_fail("%s: 1-D size %u >= 65536 (split 1-D commands below 64 KiB)", api, size);
    } else {
        if (length >= 65536u)
            gf_fail("%s: 2-D line length %u >= 65536", api, length);
        if (stride >= 65536u)
            gf_fail("%s: 2-D stride %u >= 65536", api, stride);
        if (size >= 131072u)
            gf_fail("%s: 2-D size %u exceeds the 17-bit DMA length (< 131072)", api, size);
    }
    check_lines(size, stride, length, dir == PI_CL_DMA_DIR_LOC2EXT, api);
    span = (uint64_t)(size / length - 1) * stride + length;
    check_in_heap(&g_l1, loc, size, "loc (L1)", api);
    check_in_heap(&g_l2, ext, span, "ext (L2)", api);
    for (i = 0; i < GF_EMU_DMA_SLOTS; i++) {
        if (g_dma[i].used) {
            inflight++;
            if (g_dma[i].handle == cmd)
                gf_fail("%s: command structure %p reused while its previous command is still in flight", api,
                        (void *)cmd);
        } else if (x == NULL) {
            x = &g_dma[i];
            cmd->tid = (uint32_t)i;
        }
    }
    if (x == NULL)
        gf_fail("%s: more than %d DMA commands in flight (hardware transfer ids are limited: wait before issuing "
                "more)", api, (int)inflight);
    memset(x, 0, sizeof *x);
    x->used = 1;
    x->kind = XFER_DMA;
    x->handle = cmd;
    x->serial = cmd->gf_serial = next_serial();
    x->api = api;
    x->ext_is_src = dir == PI_CL_DMA_DIR_EXT2LOC;
    x->ext = (uint8_t *)ext;
    x->loc = (uint8_t *)loc;
    x->ext_heap = &g_l2;
    x->loc_heap = &g_l1;
    x->size = size;
    x->stride = stride;
    x->length = length;
    x->core = g_cur_core;
    xfer_start(x);
}

/* Emulator work: not counted as the program's instructions on the rv32 build (EXCL_*). */
static void dma_issue(uintptr_t ext, uintptr_t loc, uint32_t size, uint32_t stride, uint32_t length, int two_d,
                      pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd, const char *api)
{
    excl_begin();
    dma_issue_body(ext, loc, size, stride, length, two_d, dir, cmd, api);
    excl_end();
}

void pi_cl_dma_cmd(uintptr_t ext, uintptr_t loc, uint32_t size, pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd)
{
    dma_issue(ext, loc, size, size, size, 0, dir, cmd, "pi_cl_dma_cmd");
}

void pi_cl_dma_cmd_2d(uintptr_t ext, uintptr_t loc, uint32_t size, uint32_t stride, uint32_t length,
                      pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd)
{
    dma_issue(ext, loc, size, stride, length, 1, dir, cmd, "pi_cl_dma_cmd_2d");
}

void pi_cl_dma_cmd_wait(pi_cl_dma_cmd_t *cmd)
{
    size_t i;
    need_cluster("pi_cl_dma_cmd_wait");
    if (cmd == NULL)
        gf_fail("pi_cl_dma_cmd_wait: NULL command");
    for (i = 0; i < GF_EMU_DMA_SLOTS; i++)
        if (g_dma[i].used && g_dma[i].handle == cmd && g_dma[i].serial == cmd->gf_serial) {
            xfer_complete(&g_dma[i]);
            return;
        }
    if (in_history(cmd, cmd->gf_serial, XFER_DMA))
        gf_fail("pi_cl_dma_cmd_wait: DMA command waited twice (already completed by an earlier wait or by "
                "pi_cl_dma_flush)");
    gf_fail("pi_cl_dma_cmd_wait: DMA wait on a command that was never issued");
}

void pi_cl_dma_flush(void)
{
    size_t i;
    need_cluster("pi_cl_dma_flush");
    /* In issue order (serials increase), like the hardware queue. */
    for (;;) {
        gf_xfer *first = NULL;
        for (i = 0; i < GF_EMU_DMA_SLOTS; i++)
            if (g_dma[i].used && (first == NULL || g_dma[i].serial - first->serial > 0x80000000u))
                first = &g_dma[i];
        if (first == NULL)
            break;
        xfer_complete(first);
    }
}

/* ---------------------------------------------------------------------------------------------
 * L3 RAM
 */

void pi_default_ram_conf_init(struct pi_default_ram_conf *conf)
{
    emu_init();
    if (conf == NULL)
        gf_fail("pi_default_ram_conf_init: NULL configuration");
    memset(conf, 0, sizeof *conf);
    conf->gf_magic = MAGIC_RAM_CONF;
}

int pi_ram_open(struct pi_device *dev)
{
    need_fc("pi_ram_open");
    need_conf(dev, MAGIC_RAM_CONF, "pi_ram_open", "pi_default_ram_conf_init");
    if (g_ram != NULL)
        gf_fail("pi_ram_open: the RAM is already open");
    if (g_l3.base == NULL) {
        uint64_t size = env_bytes("GF_EMU_L3_SIZE", GF_EMU_L3_DEFAULT, GF_EMU_L3_MAX);
        heap_init(&g_l3, size, size);
    }
    dev->gf_kind = KIND_RAM;
    g_ram = dev;
    return 0;
}

void pi_ram_close(struct pi_device *dev)
{
    need_fc("pi_ram_close");
    need_ram(dev, "pi_ram_close");
    dev->gf_kind = 0;
    g_ram = NULL; /* allocations and contents persist (the RAM keeps them) */
}

int pi_ram_alloc(struct pi_device *dev, uint32_t *addr, uint32_t size)
{
    need_fc("pi_ram_alloc");
    need_ram(dev, "pi_ram_alloc");
    if (addr == NULL)
        gf_fail("pi_ram_alloc: NULL address pointer");
    if (size == 0)
        gf_fail("pi_ram_alloc: size 0");
    if (injected_alloc_failure(3))
        return -1;
    *addr = (uint32_t)heap_alloc(&g_l3, size, GF_EMU_ALIGN, "pi_ram_alloc");
    return 0;
}

int pi_ram_free(struct pi_device *dev, uint32_t addr, uint32_t size)
{
    need_fc("pi_ram_free");
    need_ram(dev, "pi_ram_free");
    heap_free(&g_l3, addr, size, "pi_ram_free");
    return 0;
}

/* FC-side buffer: anywhere except L1 (the FC's stack and static data are in L2 on the chip);
 * inside the L2 pool it must lie in one live allocation. */
static void check_fc_buffer(const void *buf, uint32_t size, const char *api)
{
    if (buf == NULL)
        gf_fail("%s: NULL buffer", api);
    if (in_pool(&g_l1, (uintptr_t)buf))
        gf_fail("%s: buffer %p is in L1 (the L3 and flash drivers transfer to and from L2)", api, buf);
    if (in_pool(&g_l2, (uintptr_t)buf))
        check_in_heap(&g_l2, (uintptr_t)buf, size, "buffer (L2)", api);
}

static void ram_fc_copy(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size, uint32_t stride,
                        uint32_t length, int read, const char *api)
{
    uint32_t i, lines;
    uint8_t *b = (uint8_t *)buf;
    need_fc(api);
    need_ram(dev, api);
    check_lines(size, stride, length, !read, api);
    lines = size / length;
    check_l3_range(addr, (uint64_t)(lines - 1) * stride + length, api);
    check_fc_buffer(buf, size, api);
    for (i = 0; i < lines; i++) {
        uint8_t *e = g_l3.base + addr + (size_t)i * stride;
        if (read)
            memcpy(b + (size_t)i * length, e, length);
        else
            memcpy(e, b + (size_t)i * length, length);
    }
    if (read)
        g_stats.l3_to_l2 += size;
    else
        g_stats.l2_to_l3 += size;
    g_stats.ram_reqs++;
}

void pi_ram_read(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size)
{
    ram_fc_copy(dev, addr, buf, size, size, size, 1, "pi_ram_read");
}

void pi_ram_write(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size)
{
    ram_fc_copy(dev, addr, buf, size, size, size, 0, "pi_ram_write");
}

void pi_ram_read_2d(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size, uint32_t stride, uint32_t length)
{
    ram_fc_copy(dev, addr, buf, size, stride, length, 1, "pi_ram_read_2d");
}

void pi_ram_write_2d(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size, uint32_t stride, uint32_t length)
{
    ram_fc_copy(dev, addr, buf, size, stride, length, 0, "pi_ram_write_2d");
}

static void ram_cl_issue_body(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size, uint32_t stride,
                         uint32_t length, int read, pi_cl_ram_req_t *req, const char *api)
{
    gf_xfer *x = NULL;
    size_t i;
    uint64_t span;
    need_cluster(api);
    need_ram(dev, api);
    if (req == NULL)
        gf_fail("%s: NULL request", api);
    check_lines(size, stride, length, !read, api);
    span = (uint64_t)(size / length - 1) * stride + length;
    check_l3_range(addr, span, api);
    if (buf == NULL)
        gf_fail("%s: NULL buffer", api);
    check_in_heap(&g_l2, (uintptr_t)buf, size, "buffer (L2)", api);
    for (i = 0; i < g_ram_cap; i++) {
        if (g_ram_reqs[i].used) {
            if (g_ram_reqs[i].handle == req)
                gf_fail("%s: request structure %p reused while its previous request is still in flight", api,
                        (void *)req);
        } else if (x == NULL) {
            x = &g_ram_reqs[i];
        }
    }
    if (x == NULL) {
        size_t cap = g_ram_cap ? 2 * g_ram_cap : 16;
        gf_xfer *n = (gf_xfer *)realloc(g_ram_reqs, cap * sizeof *n);
        if (n == NULL)
            gf_fail("host out of memory");
        memset(n + g_ram_cap, 0, (cap - g_ram_cap) * sizeof *n);
        x = n + g_ram_cap;
        g_ram_reqs = n;
        g_ram_cap = cap;
    }
    memset(x, 0, sizeof *x);
    x->used = 1;
    x->kind = XFER_RAM;
    x->handle = req;
    x->serial = req->gf_serial = next_serial();
    req->gf_slot = (uint32_t)(x - g_ram_reqs);
    x->api = api;
    x->ext_is_src = read;
    x->ext = g_l3.base + addr;
    x->loc = (uint8_t *)buf;
    x->ext_heap = &g_l3;
    x->loc_heap = &g_l2;
    x->size = size;
    x->stride = stride;
    x->length = length;
    x->core = g_cur_core;
    xfer_start(x);
}

/* Emulator work: not counted as the program's instructions on the rv32 build (EXCL_*). */
static void ram_cl_issue(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size, uint32_t stride,
                         uint32_t length, int read, pi_cl_ram_req_t *req, const char *api)
{
    excl_begin();
    ram_cl_issue_body(dev, addr, buf, size, stride, length, read, req, api);
    excl_end();
}

static void ram_cl_wait(pi_cl_ram_req_t *req, int read, const char *api)
{
    size_t i;
    need_cluster(api);
    if (req == NULL)
        gf_fail("%s: NULL request", api);
    for (i = 0; i < g_ram_cap; i++) {
        gf_xfer *x = &g_ram_reqs[i];
        if (x->used && x->handle == req && x->serial == req->gf_serial) {
            if (x->ext_is_src != read)
                gf_fail("%s on a %s request (%s)", api, read ? "write" : "read", x->api);
            xfer_complete(x);
            return;
        }
    }
    if (in_history(req, req->gf_serial, XFER_RAM))
        gf_fail("%s: RAM request waited twice", api);
    gf_fail("%s: wait on a RAM request that was never issued", api);
}

void pi_cl_ram_read(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size, pi_cl_ram_req_t *req)
{
    ram_cl_issue(dev, addr, buf, size, size, size, 1, req, "pi_cl_ram_read");
}

void pi_cl_ram_write(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size, pi_cl_ram_req_t *req)
{
    ram_cl_issue(dev, addr, buf, size, size, size, 0, req, "pi_cl_ram_write");
}

void pi_cl_ram_read_2d(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size, uint32_t stride,
                       uint32_t length, pi_cl_ram_req_t *req)
{
    ram_cl_issue(dev, addr, buf, size, stride, length, 1, req, "pi_cl_ram_read_2d");
}

void pi_cl_ram_write_2d(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size, uint32_t stride,
                        uint32_t length, pi_cl_ram_req_t *req)
{
    ram_cl_issue(dev, addr, buf, size, stride, length, 0, req, "pi_cl_ram_write_2d");
}

void pi_cl_ram_read_wait(pi_cl_ram_req_t *req)
{
    ram_cl_wait(req, 1, "pi_cl_ram_read_wait");
}

void pi_cl_ram_write_wait(pi_cl_ram_req_t *req)
{
    ram_cl_wait(req, 0, "pi_cl_ram_write_wait");
}

/* ---------------------------------------------------------------------------------------------
 * Stacks
 *
 * Every emulated core (0..7 and the cluster controller, 8) runs on a stack of its own, mapped
 * with GF_EMU_GUARD_BYTES of inaccessible pages below it: a call chain that runs past the end
 * faults on the guard, and the SIGSEGV handler (on an alternate signal stack) reports "stack
 * overflow on core N" and exits 3. The usable bytes are painted with GF_EMU_STACK_PAINT when a
 * core starts: the lowest GF_EMU_CANARY_BYTES must still hold the paint at every switch (a
 * second, independent check), and the unpainted depth at the end is the core's peak use
 * (gf_emu_stats_t cc_stack_peak / core_stack_peak, host bytes).
 */

enum { CORE_READY = 1, CORE_BARRIER = 2, CORE_DONE = 3 };

typedef struct {
    uint8_t *map;   /* mapping: guard pages, then the stack */
    size_t map_len;
    uint8_t *lo;    /* lowest usable byte, just above the guard */
    size_t size;    /* usable host bytes [lo, lo + size) */
    size_t rv32;    /* the configured bytes it emulates (0: not modelled) */
} gf_stack;

typedef struct {
    ucontext_t ctx;
    gf_stack stack;
    int state;
    int critical;
    void *asan_fake; /* ASan fake stack saved while the core is switched out */
} gf_core;

static gf_core g_cores[GF_EMU_NB_CORES];
static gf_stack g_cc_stack;
static ucontext_t g_sched_ctx, g_fc_ctx, g_cc_ctx;
static struct pi_cluster_task *g_task;
static int g_fork_active, g_fork_n;
static void (*g_fork_entry)(void *);
static void *g_fork_arg;
static unsigned g_barrier_round;
static uint8_t g_error_stack[GF_EMU_ERROR_STACK] GF_ALIGNED16;
#ifndef GF_EMU_BARE
static uint8_t g_signal_stack[64u * 1024u] GF_ALIGNED16;
#endif
#ifdef GF_EMU_ASAN
static const void *g_main_stack_bottom; /* the scheduler's stack (the controller's) */
static size_t g_main_stack_size;
static void *g_sched_fake, *g_fc_fake;
static const void *g_fc_stack_bottom;
static size_t g_fc_stack_size;
#endif

/* Maps (or reuses) a stack of `size` usable host bytes and paints it. */
static void stack_prepare(gf_stack *st, size_t size, size_t rv32)
{
#ifdef GF_EMU_BARE
    /* No MMU: a heap block, no guard pages (the canary catches overflows at the switches). */
    size = (size_t)align_up(size, 16);
    if (st->map == NULL || st->size != size) {
        free(st->map);
        st->map = (uint8_t *)malloc(size + 16);
        if (st->map == NULL)
            gf_fail("out of memory (%llu bytes of emulated stack)", (ull)size);
        st->map_len = size + 16;
        st->lo = (uint8_t *)(uintptr_t)align_up((uint64_t)(uintptr_t)st->map, 16);
        st->size = size;
    }
#else
    long page = sysconf(_SC_PAGESIZE);
    size = (size_t)align_up(size, 16);
    if (st->map == NULL || st->size != size) {
        size_t len = GF_EMU_GUARD_BYTES + (size_t)align_up(size, (uint64_t)page);
        void *m;
        if (st->map != NULL)
            munmap(st->map, st->map_len);
        m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            gf_fail("host out of memory (%llu bytes of emulated stack)", (ull)len);
        if (mprotect(m, GF_EMU_GUARD_BYTES, PROT_NONE) != 0)
            gf_fail("mprotect of a stack guard failed");
        st->map = (uint8_t *)m;
        st->map_len = len;
        st->lo = st->map + GF_EMU_GUARD_BYTES;
        st->size = size;
    }
#endif
    st->rv32 = rv32;
    if (st == &g_cc_stack)
        g_stats.cc_stack_size = st->size;
    else
        g_stats.core_stack_size = st->size;
    mem_unpoison(st->lo, st->size); /* frames left by a previous run */
    memset(st->lo, GF_EMU_STACK_PAINT, st->size);
}

/* Host bytes of the stack used so far: from the top down to the lowest byte not holding the
 * paint. Reads dead frames (ASan may still have them poisoned), hence not instrumented. */
static GF_NO_ASAN size_t stack_used(const gf_stack *st)
{
    size_t i = 0;
    while (i < st->size && st->lo[i] == GF_EMU_STACK_PAINT)
        i++;
    return st->size - i;
}

static GF_NO_ASAN int stack_canary_intact(const gf_stack *st)
{
    size_t i;
    for (i = 0; i < GF_EMU_CANARY_BYTES && i < st->size; i++)
        if (st->lo[i] != GF_EMU_STACK_PAINT)
            return 0;
    return 1;
}

static int stack_holds(const gf_stack *st, uintptr_t a)
{
    return st->map != NULL && a >= (uintptr_t)st->lo && a < (uintptr_t)(st->lo + st->size);
}

static int stack_guard_holds(const gf_stack *st, uintptr_t a)
{
#ifdef GF_EMU_BARE
    (void)st;
    (void)a;
    return 0; /* no guard pages */
#else
    return st->map != NULL && a >= (uintptr_t)st->map && a < (uintptr_t)st->lo;
#endif
}

/* At every switch away from a core, and when it finishes: the canary, then the peak. */
static void stack_check_body(int core, const gf_stack *st)
{
    size_t used;
    if (!stack_canary_intact(st)) {
        if (st->rv32)
            gf_fail("stack overflow on core %d: the call chain reached the last %u bytes of its %llu-byte stack (the "
                    "%llu bytes the program configured, times the host/rv32 ratio)", core, GF_EMU_CANARY_BYTES,
                    (ull)st->size, (ull)st->rv32);
        gf_fail("stack overflow on core %d: the call chain reached the last %u bytes of its %llu-byte stack", core,
                GF_EMU_CANARY_BYTES, (ull)st->size);
    }
    used = stack_used(st);
    if (core == GF_EMU_CC_CORE) {
        if (used > g_stats.cc_stack_peak)
            g_stats.cc_stack_peak = used;
    } else if (used > g_stats.core_stack_peak) {
        g_stats.core_stack_peak = used;
    }
}

/* Emulator work: not counted as the program's instructions on the rv32 build (EXCL_*). */
static void stack_check(int core, const gf_stack *st)
{
    excl_begin();
    stack_check_body(core, st);
    excl_end();
}

static const gf_stack *stack_of_core(int core)
{
    return core == GF_EMU_CC_CORE ? &g_cc_stack : &g_cores[core].stack;
}

/* The emulated stack holding address a (-1: none), and whether a is in its guard instead. */
static int stack_find(uintptr_t a, int *in_guard)
{
    int c;
    for (c = 0; c <= GF_EMU_NB_CORES; c++) {
        const gf_stack *st = stack_of_core(c);
        if (stack_holds(st, a) || stack_guard_holds(st, a)) {
            *in_guard = stack_guard_holds(st, a);
            return c;
        }
    }
    return -1;
}

#ifdef GF_EMU_BARE
static void install_guard_handler(void)
{
}
#else
static void write_str(const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void write_num(uint64_t v)
{
    char buf[24];
    int i = (int)sizeof buf - 1;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i > 0);
    write_str(buf + i);
}

/* SIGSEGV on a guard page: a stack overflow. The program is dying: stdout is flushed so that its
 * earlier lines come first (not async-signal-safe in general; the fault is in the program's code,
 * not inside stdio), then the report is written with write(2). Other faults: default action. */
static void guard_handler(int sig, siginfo_t *si, void *uctx)
{
    int in_guard = 0, core = stack_find((uintptr_t)si->si_addr, &in_guard);
    (void)uctx;
    if (core >= 0 && in_guard) {
        const gf_stack *st = stack_of_core(core);
        fflush(stdout);
        write_str("GF EMU ERROR stack overflow on core ");
        write_num((uint64_t)core);
        write_str(": the call chain ran past the end of its ");
        write_num(st->size);
        write_str("-byte stack");
        if (st->rv32) {
            write_str(" (the ");
            write_num(st->rv32);
            write_str(" bytes the program configured, times the host/rv32 ratio)");
        }
        write_str("\n");
        _exit(3);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_guard_handler(void)
{
    stack_t ss;
    struct sigaction sa;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = g_signal_stack;
    ss.ss_size = sizeof g_signal_stack;
    if (sigaltstack(&ss, NULL) != 0)
        gf_fail("sigaltstack failed");
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = guard_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0)
        gf_fail("sigaction failed");
}
#endif

static void fiber_start(void **fake, const void *bottom, size_t size)
{
#ifdef GF_EMU_ASAN
    __sanitizer_start_switch_fiber(fake, bottom, size);
#else
    (void)fake;
    (void)bottom;
    (void)size;
#endif
}

/* After a switch: tells ASan we arrived; the stack we came from goes to *bottom / *size. */
static void fiber_finish(void *fake, const void **bottom, size_t *size)
{
#ifdef GF_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, bottom, size);
#else
    (void)fake;
    (void)bottom;
    (void)size;
#endif
}

/* gf_fail on an emulated stack: print on the error stack instead (never returns there). */
static void fail_on_error_stack(void)
{
    fiber_finish(NULL, NULL, NULL);
    fail_report();
}

static void fail_elsewhere(void)
{
    static ucontext_t ctx;
    int in_guard = 0;
    char probe = 0;
    if (stack_find((uintptr_t)&probe, &in_guard) < 0)
        return; /* on the FC's (the process's) stack: report right here */
    if (getcontext(&ctx) != 0)
        return;
    ctx.uc_stack.ss_sp = g_error_stack;
    ctx.uc_stack.ss_size = sizeof g_error_stack;
    ctx.uc_link = NULL;
    makecontext(&ctx, fail_on_error_stack, 0);
    fiber_start(NULL, g_error_stack, sizeof g_error_stack);
    setcontext(&ctx);
}

/* ---------------------------------------------------------------------------------------------
 * Cluster tasks and the team of cores
 */

struct pi_cluster_task *pi_cluster_task(struct pi_cluster_task *task, void (*entry)(void *), void *arg)
{
    emu_init();
    if (task == NULL)
        gf_fail("pi_cluster_task: NULL task");
    if (entry == NULL)
        gf_fail("pi_cluster_task: NULL entry");
    memset(task, 0, sizeof *task);
    task->gf_magic = MAGIC_TASK;
    task->entry = entry;
    task->arg = arg;
    return task;
}

void pi_cluster_task_stacks(struct pi_cluster_task *task, void *stacks, int slave_stack_size)
{
    emu_init();
    if (task == NULL || task->gf_magic != MAGIC_TASK)
        gf_fail("pi_cluster_task_stacks: the task was not initialised with pi_cluster_task");
    if (slave_stack_size < 0)
        gf_fail("pi_cluster_task_stacks: negative stack size %d", slave_stack_size);
    if (stacks != NULL)
        gf_fail("pi_cluster_task_stacks: caller-provided stacks are not emulated (pass NULL: PMSIS allocates them)");
    task->stacks = stacks;
    task->slave_stack_size = slave_stack_size;
}

static void check_task_end(void)
{
    size_t i;
    for (i = 0; i < GF_EMU_DMA_SLOTS; i++)
        if (g_dma[i].used)
            gf_fail_xfer(&g_dma[i], "DMA command issued but never waited");
    for (i = 0; i < g_ram_cap; i++)
        if (g_ram_reqs[i].used)
            gf_fail_xfer(&g_ram_reqs[i], "RAM request issued but never waited");
    if (g_cc_critical != 0)
        gf_fail("cluster task returned inside a critical section (pi_cl_team_critical_enter without exit)");
}

/* Sizes the controller's and the cores' stacks for the task; modelled stacks are reserved in L1. */
static void size_stacks(const struct pi_cluster_task *task)
{
    uint64_t cc, slave, stacks;
    if (!g_stack_model) {
        stack_prepare(&g_cc_stack, g_cc_stack_host, 0);
        return;
    }
    if (g_cc_stack_conf <= 0)
        gf_fail("stacks are modelled (GF_EMU_CORE_STACK_RATIO) but the cluster configuration sets no "
                "cc_stack_size");
    if (task->slave_stack_size <= 0)
        gf_fail("stacks are modelled (GF_EMU_CORE_STACK_RATIO) but the task sets no compute-core stack size "
                "(pi_cluster_task_stacks)");
    cc = (uint64_t)g_cc_stack_conf;
    slave = (uint64_t)task->slave_stack_size;
    stacks = cc + GF_EMU_NB_CORES * slave;
    if (g_l1.budget + stacks > GF_EMU_L1_SIZE)
        gf_fail("the cluster stacks do not fit L1: L1 budget %llu + controller stack %llu + %d x %llu compute-core "
                "stacks = %llu bytes > the %u bytes of L1", (ull)g_l1.budget, (ull)cc, GF_EMU_NB_CORES, (ull)slave,
                (ull)(g_l1.budget + stacks), GF_EMU_L1_SIZE);
    stack_prepare(&g_cc_stack, (size_t)(cc * g_cc_ratio + 0.999999), (size_t)cc);
}

/* The cluster controller (core 8) runs the task entry on its own stack. */
static void cc_main(void)
{
#ifdef GF_EMU_ASAN
    fiber_finish(NULL, &g_fc_stack_bottom, &g_fc_stack_size);
#else
    fiber_finish(NULL, NULL, NULL);
#endif
    g_task->entry(g_task->arg);
    stack_check(GF_EMU_CC_CORE, &g_cc_stack);
#ifdef GF_EMU_ASAN
    fiber_start(NULL, g_fc_stack_bottom, g_fc_stack_size);
#else
    fiber_start(NULL, NULL, 0);
#endif
    setcontext(&g_fc_ctx);
    gf_fail("setcontext failed");
}

/* Kept out of line: getcontext returns twice, which must not clobber the caller's locals. */
static GF_NOINLINE void prepare_context(ucontext_t *ctx, const gf_stack *st, void (*fn)(void))
{
    if (getcontext(ctx) != 0)
        gf_fail("getcontext failed");
    ctx->uc_stack.ss_sp = st->lo;
    ctx->uc_stack.ss_size = st->size;
    ctx->uc_link = NULL;
    makecontext(ctx, fn, 0);
}

/* Saves the current context in `save` and continues at `to`; returns when `save` is resumed.
 * Equivalent to swapcontext, built from getcontext + setcontext because AddressSanitizer's
 * swapcontext interceptor prints a warning on every run; the stack switches are announced to
 * ASan with the fiber API instead (fiber_start / fiber_finish), and stacks are unpoisoned
 * before reuse (stack_prepare), which is what the interceptor would do. */
static GF_NOINLINE void ctx_switch(ucontext_t *save, const ucontext_t *to)
{
    volatile int resumed = 0;
    if (getcontext(save) != 0)
        gf_fail("getcontext failed");
    if (!resumed) {
        resumed = 1;
        setcontext(to);
        gf_fail("setcontext failed");
    }
}

int pi_cluster_send_task_to_cl(struct pi_device *dev, struct pi_cluster_task *task)
{
    emu_init();
    if (g_cur_core != GF_EMU_FC_CORE)
        gf_fail("pi_cluster_send_task_to_cl called from cluster core %d (tasks are sent by the FC)", g_cur_core);
    if (dev == NULL || dev != g_cluster || dev->gf_kind != KIND_CLUSTER)
        gf_fail("pi_cluster_send_task_to_cl: the device is not the open cluster (pi_cluster_open)");
    if (task == NULL || task->gf_magic != MAGIC_TASK || task->entry == NULL)
        gf_fail("pi_cluster_send_task_to_cl: the task was not initialised with pi_cluster_task");
    excl_begin(); /* sizing and painting the controller's emulated stack: emulator work, not the program's */
    size_stacks(task);
    excl_end();
    g_task = task;
    g_in_task = 1;
    g_nrecs = 0; /* the task's per-layer records (gf_emu_layer_end) */
    g_cur_core = GF_EMU_CC_CORE;
    g_cc_critical = 0;
    prepare_context(&g_cc_ctx, &g_cc_stack, cc_main);
#ifdef GF_EMU_ASAN
    fiber_start(&g_fc_fake, g_cc_stack.lo, g_cc_stack.size);
    ctx_switch(&g_fc_ctx, &g_cc_ctx);
    fiber_finish(g_fc_fake, NULL, NULL);
#elif defined(GF_EMU_BARE)
    {
        uint64_t t0 = instr_now(), cores = 0;
        for (int c = 0; c < GF_EMU_NB_CORES; c++)
            cores += g_core_instr[c];
        g_mark_t0 = t0;
        for (int c = 0; c <= GF_EMU_NB_CORES; c++)
            g_mark_core[c] = g_core_instr[c];
        g_mark_crit = g_core_crit;
        ctx_switch(&g_fc_ctx, &g_cc_ctx);
        if (g_nrecs > 0) { /* per-layer records (gf_emu_layer_end): the rest of the task goes to the last */
            gf_layer_rec *r = &g_recs[g_nrecs - 1];
            uint64_t rest = instr_now() - g_mark_t0, since = 0;
            for (int c = 0; c < GF_EMU_NB_CORES; c++) {
                since += g_core_instr[c] - g_mark_core[c];
                r->core_instr[c] += g_core_instr[c] - g_mark_core[c];
            }
            r->cluster_instr += rest;
            r->core_instr[GF_EMU_CC_CORE] += rest - since;
            r->core_crit += g_core_crit - g_mark_crit;
        } else {
            for (int c = 0; c < GF_EMU_NB_CORES; c++)
                cores -= g_core_instr[c];
            /* the controller: the task's instructions outside the forked cores' shares */
            t0 = instr_now() - t0;
            g_cluster_instr += t0;
            g_core_instr[GF_EMU_CC_CORE] += t0 + cores;
        }
    }
#else
    ctx_switch(&g_fc_ctx, &g_cc_ctx);
#endif
    excl_begin(); /* the emulator's end-of-task checks */
    check_task_end();
    excl_end();
    g_cur_core = GF_EMU_FC_CORE;
    g_in_task = 0;
    return 0;
}

/* A core gives control back to the scheduler (at a barrier, or for good when it is done). */
static void core_yield(int id, int done)
{
    stack_check(id, &g_cores[id].stack);
#ifdef GF_EMU_ASAN
    fiber_start(done ? NULL : &g_cores[id].asan_fake, g_main_stack_bottom, g_main_stack_size);
#else
    fiber_start(NULL, NULL, 0);
#endif
    ctx_switch(&g_cores[id].ctx, &g_sched_ctx);
    if (done)
        gf_fail("internal: a finished core was resumed");
#ifdef GF_EMU_ASAN
    fiber_finish(g_cores[id].asan_fake, &g_main_stack_bottom, &g_main_stack_size);
#else
    fiber_finish(NULL, NULL, NULL);
#endif
}

static void core_main(void)
{
    int id;
#ifdef GF_EMU_ASAN
    fiber_finish(NULL, &g_main_stack_bottom, &g_main_stack_size);
#else
    fiber_finish(NULL, NULL, NULL);
#endif
    g_fork_entry(g_fork_arg);
    id = g_cur_core;
    if (g_cores[id].critical != 0)
        gf_fail("core %d returned from the fork entry inside a critical section", id);
    g_cores[id].state = CORE_DONE;
    core_yield(id, 1);
}

static void run_core(int id)
{
#ifdef GF_EMU_ASAN
    void **fake = &g_sched_fake;
#else
    void **fake = NULL;
#endif
#ifdef GF_EMU_BARE
    uint64_t used;
#endif
    g_cur_core = id;
    fiber_start(fake, g_cores[id].stack.lo, g_cores[id].stack.size);
#ifdef GF_EMU_BARE
    g_slice_t0 = instr_now();
    ctx_switch(&g_sched_ctx, &g_cores[id].ctx);
    used = instr_now() - g_slice_t0; /* the slice since its start, or since a record inside it (layer_end) */
    g_core_instr[id] += used;
    if (used > g_round_max)
        g_round_max = used;
#else
    g_slice_t0 = now_ns();
    ctx_switch(&g_sched_ctx, &g_cores[id].ctx);
    g_core_ns[id] += now_ns() - g_slice_t0;
#endif
    g_cur_core = GF_EMU_CC_CORE;
    fiber_finish(fake != NULL ? *fake : NULL, NULL, NULL);
}

static void prepare_core(gf_core *c)
{
    size_t rv32 = g_stack_model ? (size_t)g_task->slave_stack_size : 0;
    size_t host = g_stack_model ? (size_t)((double)rv32 * g_core_ratio + 0.999999) : g_core_stack_host;
    stack_prepare(&c->stack, host, rv32);
    prepare_context(&c->ctx, &c->stack, core_main);
    c->state = CORE_READY;
    c->critical = 0;
    c->asan_fake = NULL;
}

void pi_cl_team_fork(int nb_cores, void (*entry)(void *), void *arg)
{
    int i, k, n;
    need_cluster("pi_cl_team_fork");
    if (g_fork_active || g_cur_core != GF_EMU_CC_CORE)
        gf_fail("pi_cl_team_fork called from core %d (only the cluster controller, core 8, forks; no nesting)",
                g_cur_core);
    if (entry == NULL)
        gf_fail("pi_cl_team_fork: NULL entry");
    if (nb_cores < 0 || nb_cores > GF_EMU_NB_CORES)
        gf_fail("pi_cl_team_fork: %d cores (expected 1..%d, or 0 for all)", nb_cores, GF_EMU_NB_CORES);
    n = nb_cores == 0 ? GF_EMU_NB_CORES : nb_cores;
    g_fork_active = 1;
    g_fork_n = n;
    g_fork_entry = entry;
    g_fork_arg = arg;
    g_barrier_round = 0;
    g_stats.forks++;
    excl_begin(); /* painting the stacks: emulator work */
    for (i = 0; i < n; i++)
        prepare_core(&g_cores[i]);
    excl_end();
    for (;;) {
        int ndone = 0, nbar = 0, a_done = -1, a_bar = -1;
#ifdef GF_EMU_BARE
        g_round_max = 0;
#endif
        for (k = 0; k < n; k++) {
            i = g_reverse ? n - 1 - k : k;
            if (g_cores[i].state == CORE_READY)
                run_core(i);
        }
#ifdef GF_EMU_BARE
        g_core_crit += g_round_max;
#endif
        for (i = 0; i < n; i++) {
            if (g_cores[i].state == CORE_DONE) {
                ndone++;
                a_done = i;
            } else {
                nbar++;
                a_bar = i;
            }
        }
        if (ndone == n)
            break;
        if (ndone > 0)
            gf_fail("mismatched barriers: core %d returned from the fork entry while core %d waits at barrier #%u",
                    a_done, a_bar, g_barrier_round + 1);
        for (i = 0; i < n; i++)
            g_cores[i].state = CORE_READY;
        g_barrier_round++;
    }
    g_fork_active = 0;
    g_cur_core = GF_EMU_CC_CORE;
}

void pi_cl_team_barrier(void)
{
    int id;
    need_cluster("pi_cl_team_barrier");
    id = g_cur_core;
    if (!g_fork_active || id == GF_EMU_CC_CORE)
        gf_fail("pi_cl_team_barrier called by core %d outside pi_cl_team_fork", id);
    if (g_cores[id].critical != 0)
        gf_fail("pi_cl_team_barrier called by core %d inside a critical section", id);
    g_cores[id].state = CORE_BARRIER;
    core_yield(id, 0);
}

int pi_cl_team_nb_cores(void)
{
    return g_fork_active ? g_fork_n : GF_EMU_NB_CORES;
}

int pi_core_id(void)
{
    return g_cur_core == GF_EMU_FC_CORE ? 0 : g_cur_core;
}

static int *critical_depth(const char *api)
{
    need_cluster(api);
    return g_cur_core == GF_EMU_CC_CORE ? &g_cc_critical : &g_cores[g_cur_core].critical;
}

void pi_cl_team_critical_enter(void)
{
    int *d = critical_depth("pi_cl_team_critical_enter");
    if (*d != 0)
        gf_fail("pi_cl_team_critical_enter: core %d is already inside a critical section", g_cur_core);
    (*d)++;
}

void pi_cl_team_critical_exit(void)
{
    int *d = critical_depth("pi_cl_team_critical_exit");
    if (*d == 0)
        gf_fail("pi_cl_team_critical_exit without pi_cl_team_critical_enter on core %d", g_cur_core);
    (*d)--;
}

/* ---------------------------------------------------------------------------------------------
 * Flash and ReadFS: files of the current directory, looked up by basename
 */

void pi_default_flash_conf_init(struct pi_default_flash_conf *conf)
{
    emu_init();
    if (conf == NULL)
        gf_fail("pi_default_flash_conf_init: NULL configuration");
    memset(conf, 0, sizeof *conf);
    conf->gf_magic = MAGIC_FLASH_CONF;
}

int pi_flash_open(struct pi_device *dev)
{
    need_fc("pi_flash_open");
    need_conf(dev, MAGIC_FLASH_CONF, "pi_flash_open", "pi_default_flash_conf_init");
    dev->gf_kind = KIND_FLASH;
    return 0;
}

void pi_readfs_conf_init(struct pi_readfs_conf *conf)
{
    emu_init();
    if (conf == NULL)
        gf_fail("pi_readfs_conf_init: NULL configuration");
    memset(conf, 0, sizeof *conf);
    conf->gf_magic = MAGIC_READFS_CONF;
    conf->fs.flash = NULL;
}

int pi_fs_mount(struct pi_device *dev)
{
    const struct pi_readfs_conf *conf;
    need_fc("pi_fs_mount");
    need_conf(dev, MAGIC_READFS_CONF, "pi_fs_mount", "pi_readfs_conf_init");
    conf = (const struct pi_readfs_conf *)dev->config;
    if (conf->fs.flash == NULL || conf->fs.flash->gf_kind != KIND_FLASH)
        gf_fail("pi_fs_mount: conf.fs.flash is not an open flash device (pi_flash_open)");
    dev->gf_kind = KIND_FS;
    return 0;
}

void pi_fs_unmount(struct pi_device *dev)
{
    need_fc("pi_fs_unmount");
    if (dev == NULL || dev->gf_kind != KIND_FS)
        gf_fail("pi_fs_unmount: the device is not a mounted file system");
    dev->gf_kind = 0;
}

pi_fs_file_t *pi_fs_open(struct pi_device *dev, const char *name, int flags)
{
    FILE *fp;
    long size;
    pi_fs_file_t *f;
    need_fc("pi_fs_open");
    if (dev == NULL || dev->gf_kind != KIND_FS)
        gf_fail("pi_fs_open: the device is not a mounted file system (pi_fs_mount)");
    if (name == NULL || *name == '\0')
        gf_fail("pi_fs_open: empty file name");
    if (flags != 0)
        gf_fail("pi_fs_open: flags %d (ReadFS files are opened read-only with flags 0)", flags);
    if (strchr(name, '/') != NULL) {
        fprintf(stderr, "GF EMU note: pi_fs_open(\"%s\"): ReadFS names are basenames, file not found\n", name);
        return NULL;
    }
    fp = fopen(name, "rb");
    if (fp == NULL)
        return NULL;
    if (fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return NULL;
    }
    if ((unsigned long)size > 0xffffffffUL)
        gf_fail("pi_fs_open: %s is larger than 4 GiB", name);
    f = (pi_fs_file_t *)malloc(sizeof *f);
    if (f == NULL)
        gf_fail("host out of memory");
    f->size = (uint32_t)size;
    f->gf_magic = MAGIC_FILE;
    f->fs = dev;
    f->gf_handle = fp;
    return f;
}

static FILE *fs_file(pi_fs_file_t *file, const char *api)
{
    need_fc(api);
    if (file == NULL || file->gf_magic != MAGIC_FILE)
        gf_fail("%s: not an open ReadFS file", api);
    return (FILE *)file->gf_handle;
}

int pi_fs_read(pi_fs_file_t *file, void *buf, uint32_t size)
{
    FILE *fp = fs_file(file, "pi_fs_read");
    size_t got;
    if (size == 0)
        return 0;
    if (size > 0x7fffffffu)
        gf_fail("pi_fs_read: size %u does not fit the int result", size);
    check_fc_buffer(buf, size, "pi_fs_read");
    got = fread(buf, 1, size, fp);
    if (got == 0 && ferror(fp))
        return -1;
    return (int)got;
}

int pi_fs_seek(pi_fs_file_t *file, uint32_t offset)
{
    FILE *fp = fs_file(file, "pi_fs_seek");
    if (offset > file->size)
        return -1;
    return fseek(fp, (long)offset, SEEK_SET) == 0 ? 0 : -1;
}

void pi_fs_close(pi_fs_file_t *file)
{
    FILE *fp = fs_file(file, "pi_fs_close");
    fclose(fp);
    file->gf_magic = 0;
    file->gf_handle = NULL;
    free(file);
}

/* ---------------------------------------------------------------------------------------------
 * Performance counters and frequency
 *
 * One counter per core (PMSIS counters are per core): the FC (index GF_EMU_NB_CORES + 1), the
 * cluster controller (GF_EMU_CC_CORE) and compute cores 0..7. Each counts its core's own clock while
 * started:
 *   rv32 (gap9-qemu): the instructions the core retired (minstret, QEMU -icount shift=0) with the
 *     emulator's own work excluded (DMA, L3 requests, allocations, stack painting and checks, these
 *     counters): a compute core's clock advances only while it runs (its barrier-round slices,
 *     exactly what GF CORES core<N> sums), the controller's while the task runs outside the forked
 *     cores' slices, the FC's all the time (every core serialised, as GF PERF always printed).
 *     PI_PERF_CYCLES and PI_PERF_INSTR read the same count.
 *   host (gap9-emu): host nanoseconds, per core in the same way (emulator work included, not
 *     repeatable); PI_PERF_INSTR reads 0.
 * Every other event reads 0.
 */

typedef struct {
    int running;
    uint64_t acc, t0;
} gf_perf_counter;

static gf_perf_counter g_perf[GF_EMU_NB_CORES + 2]; /* 0..7, controller, FC */

static uint64_t now_ns(void)
{
#ifdef GF_EMU_BARE
    return instr_now(); /* rv32: the program's retired instructions (QEMU -icount shift=0) */
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

/* The calling core's counter and its own clock now. */
static gf_perf_counter *perf_counter(uint64_t *clock)
{
    uint64_t t = now_ns(), others = 0;
    int c;
    if (g_cur_core == GF_EMU_FC_CORE) {
        *clock = t;
        return &g_perf[GF_EMU_NB_CORES + 1];
    }
    if (g_cur_core != GF_EMU_CC_CORE) { /* a forked core: its slices so far + the current one */
        *clock = CORE_CLOCK(g_cur_core) + (t - g_slice_t0);
        return &g_perf[g_cur_core];
    }
    for (c = 0; c < GF_EMU_NB_CORES; c++) /* the controller: the clock minus the forked cores' slices */
        others += CORE_CLOCK(c);
    *clock = t - others;
    return &g_perf[GF_EMU_CC_CORE];
}

/* No emu_init here: the counters need none, and these run on the compute cores' stacks, whose call
 * chains the stack analysis bounds (emu_init reaches signal set-up in the C library). */
void pi_perf_conf(unsigned events)
{
    (void)events; /* every counter counts the core's own clock (above) */
}

void pi_perf_reset(void)
{
    uint64_t now;
    gf_perf_counter *p;
    excl_begin();
    p = perf_counter(&now);
    p->acc = 0;
    if (p->running)
        p->t0 = now;
    excl_end();
}

void pi_perf_start(void)
{
    uint64_t now;
    gf_perf_counter *p;
    excl_begin();
    p = perf_counter(&now);
    if (!p->running) {
        p->running = 1;
        p->t0 = now;
    }
    excl_end();
}

void pi_perf_stop(void)
{
    uint64_t now;
    gf_perf_counter *p;
    excl_begin();
    p = perf_counter(&now);
    if (p->running) {
        p->acc += now - p->t0;
        p->running = 0;
    }
    excl_end();
}

unsigned int pi_perf_read(int event)
{
    uint64_t now, t;
    gf_perf_counter *p;
#ifdef GF_EMU_BARE
    if (event != PI_PERF_CYCLES && event != PI_PERF_INSTR)
        return 0;
#else
    if (event != PI_PERF_CYCLES)
        return 0;
#endif
    excl_begin();
    p = perf_counter(&now);
    t = p->acc + (p->running ? now - p->t0 : 0);
    excl_end();
    return (unsigned int)(t & 0xffffffffu);
}

int pi_freq_set(pi_freq_domain_e domain, uint32_t freq)
{
    emu_init();
    if ((int)domain < 0 || (int)domain > 2)
        gf_fail("pi_freq_set: unknown frequency domain %d", (int)domain);
    g_freq[domain] = freq;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Emulator statistics (gf_emu.h)
 */

/* The bodies without emu_init: gf_emu_layer_end runs them on the controller's stack (whose host call chain
 * the stack ratio measures; emu_init reaches signal set-up in the C library). */
static void stats_snapshot(gf_emu_stats_t *out)
{
    *out = g_stats;
    out->l1_cur = g_l1.cur;
    out->l1_peak = g_l1.peak;
    out->l1_budget = g_l1.budget;
    out->l2_cur = g_l2.cur;
    out->l2_peak = g_l2.peak;
    out->l2_budget = g_l2.budget;
    out->l3_cur = g_l3.cur;
    out->l3_peak = g_l3.peak;
    out->l3_size = g_l3.budget;
}

static void reset_peaks(void)
{
    g_stats.cc_stack_peak = g_stats.core_stack_peak = 0;
    g_l1.peak = g_l1.cur;
    g_l2.peak = g_l2.cur;
    g_l3.peak = g_l3.cur;
}

/* The traffic counters (bytes per direction, DMA commands, RAM requests, forks). */
static void reset_traffic(void)
{
    g_stats.l3_to_l2 = g_stats.l2_to_l3 = g_stats.l2_to_l1 = g_stats.l1_to_l2 = 0;
    g_stats.dma_cmds = g_stats.ram_reqs = g_stats.forks = 0;
}

static void reset_counters(void)
{
    reset_traffic();
#ifdef GF_EMU_BARE
    memset(g_core_instr, 0, sizeof g_core_instr);
    g_core_crit = g_cluster_instr = 0;
#endif
}

void gf_emu_get_stats(gf_emu_stats_t *out)
{
    emu_init();
    if (out == NULL)
        return;
    stats_snapshot(out);
    out->l3_size = g_l3.base != NULL ? g_l3.budget : env_bytes("GF_EMU_L3_SIZE", GF_EMU_L3_DEFAULT, GF_EMU_L3_MAX);
}

void gf_emu_reset_peaks(void)
{
    emu_init();
    reset_peaks();
}

void gf_emu_reset_counters(void)
{
    emu_init();
    reset_counters();
}

#ifdef GF_EMU_BARE
static void print_stats(const char *label, const gf_emu_stats_t *st, const uint64_t *core_instr, uint64_t crit,
                        uint64_t cluster)
#else
static void print_stats(const char *label, const gf_emu_stats_t *st)
#endif
{
    const gf_emu_stats_t s = *st;
    printf("GF EMU %s l1_peak=%llu l2_peak=%llu l3_peak=%llu l3_to_l2=%llu l2_to_l1=%llu l1_to_l2=%llu "
           "l2_to_l3=%llu dma_cmds=%llu cc_stack_peak=%llu cc_stack=%llu core_stack_peak=%llu core_stack=%llu\n",
           label != NULL ? label : "", (ull)s.l1_peak, (ull)s.l2_peak, (ull)s.l3_peak, (ull)s.l3_to_l2,
           (ull)s.l2_to_l1, (ull)s.l1_to_l2, (ull)s.l2_to_l3, (ull)s.dma_cmds, (ull)s.cc_stack_peak,
           (ull)s.cc_stack_size, (ull)s.core_stack_peak, (ull)s.core_stack_size);
#ifdef GF_EMU_BARE
    {
        /* per-core instructions of the step (program only, emulator work excluded): the busiest
         * compute core, their sum, the cores that ran, the sum over barrier rounds of each
         * round's busiest core, the controller's own share, the whole cluster task */
        uint64_t mx = 0, sum = 0;
        int used = 0;
        for (int c = 0; c < GF_EMU_NB_CORES; c++) {
            sum += core_instr[c];
            used += core_instr[c] != 0;
            if (core_instr[c] > mx)
                mx = core_instr[c];
        }
        printf("GF CORES %s core_max=%llu core_sum=%llu cores_used=%d core_crit=%llu cc=%llu cluster=%llu",
               label != NULL ? label : "", (ull)mx, (ull)sum, used, (ull)crit,
               (ull)core_instr[GF_EMU_CC_CORE], (ull)cluster);
        for (int c = 0; c < GF_EMU_NB_CORES; c++)
            printf(" core%d=%llu", c, (ull)core_instr[c]);
        printf("\n");
    }
#endif
    fflush(stdout);
}

void gf_emu_print_stats(const char *label)
{
    gf_emu_stats_t s;
    gf_emu_get_stats(&s);
#ifdef GF_EMU_BARE
    print_stats(label, &s, g_core_instr, g_core_crit, g_cluster_instr);
#else
    print_stats(label, &s);
#endif
}

/* No emu_init here (a task was sent: it has run); on the calling core's stack (stats_snapshot). The controller
 * outside a fork, or compute core 0 inside one (the executor's one fork per task: core 0 between two layers, the
 * other cores past the layer's last barrier): the instruction counts are not reset but marked (g_mark_*), as the
 * compute cores' pi_perf clocks are their counts; core 0's running slice is accounted up to the record. */
void gf_emu_layer_end(void)
{
#ifdef GF_EMU_BARE
    uint64_t now = instr_now(), cores = 0;
#endif
    gf_layer_rec *r;
    int id = g_cur_core;
    excl_begin();
    if (!g_in_task)
        gf_fail("gf_emu_layer_end called outside a cluster task (only the cluster controller outside a fork, or "
                "compute core 0 inside one, records a layer)");
    if (g_fork_active ? id != 0 : id != GF_EMU_CC_CORE)
        gf_fail("gf_emu_layer_end called %s by core %d (only the cluster controller outside a fork, or compute core 0 "
                "inside one, records a layer)", g_fork_active ? "inside a fork" : "outside a fork", id);
    stack_check(GF_EMU_CC_CORE, &g_cc_stack); /* the controller's stack peak so far */
    if (g_fork_active)
        stack_check(id, &g_cores[id].stack);
    if (g_nrecs == g_recs_cap) {
        int cap = g_recs_cap ? 2 * g_recs_cap : 16;
        gf_layer_rec *n = (gf_layer_rec *)realloc(g_recs, (size_t)cap * sizeof *n);
        if (n == NULL)
            gf_fail("host out of memory");
        g_recs = n;
        g_recs_cap = cap;
    }
    r = &g_recs[g_nrecs++];
    stats_snapshot(&r->s);
#ifdef GF_EMU_BARE
    if (g_fork_active) { /* core 0's slice so far, and the round so far (run_core and the scheduler add the rest) */
        uint64_t part = now - g_slice_t0;
        g_core_instr[id] += part;
        g_core_crit += part > g_round_max ? part : g_round_max;
        g_round_max = 0;
        g_slice_t0 = now;
    }
    for (int c = 0; c < GF_EMU_NB_CORES; c++) {
        r->core_instr[c] = g_core_instr[c] - g_mark_core[c];
        cores += r->core_instr[c];
    }
    r->cluster_instr = now - g_mark_t0;
    /* the controller: the layer's instructions outside the forked cores' shares */
    r->core_instr[GF_EMU_CC_CORE] = g_core_instr[GF_EMU_CC_CORE] - g_mark_core[GF_EMU_CC_CORE] + r->cluster_instr - cores;
    r->core_crit = g_core_crit - g_mark_crit;
    for (int c = 0; c <= GF_EMU_NB_CORES; c++)
        g_mark_core[c] = g_core_instr[c];
    g_mark_crit = g_core_crit;
    g_mark_t0 = now;
#endif
    reset_traffic(); /* not reset_counters: the instruction counts are marked above, not reset */
    reset_peaks();
    excl_end();
}

void gf_emu_print_layer_stats(int k, const char *label)
{
    need_fc("gf_emu_print_layer_stats");
    if (k < 0 || k >= g_nrecs)
        gf_fail("gf_emu_print_layer_stats: record %d of the last task, which has %d (gf_emu_layer_end)", k, g_nrecs);
#ifdef GF_EMU_BARE
    print_stats(label, &g_recs[k].s, g_recs[k].core_instr, g_recs[k].core_crit, g_recs[k].cluster_instr);
#else
    print_stats(label, &g_recs[k].s);
#endif
}
