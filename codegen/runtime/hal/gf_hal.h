/*
 * gapforge hardware abstraction layer: file loading and performance counters for the programs
 * that run the kernels (test drivers, benchmarks, generated networks).
 *   gf_hal_host.c  hosted C library (stdio, clock_gettime)
 *   gf_hal_rv32.c  RV32 bare metal under QEMU: picolibc stdio over semihosting, minstret / mcycle
 */
#ifndef GF_HAL_H
#define GF_HAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 0 on success. */
int gf_hal_init(void);

/* Read the whole file `name` (relative to the current directory) into dst: 0 ok, -1 cannot open
 * (or read error), -2 the file size differs from `bytes`. */
int gf_hal_load(const char *name, void *dst, size_t bytes);

/* Retired instructions so far; 0 if the target has no such counter. */
uint64_t gf_hal_instret(void);

/* Cycles so far (host: nanoseconds of a monotonic clock); 0 if unavailable. */
uint64_t gf_hal_cycles(void);

/* "host" or "rv32". */
const char *gf_hal_target(void);

#ifdef __cplusplus
}
#endif

#endif /* GF_HAL_H */
