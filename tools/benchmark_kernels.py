#!/usr/bin/env python3
"""Instruction counts of the C runtime's hot kernels on RV32 (QEMU, exact minstret).

For each kernel size a small benchmark program is built for rv32 (codegen.toolchains, -O2, the
runtime compiled exactly as generated projects compile it) and run under
``qemu-system-riscv32 -icount shift=0``. The program fills the tensors with deterministic
pseudo-random data, reads minstret around one call of the optimized kernel and one call of the
straightforward reference kernel (gf_conv2d_ref / gf_linear_ref, same flags), and checks that
both produce the same bytes (it exits non-zero otherwise).

Printed table: kernel, size, MACs, instructions of the optimized kernel, instructions per MAC
(optimized and reference), speed-up, the target in instructions per MAC and whether it is met.
Targets: <= 2.8 for conv3x3, conv1x1 and linear, <= 4.0 for depthwise 3x3 (rv32imc has no
multiply-accumulate: one mul and one add per MAC make 2.0 the floor). The element-wise kernels
count instructions per element instead of per MAC: the table lookup gf_lut (<= 5.0: load, index,
load, store and the loop) and the product gf_mul, same-shape (<= 18.0) and as a broadcast gate
[C][H][W] * [C][1][1] (<= 16.0), requantization included (its fast path is about 7 instructions);
their reference is a plain loop in the benchmark program.

Row kernels (softmax, layernorm, rmsnorm, groupnorm) are reported per element: their programs embed
an input, the parameter block and the expected output computed by the numpy reference (atomic_ops),
and check the kernel's bytes against it (rmsnorm and groupnorm: BKIND 11 and 12 in their programs;
groupnorm rows are groups of C/G channels x H x W).

The int8 x int8 matmul of two activations (gf_matmul) is checked against gf_linear_ref on the rows with
the second operand transposed (target <= 4.0 per MAC, as for depthwise 3x3).

The selective scan gf_scan (BKIND 13) is counted per state element per step (L x D x N): its inputs,
parameter block and expected output come from the numpy reference (atomic_ops/scan.py), its reference
is a plain loop of the contract with the exact 64-bit rounding; target <= 90 (per element: the table
load, two 32x32->64 products, the 64-bit rounding of the state, the C product; the output rounding per
channel and step is shared by the N elements).

conv1d / dwconv1d (targets 2.8 / 4.0) are 1-D convolutions over (channels, time) as the generated code
runs them: the map of height 1 through gf_conv2d / gf_dwconv2d (kernel 1 x K).

Examples:
  python tools/benchmark_kernels.py
  python tools/benchmark_kernels.py --json-out bench.json --plot bench.png
  python tools/benchmark_kernels.py --only conv3x3 --keep build/bench

Exit codes: 0 measured (whether or not targets are met, unless --require-targets),
1 an optimized kernel disagreed with the reference (or --require-targets and a target was
missed), 2 bad flag or the rv32 toolchain / QEMU is missing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codegen import toolchains  # noqa: E402
from codegen.targets import hal_sources  # noqa: E402
from gapforge.errors import EXIT_OK, EXIT_VERDICT, ArgumentParser, GapforgeError, run_cli  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RUNTIME = REPO / "codegen" / "runtime"

TARGETS = {"conv3x3": 2.8, "conv1x1": 2.8, "dwconv3x3": 4.0, "linear": 2.8, "lut": 5.0, "mul": 18.0,
           "mul_gate": 16.0, "matmul": 4.0, "conv1d": 2.8, "dwconv1d": 4.0, "scan": 90.0}
ELEMENTWISE = ("lut", "mul", "mul_gate")  # figures per element, not per MAC


@dataclass(frozen=True)
class Config:
    kernel: str  # conv3x3 | conv1x1 | dwconv3x3 | linear | conv1d | dwconv1d | matmul (c = K, h = M rows, w = groups, o = N)
    # | scan (c = D channels, h = L steps, o = N state elements per channel)
    c: int
    h: int
    w: int
    o: int
    stride: int = 1
    k: int = 3  # conv1d / dwconv1d: kernel length

    @property
    def size(self) -> str:
        if self.kernel == "scan":
            return f"L={self.h} D={self.c} N={self.o}"
        if self.kernel in ELEMENTWISE:
            return f"{self.c}x{self.h}x{self.w}" + (f" * {self.c}x1x1" if self.kernel == "mul_gate" else "")
        if self.kernel == "linear":
            return f"{self.c}->{self.o}"
        if self.kernel == "matmul":
            return f"{self.w}x[{self.h}x{self.c}]@[{self.c}x{self.o}]"
        if self.kernel == "dwconv3x3":
            return f"{self.c}ch @{self.h}x{self.w} s{self.stride}"
        if self.kernel == "dwconv1d":
            return f"{self.c}ch k{self.k} @T={self.w} s{self.stride}"
        if self.kernel == "conv1d":
            return f"{self.c}->{self.o} k{self.k} @T={self.w} s{self.stride}"
        return f"{self.c}->{self.o} @{self.h}x{self.w}"

    def geometry(self) -> dict[str, int]:
        if self.kernel in ("conv1d", "dwconv1d"):  # 1 x K over the map of height 1, causal left padding
            k, p = self.k, self.k - 1
            ow = (self.w + p - k) // self.stride + 1
            groups = self.c if self.kernel == "dwconv1d" else 1
            return {"K": k, "KH": 1, "P": 0, "PL": p, "PR": 0, "S": self.stride, "SY": 1, "OH": 1, "OW": ow,
                    "G": groups}
        k = 1 if self.kernel == "conv1x1" else 3
        p = 0 if self.kernel == "conv1x1" else 1
        oh = (self.h + 2 * p - k) // self.stride + 1
        ow = (self.w + 2 * p - k) // self.stride + 1
        groups = self.c if self.kernel == "dwconv3x3" else 1
        return {"K": k, "KH": k, "P": p, "PL": p, "PR": p, "S": self.stride, "SY": self.stride, "OH": oh, "OW": ow,
                "G": groups}

    @property
    def macs(self) -> int:
        if self.kernel == "scan":  # state elements x steps
            return self.h * self.c * self.o
        if self.kernel in ELEMENTWISE:  # elements
            return self.c * self.h * self.w
        if self.kernel == "linear":
            return self.c * self.o
        if self.kernel == "matmul":
            return self.w * self.h * self.c * self.o
        g = self.geometry()
        return self.o * (self.c // g["G"]) * g["KH"] * g["K"] * g["OH"] * g["OW"]


CONFIGS = [
    Config("conv3x3", 16, 16, 16, 16),
    Config("conv3x3", 32, 8, 8, 32),
    Config("conv1x1", 32, 8, 8, 64),
    Config("conv1x1", 64, 8, 8, 64),
    Config("dwconv3x3", 32, 16, 16, 32, 1),
    Config("dwconv3x3", 32, 16, 16, 32, 2),
    Config("dwconv3x3", 32, 32, 32, 32, 2),
    Config("linear", 256, 1, 1, 64),
    Config("linear", 512, 1, 1, 128),
    Config("lut", 32, 16, 16, 32),
    Config("mul", 32, 16, 16, 32),
    Config("mul_gate", 32, 16, 16, 32),
    Config("matmul", 32, 64, 2, 64),  # attention scores: 2 heads, 64 tokens, head size 32
    Config("matmul", 64, 64, 2, 32),  # weighted values: 2 heads, 64 tokens x 64 keys @ [64 x 32]
    Config("conv1d", 16, 1, 256, 32, 1, 5),
    Config("conv1d", 32, 1, 256, 32, 2, 3),
    Config("dwconv1d", 32, 1, 256, 32, 1, 4),  # Mamba's causal depthwise conv (d_conv = 4)
    Config("dwconv1d", 64, 1, 1024, 64, 1, 3),
    Config("scan", 16, 64, 1, 4),  # mamba_block's scan (D = 16, N = 4) over 64 steps
    Config("scan", 32, 32, 1, 16),  # Mamba's d_state = 16
]

BENCH_C = r"""
/* Generated by tools/benchmark_kernels.py: one kernel size, optimized vs reference kernel. */
#include <stdio.h>
#include <string.h>

#include "gf_hal.h"
#include "gf_runtime.h"

#if BKIND == 13
#define NX 1 /* scan: SD, SU, SB, SC, SP and the expected E are embedded by the generator */
#define NW 1
#define NY (BH * BC)
#elif BKIND == 8
#define NX (BW * BH * BC) /* matmul: a [BW][BH][BC], b [BW][BC][BO] */
#define NW (BW * BC * BO)
#define NY (BW * BH * BO)
static int8_t BT[BC * BO]; /* one group's b transposed: the reference is gf_linear_ref over its rows */
#elif BKIND == 4
#define NX (BC * BH * BW)
#define NW (BC * BO)
#define NY (BO)
#elif BKIND == 5
#define NX (BC * BH * BW)
#define NW 256
#define NY NX
#elif BKIND == 6
#define NX (BC * BH * BW)
#define NW NX
#define NY NX
#elif BKIND == 7
#define NX (BC * BH * BW)
#define NW BC
#define NY NX
#else
#define NX (BC * BH * BW)
#define NW (BO * (BC / BG) * BKH * BK)
#define NY (BO * BOH * BOW)
#endif

static int8_t X[NX];
static int8_t Wt[NW];
static int32_t Bias[BO];
static int32_t M[BO];
static uint8_t SH[BO];
static int64_t OFF[BO];
static uint8_t Y0[NY], Y1[NY];

static uint32_t rng_state = 0x12345678u;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

int main(void)
{
    gf_requant_t rq;
    uint64_t t0, t1, t2, t3;
    int i;
    if (gf_hal_init() != 0)
        return 3;
    for (i = 0; i < NX; i++)
        X[i] = (int8_t)(rnd() & 0xff);
    for (i = 0; i < NW; i++)
        Wt[i] = (int8_t)(rnd() & 0xff);
    for (i = 0; i < BO; i++) {
        /* realistic per-channel requantization: multiplier ~ 2^-(BSH-31), zero point 0, int8 out */
        Bias[i] = (int32_t)(rnd() % 20001) - 10000;
        M[i] = (int32_t)(0x40000000u + (rnd() & 0x3fffffffu));
        SH[i] = (uint8_t)BSH;
        OFF[i] = (int64_t)(int32_t)rnd() * 1024;
    }
    rq.m = M;
    rq.sh = SH;
    rq.o = OFF;
    rq.channels = BKIND == 8 ? 1 : BO; /* a matmul of two activations is requantized per tensor */
    rq.zp = 0;
    rq.lo = -128;
    rq.hi = 127;
    rq.pre = NULL;
#if BKIND == 5
    {
        /* int8 codes -> a table of 256 output bytes; reference: the plain loop */
        const uint8_t *tab = (const uint8_t *)Wt;
        (void)rq;
        t0 = gf_hal_instret();
        gf_lut(X, GF_S8, tab, 256, -128, 1, NX, NX, Y0);
        t1 = gf_hal_instret();
        for (i = 0; i < NX; i++)
            Y1[i] = tab[X[i] + 128];
        t2 = gf_hal_instret();
    }
#elif BKIND == 6 || BKIND == 7
    {
        /* (x - 3) * (g + 5), per-tensor requantization; reference: the plain loop */
        gf_mul_shape_t ms = {{1, BC, BH, BW}, {0, BH * BW, BW, 1}, {0, BH * BW, BW, 1}, 3, -5};
        int32_t mr = M[0];
        rq.channels = 1;
        M[0] = mr >> BMULSH;
#if BKIND == 7
        ms.sb[1] = 1;
        ms.sb[2] = 0;
        ms.sb[3] = 0;
#endif
        t0 = gf_hal_instret();
        gf_mul(X, GF_S8, Wt, GF_S8, &ms, 0, NX, 0, 0, NX, &rq, Y0);
        t1 = gf_hal_instret();
        for (i = 0; i < NX; i++) {
            int32_t g = BKIND == 7 ? Wt[i / (BH * BW)] : Wt[i];
            Y1[i] = (uint8_t)gf_requant1(&rq, ((int32_t)X[i] - 3) * (g + 5), 0);
        }
        t2 = gf_hal_instret();
    }
#elif BKIND == 13
    {
        /* reference: the contract as a plain loop, every rounding on the exact 64-bit path; the block is
         * read through a volatile pointer so that the compiler cannot fold its (embedded) values */
        const int64_t *volatile spv = SP;
        const int64_t *P = spv;
        const int32_t D = BC, N = BO, L = BH, NE = (int32_t)P[3];
        const int64_t *ch = P + 24;
        const int16_t *T = (const int16_t *)(const void *)(ch + 4 * D);
        int32_t h[BO], d, t, n;
        (void)rq;
        t0 = gf_hal_instret();
        gf_scan(SD, SD_T, SU, SU_T, SB, SB_T, SC, SC_T, SP, Y0);
        t1 = gf_hal_instret();
        for (d = 0; d < D; d++) {
            for (n = 0; n < N; n++)
                h[n] = 0;
            for (t = 0; t < L; t++) {
                int32_t s = 0;
                int32_t dq = SD[t * D + d], uq = SU[t * D + d] - (int32_t)P[6];
                for (n = 0; n < N; n++) {
                    int32_t a = T[(d * N + n) * NE + dq - (int32_t)P[4]];
                    int64_t acc = P[15] + P[12] * (int64_t)(a * h[n]) +
                                  P[13] * (int64_t)((dq - (int32_t)P[5]) * (SB[t * N + n] - (int32_t)P[7]) * uq);
                    h[n] = gf_requant_finish(acc, (int)P[14], (int32_t)P[9], (int32_t)P[10], (int32_t)P[11]) -
                           (int32_t)P[9];
                    s += h[n] * (SC[t * N + n] - (int32_t)P[8]);
                }
                Y1[t * D + d] = (uint8_t)gf_requant_finish(ch[4 * d + 3] + ch[4 * d] * (int64_t)s + ch[4 * d + 1] * uq,
                                                           (int)ch[4 * d + 2], (int32_t)P[16], (int32_t)P[17],
                                                           (int32_t)P[18]);
            }
        }
        t2 = gf_hal_instret();
        if (memcmp(Y0, E, sizeof E) != 0)
            Y1[0] ^= 1; /* disagreeing with numpy counts as a mismatch */
    }
#elif BKIND == 8
    t0 = gf_hal_instret();
    gf_matmul(X, GF_S8, 0, Wt, GF_S8, 0, BW, BH, BC, BO, &rq, Y0);
    t1 = gf_hal_instret();
    {
        int g, r, j, kk;
        for (g = 0; g < BW; g++) { /* the transposes are not counted: t2 - t1 covers the reference calls */
            uint64_t s0 = gf_hal_instret();
            for (kk = 0; kk < BC; kk++)
                for (j = 0; j < BO; j++)
                    BT[j * BC + kk] = Wt[(g * BC + kk) * BO + j];
            t1 += gf_hal_instret() - s0;
            for (r = 0; r < BH; r++)
                gf_linear_ref(X + (g * BH + r) * BC, GF_S8, BT, NULL, BC, BO, &rq, Y1 + (g * BH + r) * BO);
        }
    }
    t2 = gf_hal_instret();
#elif BKIND == 4
    t0 = gf_hal_instret();
    gf_linear(X, GF_S8, Wt, Bias, BC, BO, &rq, Y0);
    t1 = gf_hal_instret();
    gf_linear_ref(X, GF_S8, Wt, Bias, BC, BO, &rq, Y1);
    t2 = gf_hal_instret();
#else
    {
        gf_conv_shape_t s;
        s.c = BC, s.h = BH, s.w = BW, s.o = BO, s.oh = BOH, s.ow = BOW;
        s.kh = BKH, s.kw = BK, s.sy = BSY, s.sx = BS;
        s.pt = BP, s.pl = BPL, s.pb = BP, s.pr = BPR;
        s.dy = 1, s.dx = 1, s.groups = BG;
        t0 = gf_hal_instret();
#if BKIND == 1
        gf_conv2d_3x3(X, GF_S8, Wt, Bias, &s, &rq, Y0);
#elif BKIND == 2
        gf_conv2d_1x1(X, GF_S8, Wt, Bias, &s, &rq, Y0);
#elif BKIND == 9
        gf_conv2d(X, GF_S8, Wt, Bias, &s, &rq, Y0);
#else
        gf_dwconv2d(X, GF_S8, Wt, Bias, &s, &rq, Y0);
#endif
        t1 = gf_hal_instret();
        gf_conv2d_ref(X, GF_S8, Wt, Bias, &s, &rq, Y1);
        t2 = gf_hal_instret();
    }
#endif
    t3 = gf_hal_instret();
    {
        int same = memcmp(Y0, Y1, sizeof Y0) == 0;
        unsigned long nz = 0;
        for (i = 0; i < NY; i++)
            nz += Y0[i] != 0 && Y0[i] != 0x7f && Y0[i] != 0x80;
        printf("BENCH opt=%llu ref=%llu overhead=%llu same=%d unsaturated=%lu/%d\n", (unsigned long long)(t1 - t0),
               (unsigned long long)(t2 - t1), (unsigned long long)(t3 - t2), same, nz, NY);
        return same ? 0 : 1;
    }
}
"""

KIND_ID = {"conv3x3": 1, "conv1x1": 2, "dwconv3x3": 3, "linear": 4, "lut": 5, "mul": 6, "mul_gate": 7, "matmul": 8,
           "conv1d": 9, "dwconv1d": 10, "scan": 13}


@dataclass
class Row:
    kernel: str
    size: str
    macs: int
    instructions: int
    instr_per_mac: float
    ref_instructions: int
    ref_instr_per_mac: float
    speedup: float
    target: float
    met: bool
    unsaturated_outputs: str


def compile_runtime(build: Path, opt: str) -> list[Path]:
    """The runtime's .c files, linked into every benchmark program. codegen.toolchains compiles each
    of them once (its object cache; the per-size defines live in the generated program source, so
    the runtime's compiler command is the same for every size)."""
    del build, opt
    return [*sorted(RUNTIME.glob("*.c")), *hal_sources("rv32")]


def multiplier_shift(cfg: Config) -> int:
    """sh giving multipliers of about 100 / (accumulator spread) (outputs mostly unsaturated)."""
    import math

    if cfg.kernel in ELEMENTWISE:
        return 31 + 8  # products of two int8 values: spread about 74 * 74, mantissa shifted down (BMULSH)
    g = cfg.geometry()
    n = cfg.c if cfg.kernel in ("linear", "matmul") else (cfg.c // g["G"]) * g["KH"] * g["K"]
    spread = 74.0 * 74.0 * math.sqrt(n)  # std of a sum of n products of uniform int8 values
    return 31 + max(1, round(math.log2(spread / 100.0)))


def scan_arrays(cfg: Config) -> str:
    """C arrays of one scan benchmark: delta (uint8), u, B, C (int8) [L][.], the parameter block and the
    output of atomic_ops/scan.py (realistic scales: A_bar in (0, 1], outputs mostly unsaturated)."""
    import numpy as np

    from atomic_ops import scan

    rng = np.random.default_rng(13)
    L, D, N = cfg.h, cfg.c, cfg.o
    delta = rng.integers(0, 256, size=(L, D)).astype(np.uint8)
    u, b, c = (rng.integers(-128, 128, size=sh).astype(np.int8) for sh in ((L, D), (L, N), (L, N)))
    s_d, A = 0.01, -np.arange(1, N + 1, dtype=np.float64)
    table = np.rint(255 * np.exp(np.outer(np.ones(D), A).reshape(-1, 1) * s_d * np.arange(256))).astype(np.int16)
    p = scan.prepare(D=D, N=N, L=L, table=table, base=0, s_a=1 / 255, s_d=s_d, s_u=0.05, s_b=0.04, s_c=0.04,
                     s_h=0.004, s_y=0.02, Dvec=rng.normal(1.0, 0.3, D), zps=dict.fromkeys("dubchy", 0),
                     h_range=(-128, 127), y_range=(-128, 127), y_signed=True)
    y = scan.scan(delta, u, b, c, p).astype(np.int8)
    return ("#define SD_T GF_U8\n#define SU_T GF_S8\n#define SB_T GF_S8\n#define SC_T GF_S8\n#include <stdint.h>\n"
            + _c_array("uint8_t", "SD", delta.reshape(-1)) + _c_array("int8_t", "SU", u.reshape(-1))
            + _c_array("int8_t", "SB", b.reshape(-1)) + _c_array("int8_t", "SC", c.reshape(-1))
            + _c_array("int64_t", "SP", p.block().tolist(), "LL") + _c_array("uint8_t", "E", y.reshape(-1).view("uint8")))


def measure(cfg: Config, build: Path, objs: list[Path], opt: str, timeout: float) -> Row:
    flat = cfg.kernel in ("linear", "matmul", "scan") or cfg.kernel in ELEMENTWISE
    g = cfg.geometry() if not flat else {"K": 1, "KH": 1, "P": 0, "PL": 0, "PR": 0, "S": 1, "SY": 1, "OH": 1, "OW": 1,
                                         "G": 1}
    defines = {"BKIND": str(KIND_ID[cfg.kernel]), "BC": str(cfg.c), "BH": str(cfg.h), "BW": str(cfg.w),
               "BO": str(cfg.o), "BK": str(g["K"]), "BKH": str(g["KH"]), "BP": str(g["P"]), "BPL": str(g["PL"]),
               "BPR": str(g["PR"]), "BS": str(g["S"]), "BSY": str(g["SY"]), "BOH": str(g["OH"]),
               "BOW": str(g["OW"]), "BG": str(g["G"]), "BSH": str(multiplier_shift(cfg)), "BMULSH": "6"}
    name = re.sub(r"[^A-Za-z0-9]+", "_", f"{cfg.kernel}_{cfg.size}").strip("_")
    src = build / f"bench_{name}.c"
    src.write_text("".join(f"#define {k} {v}\n" for k, v in defines.items())
                   + (scan_arrays(cfg) if cfg.kernel == "scan" else "") + BENCH_C)
    exe = toolchains.build("rv32", [src, *objs], [RUNTIME, RUNTIME / "hal"], build / f"bench_{name}.elf",
                           opt=opt)
    res = toolchains.run("rv32", exe, cwd=build, timeout=timeout)
    m = re.search(r"BENCH opt=(\d+) ref=(\d+) overhead=(\d+) same=(\d) unsaturated=(\S+)", res.stdout)
    if not m:
        raise GapforgeError(f"{name}: benchmark program printed no result (exit {res.returncode}): "
                            f"{(res.stdout + res.stderr).strip()[-300:]}")
    overhead = int(m.group(3))  # cost of reading the counter, removed from both figures
    opt_n, ref_n = int(m.group(1)) - overhead, int(m.group(2)) - overhead
    same = m.group(4) == "1" and res.returncode == 0
    target = TARGETS[cfg.kernel]
    row = Row(cfg.kernel, cfg.size, cfg.macs, opt_n, opt_n / cfg.macs, ref_n, ref_n / cfg.macs, ref_n / opt_n,
              target, opt_n / cfg.macs <= target, m.group(5))
    if not same:
        raise MismatchError(f"{name}: optimized kernel output differs from the reference kernel "
                            f"(exit {res.returncode})", row)
    return row


# -- row kernels (instructions per element) ---------------------------------------------------------
@dataclass(frozen=True)
class ElemConfig:
    kernel: str  # softmax | layernorm
    in_t: str  # s8 | u8 | s32
    rows: int
    n: int

    @property
    def size(self) -> str:
        return f"{self.rows}x{self.n} {self.in_t}"


ELEM_CONFIGS = [
    ElemConfig("softmax", "s8", 8, 64),
    ElemConfig("softmax", "u8", 16, 16),
    ElemConfig("softmax", "s32", 8, 64),
    ElemConfig("layernorm", "s8", 8, 64),
    ElemConfig("layernorm", "u8", 16, 16),
    ElemConfig("layernorm", "s8", 2, 256),
    ElemConfig("rmsnorm", "s8", 8, 64),
    ElemConfig("rmsnorm", "u8", 16, 16),
    ElemConfig("rmsnorm", "s8", 2, 256),
    ElemConfig("groupnorm", "s8", 4, 64),  # 4 groups of 4 channels x 4 x 4
    ElemConfig("groupnorm", "u8", 16, 16),  # 16 groups of 1 channel x 4 x 4
]
ELEM_BKIND = {"rmsnorm": 11, "groupnorm": 12}  # row kernels with a BKIND id of their own
ELEM_CALL = {"groupnorm": "#define KERNEL(x, t, r, n, p, y) gf_groupnorm(x, t, 0, r, n, p, y)\n"}

ELEM_C = r"""
/* Generated by tools/benchmark_kernels.py: one row kernel, checked against the numpy reference. */
#include <stdio.h>
#include <string.h>

#include "gf_hal.h"
#include "gf_runtime.h"

static uint8_t Y[sizeof(E)];

int main(void)
{
    uint64_t t0, t1, t2;
    int same;
    if (gf_hal_init() != 0)
        return 3;
    t0 = gf_hal_instret();
    KERNEL(X, IN_T, ROWS, N, P, Y);
    t1 = gf_hal_instret();
    t2 = gf_hal_instret();
    same = memcmp(Y, E, sizeof E) == 0;
    printf("BENCH opt=%llu overhead=%llu same=%d\n", (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
           same);
    return same ? 0 : 1;
}
"""


@dataclass
class ElemRow:
    kernel: str
    size: str
    elements: int
    instructions: int
    instr_per_element: float
    same: bool


def elem_case(cfg: ElemConfig):
    """Deterministic input, parameter block and expected output bytes (atomic_ops)."""
    import numpy as np

    from atomic_ops import groupnorm, layernorm, rmsnorm, softmax

    rng = np.random.default_rng(7)
    lo_x, hi_x, dt = {"s8": (-128, 127, np.int8), "u8": (0, 255, np.uint8), "s32": (-(2**20), 2**20, np.int32)}[cfg.in_t]
    x = rng.integers(lo_x, hi_x + 1, size=(cfg.rows, cfg.n)).astype(dt)
    if cfg.kernel == "softmax":
        s_in = 0.04 if cfg.in_t != "s32" else 2e-5
        p = softmax.prepare(s_in, None if cfg.in_t == "s32" else (lo_x, hi_x), 1 / 255, 0, 0, 255, cfg.n)
        y = softmax.softmax(x, p).astype(np.uint8)
    elif cfg.kernel == "rmsnorm":
        gamma = rng.normal(1.0, 0.3, cfg.n).astype(np.float32)
        p = rmsnorm.prepare(0.05, (lo_x, hi_x), 0, 1e-6, gamma, 0.03, 0, -128, 127)
        y = rmsnorm.rmsnorm(x, p).astype(np.int8)
    elif cfg.kernel == "groupnorm":
        groups, spatial = 4, 16  # rows = batches x groups; a row is n / spatial channels of spatial elements
        chans = groups * cfg.n // spatial
        gamma = rng.normal(1.0, 0.3, chans).astype(np.float32)
        beta = rng.normal(0.0, 0.3, chans).astype(np.float32)
        p = groupnorm.prepare(0.05, (lo_x, hi_x), groups, spatial, 1e-5, gamma, beta, 0.03, 0, -128, 127)
        y = groupnorm.groupnorm(x, p).astype(np.int8)
    else:
        gamma = rng.normal(1.0, 0.3, cfg.n).astype(np.float32)
        beta = rng.normal(0.0, 0.3, cfg.n).astype(np.float32)
        p = layernorm.prepare(0.05, (lo_x, hi_x), 1e-5, gamma, beta, 0.03, 0, -128, 127)
        y = layernorm.layernorm(x, p).astype(np.int8)
    return x, p.block(), y


def _c_array(ctype: str, name: str, values, suffix: str = "") -> str:
    return f"static const {ctype} {name}[] = {{{', '.join(f'{int(v)}{suffix}' for v in values)}}};\n"


def measure_elem(cfg: ElemConfig, build: Path, objs: list[Path], opt: str, timeout: float) -> ElemRow:
    x, block, y = elem_case(cfg)
    ctype = {"s8": "int8_t", "u8": "uint8_t", "s32": "int32_t"}[cfg.in_t]
    defs = (ELEM_CALL.get(cfg.kernel, f"#define KERNEL gf_{cfg.kernel}\n")
            + (f"#define BKIND {ELEM_BKIND[cfg.kernel]}\n" if cfg.kernel in ELEM_BKIND else "")
            + f"#define IN_T GF_{cfg.in_t.upper()}\n#define ROWS {cfg.rows}\n"
            f"#define N {cfg.n}\n#include <stdint.h>\n"
            + _c_array(ctype, "X", x.reshape(-1))
            + _c_array("int64_t", "P", block.tolist(), "LL")
            + _c_array("uint8_t", "E", y.reshape(-1).view("uint8")))
    name = re.sub(r"[^A-Za-z0-9]+", "_", f"{cfg.kernel}_{cfg.size}").strip("_")
    src = build / f"bench_{name}.c"
    src.write_text(defs + ELEM_C)
    exe = toolchains.build("rv32", [src, *objs], [RUNTIME, RUNTIME / "hal"], build / f"bench_{name}.elf", opt=opt)
    res = toolchains.run("rv32", exe, cwd=build, timeout=timeout)
    m = re.search(r"BENCH opt=(\d+) overhead=(\d+) same=(\d)", res.stdout)
    if not m:
        raise GapforgeError(f"{name}: benchmark program printed no result (exit {res.returncode}): "
                            f"{(res.stdout + res.stderr).strip()[-300:]}")
    n_instr = int(m.group(1)) - int(m.group(2))
    elements = cfg.rows * cfg.n
    row = ElemRow(cfg.kernel, cfg.size, elements, n_instr, n_instr / elements, m.group(3) == "1" and res.returncode == 0)
    if not row.same:
        raise ElemMismatchError(f"{name}: kernel output differs from the numpy reference (exit {res.returncode})", row)
    return row


class ElemMismatchError(Exception):
    def __init__(self, message: str, row: ElemRow):
        super().__init__(message)
        self.row = row


def format_elem_table(rows: list[ElemRow]) -> str:
    head = ["kernel", "size", "elements", "instr", "instr/element", "== numpy"]
    body = [[r.kernel, r.size, f"{r.elements:,}", f"{r.instructions:,}", f"{r.instr_per_element:.1f}",
             "yes" if r.same else "NO"] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    return "\n".join("  ".join(c.rjust(w) if i in (2, 3, 4) else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
                     for cells in [head, ["-" * w for w in widths], *body])


class MismatchError(Exception):
    def __init__(self, message: str, row: Row):
        super().__init__(message)
        self.row = row


def format_table(rows: list[Row]) -> str:
    head = ["kernel", "size", "MACs|elems", "instr (opt)", "per MAC|elem opt", "per MAC|elem ref", "speed-up", "target",
            "met"]
    body = [[r.kernel, r.size, f"{r.macs:,}", f"{r.instructions:,}", f"{r.instr_per_mac:.3f}",
             f"{r.ref_instr_per_mac:.3f}", f"{r.speedup:.2f}x", f"<= {r.target:.1f}", "yes" if r.met else "NO"]
            for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    right = {2, 3, 4, 5, 6}
    def fmt(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    lines = [fmt(head), fmt(["-" * w for w in widths])] + [fmt(b) for b in body]
    return "\n".join(lines)


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.kernel}\n{r.size}" for r in rows]
    xs = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(8.0, 1.1 * len(rows)), 5.0))
    ax.bar([x - 0.2 for x in xs], [r.ref_instr_per_mac for r in rows], width=0.4, label="reference (gf_*_ref)",
           color="#bbbbbb")
    bars = ax.bar([x + 0.2 for x in xs], [r.instr_per_mac for r in rows], width=0.4, label="optimized",
                  color=["#2a7ab0" if r.met else "#d9534f" for r in rows])
    for x, r in zip(xs, rows):
        ax.hlines(r.target, x - 0.45, x + 0.45, colors="black", linestyles="dashed", linewidth=1)
    ax.bar_label(bars, labels=[f"{r.instr_per_mac:.2f}" for r in rows], fontsize=7)
    ax.axhline(2.0, color="#777777", linewidth=0.8, linestyle=":")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("RV32 instructions per MAC (per element: lut, mul) (minstret, QEMU -icount)")
    ax.set_title("gapforge runtime kernels on rv32imac (-O2): dashed = target, dotted = 2.0 floor")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv):
    ap = ArgumentParser(description=__doc__.split("\n\n")[0],
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--only", action="append", choices=sorted(TARGETS) + ["layernorm", "softmax", "rmsnorm", "groupnorm"],
                    help="benchmark only this kernel (repeatable)")
    ap.add_argument("--json-out", type=Path, help="write the table as JSON to this file")
    ap.add_argument("--plot", type=Path, metavar="PNG", help="write a bar chart (instructions per MAC) to this PNG")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="build in DIR and keep the programs (default: a "
                    "temporary directory)")
    ap.add_argument("--opt", default="-O2", help="optimisation flag for runtime and programs (default -O2)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per program run (default 300)")
    ap.add_argument("--require-targets", action="store_true", help="exit 1 if any target is missed")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not re.fullmatch(r"-O[0-3sz]|-Og|-Ofast", args.opt):
        raise GapforgeError(f"--opt {args.opt!r}: expected -O0..-O3, -Os, -Oz, -Og or -Ofast")
    ok, why = toolchains.available("rv32")
    if not ok:
        raise GapforgeError(f"rv32 target unavailable: {why}")
    configs = [c for c in CONFIGS if not args.only or c.kernel in args.only]
    elem_configs = [c for c in ELEM_CONFIGS if not args.only or c.kernel in args.only]
    with tempfile.TemporaryDirectory(prefix="gf_bench_") as tmp:
        build = args.keep if args.keep else Path(tmp)
        build.mkdir(parents=True, exist_ok=True)
        objs = compile_runtime(build, args.opt)
        rows, failures = [], []
        for cfg in configs:
            try:
                rows.append(measure(cfg, build, objs, args.opt, args.timeout))
            except MismatchError as err:
                rows.append(err.row)
                failures.append(str(err))
        elem_rows = []
        for ecfg in elem_configs:
            try:
                elem_rows.append(measure_elem(ecfg, build, objs, args.opt, args.timeout))
            except ElemMismatchError as err:
                elem_rows.append(err.row)
                failures.append(str(err))
    print(f"target: rv32imac, {args.opt}, qemu-system-riscv32 -icount shift=0 (minstret)")
    print(format_table(rows))
    missed = [r for r in rows if not r.met]
    print(f"{len(rows) - len(missed)}/{len(rows)} targets met")
    if elem_rows:
        print("row kernels (instructions per element, one call over all rows):")
        print(format_elem_table(elem_rows))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({
            "target": "rv32imac", "opt": args.opt, "counter": "minstret",
            "emulator": " ".join([toolchains.QEMU, *toolchains.QEMU_ARGS]),
            "targets_instr_per_mac": TARGETS, "rows": [asdict(r) for r in rows],
            "row_kernels": [asdict(r) for r in elem_rows]}, indent=2) + "\n")
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot(rows, args.plot)
    for f in failures:
        print(f"error: {f}", file=sys.stderr)
    if failures or (args.require_targets and missed):
        return EXIT_VERDICT
    return EXIT_OK


if __name__ == "__main__":
    run_cli(main)
