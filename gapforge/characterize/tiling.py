"""Tiling strategies as plug-ins: how a machine cuts a node into tiles and what it moves between levels.

A strategy is a function ``(graph, node index, profile) -> Tiles`` registered under a name with
:func:`strategy`; a profile names its strategy (``tiling.strategy``). The traffic is keyed
``<from>_to_<to>`` with the profile's level names in lower case (GAP9: ``l3_to_l2``, ``l2_to_l1``,
``l1_to_l2``, ``l2_to_l3``, the names the emulator's counters use).

* ``gap9``: gapforge's own GAP9 tiler and placement (codegen/gap9: tile_step, place), the ones the
  code generator uses, on graphs from network_info.json; so tiles, L1 buffers and DMA bytes equal
  what gap9-emu measures. The program is planned without max-pool fusion (GAP9_FUSE_POOLS "off":
  every step its own layer, as the calibration samples were measured): the estimate is of the
  unfused program; the saving of fusing a max pool into its conv (codegen/gap9/fusion.py) is not
  modelled. For graphs without the IR (a PyTorch model), the same double-buffered
  blocking as ``cpu-cache-blocked`` with GAP9's L1 budget, parameters in L2 if they all fit its
  budget, else in L3.
* ``cpu-cache-blocked``: blocks of output channels x output positions (and of the reduction when a
  single row does not fit) whose working set, double-buffered, fits ``tile_bytes``; weights read once,
  inputs once per block of output channels.
* ``gpu-shared-memory``: square output tiles staged in shared memory (``tile_bytes``, double
  buffered): inputs read once per tile column, weights once per tile row.
* ``tpu-weight-stationary``: ``array`` x ``array`` weight tiles held in the systolic array, every
  weight loaded once; activations streamed once per tile of output channels; partial sums spilled
  when the accumulators (on-chip memory) cannot hold a full column of outputs.
* ``kpu-wavefront``: the domain-flow schedule streams the activations through the fabric once when
  the wavefront working set (weights + one row of inputs and outputs) fits; otherwise the weights
  are partitioned and the activations re-streamed once per partition.
* ``none``: flat memory (rv32 under QEMU): one tile, every operand read or written once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

STRATEGIES: dict[str, Callable] = {}


def strategy(name: str):
    def register(fn):
        STRATEGIES[name] = fn
        return fn

    return register


@dataclass
class Tiles:
    tiles: int
    traffic: dict[str, int]  # bytes moved between levels, "<from>_to_<to>"
    regime: str
    buffer_bytes: int = 0  # bytes of the nearest level the node's tiles occupy
    transfers: int = 0  # DMA commands / tile transfers (each pays the level's set-up cost)
    extra: dict = field(default_factory=dict)


def _key(a: str, b: str) -> str:
    return f"{a.lower()}_to_{b.lower()}"


def _blocked(node, budget: float, double: bool) -> tuple[int, int, int, int, float]:
    """Blocking of the node's (M, K, N) product so that one set of tiles (x2 if double buffered)
    fits ``budget`` bytes: (tm, tk, tn, tiles, input re-reads)."""
    m, k, n = node.m, node.k, node.n
    e_in = node.in_bytes / max(1, m * k) if node.weighted else node.in_bytes / max(1, m)
    e_w = node.w_bytes / max(1, k * n) if node.weighted else 0.0
    e_out = node.out_bytes / max(1, m * n)
    cap = budget / (2 if double else 1)

    def size(tm, tk, tn):
        return tm * tk * e_in + tk * tn * e_w + tm * tn * e_out

    if size(m, k, n) <= cap:
        return m, k, n, 1, 1.0
    best = None
    for tk in (k, *[k // d for d in (2, 4, 8, 16, 32, 64) if k // d >= 1]):
        for tn in sorted({n, *[max(1, n // d) for d in (2, 4, 8, 16, 32, 64, 128, 256)]}, reverse=True):
            tm = m
            while tm > 1 and size(tm, tk, tn) > cap:
                tm = max(1, tm // 2)
            if size(tm, tk, tn) > cap:
                continue
            tiles = math.ceil(m / tm) * math.ceil(n / tn) * math.ceil(k / tk)
            rereads = math.ceil(n / tn) if tm < m else 1
            cost = node.in_bytes * rereads + node.w_bytes * (math.ceil(m / tm) if tk < k else 1) + tiles
            if best is None or cost < best[0]:
                best = (cost, tm, tk, tn, tiles, rereads)
        if best is not None:
            break
    if best is None:  # not even one element per operand fits: one tile per output element
        return 1, 1, 1, m * n * k, float(n)
    return best[1], best[2], best[3], best[4], float(best[5])


def _two_level(node, profile, budget: float, double: bool, *, in_reads: float = 1.0, w_reads: float = 1.0,
               out_writes: float = 1.0, tiles: int = 1) -> Tiles:
    near, far = profile.levels[0], profile.levels[-1]
    fits = node.footprint <= near.bytes
    traffic = {_key(far.name, near.name): int(node.in_bytes * in_reads + node.w_bytes * w_reads),
               _key(near.name, far.name): int(node.out_bytes * out_writes)}
    regime = "on-chip" if tiles == 1 and fits else ("tiled" if fits else "off-chip-streaming")
    return Tiles(tiles, traffic, regime, int(min(node.footprint, budget)), tiles * 3)


@strategy("none")
def flat(graph, i, profile) -> Tiles:
    node = graph.nodes[i]
    ram = profile.levels[0].name.lower()
    return Tiles(1, {f"{ram}_read": node.in_bytes + node.w_bytes, f"{ram}_write": node.out_bytes}, "flat",
                 node.footprint, 0)


@strategy("cpu-cache-blocked")
def cpu_cache_blocked(graph, i, profile) -> Tiles:
    node = graph.nodes[i]
    budget = profile.param("tile_bytes")
    tm, tk, tn, tiles, rereads = _blocked(node, budget, profile.double_buffered)
    return _two_level(node, profile, budget, profile.double_buffered, in_reads=rereads,
                      w_reads=math.ceil(node.m / tm) if tk < node.k else 1,
                      out_writes=(2 * math.ceil(node.k / tk) - 1) if tk < node.k else 1, tiles=tiles)


@strategy("gpu-shared-memory")
def gpu_shared_memory(graph, i, profile) -> Tiles:
    node = graph.nodes[i]
    smem = profile.param("tile_bytes") / (2 if profile.double_buffered else 1)
    n = node.n
    e_in = node.in_bytes / max(1, node.m * node.k) if node.weighted else 1.0
    t = 1
    while t * 2 <= max(node.m, n) and 2 * (t * 2) * 32 * e_in + (t * 2) ** 2 * 4 <= smem:
        t *= 2  # square output tile t x t (int32 accumulators) with K slices of 32
    tiles = math.ceil(node.m / t) * math.ceil(n / t)
    return _two_level(node, profile, smem, profile.double_buffered, in_reads=math.ceil(n / t) if node.weighted else 1,
                      w_reads=math.ceil(node.m / t) if node.weighted else 1, tiles=tiles)


@strategy("tpu-weight-stationary")
def tpu_weight_stationary(graph, i, profile) -> Tiles:
    node = graph.nodes[i]
    s = int(profile.param("array"))
    if not node.weighted:
        return _two_level(node, profile, profile.levels[0].bytes, False)
    n = node.n
    col_tiles, k_tiles = math.ceil(n / s), math.ceil(node.k / s)
    acc_fits = node.m * s * 4 <= profile.levels[0].bytes
    return _two_level(node, profile, s * s, False, in_reads=col_tiles, w_reads=1,
                      out_writes=1 if acc_fits else 2 * k_tiles - 1, tiles=col_tiles * k_tiles)


@strategy("kpu-wavefront")
def kpu_wavefront(graph, i, profile) -> Tiles:
    node = graph.nodes[i]
    limit = min(profile.param("wavefront_bytes"), profile.levels[0].bytes)
    row = (node.in_bytes + node.out_bytes) / max(1, node.m)
    wave = node.w_bytes + row
    parts = max(1, math.ceil(wave / limit))
    return _two_level(node, profile, limit, profile.double_buffered, in_reads=parts, tiles=parts)


# -- GAP9: the real tiler on network_info graphs -------------------------------------------------------

# build_gap9_program's fuse_pools for the characterization: "off", every step its own cluster layer. The
# calibration samples were measured on unfused programs and the per-layer model has no fused conv+pool layer,
# so the estimate is of the unfused program (the saving of pool fusion is not modelled).
GAP9_FUSE_POOLS = "off"


def _gap9_plan(graph, l1_budget: int | None, l2_budget: int | None, platform: str | None) -> tuple[list, list]:
    """(plan.json gap9.layers rows, the cluster tasks' step lists: plan.json gap9.tasks steps) of a network_info
    graph from codegen's build_gap9_program with fuse_pools=GAP9_FUSE_POOLS (the unfused program; cached on
    the graph)."""
    from codegen.gap9.hw import platform as hw_platform

    hw = hw_platform(platform)
    key = ("gap9_plan", hw.name, l1_budget, l2_budget, GAP9_FUSE_POOLS)
    if key not in graph.nodes[0].extra:
        from codegen.gap9.program import build_gap9_program
        from gapforge.characterize.graph import case_dir

        case, tmp = case_dir(graph)
        try:
            g9 = build_gap9_program(graph.plan, case, l1_budget, l2_budget, hw=hw, fuse_pools=GAP9_FUSE_POOLS)
        finally:
            if tmp is not None:
                tmp.cleanup()
        graph.nodes[0].extra[key] = (g9.placement.layers, [list(t) for t in g9.tasks])
    return graph.nodes[0].extra[key]


def gap9_layers(graph, l1_budget: int | None = None, l2_budget: int | None = None,
                platform: str | None = None) -> list[dict]:
    """The GAP9 plan's per-step rows (plan.json gap9.layers) of a network_info graph, planned for
    the hardware-model entry ``platform`` (codegen/gap9/hw.py PLATFORMS; None: gap9)."""
    return _gap9_plan(graph, l1_budget, l2_budget, platform)[0]


def gap9_tasks(graph, l1_budget: int | None = None, l2_budget: int | None = None,
               platform: str | None = None) -> list[list[int]]:
    """The GAP9 program's cluster tasks (plan.json gap9.tasks: the step indices of each, codegen/gap9/program.py
    cluster_tasks) of a network_info graph, as gap9_layers plans it."""
    return _gap9_plan(graph, l1_budget, l2_budget, platform)[1]


def gap9_regime(row: dict) -> str:
    levels = row["levels"]
    if "L3" in (levels.get("in"), levels.get("out"), levels.get("in2")):
        return "L3-streaming"
    if levels.get("params") == "L3":
        return "L3-weights"
    if row["tiling"] == "fc":
        return "FC"
    return "L1" if row["tiles"] <= 1 else "L1-tiled"


@strategy("gap9")
def gap9(graph, i, profile) -> Tiles:
    from codegen.gap9.hw import platform as hw_platform

    # the graph's override (tools/estimate.py, tools/sweep.py --platform), else the profile's entry
    name = graph.nodes[0].extra.get("platform") or (profile.platform if profile is not None else None)
    if graph.plan is None:  # a PyTorch graph: analytic double-buffered blocking with the platform's budgets
        hw = hw_platform(name)
        node = graph.nodes[i]
        tm, tk, tn, tiles, rereads = _blocked(node, hw.l1_budget, True)
        params_l3 = sum(n.w_bytes for n in graph.nodes) > hw.l2_budget
        w = int(node.w_bytes * (math.ceil(node.m / tm) if tk < node.k else 1))
        traffic = {"l2_to_l1": int(node.in_bytes * rereads) + w, "l1_to_l2": node.out_bytes,
                   "l3_to_l2": w if params_l3 else 0, "l2_to_l3": 0}
        regime = "L3-weights" if params_l3 else ("L1" if tiles == 1 else "L1-tiled")
        return Tiles(tiles, traffic, regime, int(min(node.footprint, hw.l1_budget)), tiles * 3)
    rows = gap9_layers(graph, graph.nodes[0].extra.get("l1_budget"), graph.nodes[0].extra.get("l2_budget"), name)
    row = rows[i]
    buffers = row["l1_buffers"]
    resident = set(row["resident"])
    per_tile = sum(1 for k, v in buffers.items() if v and k not in resident)
    transfers = 0 if row["tiling"] == "fc" else row["tiles"] * per_tile + len(resident)
    return Tiles(row["tiles"], dict(row["dma_bytes"]), gap9_regime(row), row["l1_bytes"], transfers,
                 extra={"cores": row["cores"], "tiling": row["tiling"], "levels": row["levels"],
                        "resident": sorted(resident), "packed": bool(buffers.get("wp"))})
