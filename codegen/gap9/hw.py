"""The hardware model: one entry per platform, the single place every planning decision reads its
limits from (budgets, placement, stacks, DMA limits, cores, tiling costs).

``PLATFORMS`` holds one `Platform` per chip gapforge plans for; the tools choose one with
``--platform NAME`` (default ``gap9``) and record its name in plan.json, plan_report.txt and
results.json. Every figure carries its source in ``Platform.sources`` or is marked there as an
assumption.

gap9: GreenWaves' GAP9 documentation and the PMSIS reference kept with the project (docs/gap9.md):
128 KiB cluster L1 (TCDM, ARCHI_L1_SIZE 0x20000), 1.5 MiB L2, external L3 (HyperRAM on the gvsoc
gap9_v2 board, OctaSPI PSRAM on the EVK), 8 compute cores plus the cluster controller (core 8),
MCHAN DMA with 17-bit lengths (we keep every command below 64 KiB).

siracusa and pulp-open: gvsoc's own platform configuration (gvsoc/gvsoc edfcd839, submodule
gvsoc-pulp 9968c4e8: pulp/chips/<chip>/cluster.json, soc.json, pulp_open.py, pulp_open_board.py)
and pulp-platform/pulp-sdk 7f4f2251 (rtos/pulpos/pulp_archi/include/archi/chips/<chip>/properties.h,
rtos/pulpos/pulp/kernel/chips/<chip>/link.ld, archi/dma/mchan_v7.h).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from gapforge.errors import GapforgeError

KIB = 1024


@dataclass(frozen=True)
class Platform:
    """One chip's figures. The defaults are GAP9's; the other entries of PLATFORMS replace some."""

    name: str = "gap9"
    description: str = "GreenWaves GAP9 (FC + 8-core cluster + cluster controller)"
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
    # The task's control block (gf_tiled.c gf_ctl_t: the running layer's descriptor, run record, operand
    # locations, counters, tile geometries and DMA queues, copied into L1 by core 0 before each layer, and
    # the task's fields), at the start of the task's one L1 block and reserved beside the stacks:
    # GF_L1_CONTROL_BYTES of codegen/runtime/gap9/gf_gap9.h (1528 B on rv32 with pulp-sdk's 8-byte DMA
    # command; the margin is for the GAP9 SDK's, not built here; a static assertion checks every 32-bit
    # build against it).
    l1_control: int = 1536
    stack_margin_percent: int = 25
    stack_margin_min: int = 512
    stack_round: int = 256
    l2_size: int = 1536 * KIB
    # code, runtime data, FC stack and PMSIS driver state in L2 (conservative estimate)
    l2_reserved: int = 160 * KIB
    l3_size: int = 8 * 1024 * KIB
    l3_kind: str = "HyperRAM (gvsoc gap9_v2 board) / OctaSPI PSRAM (EVK)"
    # False: the platform's flash/L3 path does not work, so plans that need L3 are refused
    l3_works: bool = True
    clock_hz: int = 370_000_000  # cluster clock
    compute_cores: int = 8
    controller_core: int = 8
    dma_max_1d: int = 64 * KIB - 1  # split 1-D commands below 64 KiB
    dma_max_2d_length: int = 64 * KIB - 1  # 2-D line length and stride below 64 KiB
    dma_max_2d_stride: int = 64 * KIB - 1
    dma_max_inflight: int = 16  # hardware transfer ids are limited: wait before issuing more
    alignment: int = 8  # bytes, every buffer
    l2_scratch: int = 4 * KIB  # FC bounce buffer for flash/L3 loads and golden comparison
    # The tiler's per-tile cost (codegen/gap9/tiling.py tile_cost): estimated cycles of a layer =
    # DMA bytes / dma_bytes_per_cycle + tiles x tile_fixed_cycles + the busiest core's work units
    # (MACs, or elements) x core_cycles_per_unit. Sources in ``sources`` (tile_cost).
    dma_bytes_per_cycle: float = 8.0
    tile_fixed_cycles: int = 2000
    core_cycles_per_unit: float = 4.0
    # what loading whole input planes instead of a conv tile's crop saves (tiling.py _conv_eval, TilePlan.in_plane):
    # per DMA command fewer (core 0 programming and waiting it; a crop of the columns takes a 2-D command per
    # plane), and once for a one-tile layer whose crop takes strided (2-D) commands: its commands are all 1-D then,
    # which the one-tile fast path can replay (gf_tiled.c dma_note). Source in ``sources`` (tile_cost).
    dma_cmd_cycles: int = 214
    dma_strided_cycles: int = 4195
    # Which steps run on the FC instead (codegen/gap9/fc_placement.py): estimated FC cycles of a cluster layer
    # = (cluster_layer_cycles + DMA bytes / dma_bytes_per_cycle + tiles x tile_fixed_cycles + the busiest core's
    # MACs x cluster_cycles_per_mac[_simd]) / cluster_per_fc_cycle, plus cluster_task_fc_cycles once per cluster
    # task; on the FC = fc_step_cycles + MACs x fc_cycles_per_mac[_simd | _rows_simd] + outputs x fc_cycles_per_output
    # (the one-row SIMD kernel: requantized outputs x fc_cycles_per_output_simd).
    # Measured on gvsoc siracusa (``sources``, fc_placement); GAP9's are not measured: the same figures assumed.
    cluster_per_fc_cycle: float = 1.0
    cluster_layer_cycles: int = 3400
    cluster_task_fc_cycles: int = 3500
    cluster_cycles_per_mac: float = 11.8
    cluster_cycles_per_mac_simd: float = 6.6
    fc_step_cycles: int = 600
    fc_cycles_per_mac: float = 6.0
    fc_cycles_per_mac_simd: float = 0.55
    # a linear layer over several rows (tokens) on the FC: gf_linear_rows_simd, not the one-row kernel
    fc_cycles_per_mac_rows_simd: float = 3.0
    fc_cycles_per_output: float = 20.0
    # the one-row SIMD kernel (gf_linear_simd): per requantized output (int32 sums: 0, their stores are in the MACs')
    fc_cycles_per_output_simd: float = 14.0
    # gvsoc: the platform's name in gvsoc and pulp-sdk (configs/<name>.sh) where the program can run
    # there (run_generated.py --target gvsoc); None: no public gvsoc model (GAP9's is not public)
    gvsoc: str | None = None
    # why the program cannot run on this gvsoc platform (run_generated.py refuses it with this line)
    gvsoc_refusal: str | None = None
    # where each figure comes from ("assumption: ..." where nothing measured or documented it)
    sources: dict = field(default_factory=lambda: dict(GAP9_SOURCES), compare=False, hash=False)

    @property
    def l1_reserved(self) -> int:
        """L1 bytes outside the tiles: the cluster stacks (the controller's and one per compute core) and the
        running layer's control block."""
        return self.cc_stack + self.compute_cores * self.core_stack + self.l1_control

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

    def to_json(self) -> dict:
        """plan.json's record of the platform (figures and their sources)."""
        keys = ("l1_size", "l2_size", "l2_reserved", "l3_size", "l3_kind", "l3_works", "clock_hz", "compute_cores",
                "controller_core", "dma_max_1d", "dma_max_2d_length", "dma_max_2d_stride", "dma_max_inflight",
                "cc_stack", "core_stack", "l1_control")
        return {"name": self.name, "description": self.description, **{k: getattr(self, k) for k in keys},
                "sources": dict(self.sources)}

    def with_budgets(self, l1: int | None = None, l2: int | None = None) -> Budgets:
        return Budgets(self, l1 if l1 is not None else self.l1_budget, l2 if l2 is not None else self.l2_budget)


@dataclass(frozen=True)
class Budgets:
    """The bytes gapforge may use in each level (defaults: size minus reserves; flags override)."""

    hw: Platform
    l1: int
    l2: int

    @property
    def l3(self) -> int:
        return self.hw.l3_size

    def to_json(self) -> dict:
        return {"platform": self.hw.name, "l1_budget": self.l1, "l2_budget": self.l2, "l3_size": self.l3,
                "l1_size": self.hw.l1_size, "l2_size": self.hw.l2_size, "cores": self.hw.compute_cores}


GVSOC = "gvsoc/gvsoc edfcd839 (gvsoc-pulp 9968c4e8)"
PULP_SDK = "pulp-platform/pulp-sdk 7f4f2251"

GAP9_SOURCES = {
    "l1_size": "GAP9 PMSIS ARCHI_L1_SIZE 0x20000 (docs/gap9.md)",
    "l2_size": "GAP9 datasheet: 1.5 MiB L2",
    "l2_reserved": "assumption: code, runtime data, FC stack and PMSIS driver state (checked against the measured "
                   "code size at generation)",
    "l3_size": "gvsoc gap9_v2 board HyperRAM 8 MiB",
    "clock_hz": "GAP9 datasheet: cluster up to 370 MHz",
    "compute_cores": "GAP9: 8 compute cores, cluster controller core 8",
    "dma": "MCHAN 17-bit lengths; commands kept below 64 KiB; 16 transfers in flight (assumption)",
    "stacks": "measured call chains (codegen/gap9/resources.py) plus margin",
    "l1_control": "the executor's control block (gf_tiled.c gf_ctl_t): 1528 B on rv32 with pulp-sdk's 8-byte DMA "
                  "command (measured: sizeof in the gap9-qemu build), plus margin for the GAP9 SDK's (assumption)",
    "tile_cost": "dma_bytes_per_cycle 8: assumption (MCHAN on a 64-bit AXI port, one 8 B beat per cluster cycle; "
                 "as the gap9 cost-model profile's L2 bandwidth); tile_fixed_cycles 2000: measured (under gap9-qemu, "
                 "resnet18 layers.2.add_quant.call2 at 16 and at 1 tile: 1.9 k instructions per tile on every compute "
                 "core, 6.3 k on core 0 which also programs that layer's 17 DMA commands per tile; instructions taken "
                 "as cycles, docs/gap9.md Policy); core_cycles_per_unit 4: assumption (portable "
                 "rv32imc kernels: the issue's gvsoc siracusa resnet18 1.89 MAC/cycle on 8 cores is 4.2 cycles per "
                 "MAC per core); dma_cmd_cycles 214 and dma_strided_cycles 4195: measured (gvsoc siracusa, SIMD "
                 "kernels, one-tile layers loading whole input planes instead of their crop: stride2_cnn relu2, 16 2-D "
                 "commands -> 1, 7403 cluster cycles fewer; tests/user_models/strided_crops.py relu2, one 2-D command "
                 "-> one 1-D, 4195 fewer; the two solved for 15 x dma_cmd_cycles + dma_strided_cycles and "
                 "dma_strided_cycles + 0; docs/gap9.md 'Whole input planes')",
    "fc_placement": "measured on gvsoc siracusa (Debian gcc 12 -O2, the SIMD kernels with .insn encodings): mlp, simple_cnn "
                    "and stride2_cnn with every linear layer on the FC and on the cluster (--fc-layers all / off; docs/gap9.md "
                    "'Small layers on the FC'): fits of the FC steps' cycles with the FC's instruction cache on and the one-row "
                    "SIMD linear kernel (fc_step_cycles 600, fc_cycles_per_mac 6.0 portable / 0.55 SIMD, fc_cycles_per_output 20 "
                    "portable; the SIMD kernel refit to its blocks of 8 with the clamp as p.clipu, s32-perf-fc: mlp relu1 "
                    "3726, relu2 2197, fc3 770 FC cycles, estimated 3749, 2174, 776 with fc_cycles_per_output_simd 14 per "
                    "requantized output and none per int32 output); a linear over several rows with gf_linear_rows_simd "
                    "fc_cycles_per_mac_rows_simd 3.0: transformer_simple / transformer_qmha / attention_core's "
                    "token linears on the FC, 8.7-9.7 k FC cycles for 1024-2048 MACs and 64-128 outputs) and of the "
                    "cluster layers' "
                    "(the busiest core's cycles plus core 0's bookkeeping: cluster_layer_cycles 3400, "
                    "cluster_cycles_per_mac 11.8 portable / 6.6 SIMD), the fixed FC cycles of a task "
                    "(cluster_task_fc_cycles 3500: 3.3-4.2 k, the task's FC cycles minus its layers'); "
                    "cluster_per_fc_cycle 1.0: assumption (gap9: the FC and the cluster at the same clock); GAP9 not "
                    "measured, siracusa's figures assumed",
}


def _sources(**over: str) -> dict:
    return {**GAP9_SOURCES, **over}


PLATFORMS: dict[str, Platform] = {p.name: p for p in (
    Platform(),
    Platform(
        name="siracusa", description="PULP Siracusa on gvsoc (FC + 8-core cluster + cluster controller, HyperRAM, "
                                     "hyperflash)",
        l1_size=256 * KIB, l2_size=2048 * KIB, l3_size=8 * 1024 * KIB, l3_kind="HyperRAM (gvsoc pulp_open_board)",
        clock_hz=50_000_000, gvsoc="siracusa", cluster_per_fc_cycle=1.44,
        sources=_sources(
            l1_size=f"{GVSOC} pulp/chips/siracusa/cluster.json l1/mapping/size 0x40000; {PULP_SDK} "
                    "kernel/chips/siracusa/link.ld L1 LENGTH 0x3fffc",
            l2_size=f"{PULP_SDK} kernel/chips/siracusa/link.ld L2 LENGTH 0x1ffffc (properties.h: L2_PRIV0 0x8000 + "
                    f"PRIV1 0x8000 + SHARED 0x1F0000; {GVSOC} soc.json l2 priv0 + priv1 + shared 0x1f0000)",
            l2_reserved="assumption: as gap9 (code, runtime data, FC stack, PMSIS driver state)",
            l3_size=f"{GVSOC} devices/hyperbus/hyperram.py default size 0x800000 (bound to hyper0_cs0 in "
                    "pulp/chips/siracusa/pulp_open_board.py; hyperflash 8 MiB on cs1)",
            clock_hz=f"{GVSOC} pulp/chips/siracusa/pulp_open.py soc and cluster clock domains 50000000",
            compute_cores=f"{PULP_SDK} archi/chips/siracusa/properties.h ARCHI_CLUSTER_NB_PE 8; {GVSOC} "
                          "cluster.json nb_pe 9, has_cc (core 8 the controller)",
            dma=f"{PULP_SDK} archi/dma/mchan_v7.h MCHAN_CMD_CMD_LEN_WIDTH 17 (MCHAN_VERSION 7); commands kept below "
                "64 KiB as on gap9; 16 in flight: assumption (as gap9)",
            fc_placement=GAP9_SOURCES["fc_placement"].replace(
                "cluster_per_fc_cycle 1.0: assumption (gap9: the FC and the cluster at the same clock); GAP9 not "
                "measured, siracusa's figures assumed",
                "cluster_per_fc_cycle 1.44: measured (a cluster task's cluster cycles per FC cycle, docs/gap9.md)"),
        )),
    Platform(
        name="pulp-open", description="PULP-open on gvsoc (FC + 8-core cluster + cluster controller; no working "
                                      "flash/L3 path)",
        l1_size=64 * KIB, l2_size=512 * KIB, l3_size=0, l3_kind="none: its flash/L3 path does not work on gvsoc",
        l3_works=False, clock_hz=50_000_000, gvsoc="pulp-open",
        gvsoc_refusal="the program loads its data through ReadFS, and pulp-sdk's pulp-open configuration has no "
                      "flash for it (its link fails on pi_partition_table_free; gvsoc's pulp-open flash/L3 path "
                      "does not work either); use --platform siracusa",
        sources=_sources(
            l1_size=f"{GVSOC} pulp/chips/pulp_open/cluster.json l1/mapping/size 0x10000; {PULP_SDK} "
                    "kernel/chips/pulp/link.ld L1 LENGTH 0xfffc",
            l2_size=f"{PULP_SDK} kernel/chips/pulp/link.ld L2 LENGTH 0x7fffc (properties.h: L2_PRIV0 0x8000 + "
                    f"PRIV1 0x8000 + SHARED 0x70000); {GVSOC} soc.json models 0x180000 shared, the SDK links 512 KiB",
            l2_reserved="assumption: as gap9 (code, runtime data, FC stack, PMSIS driver state)",
            l3_size="none: the issue's check found pulp-open's flash/L3 path on gvsoc not working; plans needing L3 "
                    "are refused",
            clock_hz=f"{GVSOC} pulp/chips/pulp_open/pulp_open.py soc and cluster clock domains 50000000",
            compute_cores=f"{GVSOC} pulp/chips/pulp_open/cluster.json nb_pe 9, has_cc (8 compute cores + "
                          "controller core 8)",
            dma=f"MCHAN v7 as siracusa ({PULP_SDK} archi/dma/mchan_v7.h 17-bit lengths); commands kept below 64 KiB; "
                "16 in flight: assumption",
        )),
)}

DEFAULT = PLATFORMS["gap9"]


def platform(name: str | None, flag: str = "--platform") -> Platform:
    """The entry of PLATFORMS called `name` (None: gap9); an unknown name is a user error listing them."""
    if name is None:
        return DEFAULT
    try:
        return PLATFORMS[name]
    except KeyError:
        raise GapforgeError(f"{flag} '{name}': unknown platform (choose from {', '.join(PLATFORMS)})") from None


def gvsoc_platforms() -> tuple[str, ...]:
    """The entries of PLATFORMS gvsoc models (run_generated.py --target gvsoc --platform)."""
    return tuple(p.name for p in PLATFORMS.values() if p.gvsoc)


def add_platform_flag(parser, applies: str = "gap9 target: the chip planned for") -> None:
    """The tools' ``--platform NAME`` (an unknown name: argparse's one-line error listing PLATFORMS, exit 2)."""
    parser.add_argument("--platform", choices=list(PLATFORMS), default=None, metavar="NAME",
                        help=f"{applies} (one of {', '.join(PLATFORMS)}; default gap9; codegen/gap9/hw.py "
                             "PLATFORMS holds each one's memories, cores and DMA limits)")


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


__all__ = ["PLATFORMS", "Budgets", "DEFAULT", "Platform", "add_platform_flag", "align", "gvsoc_platforms",
           "parse_bytes", "platform", "replace"]
