/*
 * gapforge GAP9 PMSIS emulator: emulator-only API (statistics). Code that must also build with
 * the real GAP9 SDK may use it only behind #ifdef GF_GAP9_EMU (defined by the emulator's
 * pmsis.h, never by the SDK).
 *
 * Transfer counters are updated when a transfer completes (at the wait for cluster DMA and
 * cluster L3 requests, at the call for the blocking FC-side pi_ram_read/write), so they equal
 * the payload bytes the program moved. Allocation figures count bytes as the allocator consumes
 * them: every size is rounded up to 8 bytes.
 */
#ifndef GF_EMU_H
#define GF_EMU_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gf_emu_stats {
    uint64_t l3_to_l2;  /* bytes read from L3 RAM (pi_ram_read*, pi_cl_ram_read*) */
    uint64_t l2_to_l3;  /* bytes written to L3 RAM (pi_ram_write*, pi_cl_ram_write*) */
    uint64_t l2_to_l1;  /* cluster DMA, PI_CL_DMA_DIR_EXT2LOC */
    uint64_t l1_to_l2;  /* cluster DMA, PI_CL_DMA_DIR_LOC2EXT */
    uint64_t dma_cmds;  /* cluster DMA commands completed (1-D and 2-D) */
    uint64_t ram_reqs;  /* L3 transfers completed (FC calls and cluster requests) */
    uint64_t forks;     /* pi_cl_team_fork calls */
    uint64_t l1_cur, l1_peak, l1_budget;
    uint64_t l2_cur, l2_peak, l2_budget;
    uint64_t l3_cur, l3_peak, l3_size;
    /* emulated stacks, host bytes: the size of the last one prepared and the deepest use since
     * gf_emu_reset_peaks, of the cluster controller (core 8) and of any compute core */
    uint64_t cc_stack_size, cc_stack_peak, core_stack_size, core_stack_peak;
} gf_emu_stats_t;

/* A snapshot of the counters. */
void gf_emu_get_stats(gf_emu_stats_t *out);
/* Peak usage := current usage, for every level; stack peaks := 0. */
void gf_emu_reset_peaks(void);
/* Transfer counters (bytes, dma_cmds, ram_reqs, forks) := 0; allocations are untouched. */
void gf_emu_reset_counters(void);
/* One line on stdout:
 * "GF EMU <label> l1_peak=.. l2_peak=.. l3_peak=.. l3_to_l2=.. l2_to_l1=.. l1_to_l2=.. l2_to_l3=.. dma_cmds=..
 *  cc_stack_peak=.. cc_stack=.. core_stack_peak=.. core_stack=.." */
void gf_emu_print_stats(const char *label);
/* Several layers in one cluster task (gf_run_task): gf_emu_layer_end is called after each layer, by the cluster
 * controller outside a fork or by compute core 0 inside one (gf_tiled.c: one fork per task, core 0 after the
 * layer's last barrier); the counters since the previous call (or since the FC's last reset, for the task's first
 * layer: the FC's allocations before the task count there), the peaks and, on rv32, the per-core instructions are
 * stored as the task's next layer record, then reset as by gf_emu_reset_counters and gf_emu_reset_peaks (the
 * instruction counts by marks: the compute cores' pi_perf clocks keep running). The instructions of the task after
 * its last record (the fork's end, the controller's free and return) are added to that record. Only those two,
 * inside a task, may call it. */
void gf_emu_layer_end(void);
/* After the task, on the FC: record k (0 = the task's first layer) printed as gf_emu_print_stats prints. */
void gf_emu_print_layer_stats(int k, const char *label);

#ifdef __cplusplus
}
#endif

#endif /* GF_EMU_H */
