/* gapforge: the GAP9 SDK names the generated program uses, mapped onto the open PULP SDK
 * (pulp-platform/pulp-sdk: pulpos + PMSIS BSP), for the pulp-sdk build of the same sources
 * (the project's Makefile, run on gvsoc's siracusa / pulp-open platforms). Force-included
 * (-include) before every source by that Makefile only; the GAP9 SDK build (CMakeLists.txt)
 * never sees it.
 *
 *   GAP9 SDK                               pulp-sdk
 *   struct pi_default_flash_conf + init    struct pi_hyperflash_conf + pi_hyperflash_conf_init
 *   struct pi_default_ram_conf + init      struct pi_hyperram_conf + pi_hyperram_conf_init
 *   pi_cluster_conf.cc_stack_size          no such field: the stacks are set per task. The cluster
 *                                          controller is core 0 of the fork there (8 cores in all),
 *                                          so it runs cluster_entry and then tile_loop as compute
 *                                          core 0: its stack is GF_PULP_CC_STACK_BYTES (cc_stack)
 *                                          + the compute-core stack.
 *   pi_cluster_task_stacks(t, NULL, s)     t->stack_size (controller), t->slave_stack_size (others)
 *   sdk.config (Kconfig)                   not read: the Makefile sets the pulp-sdk options.
 *   .rodata (the network's tables)         GF_TABLE: the shared L2 banks (.l2_data), see below
 */
#ifndef GF_PULP_SDK_H
#define GF_PULP_SDK_H

#include "pmsis.h"
#include "bsp/bsp.h"
#include "bsp/flash/hyperflash.h"
#include "bsp/ram/hyperram.h"
#include "bsp/fs.h"
#include "bsp/fs/readfs.h"

#ifndef GF_PULP_CC_STACK_BYTES
#error "GF_PULP_CC_STACK_BYTES (the cluster controller's own stack) is set by the generated Makefile"
#endif

/* The network's descriptor tables (network.c: gf_steps, gf_layer_ops, gf_regions; the layer descriptors
 * are in gf_net_recs, writable .data, which pulpos puts in the shared banks) go to the shared L2 banks, not .rodata. pulpos' linker script (siracusa) puts the
 * fabric controller's data (.data_tiny_fc, .rodata, its stack) in L2 private bank 0 (32 KiB) and its
 * FC allocator in what is left of that bank: a network of ~80 steps (transformer_multiblock) filled
 * it, the allocator got no memory, so the L1 allocator's descriptor that pulpos takes from it was
 * NULL (unchecked) and the first pi_cl_l1_malloc read the cluster's uninitialised L1 at address 0
 * (gvsoc's 0x57 fill) as its free list. .l2_data is pulpos' section for FC-and-cluster data in the
 * shared banks; const objects only, so the section's flags agree. */
#define GF_TABLE __attribute__((section(".l2_data.gf_table")))

#if defined(ARCHI_HAS_L2_MULTI)
extern unsigned char __l2_priv0_end;
#endif

/* Bytes of L2 private bank 0 the FC allocator needs after the FC's data: pulpos' L1 allocator
 * descriptor (one per cluster) and the allocator's chunk header, with room to spare. */
#define GF_PULP_FC_HEAP_MIN 64u

/* 0, or -1 after one line if the FC's data leave too little of L2 private bank 0 (pulpos would leave
 * the cluster's L1 allocator NULL: a crash at the first L1 allocation). */
static inline int gf_pulp_fc_data_check(void)
{
#if defined(ARCHI_HAS_L2_MULTI)
    if ((uint32_t)&__l2_priv0_end + GF_PULP_FC_HEAP_MIN > ARCHI_L2_PRIV1_ADDR) {
        printf("GF ERROR the fabric controller's data (.data_tiny_fc, .rodata, its stack) end at 0x%08x, less than "
               "%u bytes before the end of L2 private bank 0 (0x%08x): pulpos' L1 allocator would be NULL\n",
               (unsigned)(uint32_t)&__l2_priv0_end, GF_PULP_FC_HEAP_MIN, (unsigned)ARCHI_L2_PRIV1_ADDR);
        return -1;
    }
#endif
    return 0;
}

/* The fabric controller's instruction cache. gvsoc's siracusa and pulp-open models give the FC a 2 KiB
 * cache (pulp/chips/<chip>/soc.json peripherals/fc_icache: 32 sets x 4 ways x 16 B) behind the control
 * register fc_icache_ctrl (apb 0x1A108800, offset 0: enable), off at reset (core/models/cache/cache.py
 * enabled=False); pulpos enables the cluster's cache (drivers/cluster/cluster.c) but not this one, so
 * without this write every FC instruction is fetched from L2 through fc_fetch_ico (5 cycles of latency).
 * The code is in L2 and never rewritten, so nothing needs flushing. */
#define GF_PULP_FC_ICACHE_CTRL 0x1A108800u

static inline void gf_pulp_fc_icache_enable(void)
{
    *(volatile uint32_t *)GF_PULP_FC_ICACHE_CTRL = 1u;
}

#define pi_default_flash_conf pi_hyperflash_conf
#define pi_default_flash_conf_init pi_hyperflash_conf_init
#define pi_default_ram_conf pi_hyperram_conf
#define pi_default_ram_conf_init pi_hyperram_conf_init

/* The GAP9 cluster configuration with its cc_stack_size: pulp-sdk's struct first, as an anonymous
 * member (-fms-extensions: conf.id etc. read as before; pi_open_from_conf / pi_cluster_open see
 * pulp-sdk's struct at the same address), the stack size beside it (not read: see above). */
struct gf_pulp_cluster_conf {
    struct pi_cluster_conf;
    uint32_t cc_stack_size;
};

static inline void gf_pulp_cluster_conf_init(struct gf_pulp_cluster_conf *c)
{
    pi_cluster_conf_init((struct pi_cluster_conf *)c);
    c->cc_stack_size = GF_PULP_CC_STACK_BYTES;
}

#define pi_cluster_conf gf_pulp_cluster_conf
#define pi_cluster_conf_init(c) gf_pulp_cluster_conf_init(c)

static inline struct pi_cluster_task *pi_cluster_task_stacks(struct pi_cluster_task *task, void *stacks,
                                                             int slave_stack_size)
{
    task->stacks = stacks; /* NULL: pulpos allocates them in L1 */
    task->stack_size = GF_PULP_CC_STACK_BYTES + (uint32_t)slave_stack_size;
    task->slave_stack_size = (uint32_t)slave_stack_size;
    return task;
}

#endif
