"""L2 / L3 placement of parameters and activation buffers, and the per-layer plan report.

Rule (documented objective): keep everything in L2 if it fits the L2 budget; otherwise move the
parameter blob to L3 (weights are streamed tile by tile through L2 bounce buffers); if that is
not enough, move activation buffers to L3, largest first, until the L2 arena, the L2 parameters,
the FC scratch buffer and the largest per-layer set of bounce buffers fit. Buffers that the
fabric controller touches directly (concat and permute operands) stay in L2. If the bounce buffers
are then what does not fit (an L3 operand is staged in L2 tile by tile, so a layer's bounce set
follows its L1 tiles), the layer with the largest bounce set is re-tiled for a smaller L1 budget
(three quarters of its tiles' L1 bytes, repeatedly) until L2 fits or its tiles cannot shrink. L2
and L3 each get their own static arena from the same liveness planner as the other targets. The output of
a conv whose max pool runs fused into it (codegen/gap9/fusion.py) is never written outside the fused
layer's L1: it gets no arena slot (level ``L1``, in neither arena).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from codegen.gap9.hw import Budgets, align
from codegen.gap9.tiling import TilePlan, TilingError
from codegen.memory import Buffer, MemoryPlan, plan_arena
from codegen.program import Program
from gapforge.errors import GapforgeError
from gapforge.ops import registry
from gapforge.plan import Plan

L1, L2, L3 = "L1", "L2", "L3"


class PlacementError(GapforgeError):
    pass


@dataclass
class Placement:
    params: str
    buffer_level: dict[str, str]  # buffer name -> L2/L3
    l2: MemoryPlan
    l3: MemoryPlan
    bounce: dict[int, int]  # step index -> L2 bounce bytes
    budgets: Budgets
    l2_total: int  # peak L2 use: arena + params + scratch + largest bounce set
    l3_total: int
    layers: list[dict] = field(default_factory=list)

    def level_of(self, program: Program, tensor: str) -> str:
        return self.buffer_level[program.memory.tensor_buffer[tensor]]

    def offset_of(self, program: Program, tensor: str) -> int:
        """Its offset in its arena; 0 for a fused conv's output (level L1: no arena slot, never read or written)."""
        base = program.memory.tensor_buffer[tensor]
        if self.buffer_level[base] == L1:
            return 0
        return (self.l2 if self.buffer_level[base] == L2 else self.l3).buffers[base].offset


def _operands(call, tp: TilePlan | None = None, program: Program | None = None) -> dict[str, str]:
    """The tensors of a layer's operands; a fused pool's layer (codegen/gap9/fusion.py) reads its conv's input."""
    ops = {"out": call.name}
    if tp is not None and "conv" in tp.fused:
        ops["in"] = program.calls[tp.fused["conv"]].inputs[0].name
        return ops
    if call.inputs:
        ops["in"] = call.inputs[0].name
    for key, inp in zip(("in2", "in3", "in4"), call.inputs[1:]):
        ops[key] = inp.name
    return ops


def l1_only(program: Program, tiles: list[TilePlan]) -> set[str]:
    """The buffers no arena holds: the output of each conv whose max pool runs fused into it (codegen/gap9/fusion.py;
    TilePlan.fused "into"): the fused layer computes it tile by tile into L1 (GF_OP_MID) and stores the pooled tile
    only, so it is never written in L2 or L3. Only a buffer of that one tensor (no view aliases it)."""
    mem = program.memory
    out = set()
    for call, tp in zip(program.calls, tiles):
        if "into" not in tp.fused:
            continue
        base = mem.tensor_buffer[call.name]
        if base == call.name and not mem.buffers[base].aliases:
            out.add(base)
    return out


def _bounce(tp: TilePlan, levels: dict[str, str], params_level: str) -> int:
    """L2 bounce bytes of one layer: nbuf x buffer for every operand that lives in L3."""
    if tp.tiling == "fc":
        return 0
    total = 0
    nb = 2 if tp.double_buffered else 1
    for key, size in tp.buffers.items():
        if not size or (key == "w" and tp.buffers.get("wp")):  # packed: only wp is transferred
            continue
        lvl = params_level if key in ("w", "wp", "p") else levels.get(key, L2)
        if lvl == L3:
            total += (1 if key in tp.resident else nb) * align(size)
    return total


def _arena(buffers: list[Buffer], views: dict[str, str], hold: dict[str, int]) -> MemoryPlan:
    copies = [Buffer(b.name, b.size, b.first, max(b.last, hold.get(b.name, b.last)), aliases=list(b.aliases))
              for b in buffers]
    keep = {b.name for b in buffers}
    return plan_arena(copies, {t: base for t, base in views.items() if base in keep})


def place(program: Program, plan: Plan, tiles: list[TilePlan], budgets: Budgets,
          retile: Callable[[int, int], TilePlan] | None = None, hold: dict[str, int] | None = None) -> Placement:
    """``retile(i, l1)``: the tile plan of step ``i`` for an L1 budget of ``l1`` bytes (raises TilingError
    when none fits); with it, layers whose bounce buffers do not fit L2 get smaller tiles (``tiles`` is
    updated in place). ``hold``: buffer -> a step it stays alive until (at least), beyond its last reader."""
    hold = hold or {}
    mem = program.memory
    buffers = list(mem.buffers.values())
    views = {t: b for t, b in mem.tensor_buffer.items() if t != b}
    pinned = set()
    for call, step, tp in zip(program.calls, plan.steps, tiles):
        # the FC's own steps read and write their operands in place (concat, permute, and the small layers the
        # cost model moved to the FC: codegen/gap9/fc_placement.py)
        if registry().ir_ops[step.kind].fc_direct or (tp.tiling == "fc" and call.kernel and not tp.fused):
            pinned.update(mem.tensor_buffer[t] for t in [call.name, *[i.name for i in call.inputs]])
    in_l1 = l1_only(program, tiles)
    pinned |= in_l1
    params_bytes = len(program.params)
    scratch = budgets.hw.l2_scratch
    l3_set: set[str] = set()
    params_level = L2

    def evaluate():
        levels = {b.name: (L1 if b.name in in_l1 else L3 if b.name in l3_set else L2) for b in buffers}
        l2_plan = _arena([b for b in buffers if levels[b.name] == L2], views, hold)
        l3_plan = _arena([b for b in buffers if levels[b.name] == L3], views, hold)
        bounce = {}
        for call, tp in zip(program.calls, tiles):
            ops = {k: levels[mem.tensor_buffer[t]] for k, t in _operands(call, tp, program).items()}
            bounce[call.index] = _bounce(tp, ops, params_level)
        l2_total = l2_plan.arena_size + (align(params_bytes) if params_level == L2 else 0) + scratch + \
            max(bounce.values(), default=0)
        return levels, l2_plan, l3_plan, bounce, l2_total

    levels, l2_plan, l3_plan, bounce, l2_total = evaluate()
    if l2_total > budgets.l2:
        params_level = L3
        levels, l2_plan, l3_plan, bounce, l2_total = evaluate()
    for b in sorted((b for b in buffers if b.name not in pinned), key=lambda b: -b.size):
        if l2_total <= budgets.l2:
            break
        l3_set.add(b.name)
        levels, l2_plan, l3_plan, bounce, l2_total = evaluate()
    pos = {call.index: i for i, call in enumerate(program.calls)}
    while l2_total > budgets.l2 and retile is not None and max(bounce.values(), default=0) > 0:
        worst = max(bounce, key=lambda k: bounce[k])
        i = pos[worst]
        try:
            smaller = retile(i, tiles[i].l1_bytes * 3 // 4)
        except TilingError:
            break
        ops = {k: levels[mem.tensor_buffer[t]] for k, t in _operands(program.calls[i], smaller, program).items()}
        if _bounce(smaller, ops, params_level) >= bounce[worst]:
            break
        tiles[i] = smaller
        levels, l2_plan, l3_plan, bounce, l2_total = evaluate()
    if l2_total > budgets.l2:
        raise PlacementError(f"the network needs {l2_total} bytes of L2 even with the parameters and every "
                             f"movable activation in L3 (budget {budgets.l2})",
                             hint="raise --l2-budget or reduce the largest concat/permute tensors")
    l3_total = l3_plan.arena_size + (align(params_bytes) if params_level == L3 else 0)
    if l3_total and not budgets.hw.l3_works:
        raise PlacementError(f"platform {budgets.hw.name}: the plan needs {l3_total} bytes of L3 "
                             f"({'parameters' if params_level == L3 else 'activations'} do not fit the {budgets.l2} B "
                             f"L2 budget), and {budgets.hw.name} has no working L3 ({budgets.hw.l3_kind})",
                             hint="reduce the model, raise --l2-budget, or choose another --platform")
    if l3_total > budgets.l3:
        raise PlacementError(f"L3 needs {l3_total} bytes ({align(params_bytes)} of parameters), more than the "
                             f"{budgets.l3} bytes of L3",
                             hint="sub-8-bit weights are stored one per byte (no packing yet); "
                                  "reduce the model or its activations")
    p = Placement(params_level, levels, l2_plan, l3_plan, bounce, budgets, l2_total, l3_total)
    p.layers = report_rows(program, plan, tiles, p)
    return p


def report_rows(program: Program, plan: Plan, tiles: list[TilePlan], p: Placement) -> list[dict]:
    rows = []
    base_l2 = p.l2.arena_size + (align(len(program.params)) if p.params == L2 else 0) + p.budgets.hw.l2_scratch
    for call, step, tp in zip(program.calls, plan.steps, tiles):
        ops = _operands(call, tp, program)
        levels = {k: p.level_of(program, t) for k, t in ops.items()}
        dma = {"l3_to_l2": 0, "l2_to_l1": 0, "l1_to_l2": 0, "l2_to_l3": 0}
        if tp.tiling != "fc":
            for key, nbytes in tp.dma.items():
                if key == "out":
                    dma["l1_to_l2"] += nbytes
                    if levels["out"] == L3:
                        dma["l2_to_l3"] += nbytes
                    continue
                dma["l2_to_l1"] += nbytes
                src = p.params if key in ("w", "p") else levels.get(key, L2)
                if src == L3:
                    dma["l3_to_l2"] += nbytes
        rows.append({
            "index": call.index, "name": call.name, "kind": call.kind, "tiling": tp.tiling,
            "levels": {**levels, **({"params": p.params} if tp.tiling in ("conv", "linear", "gemm") or step.requant is not None
                                    or step.params is not None or call.uses_params
                                    else {})},
            "tile": tp.tile, "tile_counts": tp.counts, "tiles": tp.n_tiles, "cores": tp.cores,
            **({"in_plane": True} if tp.in_plane else {}),  # whole input planes loaded (tiling.TilePlan.in_plane)
            "est_cycles": tp.cost_cycles,  # the tiler's objective (tiling.tile_cost)
            "l1_bytes": tp.l1_bytes, "l1_buffers": tp.buffers, "resident": tp.resident,
            "dma_bytes": dma, "l2_peak_bytes": base_l2 + p.bounce[call.index],
            "l3_peak_bytes": p.l3_total,
        })
    return rows


def format_report(placement: Placement, network: str) -> str:
    b = placement.budgets
    lines = [f"{b.hw.name} plan for '{network}': L1 budget {b.l1} B, L2 budget {b.l2} B, L3 {b.l3} B; parameters in "
             f"{placement.params}; L2 arena {placement.l2.arena_size} B, L3 arena {placement.l3.arena_size} B; "
             f"peak L2 {placement.l2_total} B, L3 {placement.l3_total} B",
             f"platform {b.hw.name} (codegen/gap9/hw.py): {b.hw.description}; L1 {b.hw.l1_size} B, L2 {b.hw.l2_size} B, "
             f"L3 {b.hw.l3_size} B, {b.hw.compute_cores} compute cores at {b.hw.clock_hz / 1e6:g} MHz",
             f"{'#':>3} {'layer':<34} {'kind':<16} {'in':<3} {'out':<3} {'par':<3} {'tile':<16} {'tiles':>6} "
             f"{'L1 B':>7} {'L3->L2':>9} {'L2->L1':>9} {'L1->L2':>9} {'L2->L3':>9}"]
    for r in placement.layers:
        t = r["tile"]
        tile = "x".join(str(v) for v in t.values()) if t else "-"
        lv = r["levels"]
        d = r["dma_bytes"]
        fused = (f"  (fused into {r['fused_into']}: its output stays in L1)" if "fused_into" in r else
                 f"  (with the conv {r['fused_conv']}: the conv's tiles, pooled in L1)" if "fused_conv" in r else "")
        fused += "  (whole input planes)" if r.get("in_plane") else ""
        lines.append(f"{r['index']:>3} {r['name'][:34]:<34} {r['kind'][:16]:<16} {lv.get('in', '-'):<3} "
                     f"{lv.get('out', '-'):<3} {lv.get('params', '-'):<3} {tile:<16} {r['tiles']:>6} "
                     f"{r['l1_bytes']:>7} {d['l3_to_l2']:>9} {d['l2_to_l1']:>9} {d['l1_to_l2']:>9} {d['l2_to_l3']:>9}"
                     + fused)
    return "\n".join(lines)
