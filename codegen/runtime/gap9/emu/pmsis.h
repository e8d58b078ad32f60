/*
 * gapforge GAP9 PMSIS emulator: the subset of the GAP9 SDK 5.x PMSIS API that gapforge's
 * generated GAP9 code uses, implemented on the host (pmsis_emu.c) so that the generated code can
 * be compiled with gcc and run on x86-64 Linux.
 *
 * Names and signatures follow /work/shared/docs/gap9-pmsis-reference.md (docs/gap9.md in the
 * project). Only the functions, types and macros declared here exist: generated code that uses
 * anything else does not compile against the emulator, which is intended (everything outside
 * this list is unverified against the real SDK). The one deliberate type difference: the cluster
 * DMA `ext`/`loc` addresses are `uintptr_t` here (host pointers are 64-bit) where GAP9 has
 * `uint32_t`; generated code passes `(uintptr_t)ptr`, which is the same width on GAP9.
 *
 * What is modelled (details in pmsis_emu.c):
 *   - memory levels as fixed-size pools with budgets (L1 128 KiB, L2 1.5 MiB, L3 8 MiB by
 *     default), first-fit allocation, sized frees, current/peak usage;
 *   - cluster DMA and cluster-side L3 requests complete only at their wait: the destination is
 *     filled with a poison pattern (0xA5) at issue, the copy happens at the wait, and a source or
 *     destination touched in between is reported;
 *   - the cluster: the task entry runs as core 8; pi_cl_team_fork runs the workers as
 *     deterministic cooperative coroutines (cores 0..n-1, reverse order by default), switching
 *     only at pi_cl_team_barrier and at the end of the entry, so missing barriers show up;
 *   - ReadFS as files of the current directory; perf counters per core: host nanoseconds (rv32: instructions).
 *   - stacks: every cluster core runs on its own guarded stack; with GF_EMU_CORE_STACK_RATIO set,
 *     of the size the program configured (cc_stack_size, pi_cluster_task_stacks) times the
 *     host/rv32 ratio, and those configured bytes are reserved in L1 (overflow: exit 3);
 *   - allocation failures on request (GF_EMU_FAIL_ALLOC): NULL / -1 as the SDK returns them.
 * What is NOT modelled: timing and bandwidth (only ordering and completion points), real
 * parallelism, caches, voltage/frequency, the FC/cluster asynchronous (_async) variants.
 *
 * Every misuse the emulator detects prints one line "GF EMU ERROR ..." on stdout and exits with
 * status 3.
 */
#ifndef GF_EMU_PMSIS_H
#define GF_EMU_PMSIS_H

#include <stddef.h>
#include <stdint.h>

/* Defined by the emulator's pmsis.h only (never by the real SDK): emulator-only code, such as
 * the gf_emu_* statistics of gf_emu.h, must be guarded with #ifdef GF_GAP9_EMU.
 * GF_PMSIS_DECLARATIONS_ONLY: this header only declares the PMSIS subset, as the SDK's would, for
 * compiling the SDK build of the sources with a cross compiler (stack and code-size measurement,
 * codegen/gap9/resources.py); GF_GAP9_EMU is then not defined. */
#if !defined(GF_GAP9_EMU) && !defined(GF_PMSIS_DECLARATIONS_ONLY)
#define GF_GAP9_EMU 1
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Section attributes: placement is not modelled, they expand to nothing. Buffers that
 * take part in DMA must come from the pool allocators (pi_cl_l1_malloc, pi_l2_malloc), not from
 * static arrays marked with these attributes: the emulator checks DMA addresses against them. */
#define PI_L1
#define PI_CL_L1
#define PI_CL_L1_TINY
#define PI_L2
#define PI_LOCAL_CODE

/* ---- Devices ------------------------------------------------------------------------------ */

struct pi_device {
    void *config; /* set by pi_open_from_conf */
    void *data;   /* driver state (emulator) */
    int gf_kind;  /* emulator: which driver opened the device (0: none) */
};

void pi_open_from_conf(struct pi_device *dev, void *conf);

/* ---- Cluster ------------------------------------------------------------------------------ */

struct pi_cluster_conf {
    uint32_t gf_magic; /* emulator: set by pi_cluster_conf_init, checked by pi_cluster_open */
    int id;
    int cc_stack_size;
    int scratch_size;
    int flags;
    int icache_conf;
};

void pi_cluster_conf_init(struct pi_cluster_conf *conf);
int pi_cluster_open(struct pi_device *dev);
void pi_cluster_close(struct pi_device *dev);

struct pi_cluster_task {
    uint32_t gf_magic; /* emulator: set by pi_cluster_task() */
    void (*entry)(void *);
    void *arg;
    void *stacks;
    int slave_stack_size;
    int nb_cores;
};

struct pi_cluster_task *pi_cluster_task(struct pi_cluster_task *task, void (*entry)(void *), void *arg);
void pi_cluster_task_stacks(struct pi_cluster_task *task, void *stacks, int slave_stack_size);
/* Blocking: runs task->entry(task->arg) as the cluster controller (core 8); returns 0. */
int pi_cluster_send_task_to_cl(struct pi_device *dev, struct pi_cluster_task *task);

/* Runs entry(arg) on cores 0..nb_cores-1 (nb_cores 1..8, 0 = all 8) and returns when all are
 * done; called by core 8 only (core 8 itself does not take part, as on GAP9). */
void pi_cl_team_fork(int nb_cores, void (*entry)(void *), void *arg);
void pi_cl_team_barrier(void);
int pi_cl_team_nb_cores(void);
int pi_core_id(void);
void pi_cl_team_critical_enter(void);
void pi_cl_team_critical_exit(void);

/* ---- Memory ------------------------------------------------------------------------------- */

void *pi_cl_l1_malloc(struct pi_device *dev, int size);
void pi_cl_l1_free(struct pi_device *dev, void *p, int size);
#define pi_l1_malloc(dev, size) pi_cl_l1_malloc((dev), (size))
#define pi_l1_free(dev, p, size) pi_cl_l1_free((dev), (p), (size))

void *pi_l2_malloc(int size);
void pi_l2_free(void *p, int size);
void *pi_l2_malloc_align(int size, int align);

/* ---- Cluster DMA (L2 <-> L1) -------------------------------------------------------------- */

typedef enum {
    PI_CL_DMA_DIR_LOC2EXT = 0, /* L1 -> L2 */
    PI_CL_DMA_DIR_EXT2LOC = 1  /* L2 -> L1 */
} pi_cl_dma_dir_e;

typedef struct pi_cl_dma_cmd_s {
    uint32_t tid;       /* emulator: transfer slot while in flight */
    uint32_t gf_serial; /* emulator: identifies the issue */
} pi_cl_dma_cmd_t;

void pi_cl_dma_cmd(uintptr_t ext, uintptr_t loc, uint32_t size, pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd);
/* `size` bytes in total, in lines of `length` bytes; consecutive lines start `stride` bytes
 * apart on the ext (L2) side and are contiguous on the loc (L1) side. */
void pi_cl_dma_cmd_2d(uintptr_t ext, uintptr_t loc, uint32_t size, uint32_t stride, uint32_t length,
                      pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd);
void pi_cl_dma_cmd_wait(pi_cl_dma_cmd_t *cmd);
void pi_cl_dma_flush(void);

/* ---- L3 RAM ------------------------------------------------------------------------------- */

struct pi_default_ram_conf {
    uint32_t gf_magic; /* emulator: set by pi_default_ram_conf_init */
    int reserved;
};

void pi_default_ram_conf_init(struct pi_default_ram_conf *conf);
int pi_ram_open(struct pi_device *dev);
void pi_ram_close(struct pi_device *dev);
/* L3 addresses are uint32_t offsets into the RAM, not pointers. */
int pi_ram_alloc(struct pi_device *dev, uint32_t *addr, uint32_t size);
int pi_ram_free(struct pi_device *dev, uint32_t addr, uint32_t size);
/* FC side, blocking. 2-D: stride and length apply to the L3 side, the buffer is contiguous. */
void pi_ram_read(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size);
void pi_ram_write(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size);
void pi_ram_read_2d(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size, uint32_t stride, uint32_t length);
void pi_ram_write_2d(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size, uint32_t stride, uint32_t length);

typedef struct pi_cl_ram_req_s {
    uint32_t gf_slot;   /* emulator */
    uint32_t gf_serial; /* emulator: identifies the issue */
} pi_cl_ram_req_t;

/* Cluster side: complete at the matching _wait (buffer in L2). */
void pi_cl_ram_read(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size, pi_cl_ram_req_t *req);
void pi_cl_ram_read_wait(pi_cl_ram_req_t *req);
void pi_cl_ram_write(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size, pi_cl_ram_req_t *req);
void pi_cl_ram_write_wait(pi_cl_ram_req_t *req);
void pi_cl_ram_read_2d(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size, uint32_t stride,
                       uint32_t length, pi_cl_ram_req_t *req);
void pi_cl_ram_write_2d(struct pi_device *dev, uint32_t addr, void *buf, uint32_t size, uint32_t stride,
                        uint32_t length, pi_cl_ram_req_t *req);

/* ---- Flash and ReadFS --------------------------------------------------------------------- */

struct pi_default_flash_conf {
    uint32_t gf_magic; /* emulator: set by pi_default_flash_conf_init */
    int reserved;
};

void pi_default_flash_conf_init(struct pi_default_flash_conf *conf);
int pi_flash_open(struct pi_device *dev);

struct pi_fs_conf {
    struct pi_device *flash;
};

struct pi_readfs_conf {
    uint32_t gf_magic; /* emulator: set by pi_readfs_conf_init */
    struct pi_fs_conf fs;
};

void pi_readfs_conf_init(struct pi_readfs_conf *conf);
int pi_fs_mount(struct pi_device *dev);
void pi_fs_unmount(struct pi_device *dev);

typedef struct pi_fs_file_s {
    uint32_t size;        /* file size in bytes */
    uint32_t gf_magic;    /* emulator */
    struct pi_device *fs; /* the mounted file system */
    void *gf_handle;      /* emulator: host FILE * */
} pi_fs_file_t;

/* Files are looked up by basename in the current working directory; flags must be 0. */
pi_fs_file_t *pi_fs_open(struct pi_device *dev, const char *name, int flags);
int pi_fs_read(pi_fs_file_t *file, void *buf, uint32_t size);
int pi_fs_seek(pi_fs_file_t *file, uint32_t offset);
void pi_fs_close(pi_fs_file_t *file);

/* ---- Performance counters ----------------------------------------------------------------- */

typedef enum {
    PI_PERF_ACTIVE_CYCLES = 0,
    PI_PERF_INSTR = 1,
    PI_PERF_LD_STALL = 2,
    PI_PERF_JR_STALL = 3,
    PI_PERF_IMISS = 4,
    PI_PERF_LD = 5,
    PI_PERF_ST = 6,
    PI_PERF_TCDM_CONT = 15,
    PI_PERF_CYCLES = 17
} pi_perf_event_e;

void pi_perf_conf(unsigned events);
void pi_perf_reset(void);
void pi_perf_start(void);
void pi_perf_stop(void);
/* One counter per core (FC, cluster controller, compute cores), counting the calling core's own
 * share while started (32-bit, wraps like the hardware counter): on the host PI_PERF_CYCLES reads
 * host nanoseconds and every other event 0; on rv32 (gap9-qemu) PI_PERF_CYCLES and PI_PERF_INSTR
 * both read the core's retired instructions without the emulator's own work (pmsis_emu.c). */
unsigned int pi_perf_read(int event);

/* ---- Frequency ---------------------------------------------------------------------------- */

typedef enum {
    PI_FREQ_DOMAIN_FC = 0,
    PI_FREQ_DOMAIN_CL = 1,
    PI_FREQ_DOMAIN_PERIPH = 2
} pi_freq_domain_e;

/* Recorded, no effect; returns 0. */
int pi_freq_set(pi_freq_domain_e domain, uint32_t freq);

#ifdef __cplusplus
}
#endif

#endif /* GF_EMU_PMSIS_H */
