"""The cost model: per node MACs, bytes per level, tiles, latency and energy on one profile.

Latency of a node, in cycles of the profile's clock:
  compute = calibrated instructions / instructions_per_cycle     (profiles with ``instructions``:
            rv32, gap9; coefficients fitted on measured counts, calibration/<model>.json)
          = MACs / (peak MACs per cycle x efficiency)            (the others; nodes without MACs
            count one operation per output element)
  memory  = sum over level boundaries of bytes / bandwidth of the farther level
            + transfers x its set-up cycles
  latency = max(compute, memory) when the strategy double-buffers, else compute + memory.
Energy (pJ) = MACs x pj_per_mac + instructions x pj_per_instruction + every byte moved across a
boundary x the farther level's pj_per_byte + the node's operand bytes x the nearest level's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from gapforge.characterize import tiling as tiling_mod
from gapforge.characterize.graph import Graph, Node
from gapforge.characterize.profiles import Profile

CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration"

# Features of the instruction model of a node (one coefficient each, fitted per kernel by
# tools/calibrate_cost_model.py). On the GAP9 cluster the work features are the busiest core's (its
# share of the output channels for layers with weights and pooling, gf_tiled.c; an even share of
# the elements otherwise), the per-tile and per-layer ones are not. slow_macs / ctail_macs: MACs on
# the convolution kernels' per-pixel path and in channel-tail blocks, pix_iters: the per-pixel path's
# loop iterations (kernel_paths.py: its cost per MAC falls with its block of channels); unpack: the
# sub-8-bit weights the GAP9 executor unpacks in L1; window: pooling window reads; rq_slow / rq_amb:
# outputs whose requantization takes the 64-bit path / the shortcut's ambiguous case (graph.requant_paths).
FEATURES = ("macs", "out_elems", "in_elems", "rows", "border", "tail", "tiles", "one", "slow_macs", "ctail_macs",
            "pix_iters", "unpack", "window", "rq_slow", "rq_amb")
PER_CORE = ("macs", "out_elems", "in_elems", "rows", "border", "tail", "slow_macs", "ctail_macs", "pix_iters", "unpack",
            "window", "rq_slow", "rq_amb")


# gap9-qemu only: rv32_work, the rv32 model's instructions for the busiest core's share (the cluster
# cores run the same portable kernels as the rv32 program): the per-core work the gap9 fit scales and
# corrects; task_first: 1 on the first layer of each cluster task (task_starts: the program's tasks,
# codegen/gap9/program.py cluster_tasks), which carries the FC's share of the whole task (setting up and
# sending it, waiting for it: codegen/results.py attributes it to the task's first step), the task's
# other layers only their cluster share.
GAP9_EXTRA = ("rv32_work", "task_first")
NOT_WORK = ("tiles", "one")  # per-layer and per-tile costs of the rv32 program: not part of a core's work
# The features the gap9-qemu fit uses (the others keep coefficient 0): the executor's own costs (per
# layer, per tile, unpacking, per task), rv32_work, and corrections on the convolution paths the
# per-core channel split reaches more than the rv32 programs do (a core with 1 of 8 channels runs
# channel tails and per-pixel blocks of 1 channel). Everything else of a core's work (outputs, inputs,
# rows, borders, pooling windows, requantization paths) is priced by rv32_work alone: fitting those
# again on the cluster counted them twice (gf_rq_amb at 132 instructions per output instead of ~10).
GAP9_FITTED = ("tiles", "one", "unpack", "macs", "slow_macs", "ctail_macs", "pix_iters", "rv32_work", "task_first")


def rv32_work(kernel: str, cls: str, x: list[float], kernels: dict | None = None) -> float:
    """The rv32 calibration's instructions for features ``x`` without its per-layer / per-tile terms."""
    if kernels is None:
        cal = calibration("rv32")
        kernels = cal["kernels"] if cal else {}
    entry = kernels.get(kernel) or kernels.get(cls) or kernels.get("class:elementwise")
    if entry is None:
        return 0.0
    return max(0.0, sum(c * v for c, v, f in zip(entry["coef"], x, FEATURES) if f not in NOT_WORK))


def gap9_extra(kernel: str, cls: str, x: list[float], task_first: bool, kernels: dict | None = None) -> list[float]:
    """The GAP9_EXTRA features of a layer with FEATURES ``x`` (``kernels``: the rv32 fit, default the stored one)."""
    return [rv32_work(kernel, cls, x, kernels), float(bool(task_first))]


def task_starts(graph: Graph, profile: Profile | None = None) -> frozenset[int]:
    """The indices of the nodes that start a GAP9 cluster task (GAP9_EXTRA task_first): the first step of every
    task of the GAP9 program (tiling.gap9_tasks: codegen's own task grouping, planned as the gap9 strategy plans
    the graph). A PyTorch graph (no plan; every node on the cluster) is cut every TASK_MAX_LAYERS nodes."""
    from codegen.gap9.program import TASK_MAX_LAYERS

    if graph.plan is None:
        return frozenset(range(0, len(graph.nodes), TASK_MAX_LAYERS))
    extra = graph.nodes[0].extra
    name = extra.get("platform") or (profile.platform if profile is not None else None)
    tasks = tiling_mod.gap9_tasks(graph, extra.get("l1_budget"), extra.get("l2_budget"), name)
    return frozenset(t[0] for t in tasks if t)


def kernel_class(node: Node) -> str:
    """A kernel family from the geometry alone (PyTorch graphs have no kernel names)."""
    if not node.weighted:
        return "class:elementwise"
    if node.groups > 1 and node.groups == node.n:
        return "class:depthwise"
    if node.m == 1:
        return "class:linear"
    return "class:conv"


def features(node: Node, tiles: int, cores: int = 1, gap9: dict | None = None) -> list[float]:
    """rows: output channels x output height (linear: outputs); border: outputs whose window
    touches the padding; tail: MACs of the pixels outside full 4-pixel row blocks; the path split of
    the busiest core's output channels (kernel_paths.conv_paths). ``gap9``: the GAP9 plan of the
    layer ({"packed": weights packed in L1, "resident": operands loaded once}): packed weights are
    unpacked by one core before the tile loop when resident (all of them), else by every core for
    its own channels in every tile (gf_tiled.c unpack_rows)."""
    from gapforge.characterize.kernel_paths import conv_paths

    c = max(1, cores)
    geom = node.extra.get("geom")
    channels = geom["o"] if geom else (node.n if node.weighted else 0)
    if c > 1 and channels and (node.weighted or geom):
        oc = -(-channels // c)  # the busiest core's output channels
        share = oc / channels
    else:
        oc, share = channels, 1.0 / c
    paths = conv_paths(node.extra.get("kernel", ""), geom, oc) if geom and node.weighted else {}
    unpack = 0
    if gap9 and gap9.get("packed") and node.weighted:
        unpack = node.k * node.n  # weight elements; "unpack" is a per-core feature (times share below):
        # resident weights are unpacked whole by one core (undo the share), else every tile unpacks its rows
        unpack = unpack / share if "w" in gap9.get("resident", ()) else unpack * tiles
    raw = {"macs": node.macs, "out_elems": node.out_elems, "in_elems": node.in_bytes,
           "rows": node.extra.get("rows", 0), "border": node.extra.get("border", 0),
           "tail": node.extra.get("tail", 0), "tiles": tiles, "one": 1, "window": node.extra.get("window", 0),
           "unpack": unpack, "rq_slow": node.extra.get("rq_slow", 0), "rq_amb": node.extra.get("rq_amb", 0)}
    vals = []
    for f in FEATURES:
        if f in ("slow_macs", "ctail_macs", "pix_iters"):
            vals.append(float(paths.get(f, 0.0)))  # already the busiest core's
        elif f in PER_CORE:
            vals.append(float(raw[f]) * share)
        else:
            vals.append(float(raw[f]))
    return vals


@cache
def calibration(model: str) -> dict | None:
    path = CALIBRATION_DIR / f"{model}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def predict_instructions(node: Node, model: str, tiles: int, cores: int = 1, gap9: dict | None = None,
                         task_first: bool = False) -> float | None:
    """Calibrated instructions of the node (gap9-qemu: its critical path on the cluster; ``task_first``:
    the node starts a cluster task, task_starts), or None without a calibration. Kernels not in the
    calibration use their geometry class's fit."""
    cal = calibration(model)
    if cal is None:
        return None
    kernels = cal["kernels"]
    key = node.extra.get("kernel") if node.extra.get("kernel") in kernels else kernel_class(node)
    coef = kernels.get(key) or kernels.get("class:elementwise")
    if coef is None:
        return None
    x = features(node, tiles, cores if model == "gap9-qemu" else 1, gap9)
    if model == "gap9-qemu":
        x = x + gap9_extra(node.extra.get("kernel", ""), kernel_class(node), x, task_first)
    return max(0.0, sum(c * v for c, v in zip(coef["coef"], x)))


@dataclass
class Estimate:
    node: str
    kind: str
    kernel: str
    macs: int
    footprint_bytes: int
    tiles: int
    regime: str
    traffic: dict
    instructions: float | None
    compute_cycles: float
    memory_cycles: float
    latency_s: float
    energy_j: float

    def row(self, profile: str) -> dict:
        return {"profile": profile, "node": self.node, "kind": self.kind, "kernel": self.kernel, "macs": self.macs,
                "footprint_bytes": self.footprint_bytes, "tiles": self.tiles, "regime": self.regime,
                **{f"bytes_{k}": v for k, v in sorted(self.traffic.items())},
                "instructions": "" if self.instructions is None else round(self.instructions),
                "compute_cycles": round(self.compute_cycles), "memory_cycles": round(self.memory_cycles),
                "latency_s": f"{self.latency_s:.6g}", "energy_j": f"{self.energy_j:.6g}"}


def _level_of(profile: Profile, name: str):
    for lv in profile.levels:
        if lv.name.lower() == name:
            return lv
    return None


def estimate_node(graph: Graph, i: int, profile: Profile, starts: frozenset[int] | None = None) -> Estimate:
    """``starts``: task_starts(graph, profile) (None: computed here when the profile needs it)."""
    node = graph.nodes[i]
    t = tiling_mod.STRATEGIES[profile.strategy](graph, i, profile)
    ins = profile.instructions
    instr = None
    if ins is not None and not (ins["model"] == "gap9-qemu" and t.extra.get("tiling") == "fc"):
        gap9 = ins["model"] == "gap9-qemu"
        if gap9 and starts is None:
            starts = task_starts(graph, profile)
        instr = predict_instructions(node, ins["model"], t.tiles, t.extra.get("cores", profile.units),
                                     t.extra if gap9 and "resident" in t.extra else None, gap9 and i in starts)
    if instr is not None:
        compute = instr / ins["instructions_per_cycle"]["value"]
    else:
        work = node.macs if node.macs else node.out_elems
        compute = work / (profile.peak_macs_per_cycle * profile.efficiency)
    memory = 0.0
    energy = node.macs * profile.pj_per_mac + node.footprint * profile.levels[0].pj_per_byte
    if instr is not None:
        energy += instr * (ins.get("pj_per_instruction", {}).get("value", 0.0))
    for key, nbytes in t.traffic.items():
        src, _, dst = key.partition("_to_")
        a, b = _level_of(profile, src), _level_of(profile, dst)
        if a is None or b is None:
            continue  # flat memory: loads and stores are in the instruction count
        far = a if profile.levels.index(a) > profile.levels.index(b) else b
        if nbytes:
            memory += nbytes / far.bandwidth
            energy += nbytes * far.pj_per_byte
    far_levels = [lv for lv in profile.levels[1:]]
    if t.transfers and far_levels:
        memory += t.transfers * far_levels[0].setup_cycles
    latency_cycles = max(compute, memory) if profile.double_buffered else compute + memory
    return Estimate(node.name, node.kind, node.extra.get("kernel", kernel_class(node)), node.macs, node.footprint,
                    t.tiles, t.regime, t.traffic, instr, compute, memory, latency_cycles / profile.clock_hz,
                    energy * 1e-12)


def estimate(graph: Graph, profile: Profile) -> list[Estimate]:
    ins = profile.instructions
    starts = task_starts(graph, profile) if ins is not None and ins["model"] == "gap9-qemu" else frozenset()
    return [estimate_node(graph, i, profile, starts) for i in range(len(graph.nodes))]


def totals(ests: list[Estimate]) -> dict:
    traffic: dict[str, int] = {}
    for e in ests:
        for k, v in e.traffic.items():
            traffic[k] = traffic.get(k, 0) + v
    regimes = [e.regime for e in ests if e.macs]
    order = ["flat", "FC", "L1", "on-chip", "L1-tiled", "tiled", "L3-weights", "off-chip-streaming", "L3-streaming"]
    worst = max(regimes, key=lambda r: order.index(r) if r in order else -1) if regimes else ""
    return {"macs": sum(e.macs for e in ests), "tiles": sum(e.tiles for e in ests),
            "footprint_bytes": max((e.footprint_bytes for e in ests), default=0), "regime": worst,
            "instructions": round(sum(e.instructions for e in ests if e.instructions is not None))
            if any(e.instructions is not None for e in ests) else "",
            "latency_s": sum(e.latency_s for e in ests), "energy_j": sum(e.energy_j for e in ests),
            **{f"bytes_{k}": v for k, v in sorted(traffic.items())}}
