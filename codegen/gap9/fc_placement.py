"""Which steps run on the fabric controller instead of the cluster: small layers.

A cluster layer pays a fixed cost whatever its size (core 0's copy of its control block into L1, its
DMA set-up and waits, the barriers, its code fetched into the cluster's instruction cache), and every
cluster task one more (the FC binds and sends it, the controller allocates and forks). A layer of a
few thousand MACs, such as a classifier at the end of a network or the layers of a small MLP, is then
faster on the FC, whose kernel reads its operands in L2 directly. The operators that may run on the
FC say so in their declaration (gapforge/ops: ``Tiling.fc``, the kernel the FC calls with the SIMD
kernels).

The choice minimises the network's estimated FC cycles (one dynamic programme over the steps, since
moving a layer between two cluster layers splits their task in two), with the platform's figures
(codegen/gap9/hw.py, measured on gvsoc siracusa; their sources are in ``Platform.sources``):

* on the cluster: ``cluster_task_fc_cycles`` per task, plus per layer ``(cluster_layer_cycles +
  DMA bytes / dma_bytes_per_cycle + tiles x tile_fixed_cycles + the busiest core's MACs x
  cluster_cycles_per_mac[_simd]) / cluster_per_fc_cycle`` (the tiler's plan of its tiles);
* on the FC: ``fc_step_cycles + MACs x fc_cycles_per_mac[_simd | _rows_simd] + outputs x fc_cycles_per_output``
  (``_rows_simd``: a linear over several rows, gf_linear_rows_simd; the one-row SIMD kernel: requantized
  outputs x ``fc_cycles_per_output_simd``, int32 outputs nothing apart).

``--fc-layers auto`` (the default) applies it, ``off`` keeps every tiled step on the cluster, ``all``
moves every step that may run on the FC there (to compare). A step stays on the cluster when its weights are
packed below 8 bits (the FC kernels read int8 weights) or when the parameters do not fit L2
(codegen/gap9/program.py falls back then).
"""

from __future__ import annotations

from dataclasses import dataclass

from codegen.gap9.hw import Platform
from codegen.gap9.tiling import TilePlan, fc_plan, runs_nothing
from gapforge.ops import registry

MODES = ("auto", "off", "all")


@dataclass(frozen=True)
class Estimate:
    """Estimated FC cycles of one step on either side (plan.json layers[].placement)."""

    fc: int
    cluster: int  # as a cluster layer, without its task's fixed cost
    on_fc: bool

    def to_json(self, task_cycles: int) -> dict:
        return {"on": "fc" if self.on_fc else "cluster", "est_fc_cycles": self.fc,
                "est_cluster_fc_cycles": self.cluster, "cluster_task_fc_cycles": task_cycles}


def fc_kernel(step, call, simd: bool) -> str | None:
    """The kernel the FC calls for ``call`` (of ``step``), or None when the step cannot run on the FC."""
    rule = registry().ir_ops[step.kind].tiling
    if rule is None or not rule.fc or call.kernel not in rule.fc or call.w_bits != 8:
        return None
    return rule.fc[call.kernel] if simd else call.kernel


def cluster_fc_cycles(hw: Platform, tp: TilePlan, simd: bool) -> int:
    """Estimated FC cycles of a tiled step as a cluster layer (its task's fixed cost apart)."""
    per_unit = hw.core_cycles_per_unit
    if tp.tiling in ("conv", "linear", "gemm"):
        per_unit = hw.cluster_cycles_per_mac_simd if simd else hw.cluster_cycles_per_mac
    cycles = (hw.cluster_layer_cycles + tp.dma_total / hw.dma_bytes_per_cycle + tp.n_tiles * hw.tile_fixed_cycles
              + tp.busiest_units * per_unit)
    return round(cycles / hw.cluster_per_fc_cycle)


def fc_cycles(hw: Platform, call, simd: bool) -> int:
    """Estimated FC cycles of a step run by the FC's kernel over L2."""
    per_mac, per_out = hw.fc_cycles_per_mac, hw.fc_cycles_per_output
    int32 = call.out.dtype == "GF_S32"
    if simd:  # the one-row SIMD kernel, or the one of several rows (a linear over tokens), slower on the FC
        if call.kernel == "gf_linear_rows":
            per_mac = hw.fc_cycles_per_mac_rows_simd
        else:  # the one-row kernel: a requantized output's cost; an int32 sum's store is in the MACs' figure
            per_mac, per_out = hw.fc_cycles_per_mac_simd, 0.0 if int32 else hw.fc_cycles_per_output_simd
    outputs = call.out.bytes // (4 if int32 else 1)
    return round(hw.fc_step_cycles + call.macs * per_mac + outputs * per_out)


def choose(steps, calls, tiles: list[TilePlan], hw: Platform, simd: bool, mode: str = "auto") -> dict[int, Estimate]:
    """step index -> Estimate for every step that may run on either side (on_fc: the choice)."""
    est = {}
    for i, (step, call, tp) in enumerate(zip(steps, calls, tiles)):
        if tp.tiling != "fc" and not tp.fused and fc_kernel(step, call, simd) is not None:  # (fusion.py: fused stay)
            est[i] = (fc_cycles(hw, call, simd), cluster_fc_cycles(hw, tp, simd))
    if mode == "off" or not est:
        return {i: Estimate(f, c, False) for i, (f, c) in est.items()}
    if mode == "all":
        return {i: Estimate(f, c, True) for i, (f, c) in est.items()}
    # best[s]: (cycles, choices) of the steps so far ending with the last step that runs something on the cluster
    # (s = 1) or not (s = 0); a cluster layer after an FC step starts a task
    best = {0: (0, ()), 1: None}
    for i, (call, tp) in enumerate(zip(calls, tiles)):
        if runs_nothing(call, tp):
            continue
        options = []
        if tp.tiling == "fc":
            options.append(("fc", 0))
        else:
            options.append(("cluster", est[i][1] if i in est else 0))
            if i in est:
                options.append(("fc", est[i][0]))
        new = {0: None, 1: None}
        for state, prev in best.items():
            if prev is None:
                continue
            for side, cost in options:
                to = 1 if side == "cluster" else 0
                total = prev[0] + cost + (hw.cluster_task_fc_cycles if to == 1 and state == 0 else 0)
                choices = prev[1] + ((i, side == "fc"),) if i in est else prev[1]
                if new[to] is None or total < new[to][0]:
                    new[to] = (total, choices)
        best = new
    final = min((b for b in best.values() if b is not None), key=lambda b: b[0])
    chosen = dict(final[1])
    return {i: Estimate(f, c, chosen[i]) for i, (f, c) in est.items()}


def apply(steps, tiles: list[TilePlan], estimates: dict[int, Estimate]) -> list[TilePlan]:
    """The tile plans with the steps chosen for the FC as FC steps."""
    return [fc_plan(steps[i]) if i in estimates and estimates[i].on_fc else tp for i, tp in enumerate(tiles)]


def format_choices(gap9: dict) -> str:
    """plan_report.txt: each layer that may run on either side, where it runs and the two estimates."""
    rows = [r for r in gap9["layers"] if "placement" in r]
    mode = gap9.get("fc_layers", "auto")
    if not rows:
        return "fabric controller layers: none of the layers may run on the FC"
    task = rows[0]["placement"]["cluster_task_fc_cycles"]
    lines = [f"fabric controller layers (--fc-layers {mode}; estimated FC cycles, a cluster task {task} more; "
             "codegen/gap9/fc_placement.py):"]
    for r in rows:
        p = r["placement"]
        side = "FC" if p["on"] == "fc" else "cluster"
        lines.append(f"  {r['index']:>3} {r['name'][:34]:<34} on the {side:<7}  FC {p['est_fc_cycles']:>8}  "
                     f"cluster {p['est_cluster_fc_cycles']:>8}")
    return "\n".join(lines)
