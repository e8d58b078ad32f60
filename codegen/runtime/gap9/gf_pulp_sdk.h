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
