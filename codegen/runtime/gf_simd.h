/*
 * SIMD primitives of the cluster kernels (gf_simd.c): 4-way 8-bit dot products accumulated into
 * 32 bits, post-increment word loads and the hardware-loop inner dot product, in three
 * implementations with the same results:
 *
 *   GF_SIMD_BUILTINS  the PULP/GAP toolchain's builtins (__builtin_pulp_sdotsp4 and friends); the
 *                     compiler makes the hardware loops and post-increment loads itself. Chosen
 *                     when the compiler has them (__has_builtin; older PULP/GAP compilers without
 *                     __has_builtin: when __riscv__ is predefined and RV_ISA_RV32, the SDKs' mark
 *                     of cores without Xpulp, is not).
 *   GF_SIMD_INSN      upstream GCC/binutils for RISC-V (no Xpulp support): the instructions as
 *                     `.insn` encodings (gvsoc's ISA description, core/models/cpu/iss/isa_gen/
 *                     isa_pulpv2.py), the inner loop in inline assembly with lp.setup. Chosen for
 *                     the pulp-sdk build (GF_PULP_SDK, the gvsoc target) with a compiler that is
 *                     not the PULP one, or by defining GF_SIMD_INSN.
 *   GF_SIMD_PORTABLE  plain C with the same lane semantics: the host emulation and QEMU (which has
 *                     no Xpulp), so the SIMD kernels' loops, tails and buffers run bit-exact in CI.
 *
 * Lanes: a word holds 4 bytes, lane i = byte i in memory (little-endian, as the cores load them);
 * a dot product sums the 4 lane products, each lane read as signed or unsigned 8 bits, exactly
 * (|sum| < 2^17), into a wrapping 32-bit accumulator like the portable kernels' int32 sums.
 *
 * Encodings (R-type, opcode 0x57 "1010111", funct3 1; rd is the accumulator, read and written):
 *   pv.sdotsp.b  rd, rs1, rs2   funct7 0x5C  signed rs1 x signed rs2
 *   pv.sdotusp.b rd, rs1, rs2   funct7 0x54  unsigned rs1 x signed rs2
 *   pv.sdotup.b  rd, rs1, rs2   funct7 0x50  unsigned rs1 x unsigned rs2
 *   p.lw rd, imm(rs1!)          I-type opcode 0x0B "0001011", funct3 2: rd = mem32[rs1], rs1 += imm
 *   p.lbu / p.lb rd, imm(rs1!)  the same, funct3 4 / 0
 *   lp.setup L, rs1, uimmL      I-type opcode 0x7B "1111011", funct3 4, rd field = L (0 or 1):
 *                               loop from pc+4 to pc + 2*uimmL (its last instruction), rs1 times
 *   lp.setupi L, uimmS, uimmL   funct3 5, the count uimmS (5 bits) in the rs1 field
 * tests/test_simd.py assembles these with riscv64-unknown-elf-as and checks the words.
 */
#ifndef GF_SIMD_H
#define GF_SIMD_H

#include <stdint.h>

#if !defined(GF_SIMD_BUILTINS) && !defined(GF_SIMD_INSN) && !defined(GF_SIMD_PORTABLE)
#if defined(__has_builtin) /* GCC >= 10, clang: ask the compiler (the SDK rules define __riscv__ for any) */
#if __has_builtin(__builtin_pulp_sdotsp4)
#define GF_SIMD_BUILTINS 1
#endif
#elif defined(__riscv__) && !defined(RV_ISA_RV32) && defined(__GNUC__)
#define GF_SIMD_BUILTINS 1 /* the PULP/GAP toolchains (older GCC: no __has_builtin; they predefine __riscv__) */
#endif
#if !defined(GF_SIMD_BUILTINS)
#if defined(GF_PULP_SDK) && defined(__riscv) && __riscv_xlen == 32
#define GF_SIMD_INSN 1 /* the pulp-sdk build (cluster cores with Xpulp) with upstream GCC */
#else
#define GF_SIMD_PORTABLE 1
#endif
#endif
#endif

#if (defined(GF_SIMD_BUILTINS) + defined(GF_SIMD_INSN) + defined(GF_SIMD_PORTABLE)) != 1
#error "gf_simd.h: define exactly one of GF_SIMD_BUILTINS, GF_SIMD_INSN, GF_SIMD_PORTABLE"
#endif
#if defined(GF_SIMD_INSN) && !(defined(__riscv) && __riscv_xlen == 32)
#error "gf_simd.h: GF_SIMD_INSN needs a 32-bit RISC-V compiler (the .insn encodings are Xpulp instructions)"
#endif

/* Columns (matmul) gathered per pass of the SIMD kernels: the buffer holds GF_SIMD_PIX rows of
 * round4(K) bytes. The conv's im2col buffer: as many pixels as fit GF_SIMD_CONV_COL_BYTES, 1 to
 * GF_SIMD_CONV_PIX_MAX (codegen/gap9/tiling.py SIMD_COL_PIXELS, SIMD_CONV_COL_BYTES and
 * SIMD_CONV_PIX_MAX mirror them). */
#define GF_SIMD_PIX 4
#define GF_SIMD_CONV_COL_BYTES 2048u
#define GF_SIMD_CONV_PIX_MAX 32u
/* The depthwise kernel's buffer: rows of the zero-padded input plane of one channel, each row
 * round4(3 + (ow-1)*sx + 4*ceil(kw/4)) bytes; every row the tile needs if that fits
 * GF_SIMD_DW_COL_BYTES, else as many as fit it (at least the kernel's (kh-1)*dy+1). Kernels of up to
 * GF_SIMD_DW_WORDS words (kh * ceil(kw/4): 7x7 is 14). codegen/gap9/tiling.py SIMD_DW_COL_BYTES and
 * SIMD_DW_WORDS mirror them. */
#define GF_SIMD_DW_COL_BYTES 2048u
#define GF_SIMD_DW_WORDS 16

/* The name of the implementation (printed by the programs that use it). */
#if defined(GF_SIMD_BUILTINS)
#define GF_SIMD_IMPL "builtins"
#elif defined(GF_SIMD_INSN)
#define GF_SIMD_IMPL "insn"
#else
#define GF_SIMD_IMPL "portable"
#endif

/* ---- one word -------------------------------------------------------------------------------- */

/* Load the 4 bytes at *p (any alignment: the cluster cores split misaligned loads) and advance *p. */
static inline uint32_t gf_simd_ld4(const uint8_t **p)
{
    const uint8_t *q = *p;
    uint32_t v;
#if defined(GF_SIMD_INSN)
    __asm__ volatile(".insn i 0x0B, 2, %0, 4(%1)" : "=r"(v), "+r"(q) : : "memory"); /* p.lw v, 4(q!) */
#elif defined(GF_SIMD_BUILTINS)
    v = (uint32_t)*(const uint32_t *)(const void *)q; /* the PULP compiler forms p.lw from the increment */
    q += 4;
#else
    v = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
    q += 4;
#endif
    *p = q;
    return v;
}

/* The 4 bytes at p (any alignment), no increment. Under GF_SIMD_INSN a plain lw whose address the
 * compiler forms (base + constant offset folded in); the cluster cores split misaligned loads. */
static inline uint32_t gf_simd_ldu(const uint8_t *p)
{
#if defined(GF_SIMD_INSN)
    uint32_t v;
    __asm__("lw %0, %1" : "=r"(v) : "m"(*(const uint32_t *)(const void *)p));
    return v;
#elif defined(GF_SIMD_BUILTINS)
    return *(const uint32_t *)(const void *)p;
#else
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
#endif
}

/* Store the 4 bytes of v at p (any alignment). */
static inline void gf_simd_stu(uint8_t *p, uint32_t v)
{
#if defined(GF_SIMD_INSN)
    __asm__ volatile("sw %1, %0" : "=m"(*(uint32_t *)(void *)p) : "r"(v));
#elif defined(GF_SIMD_BUILTINS)
    *(uint32_t *)(void *)p = v;
#else
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
#endif
}

#if defined(GF_SIMD_PORTABLE)
#define GF_SIMD_LS(v, i) ((int32_t)(int8_t)(uint8_t)((v) >> (8 * (i))))
#define GF_SIMD_LU(v, i) ((int32_t)(uint8_t)((v) >> (8 * (i))))
#define GF_SIMD_DOT(LA, LB, acc, a, b)                                                             \
    (int32_t)((uint32_t)(acc) + (uint32_t)(LA(a, 0) * LB(b, 0) + LA(a, 1) * LB(b, 1) +             \
                                           LA(a, 2) * LB(b, 2) + LA(a, 3) * LB(b, 3)))
#endif

#if defined(GF_SIMD_BUILTINS)
typedef signed char gf_v4s __attribute__((vector_size(4)));
typedef unsigned char gf_v4u __attribute__((vector_size(4)));
#endif

/* acc + sum_i a_i * b_i, signed a, signed b (pv.sdotsp.b). */
static inline int32_t gf_sdot4_ss(int32_t acc, uint32_t a, uint32_t b)
{
#if defined(GF_SIMD_INSN)
    __asm__(".insn r 0x57, 1, 0x5C, %0, %1, %2" : "+r"(acc) : "r"(a), "r"(b));
    return acc;
#elif defined(GF_SIMD_BUILTINS)
    return __builtin_pulp_sdotsp4((gf_v4s)a, (gf_v4s)b, acc);
#else
    return GF_SIMD_DOT(GF_SIMD_LS, GF_SIMD_LS, acc, a, b);
#endif
}

/* acc + sum_i a_i * b_i, unsigned a, signed b (pv.sdotusp.b). */
static inline int32_t gf_sdot4_us(int32_t acc, uint32_t a, uint32_t b)
{
#if defined(GF_SIMD_INSN)
    __asm__(".insn r 0x57, 1, 0x54, %0, %1, %2" : "+r"(acc) : "r"(a), "r"(b));
    return acc;
#elif defined(GF_SIMD_BUILTINS)
    return __builtin_pulp_sdotusp4((gf_v4u)a, (gf_v4s)b, acc);
#else
    return GF_SIMD_DOT(GF_SIMD_LU, GF_SIMD_LS, acc, a, b);
#endif
}

/* acc + sum_i a_i * b_i, unsigned a, unsigned b (pv.sdotup.b). */
static inline int32_t gf_sdot4_uu(int32_t acc, uint32_t a, uint32_t b)
{
#if defined(GF_SIMD_INSN)
    __asm__(".insn r 0x57, 1, 0x50, %0, %1, %2" : "+r"(acc) : "r"(a), "r"(b));
    return acc;
#elif defined(GF_SIMD_BUILTINS)
    return (int32_t)__builtin_pulp_sdotup4((gf_v4u)a, (gf_v4u)b, (unsigned)acc);
#else
    return GF_SIMD_DOT(GF_SIMD_LU, GF_SIMD_LU, acc, a, b);
#endif
}

/* max(a, b), min(a, b) of signed words (p.max, p.min: R-type opcode 0x33, funct7 2, funct3 6 / 4). */
static inline int32_t gf_simd_max(int32_t a, int32_t b)
{
#if defined(GF_SIMD_INSN)
    __asm__(".insn r 0x33, 6, 2, %0, %1, %2" : "=r"(a) : "r"(a), "r"(b));
    return a;
#else
    return a > b ? a : b; /* the PULP compiler makes p.max of it */
#endif
}

static inline int32_t gf_simd_min(int32_t a, int32_t b)
{
#if defined(GF_SIMD_INSN)
    __asm__(".insn r 0x33, 4, 2, %0, %1, %2" : "=r"(a) : "r"(a), "r"(b));
    return a;
#else
    return a < b ? a : b;
#endif
}

/* a clipped to 0 .. hi (hi >= 0), one instruction: p.clipu rd, rs1, rs2 (gvsoc's name; RI5CY's p.clipur: R-type
 * opcode 0x33, funct7 0x0A, funct3 6), the same as min(max(a, 0), hi). */
static inline int32_t gf_simd_clipu(int32_t a, int32_t hi)
{
#if defined(GF_SIMD_INSN)
    __asm__(".insn r 0x33, 6, 0x0A, %0, %1, %2" : "=r"(a) : "r"(a), "r"(hi));
    return a;
#else
    return a < 0 ? 0 : (a > hi ? hi : a);
#endif
}

/* signed a, unsigned b: the unsigned x signed instruction with the operands swapped */
static inline int32_t gf_sdot4_su(int32_t acc, uint32_t a, uint32_t b)
{
    return gf_sdot4_us(acc, b, a);
}

/* ---- the inner dot product: one vector x 4 rows ----------------------------------------------
 * acc[r] += sum_{i < 4n} x[i] * w[r*ws + i] for r = 0..3: per word of x, 5 post-increment loads and
 * 4 dot products (16 MACs); under GF_SIMD_INSN a hardware loop of these 9 instructions. n may be 0.
 * SFX: the lane types of x and w (ss, us, su, uu). */
#if defined(GF_SIMD_INSN)
/* lp.setup 0, n, 9 instructions: the loop's last instruction is 36 bytes after lp.setup (uimmL 18) */
#define GF_SIMD_DOT4R_ASM(F7, XA)                                                              \
    __asm__ volatile(".option push\n\t.option norvc\n\t"                                           \
                     ".insn i 0x7B, 4, x0, %[n], 18\n\t"                                           \
                     ".insn i 0x0B, 2, %[t], 4(%[x])\n\t"                                          \
                     ".insn i 0x0B, 2, %[u0], 4(%[w0])\n\t"                                        \
                     ".insn i 0x0B, 2, %[u1], 4(%[w1])\n\t"                                        \
                     ".insn i 0x0B, 2, %[u2], 4(%[w2])\n\t"                                        \
                     ".insn i 0x0B, 2, %[u3], 4(%[w3])\n\t"                                        \
                     ".insn r 0x57, 1, " F7 ", %[a0], " XA(u0) "\n\t"                              \
                     ".insn r 0x57, 1, " F7 ", %[a1], " XA(u1) "\n\t"                              \
                     ".insn r 0x57, 1, " F7 ", %[a2], " XA(u2) "\n\t"                              \
                     ".insn r 0x57, 1, " F7 ", %[a3], " XA(u3) "\n\t"                              \
                     ".option pop"                                                                 \
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(xp),   \
                       [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [t] "=&r"(t),   \
                       [u0] "=&r"(u0), [u1] "=&r"(u1), [u2] "=&r"(u2), [u3] "=&r"(u3)              \
                     : [n] "r"(n)                                                                  \
                     : "memory")
#define GF_SIMD_XW(u) "%[t], %[" #u "]" /* rs1 = x word, rs2 = w word */
#define GF_SIMD_WX(u) "%[" #u "], %[t]" /* rs1 = w word, rs2 = x word (signed x, unsigned w) */
#define GF_SIMD_DOT4R(SFX, F7, ORDER)                                                              \
    static inline void gf_simd_dot4r_##SFX(const uint8_t *xp, const uint8_t *w0, int32_t ws, int32_t n, \
                                           int32_t *acc)                                           \
    {                                                                                              \
        const uint8_t *w1 = w0 + ws, *w2 = w1 + ws, *w3 = w2 + ws;                                 \
        int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];                                \
        uint32_t t, u0, u1, u2, u3;                                                                \
        if (n <= 0)                                                                                \
            return;                                                                                \
        GF_SIMD_DOT4R_ASM(F7, ORDER);                                                           \
        acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;                                        \
    }
GF_SIMD_DOT4R(ss, "0x5C", GF_SIMD_XW)
GF_SIMD_DOT4R(us, "0x54", GF_SIMD_XW)
GF_SIMD_DOT4R(su, "0x54", GF_SIMD_WX)
GF_SIMD_DOT4R(uu, "0x50", GF_SIMD_XW)

/* Two vectors x 4 rows (conv: two pixels, 4 output channels; signed or unsigned x, signed w):
 * lp.setup 0, n, 14 instructions (uimmL 28): per word 6 loads and 8 dot products (32 MACs). */
#define GF_SIMD_DOT4R2(SFX, F7)                                                                    \
    static inline void gf_simd_dot4r2_##SFX(const uint8_t *xp, const uint8_t *xq, const uint8_t *w0, int32_t ws, \
                                            int32_t n, int32_t *acc)                               \
    {                                                                                              \
        const uint8_t *w1 = w0 + ws, *w2 = w1 + ws, *w3 = w2 + ws;                                 \
        int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];                                \
        int32_t b0 = acc[4], b1 = acc[5], b2 = acc[6], b3 = acc[7];                                \
        if (n <= 0)                                                                                \
            return;                                                                                \
        __asm__ volatile(".option push\n\t.option norvc\n\t"                                       \
                         ".insn i 0x7B, 4, x0, %[n], 28\n\t"                                       \
                         ".insn i 0x0B, 2, t0, 4(%[x])\n\t"                                      \
                         ".insn i 0x0B, 2, t1, 4(%[y])\n\t"                                      \
                         ".insn i 0x0B, 2, t2, 4(%[w0])\n\t"                                    \
                         ".insn i 0x0B, 2, t3, 4(%[w1])\n\t"                                    \
                         ".insn r 0x57, 1, " F7 ", %[a0], t0, t2\n\t"                         \
                         ".insn r 0x57, 1, " F7 ", %[b0], t1, t2\n\t"                         \
                         ".insn i 0x0B, 2, t2, 4(%[w2])\n\t"                                    \
                         ".insn r 0x57, 1, " F7 ", %[a1], t0, t3\n\t"                         \
                         ".insn r 0x57, 1, " F7 ", %[b1], t1, t3\n\t"                         \
                         ".insn i 0x0B, 2, t3, 4(%[w3])\n\t"                                    \
                         ".insn r 0x57, 1, " F7 ", %[a2], t0, t2\n\t"                         \
                         ".insn r 0x57, 1, " F7 ", %[b2], t1, t2\n\t"                         \
                         ".insn r 0x57, 1, " F7 ", %[a3], t0, t3\n\t"                         \
                         ".insn r 0x57, 1, " F7 ", %[b3], t1, t3\n\t"                         \
                         ".option pop"                                                             \
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [b0] "+r"(b0), \
                           [b1] "+r"(b1), [b2] "+r"(b2), [b3] "+r"(b3), [x] "+r"(xp), [y] "+r"(xq), \
                           [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3)                \
                         : [n] "r"(n)                                                              \
                         : "t0", "t1", "t2", "t3", "memory"); /* the temporaries: fixed (30 operands at most) */                                                              \
        acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;                                        \
        acc[4] = b0, acc[5] = b1, acc[6] = b2, acc[7] = b3;                                        \
    }
GF_SIMD_DOT4R2(ss, "0x5C")
GF_SIMD_DOT4R2(us, "0x54")

/* Four vectors x 4 rows, vectors and rows both S bytes apart (conv with K % 4 == 0: pixel rows and
 * weight rows are K bytes apart): acc[r*os + p] = x_p . w_r (from 0). Loads with register post-increments
 * (p.lw rd, rs2(rs1!): R-type opcode 0x0B, funct3 7, funct7 0x10; rd = mem32[rs1], rs1 += rs2) walk
 * down the 4 rows (+S, +S, +S, then 4 - 3S back to the next word): lp.setup 0, n, 24 instructions
 * (uimmL 48), per word 8 loads and 16 dot products (64 MACs). */
#define GF_SIMD_LRP(rd, base, inc) ".insn r 0x0B, 7, 0x10, " #rd ", %[" #base "], %[" #inc "]\n\t"
#define GF_SIMD_SD4(F7, a, x, w) ".insn r 0x57, 1, " F7 ", %[" #a "], " #x ", " #w "\n\t"
#define GF_SIMD_DOT4R4(SFX, F7)                                                                    \
    static inline void gf_simd_dot4r4_##SFX(const uint8_t *xp, const uint8_t *wp, int32_t S, int32_t n, int32_t *acc, \
                                            int32_t os)                                            \
    {                                                                                              \
        int32_t a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33;    \
        const int32_t B = 4 - 3 * S;                                                               \
        if (n <= 0) {                                                                              \
            for (a00 = 0; a00 < 4; a00++)                                                          \
                acc[a00 * os] = acc[a00 * os + 1] = acc[a00 * os + 2] = acc[a00 * os + 3] = 0;     \
            return;                                                                                \
        }                                                                                          \
        /* the sums start at 0 in the asm (outputs only: 16 "+r" would pass gcc's 30 operands); x words \
         * in t0..t3, w words in t4, t5 */                                                          \
        __asm__ volatile(".option push\n\t.option norvc\n\t"                                       \
                         "li %[a00], 0\n\tli %[a01], 0\n\tli %[a02], 0\n\tli %[a03], 0\n\t"                \
                         "li %[a10], 0\n\tli %[a11], 0\n\tli %[a12], 0\n\tli %[a13], 0\n\t"                \
                         "li %[a20], 0\n\tli %[a21], 0\n\tli %[a22], 0\n\tli %[a23], 0\n\t"                \
                         "li %[a30], 0\n\tli %[a31], 0\n\tli %[a32], 0\n\tli %[a33], 0\n\t"                \
                         ".insn i 0x7B, 4, x0, %[n], 48\n\t"                                       \
                         GF_SIMD_LRP(t0, xp, S) GF_SIMD_LRP(t1, xp, S) GF_SIMD_LRP(t2, xp, S)      \
                         GF_SIMD_LRP(t3, xp, B) GF_SIMD_LRP(t4, wp, S) GF_SIMD_LRP(t5, wp, S)      \
                         GF_SIMD_SD4(F7, a00, t0, t4) GF_SIMD_SD4(F7, a01, t1, t4)                 \
                         GF_SIMD_SD4(F7, a02, t2, t4) GF_SIMD_SD4(F7, a03, t3, t4)                 \
                         GF_SIMD_LRP(t4, wp, S)                                                    \
                         GF_SIMD_SD4(F7, a10, t0, t5) GF_SIMD_SD4(F7, a11, t1, t5)                 \
                         GF_SIMD_SD4(F7, a12, t2, t5) GF_SIMD_SD4(F7, a13, t3, t5)                 \
                         GF_SIMD_LRP(t5, wp, B)                                                    \
                         GF_SIMD_SD4(F7, a20, t0, t4) GF_SIMD_SD4(F7, a21, t1, t4)                 \
                         GF_SIMD_SD4(F7, a22, t2, t4) GF_SIMD_SD4(F7, a23, t3, t4)                 \
                         GF_SIMD_SD4(F7, a30, t0, t5) GF_SIMD_SD4(F7, a31, t1, t5)                 \
                         GF_SIMD_SD4(F7, a32, t2, t5) GF_SIMD_SD4(F7, a33, t3, t5)                 \
                         ".option pop"                                                             \
                         : [a00] "=&r"(a00), [a01] "=&r"(a01), [a02] "=&r"(a02), [a03] "=&r"(a03), \
                           [a10] "=&r"(a10), [a11] "=&r"(a11), [a12] "=&r"(a12), [a13] "=&r"(a13), \
                           [a20] "=&r"(a20), [a21] "=&r"(a21), [a22] "=&r"(a22), [a23] "=&r"(a23), \
                           [a30] "=&r"(a30), [a31] "=&r"(a31), [a32] "=&r"(a32), [a33] "=&r"(a33), \
                           [xp] "+r"(xp), [wp] "+r"(wp)                                            \
                         : [n] "r"(n), [S] "r"(S), [B] "r"(B)                                      \
                         : "t0", "t1", "t2", "t3", "t4", "t5", "memory");                          \
        acc[0] = a00, acc[1] = a01, acc[2] = a02, acc[3] = a03;                                    \
        acc[os] = a10, acc[os + 1] = a11, acc[os + 2] = a12, acc[os + 3] = a13;                    \
        acc[2 * os] = a20, acc[2 * os + 1] = a21, acc[2 * os + 2] = a22, acc[2 * os + 3] = a23;    \
        acc[3 * os] = a30, acc[3 * os + 1] = a31, acc[3 * os + 2] = a32, acc[3 * os + 3] = a33;    \
    }
GF_SIMD_DOT4R4(ss, "0x5C")
GF_SIMD_DOT4R4(us, "0x54")

/* One vector x 8 rows S bytes apart (linear over one row: 8 outputs per input word), acc[r] += x . w_r: the
 * weight loads walk down the rows with register post-increments (+S seven times, then 4 - 7S to the next word),
 * alternating two registers so that no dot product waits for its load. lp.setup 0, n, 17 instructions (uimmL 34):
 * per word 9 loads and 8 dot products (32 MACs). */
#define GF_SIMD_LRPO(rd, base, inc) ".insn r 0x0B, 7, 0x10, %[" #rd "], %[" #base "], %[" #inc "]\n\t"
#define GF_SIMD_SDO(F7, a, w) ".insn r 0x57, 1, " F7 ", %[" #a "], %[t], %[" #w "]\n\t"
#define GF_SIMD_DOT8R(SFX, F7)                                                                     \
    static inline void gf_simd_dot8r_##SFX(const uint8_t *xp, const uint8_t *wp, int32_t S, int32_t n, int32_t *acc) \
    {                                                                                              \
        int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], a4 = acc[4], a5 = acc[5], a6 = acc[6], a7 = acc[7]; \
        const int32_t B = 4 - 7 * S;                                                               \
        uint32_t t, u, v;                                                                          \
        if (n <= 0)                                                                                \
            return;                                                                                \
        __asm__ volatile(".option push\n\t.option norvc\n\t"                                       \
                         ".insn i 0x7B, 4, x0, %[n], 34\n\t"                                       \
                         ".insn i 0x0B, 2, %[t], 4(%[xp])\n\t"                                     \
                         GF_SIMD_LRPO(u, wp, S) GF_SIMD_LRPO(v, wp, S) GF_SIMD_SDO(F7, a0, u)       \
                         GF_SIMD_LRPO(u, wp, S) GF_SIMD_SDO(F7, a1, v)                             \
                         GF_SIMD_LRPO(v, wp, S) GF_SIMD_SDO(F7, a2, u)                             \
                         GF_SIMD_LRPO(u, wp, S) GF_SIMD_SDO(F7, a3, v)                             \
                         GF_SIMD_LRPO(v, wp, S) GF_SIMD_SDO(F7, a4, u)                             \
                         GF_SIMD_LRPO(u, wp, S) GF_SIMD_SDO(F7, a5, v)                             \
                         GF_SIMD_LRPO(v, wp, B) GF_SIMD_SDO(F7, a6, u)                             \
                         GF_SIMD_SDO(F7, a7, v)                                                    \
                         ".option pop"                                                             \
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [a4] "+r"(a4), \
                           [a5] "+r"(a5), [a6] "+r"(a6), [a7] "+r"(a7), [xp] "+r"(xp), [wp] "+r"(wp), \
                           [t] "=&r"(t), [u] "=&r"(u), [v] "=&r"(v)                                \
                         : [n] "r"(n), [S] "r"(S), [B] "r"(B)                                      \
                         : "memory");                                                              \
        acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3, acc[4] = a4, acc[5] = a5, acc[6] = a6, acc[7] = a7; \
    }
GF_SIMD_DOT8R(ss, "0x5C")
GF_SIMD_DOT8R(us, "0x54")

/* Pixel rows of 3 words (conv with 8 < K <= 12) x 4 channels whose 3 weight words each are in
 * registers (w[3*r + j], zero past K): acc[r*os + q] = x_q . w_r for q < np, the pixels' rows 12
 * bytes apart. lp.setup 0, np, 20 instructions (uimmL 40): per pixel 3 loads, the first word's dot
 * products without accumulation (pv.dotsp.b / pv.dotusp.b, funct7 0x4C / 0x44), 8 accumulating ones,
 * 4 stores (sums in t3..t6, the pixel words in t0..t2). */
#define GF_SIMD_DOTK3(SFX, F7, F7Z)                                                                \
    static inline void gf_simd_dotk3_##SFX(const uint8_t *xp, int32_t np, const uint32_t *w, int32_t *acc, \
                                           const int32_t os)                                       \
    {                                                                                              \
        if (np <= 0)                                                                               \
            return;                                                                                \
        __asm__ volatile(".option push\n\t.option norvc\n\t"                                       \
                         ".insn i 0x7B, 4, x0, %[n], 40\n\t"                                       \
                         ".insn i 0x0B, 2, t0, 4(%[x])\n\t"                                        \
                         ".insn i 0x0B, 2, t1, 4(%[x])\n\t"                                        \
                         ".insn i 0x0B, 2, t2, 4(%[x])\n\t"                                        \
                         ".insn r 0x57, 1, " F7Z ", t3, t0, %[w0]\n\t"                              \
                         ".insn r 0x57, 1, " F7Z ", t4, t0, %[w3]\n\t"                              \
                         ".insn r 0x57, 1, " F7Z ", t5, t0, %[w6]\n\t"                              \
                         ".insn r 0x57, 1, " F7Z ", t6, t0, %[w9]\n\t"                              \
                         ".insn r 0x57, 1, " F7 ", t3, t1, %[w1]\n\t"                               \
                         ".insn r 0x57, 1, " F7 ", t4, t1, %[w4]\n\t"                               \
                         ".insn r 0x57, 1, " F7 ", t5, t1, %[w7]\n\t"                               \
                         ".insn r 0x57, 1, " F7 ", t6, t1, %[w10]\n\t"                              \
                         ".insn r 0x57, 1, " F7 ", t3, t2, %[w2]\n\t"                               \
                         ".insn r 0x57, 1, " F7 ", t4, t2, %[w5]\n\t"                               \
                         ".insn r 0x57, 1, " F7 ", t5, t2, %[w8]\n\t"                               \
                         ".insn r 0x57, 1, " F7 ", t6, t2, %[w11]\n\t"                              \
                         "sw t3, 0(%[a])\n\t"                                                      \
                         "sw t4, %[o1](%[a])\n\t"                                                  \
                         "sw t5, %[o2](%[a])\n\t"                                                  \
                         "sw t6, %[o3](%[a])\n\t"                                                  \
                         "addi %[a], %[a], 4\n\t"                                                  \
                         ".option pop"                                                             \
                         : [x] "+r"(xp), [a] "+r"(acc)                                             \
                         : [n] "r"(np), [w0] "r"(w[0]), [w1] "r"(w[1]), [w2] "r"(w[2]), [w3] "r"(w[3]), \
                           [w4] "r"(w[4]), [w5] "r"(w[5]), [w6] "r"(w[6]), [w7] "r"(w[7]), [w8] "r"(w[8]), \
                           [w9] "r"(w[9]), [w10] "r"(w[10]), [w11] "r"(w[11]), [o1] "i"(4 * os),       \
                           [o2] "i"(8 * os), [o3] "i"(12 * os)                                     \
                         : "t0", "t1", "t2", "t3", "t4", "t5", "t6", "memory");                    \
    }
GF_SIMD_DOTK3(ss, "0x5C", "0x4C")
GF_SIMD_DOTK3(us, "0x54", "0x44")
#else
#define GF_SIMD_DOT4R(SFX)                                                                         \
    static inline void gf_simd_dot4r_##SFX(const uint8_t *xp, const uint8_t *w0, int32_t ws, int32_t n, \
                                           int32_t *acc)                                           \
    {                                                                                              \
        const uint8_t *w1 = w0 + ws, *w2 = w1 + ws, *w3 = w2 + ws;                                 \
        int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], i;                             \
        for (i = 0; i < n; i++) {                                                                  \
            const uint32_t t = gf_simd_ld4(&xp);                                                   \
            a0 = gf_sdot4_##SFX(a0, t, gf_simd_ld4(&w0));                                          \
            a1 = gf_sdot4_##SFX(a1, t, gf_simd_ld4(&w1));                                          \
            a2 = gf_sdot4_##SFX(a2, t, gf_simd_ld4(&w2));                                          \
            a3 = gf_sdot4_##SFX(a3, t, gf_simd_ld4(&w3));                                          \
        }                                                                                          \
        acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;                                        \
    }
GF_SIMD_DOT4R(ss)
GF_SIMD_DOT4R(us)
GF_SIMD_DOT4R(su)
GF_SIMD_DOT4R(uu)

/* Two vectors x 4 rows: acc[r] += x . w_r, acc[4 + r] += xq . w_r. */
#define GF_SIMD_DOT4R2(SFX)                                                                        \
    static inline void gf_simd_dot4r2_##SFX(const uint8_t *xp, const uint8_t *xq, const uint8_t *w0, int32_t ws, \
                                            int32_t n, int32_t *acc)                               \
    {                                                                                              \
        const uint8_t *w1 = w0 + ws, *w2 = w1 + ws, *w3 = w2 + ws;                                 \
        int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];                                \
        int32_t b0 = acc[4], b1 = acc[5], b2 = acc[6], b3 = acc[7], i;                             \
        for (i = 0; i < n; i++) {                                                                  \
            const uint32_t t = gf_simd_ld4(&xp), v = gf_simd_ld4(&xq);                             \
            uint32_t u = gf_simd_ld4(&w0);                                                         \
            a0 = gf_sdot4_##SFX(a0, t, u), b0 = gf_sdot4_##SFX(b0, v, u);                          \
            u = gf_simd_ld4(&w1);                                                                  \
            a1 = gf_sdot4_##SFX(a1, t, u), b1 = gf_sdot4_##SFX(b1, v, u);                          \
            u = gf_simd_ld4(&w2);                                                                  \
            a2 = gf_sdot4_##SFX(a2, t, u), b2 = gf_sdot4_##SFX(b2, v, u);                          \
            u = gf_simd_ld4(&w3);                                                                  \
            a3 = gf_sdot4_##SFX(a3, t, u), b3 = gf_sdot4_##SFX(b3, v, u);                          \
        }                                                                                          \
        acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;                                        \
        acc[4] = b0, acc[5] = b1, acc[6] = b2, acc[7] = b3;                                        \
    }
GF_SIMD_DOT4R2(ss)
GF_SIMD_DOT4R2(us)

/* Four vectors x 4 rows, both S bytes apart: acc[r*os + p] = x_p . w_r. */
#define GF_SIMD_DOT4R4(SFX)                                                                        \
    static inline void gf_simd_dot4r4_##SFX(const uint8_t *xp, const uint8_t *wp, int32_t S, int32_t n, int32_t *out, \
                                            int32_t os)                                            \
    {                                                                                              \
        int32_t i, r, acc[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};                  \
        for (i = 0; i < n; i++, xp += 4, wp += 4) {                                                \
            const uint32_t x0 = gf_simd_ldu(xp), x1 = gf_simd_ldu(xp + S), x2 = gf_simd_ldu(xp + 2 * S); \
            const uint32_t x3 = gf_simd_ldu(xp + 3 * S);                                           \
            for (r = 0; r < 4; r++) {                                                              \
                const uint32_t u = gf_simd_ldu(wp + r * S);                                        \
                acc[4 * r] = gf_sdot4_##SFX(acc[4 * r], x0, u);                                    \
                acc[4 * r + 1] = gf_sdot4_##SFX(acc[4 * r + 1], x1, u);                            \
                acc[4 * r + 2] = gf_sdot4_##SFX(acc[4 * r + 2], x2, u);                            \
                acc[4 * r + 3] = gf_sdot4_##SFX(acc[4 * r + 3], x3, u);                            \
            }                                                                                      \
        }                                                                                          \
        for (r = 0; r < 4; r++)                                                                    \
            for (i = 0; i < 4; i++)                                                                \
                out[r * os + i] = acc[4 * r + i];                                                  \
    }
GF_SIMD_DOT4R4(ss)
GF_SIMD_DOT4R4(us)

/* One vector x 8 rows S bytes apart: acc[r] += x . w_r. */
#define GF_SIMD_DOT8R(SFX)                                                                         \
    static inline void gf_simd_dot8r_##SFX(const uint8_t *xp, const uint8_t *wp, int32_t S, int32_t n, int32_t *acc) \
    {                                                                                              \
        int32_t i, r;                                                                              \
        for (i = 0; i < n; i++, xp += 4, wp += 4) {                                                \
            const uint32_t t = gf_simd_ldu(xp);                                                    \
            for (r = 0; r < 8; r++)                                                                \
                acc[r] = gf_sdot4_##SFX(acc[r], t, gf_simd_ldu(wp + r * S));                       \
        }                                                                                          \
    }
GF_SIMD_DOT8R(ss)
GF_SIMD_DOT8R(us)

/* Pixel rows of 3 words, 12 bytes apart, x 4 channels of 3 weight words (w[3*r + j]):
 * acc[r*os + q] = x_q . w_r for q < np. */
#define GF_SIMD_DOTK3(SFX)                                                                         \
    static inline void gf_simd_dotk3_##SFX(const uint8_t *xp, int32_t np, const uint32_t *w, int32_t *acc, \
                                           const int32_t os)                                       \
    {                                                                                              \
        int32_t q, r;                                                                              \
        for (q = 0; q < np; q++, xp += 12) {                                                       \
            const uint32_t x0 = gf_simd_ldu(xp), x1 = gf_simd_ldu(xp + 4), x2 = gf_simd_ldu(xp + 8); \
            for (r = 0; r < 4; r++)                                                                \
                acc[r * os + q] = gf_sdot4_##SFX(gf_sdot4_##SFX(gf_sdot4_##SFX(0, x0, w[3 * r]), x1, w[3 * r + 1]), \
                                                 x2, w[3 * r + 2]);                                \
        }                                                                                          \
    }
GF_SIMD_DOTK3(ss)
GF_SIMD_DOTK3(us)
#endif

/* One row: acc + sum_{i < 4n} x[i] * w[i] (channel tails). */
#define GF_SIMD_DOT1(SFX)                                                                          \
    static inline int32_t gf_simd_dot1_##SFX(const uint8_t *xp, const uint8_t *wp, int32_t n, int32_t acc) \
    {                                                                                              \
        int32_t i;                                                                                 \
        for (i = 0; i < n; i++) {                                                                  \
            const uint32_t t = gf_simd_ld4(&xp);                                                   \
            acc = gf_sdot4_##SFX(acc, t, gf_simd_ld4(&wp));                                        \
        }                                                                                          \
        return acc;                                                                                \
    }
GF_SIMD_DOT1(ss)
GF_SIMD_DOT1(us)
GF_SIMD_DOT1(su)
GF_SIMD_DOT1(uu)

#endif /* GF_SIMD_H */
