/*
 * gapforge HAL for RV32 bare metal (QEMU virt, picolibc with --oslib=semihost): stdio goes
 * through semihosting (files relative to QEMU's working directory), counters are the machine
 * CSRs minstret / mcycle. Under `qemu-system-riscv32 -icount shift=0` minstret counts are exact
 * and repeatable. The .option lines enable Zicsr for the csrr instructions only, so the program
 * keeps -march=rv32imac (gcc 12 has no multilib for ..._zicsr).
 */

#include "gf_hal.h"

/* gf_hal_init and gf_hal_load are in gf_hal_stdio.c. */

#define GF_CSR_READ(name, out)                                                                     \
    __asm__ volatile(".option push\n\t.option arch, +zicsr\n\tcsrr %0, " name "\n\t.option pop"   \
                     : "=r"(out))

uint64_t gf_hal_instret(void)
{
    uint32_t hi, lo, hi2;
    do {
        GF_CSR_READ("minstreth", hi);
        GF_CSR_READ("minstret", lo);
        GF_CSR_READ("minstreth", hi2);
    } while (hi != hi2);
    return ((uint64_t)hi << 32) | lo;
}

uint64_t gf_hal_cycles(void)
{
    uint32_t hi, lo, hi2;
    do {
        GF_CSR_READ("mcycleh", hi);
        GF_CSR_READ("mcycle", lo);
        GF_CSR_READ("mcycleh", hi2);
    } while (hi != hi2);
    return ((uint64_t)hi << 32) | lo;
}

const char *gf_hal_target(void)
{
    return "rv32";
}
