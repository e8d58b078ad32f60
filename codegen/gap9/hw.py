"""The GAP9 hardware model: the single place every planning decision reads its limits from.

Figures from GreenWaves' GAP9 documentation and the PMSIS reference kept with the project
(docs/gap9.md): 128 KiB cluster L1 (TCDM, ARCHI_L1_SIZE 0x20000), 1.5 MiB L2, external L3
(HyperRAM on the gvsoc gap9_v2 board, OctaSPI PSRAM on the EVK), 8 compute cores plus the
cluster controller (core 8), MCHAN DMA with 17-bit lengths (we keep every command below 64 KiB).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

KIB = 1024


@dataclass(frozen=True)
class GAP9:
    l1_size: int = 128 * KIB
    # The cluster stacks live in L1 (PMSIS allocates them): the controller's (conf.cc_stack_size,
    # CONFIG_CL_MASTER_CORE_STACK_SIZE) and one per compute core (pi_cluster_task_stacks,
    # CONFIG_CL_SLAVE_CORE_STACK_SIZE). The sizes come from measurement (codegen/gap9/resources.py,
    # docs/gap9.md): stack_size_for() of the deepest rv32 call chain of the entry point over all
    # kernels: cluster_entry 1056 B (32 B + the 1024 B bound of printf, its L1 error report),
    # tile_loop 2448 B (gf_conv2d dispatching to the 1x1 kernel: gf_conv1x1_p 1520 B),
    # riscv64-unknown-elf-gcc 12.2 -march=rv32imc -O2; tests/test_gap9.py re-measures them.
    # Generation fails if a network's chains exceed them.
    cc_stack: int = 1792
    core_stack: int = 3072
    # margin over a measured chain: 25 % of it, at least 512 B, rounded up to 256 B (interrupt
    # frames, the SDK's PMSIS internals measured nowhere here, the SDK compiler vs Debian's gcc)
    stack_margin_percent: int = 25
    stack_margin_min: int = 512
    stack_round: int = 256
    l2_size: int = 1536 * KIB
    # code, runtime data, FC stack and PMSIS driver state in L2 (conservative estimate)
    l2_reserved: int = 160 * KIB
    l3_size: int = 8 * 1024 * KIB
    compute_cores: int = 8
    controller_core: int = 8
    dma_max_1d: int = 64 * KIB - 1  # split 1-D commands below 64 KiB
    dma_max_2d_length: int = 64 * KIB - 1  # 2-D line length and stride below 64 KiB
    dma_max_2d_stride: int = 64 * KIB - 1
    dma_max_inflight: int = 16  # hardware transfer ids are limited: wait before issuing more
    alignment: int = 8  # bytes, every buffer
    l2_scratch: int = 4 * KIB  # FC bounce buffer for flash/L3 loads and golden comparison

    @property
    def l1_reserved(self) -> int:
        """L1 bytes of the cluster stacks: the controller's and one per compute core."""
        return self.cc_stack + self.compute_cores * self.core_stack

    def stack_size_for(self, chain: int) -> int:
        """The stack to configure for a measured call chain of `chain` bytes (the margin above)."""
        need = chain + max(chain * self.stack_margin_percent // 100, self.stack_margin_min)
        return -(-need // self.stack_round) * self.stack_round

    @property
    def l1_budget(self) -> int:
        return self.l1_size - self.l1_reserved

    @property
    def l2_budget(self) -> int:
        return self.l2_size - self.l2_reserved

    def with_budgets(self, l1: int | None = None, l2: int | None = None) -> Budgets:
        return Budgets(self, l1 if l1 is not None else self.l1_budget, l2 if l2 is not None else self.l2_budget)


@dataclass(frozen=True)
class Budgets:
    """The bytes gapforge may use in each level (defaults: size minus reserves; flags override)."""

    hw: GAP9
    l1: int
    l2: int

    @property
    def l3(self) -> int:
        return self.hw.l3_size

    def to_json(self) -> dict:
        return {"l1_budget": self.l1, "l2_budget": self.l2, "l3_size": self.l3, "l1_size": self.hw.l1_size,
                "l2_size": self.hw.l2_size, "cores": self.hw.compute_cores}


DEFAULT = GAP9()


def align(n: int, a: int = DEFAULT.alignment) -> int:
    return (n + a - 1) // a * a


def parse_bytes(text: str) -> int:
    """'131072', '128K', '128KB', '1.5M', '1536KiB' -> bytes."""
    t = text.strip().upper().replace("IB", "").replace("B", "")
    mult = 1
    if t.endswith("K"):
        mult, t = KIB, t[:-1]
    elif t.endswith("M"):
        mult, t = KIB * KIB, t[:-1]
    value = float(t)
    if value <= 0:
        raise ValueError(text)
    return int(value * mult)


__all__ = ["GAP9", "Budgets", "DEFAULT", "align", "parse_bytes", "replace"]
