/*
 * gapforge GAP9 PMSIS emulator, bare-metal rv32 build (run_generated --target gap9-qemu).
 *
 * pmsis_emu.c is written for a hosted POSIX system. Built with the rv32 cross compiler (picolibc,
 * semihosting, no operating system) it includes this header instead of <ucontext.h>,
 * <sys/mman.h>, <signal.h> and <unistd.h>. It provides:
 *
 *   - coroutines: getcontext / setcontext / makecontext over the RISC-V callee-saved registers
 *     (ra, sp, s0-s11; the program is integer-only, rv32imac). getcontext returns 0 when called
 *     and again 0 when resumed by setcontext (as glibc's does: pmsis_emu.c's ctx_switch tells the
 *     two apart with a volatile local); a context
 *     prepared by makecontext starts its function on the given stack (it must never return, as
 *     in pmsis_emu.c);
 *   - the environment: there is none under semihosting, so getenv reads the compiled-in string
 *     GF_EMU_ENV ("NAME=VALUE;NAME=VALUE", set by the build: codegen/gap9/qemu.py);
 *   - counters: gf_bare_instret() reads minstret (exact under QEMU -icount shift=0).
 *
 * Stacks are plain heap blocks (no guard pages without an MMU): overflows are caught by the
 * canary at every switch, as on the host. Stacks are the configured sizes themselves (the ratio
 * is 1: this is the instruction set the sizes were measured for).
 */
#ifndef GF_EMU_BARE_H
#define GF_EMU_BARE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* picolibc's uint32_t is unsigned long: the emulator's "%u" of uint32_t values are checked by the
 * host build (where they match); here the same format strings would only warn. */
#pragma GCC diagnostic ignored "-Wformat"

typedef struct {
    void *ss_sp;
    size_t ss_size;
} gf_bare_stack_t;

typedef struct gf_bare_ctx {
    uint32_t regs[14]; /* ra, sp, s0..s11 */
    gf_bare_stack_t uc_stack;
    struct gf_bare_ctx *uc_link;
} ucontext_t;

int gf_bare_getcontext(ucontext_t *ctx);
void gf_bare_setcontext(const ucontext_t *ctx) __attribute__((noreturn));

__asm__(".text\n"
        ".align 2\n"
        ".globl gf_bare_getcontext\n"
        "gf_bare_getcontext:\n"
        "  sw ra, 0(a0)\n  sw sp, 4(a0)\n  sw s0, 8(a0)\n  sw s1, 12(a0)\n"
        "  sw s2, 16(a0)\n  sw s3, 20(a0)\n  sw s4, 24(a0)\n  sw s5, 28(a0)\n"
        "  sw s6, 32(a0)\n  sw s7, 36(a0)\n  sw s8, 40(a0)\n  sw s9, 44(a0)\n"
        "  sw s10, 48(a0)\n  sw s11, 52(a0)\n"
        "  li a0, 0\n  ret\n"
        ".globl gf_bare_setcontext\n"
        "gf_bare_setcontext:\n"
        "  lw ra, 0(a0)\n  lw sp, 4(a0)\n  lw s0, 8(a0)\n  lw s1, 12(a0)\n"
        "  lw s2, 16(a0)\n  lw s3, 20(a0)\n  lw s4, 24(a0)\n  lw s5, 28(a0)\n"
        "  lw s6, 32(a0)\n  lw s7, 36(a0)\n  lw s8, 40(a0)\n  lw s9, 44(a0)\n"
        "  lw s10, 48(a0)\n  lw s11, 52(a0)\n"
        "  li a0, 0\n  ret\n");

#define getcontext(ctx) gf_bare_getcontext(ctx)
#define setcontext(ctx) gf_bare_setcontext(ctx)

/* The function starts with ra = fn and sp = the 16-byte aligned top of the stack. */
static inline void gf_bare_makecontext(ucontext_t *ctx, void (*fn)(void))
{
    uintptr_t top = ((uintptr_t)ctx->uc_stack.ss_sp + ctx->uc_stack.ss_size) & ~(uintptr_t)15;
    ctx->regs[0] = (uint32_t)(uintptr_t)fn;
    ctx->regs[1] = (uint32_t)top;
    ctx->regs[2] = 0; /* s0: no frame pointer chain above the entry */
}
#define makecontext(ctx, fn, argc) gf_bare_makecontext((ctx), (fn))

#ifndef GF_EMU_ENV
#define GF_EMU_ENV ""
#endif

/* getenv over GF_EMU_ENV; values are returned from a static buffer per lookup (the emulator only
 * reads them at initialisation, one at a time). */
static inline const char *gf_bare_getenv(const char *name)
{
    static char value[64];
    const char *p = GF_EMU_ENV;
    size_t n = strlen(name);
    while (*p) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > n && p[n] == '=' && strncmp(p, name, n) == 0) {
            size_t v = len - n - 1;
            if (v >= sizeof value)
                v = sizeof value - 1;
            memcpy(value, p + n + 1, v);
            value[v] = '\0';
            return value;
        }
        p += len + (end ? 1 : 0);
    }
    return NULL;
}
#define getenv(name) gf_bare_getenv(name)

#define GF_BARE_CSR(name, out) \
    __asm__ volatile(".option push\n\t.option arch, +zicsr\n\tcsrr %0, " name "\n\t.option pop" : "=r"(out))

static inline uint64_t gf_bare_instret(void)
{
    uint32_t hi, lo, hi2;
    do {
        GF_BARE_CSR("minstreth", hi);
        GF_BARE_CSR("minstret", lo);
        GF_BARE_CSR("minstreth", hi2);
    } while (hi != hi2);
    return ((uint64_t)hi << 32) | lo;
}

#endif /* GF_EMU_BARE_H */
