"""GAP9 program: the generic program plus tiling, placement and one layer descriptor per tiled step."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from codegen.gap9 import fc_placement, fusion
from codegen.gap9.hw import DEFAULT, Budgets, Platform, align
from codegen.gap9.placement import L2, L3, Placement, PlacementError, place
from codegen.gap9.tiling import (
    TilePlan,
    conv_geometry,
    eltwise_layout,
    fc_plan,
    rows_geometry,
    rows_layout,
    runs_nothing,
    tile_conv,
    tile_step,
)
from codegen.program import Program, build_program
from gapforge.errors import GapforgeError
from gapforge.plan import Plan

TILING_ENUM = {"conv": "GF_TILING_CONV", "linear": "GF_TILING_LINEAR", "eltwise": "GF_TILING_ELTWISE",
               "rows": "GF_TILING_ROWS", "gemm": "GF_TILING_GEMM", "scan": "GF_TILING_SCAN"}
FAULTS = {"none": 0, "no-barrier": 1, "no-dma-wait": 2}
TASK_MAX_LAYERS = 16  # cluster layers per task at most: GF_TASK_MAX_LAYERS of codegen/runtime/gap9/gf_gap9.h


@dataclass(frozen=True)
class LayerRec:
    """One gf_layer_t initializer (field order = gf_gap9.h)."""

    name: str
    tiling: str
    compute: str  # tile kernel (gf_tile_kernels.c): gf_tile_<kernel>
    coupled: int
    shape: tuple[int, ...]
    in_t: str
    in2_t: str
    out_t: str
    w_off: int
    b_off: int
    m_off: int
    sh_off: int
    o_off: int
    rq_sources: int
    rq_channels: int
    zp: int
    lo: int
    hi: int
    shift: int
    floor_rounding: int
    k: int
    o: int
    n: int
    inner: int
    chans: int
    tile_co: int
    tile_oh: int
    tile_ow: int
    tile_planes: int
    tile_elems: int
    buf_in: int
    buf_in2: int
    buf_w: int
    buf_p: int
    buf_out: int
    buf_wp: int
    w_bits: int
    w_row_bytes: int
    w_resident: int
    p_resident: int
    in_resident: int
    cores: int
    single_buffer: int
    fault: int
    t_off: int
    t_bytes: int
    t_chans: int
    in2_resident: int
    mp: tuple  # gf_mul_shape_t (mul)
    aux_off: int  # rows tiling: the step's parameter block (region <step>.p), -1 = none
    aux_bytes: int
    tile_rows: int = 0  # gemm tiling: output rows per tile (groups in chans, rows per group in n)
    zp_a: int = 0  # gemm tiling (matmul): zero points of the two inputs
    zp_b: int = 0
    outer: int = 1  # eltwise tiling: the output is [outer][chans][inner]
    in3_t: str = "GF_S8"  # scan tiling: the third and fourth inputs (B, C), resident in L1
    in4_t: str = "GF_S8"
    buf_in3: int = 0
    buf_in4: int = 0
    buf_col: int = 0  # SIMD kernels: bytes of each compute core's work buffer (tiling.simd_col_bytes)
    pool_kh: int = 0  # a max pool fused behind the conv (codegen/gap9/fusion.py): its window (0: none)
    pool_kw: int = 0
    buf_mid: int = 0  # its conv tile in L1 (the pooled tile is buf_out)
    in_plane: int = 0  # conv tiling: the tile loads whole input planes, not its crop (tiling.TilePlan.in_plane)

    def initializer(self) -> str:
        vals = []
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "name":
                vals.append(f'"{v}"')
            elif isinstance(v, tuple):
                vals.append(_braced(v))
            else:
                vals.append(str(v))
        return "{" + ", ".join(vals) + "}"


def _braced(v) -> str:
    """C initializer of a (nested) tuple."""
    return "{" + ", ".join(_braced(x) if isinstance(x, tuple) else str(x) for x in v) + "}"


@dataclass(frozen=True)
class OperandRec:
    level: str  # GF_MEM_L2 / GF_MEM_L3
    offset: int


@dataclass
class Gap9Program:
    program: Program
    tiles: list[TilePlan]
    placement: Placement
    layers: dict[int, tuple[int, LayerRec, dict[str, OperandRec]]]  # step -> (layer index, record, operands)
    outputs: dict[int, OperandRec]  # step -> location of its output (golden comparison)
    tasks: list[list[int]]  # the cluster tasks: the steps of each (cluster_tasks)
    fc_layers: str = "auto"  # which small layers run on the FC (fc_placement.MODES)
    fusions: dict[int, int] = field(default_factory=dict)  # pool step -> the conv step fused into it (fusion.py)
    fuse_pools: str = "on"

    def fused_into(self, index: int) -> int:
        """The step a conv step is fused into (its output stays in that layer's L1, not compared), or -1."""
        return next((p for p, c in self.fusions.items() if c == index), -1)

    def net_output(self, index: int) -> int:
        """gf_step_t.net_output: 1 on a step whose output is one of the network's (compared again after the timed
        inference pass, gap9_main.c.j2), else 0; a conv fused into its pool is never one (its output stays in L1)."""
        return int(self.program.calls[index].name in self.program.outputs and self.fused_into(index) < 0)

    def inference_outputs(self) -> list[int]:
        """The steps the inference pass compares (plan.json gap9.inference.outputs)."""
        return [c.index for c in self.program.calls if self.net_output(c.index)]

    def task_steps(self, index: int) -> int:
        """gf_step_t.task_steps: a task's step count on its first step, 0 on its other steps, 1 on FC steps."""
        for t in self.tasks:
            if index in t:
                return len(t) if index == t[0] else 0
        return 1

    def plan_json(self) -> dict:
        p = self.placement
        rows = {r["index"]: r for r in p.layers}
        return {"platform": p.budgets.hw.to_json(), "budgets": p.budgets.to_json(), "params_level": p.params,
                "l2": {"arena_bytes": p.l2.arena_size, "liveness_lower_bound_bytes": p.l2.lower_bound,
                       "peak_bytes": p.l2_total, "scratch_bytes": p.budgets.hw.l2_scratch},
                "l3": {"arena_bytes": p.l3.arena_size, "peak_bytes": p.l3_total},
                "buffers": {name: lvl for name, lvl in sorted(p.buffer_level.items())},
                "layers": p.layers, "fc_layers": self.fc_layers,
                # the timed inference pass after the verified one (gap9_main.c.j2): the steps whose outputs it compares
                "inference": {"outputs": self.inference_outputs()}, "fuse_pools": self.fuse_pools,
                "fusions": [{"conv": self.program.calls[c].name, "pool": self.program.calls[i].name,
                             "conv_index": c, "pool_index": i} for i, c in sorted(self.fusions.items())],
                "tasks": [{"steps": t, "layers": [i for i in t if i in self.layers],
                           "bounce_bytes": max((p.bounce[i] for i in t), default=0),
                           "l1_block_bytes": task_l1_block(t, rows, p.budgets.hw)} for t in self.tasks]}


def tile_kernel(kernel: str) -> str:
    """The GAP9 tile kernel of a device kernel: gf_<name> -> gf_tile_<name> (gf_tile_kernels.c)."""
    return "gf_tile_" + kernel.removeprefix("gf_")


def _region_offsets(program: Program, ident: str) -> dict[str, int]:
    return {r.name.rsplit(".", 1)[1]: r.offset for r in program.regions if r.name.rsplit(".", 1)[0] == ident}


def _loc(placement: Placement, program: Program, tensor: str) -> OperandRec:
    lvl = placement.level_of(program, tensor)
    return OperandRec("GF_MEM_L3" if lvl == L3 else "GF_MEM_L2", placement.offset_of(program, tensor))


def build_gap9_program(plan: Plan, case_dir: Path, l1_budget: int | None, l2_budget: int | None,
                       fault: str = "none", tile_l1_budget: int | None = None,
                       hw: Platform = DEFAULT, kernels: str = "portable", fc_layers: str = "auto",
                       fuse_pools: str = "on") -> Gap9Program:
    """``hw``: the platform planned for (codegen/gap9/hw.py PLATFORMS). ``tile_l1_budget`` (tests
    only) plans tiles for a different L1 budget than the one recorded; ``kernels``: "portable" or
    "simd" (the SIMD kernels' work buffers are planned in L1); ``fc_layers``: which small layers run on
    the FC (codegen/gap9/fc_placement.py MODES); ``fuse_pools``: "on" runs the max pools fusion.pool_fusions
    allows fused into their conv (one cluster layer), "off" every step as its own layer."""
    if fuse_pools not in fusion.MODES:
        raise GapforgeError(f"--fuse-pools '{fuse_pools}': unknown (choose from {', '.join(fusion.MODES)})")
    simd = kernels == "simd"
    budgets: Budgets = hw.with_budgets(l1_budget, l2_budget)
    tiling_budgets = hw.with_budgets(tile_l1_budget or budgets.l1, budgets.l2)
    generic = build_program(plan, case_dir, pack_weights=True)
    cluster_tiles = [tile_step(step, plan.net, tiling_budgets, pack=True, simd=simd) for step in plan.steps]
    fusions = {i: c for i, c in (fusion.pool_fusions(plan) if fuse_pools == "on" else {}).items()
               if cluster_tiles[i].tiling == "conv" and cluster_tiles[c].tiling == "conv"}

    def fused_tile(i: int, b: Budgets) -> TilePlan:  # the pool's step: the conv's tiles, pooled in L1
        c = fusions[i]
        tp = tile_conv(plan.steps[c], plan.net, b, pack=True, simd=simd,
                       pool=tuple(plan.steps[i].attrs["kernel_size"]))
        return replace(tp, step=plan.steps[i].output,
                       fused={"conv": c, "conv_step": plan.steps[c].output,
                              "pool": list(plan.steps[i].attrs["kernel_size"])})

    for i, c in fusions.items():
        cluster_tiles[i] = fused_tile(i, tiling_budgets)
        cluster_tiles[c] = replace(fc_plan(plan.steps[c]), fused={"into": i, "into_step": plan.steps[i].output})

    def retile(i: int, l1: int) -> TilePlan:
        b = tiling_budgets.hw.with_budgets(l1, budgets.l2)
        if i in fusions:
            return fused_tile(i, b)
        return tile_step(plan.steps[i], plan.net, b, pack=True, simd=simd)

    # the fused layer reads the conv's input when the pool runs: that buffer lives until then
    fused_hold = {generic.memory.tensor_buffer[plan.steps[c].inputs[0]]: i for i, c in fusions.items()}

    estimates = fc_placement.choose(plan.steps, generic.calls, cluster_tiles, hw, simd, fc_layers)
    placement = None
    if any(e.on_fc for e in estimates.values()):
        tiles = fc_placement.apply(plan.steps, cluster_tiles, estimates)
        try:  # an FC step's operands stay in L2 (pinned), its parameters must be there too
            placement = place(generic, plan, tiles, budgets, retile=retile, hold=fused_hold)
        except PlacementError:
            placement = None
        if placement is None or placement.params != L2:  # then every layer stays on the cluster
            estimates = {i: replace(e, on_fc=False) for i, e in estimates.items()}
            placement = None
    if placement is None:
        tiles = list(cluster_tiles)
        placement = place(generic, plan, tiles, budgets, retile=retile, hold=fused_hold)
    # one cluster task per run of cluster steps needs the run's outputs intact until the FC compares them after it:
    # held apart in the arena when that costs only L2 arena bytes within the budget (same levels and tiles),
    # else the tasks end where an output would be overwritten (cluster_tasks)
    hold = dict(fused_hold)
    for run in task_runs(generic.calls, tiles):
        for b in generic.memory.buffers.values():
            if run[0] <= b.first <= run[-1] and b.last < run[-1]:
                hold[b.name] = max(run[-1], hold.get(b.name, 0))
    if hold != fused_hold:
        held_tiles = list(tiles)
        try:
            held = place(generic, plan, held_tiles, budgets, retile=retile, hold=hold)
        except GapforgeError:
            held = None
        if held is not None and held.params == placement.params and held.buffer_level == placement.buffer_level and \
                held_tiles == tiles:
            placement = held
    program = build_program(plan, case_dir, offset_of=lambda t: placement.offset_of(generic, t), pack_weights=True)
    program.calls = [replace(c, kernel=fc_placement.fc_kernel(s, c, simd)) if i in estimates and estimates[i].on_fc
                     else c for i, (s, c) in enumerate(zip(plan.steps, program.calls))]
    layers, outputs = {}, {}
    for own, own_step, tp in zip(program.calls, plan.steps, tiles):
        outputs[own.index] = _loc(placement, program, own.name)
        # a fused pool's layer is its conv's, storing the pooled output (fusion.py)
        call, step = (program.calls[tp.fused["conv"]], plan.steps[tp.fused["conv"]]) if "conv" in tp.fused \
            else (own, own_step)
        pool = own_step.attrs["kernel_size"] if "conv" in tp.fused else (0, 0)
        if tp.tiling == "fc":
            if placement.params != L2 and "into" not in tp.fused and any("P + " in a for a in call.args):  # e.g. the scan's parameter block
                raise GapforgeError(f"step '{call.name}' ({step.kind}) runs on the fabric controller and reads its "
                                    "parameters in place, but they do not fit L2 with this budget",
                                    hint="raise --l2-budget")
            continue
        regions = _region_offsets(program, call.ident)
        rq = step.requant
        out_t = plan.net.tensors[step.output]
        shape = call.shape or (0,) * 17
        n = inner = chans = 0
        outer = 1
        if tp.tiling == "eltwise":
            outer, chans, inner, n = eltwise_layout(step, plan.net)
        if tp.tiling == "rows":  # chans rows of inner elements; tiles of tile_planes rows
            chans, inner = rows_layout(step, plan.net)
            n = chans * inner
        k = o = 0
        zp_a = zp_b = 0
        if tp.tiling == "scan":  # D channels of L steps, a state of N, tables of E entries
            sp = step.params
            o, n, k, inner = sp.D, sp.L, sp.N, sp.entries
        if tp.tiling == "linear":
            op = plan.net.op_by_name(step.main_op)
            o, k = op.params["weight"].shape
        if tp.tiling == "gemm":
            rg = rows_geometry(step, plan.net)
            chans, n, k, o = rg.groups, rg.m, rg.k, rg.n
            ins = [plan.net.tensors[t] for t in plan.net.op_by_name(step.main_op).inputs]
            zp_a, zp_b = ins[0].zero_code, (ins[1].zero_code if len(ins) > 1 else 0)
        lo, hi = out_t.qrange() if out_t.kind == "quant" else (0, 0)
        rec = LayerRec(
            name=own.name, tiling=TILING_ENUM[tp.tiling], compute=tile_kernel(call.kernel),
            coupled=int(tp.tiling == "conv" and conv_geometry(step, plan.net).coupled), shape=tuple(shape),
            in_t=call.inputs[0].dtype, in2_t=call.inputs[1].dtype if len(call.inputs) > 1 else "GF_S8",
            out_t=own.out.dtype,
            w_off=regions.get("w", -1), b_off=regions.get("b", -1), m_off=regions.get("m", -1),
            sh_off=regions.get("sh", -1), o_off=regions.get("o", -1),
            rq_sources=int(rq.m.shape[0]) if rq is not None else 0, rq_channels=rq.channels if rq is not None else 1,
            zp=rq.zp if rq is not None else out_t.zero_code,
            lo=rq.lo if rq is not None else lo,
            hi=rq.hi if rq is not None else hi,
            shift=step.attrs.get("shift", 0), floor_rounding=int(step.attrs.get("rounding") == "floor"),
            k=k, o=o, n=n, inner=inner, chans=chans,
            tile_co=tp.tile.get("co", o if tp.tiling == "gemm" else 0), tile_oh=tp.tile.get("oh", 0),
            tile_ow=tp.tile.get("ow", 0),
            tile_planes=tp.tile.get("planes", tp.tile.get("rows", 0) if tp.tiling == "rows" else 0),
            tile_elems=tp.tile.get("elems", tp.tile.get("rows", 0) * inner if tp.tiling == "rows" else 0),
            buf_in=tp.buffers.get("in", 0), buf_in2=tp.buffers.get("in2", 0), buf_w=tp.buffers.get("w", 0),
            buf_p=tp.buffers.get("p", 0), buf_out=tp.buffers.get("out", 0), buf_wp=tp.buffers.get("wp", 0),
            w_bits=call.w_bits, w_row_bytes=call.w_row_bytes,
            w_resident=int("w" in tp.resident), p_resident=int("p" in tp.resident),
            in_resident=int("in" in tp.resident), cores=hw.compute_cores,
            single_buffer=int(tp.n_tiles > 1 and not tp.double_buffered), fault=FAULTS[fault],
            t_off=regions.get("t", -1), **_tables(step, plan.net), in2_resident=int("in2" in tp.resident),
            mp=call.mul_shape or ((0,) * 4, (0,) * 4, (0,) * 4, 0, 0),
            aux_off=regions.get("p", -1), aux_bytes=tp.buffers.get("p", 0) if "p" in regions else 0,
            tile_rows=tp.tile.get("rows", 0) if tp.tiling == "gemm" else 0, zp_a=zp_a, zp_b=zp_b, outer=outer,
            in3_t=call.inputs[2].dtype if len(call.inputs) > 2 else "GF_S8",
            in4_t=call.inputs[3].dtype if len(call.inputs) > 3 else "GF_S8",
            buf_in3=tp.buffers.get("in3", 0), buf_in4=tp.buffers.get("in4", 0), buf_col=tp.buffers.get("col", 0),
            pool_kh=pool[0], pool_kw=pool[1], buf_mid=tp.buffers.get("mid", 0), in_plane=int(tp.in_plane))
        ops = {"in": _loc(placement, program, call.inputs[0].name),
               "in2": _loc(placement, program, call.inputs[1].name) if len(call.inputs) > 1 else OperandRec("GF_MEM_L2", 0),
               "out": outputs[own.index]}
        for key, idx in (("in3", 2), ("in4", 3)):
            ops[key] = _loc(placement, program, call.inputs[idx].name) if len(call.inputs) > idx else OperandRec("GF_MEM_L2", 0)
        layers[own.index] = (len(layers), rec, ops)
    if fault not in FAULTS:
        raise GapforgeError(f"unknown fault '{fault}'")
    _check_buffers(tiles, budgets)
    tasks = cluster_tasks(program, tiles, outputs)
    rows = {r["index"]: r for r in placement.layers}
    # one bounce area for the L3 operands, the largest layer's, allocated before the first step for the whole program
    # (gap9_main.c gf_net_bind: the layers run one at a time): in every step's L2 peak
    most = max(placement.bounce.values(), default=0)
    for i, row in rows.items():
        row["l2_peak_bytes"] += most - placement.bounce[i]
    for task in tasks:  # a task's L1 block (gf_tiled.c cluster_entry): the control block and its largest layer's buffers
        block = task_l1_block(task, rows, hw)
        for i in task:
            if rows[i]["tiling"] != "fc":
                rows[i]["l1_block_bytes"] = block
    for i, e in estimates.items():  # plan.json / plan_report: where the cost model put each small layer, and why
        rows[program.calls[i].index]["placement"] = e.to_json(hw.cluster_task_fc_cycles)
    for i, c in fusions.items():  # plan.json / plan_report: the fused pair
        rows[program.calls[i].index]["fused_conv"] = program.calls[c].name
        rows[program.calls[c].index]["fused_into"] = program.calls[i].name
    return Gap9Program(program, tiles, placement, layers, outputs, tasks, fc_layers, fusions, fuse_pools)


def task_l1_block(task: list[int], rows: dict[int, dict], hw: Platform) -> int:
    """L1 bytes the cluster controller allocates for a task (one block, one fork: gf_tiled.c cluster_entry): the
    control block (hw.l1_control) and the buffers of the task's largest layer, which every layer uses from its start."""
    return hw.l1_control + max((rows[i]["l1_bytes"] for i in task if rows[i]["tiling"] != "fc"), default=0)


def format_tasks(gap9: dict) -> str:
    """plan_report.txt: the cluster tasks, each with the one L1 block its controller allocates (the control block and
    the buffers of its largest layer: one block and one fork per task, gf_tiled.c cluster_entry) and its L2 bounce
    area (also its largest layer's)."""
    rows = {r["index"]: r for r in gap9["layers"]}
    control = gap9["platform"]["l1_control"]
    lines = [f"cluster tasks: {len(gap9['tasks'])} (each one L1 block = {control} B control block + its largest "
             "layer's L1 buffers, one fork of its layers' most cores)"]
    for k, t in enumerate(gap9["tasks"]):
        layers = t["layers"]
        big = max(layers, key=lambda i: rows[i]["l1_bytes"]) if layers else None
        cores = max((rows[i]["cores"] for i in layers), default=0)
        lines.append(f"  task {k}: steps {t['steps'][0]}-{t['steps'][-1]}, {len(layers)} cluster layers, {cores} cores, "
                     f"L1 block {t['l1_block_bytes']} B"
                     + (f" (largest layer {rows[big]['name']}: {rows[big]['l1_bytes']} B)" if big is not None else "")
                     + f", L2 bounce {t['bounce_bytes']} B")
    return "\n".join(lines)


def task_runs(calls, tiles: list[TilePlan]) -> list[list[int]]:
    """Maximal runs of consecutive cluster steps, with the views between them (no trailing view) and the convs fused
    into a pool of the run (also leading it), of at most TASK_MAX_LAYERS cluster steps: the steps one cluster task
    can run, the FC having nothing to do between them."""
    runs: list[list[int]] = []
    cur: list[int] = []
    layers = 0
    fused_conv = {call.index for call, tp in zip(calls, tiles) if "into" in tp.fused}
    for call, tp in zip(calls, tiles):
        if tp.tiling != "fc" and layers == TASK_MAX_LAYERS:  # the runtime's static run records (gf_gap9.h)
            lead = [cur.pop()] if cur and cur[-1] in fused_conv else []  # a fused conv goes with its pool
            runs.append(cur)
            cur, layers = lead, 0
        # a conv fused into the pool after it (fusion.py) runs nothing: it joins the pool's task, even as its first
        # step (no round of its own on the FC)
        if tp.tiling != "fc" or call.index in fused_conv or (cur and runs_nothing(call, tp)):
            cur.append(call.index)
            layers += tp.tiling != "fc"
            continue
        runs.append(cur)
        cur, layers = [], 0
    runs.append(cur)
    by_index = {call.index: (call, tp) for call, tp in zip(calls, tiles)}
    for r in runs:
        while r and runs_nothing(*by_index[r[-1]]):
            r.pop()
    return [r for r in runs if r]


def cluster_tasks(program: Program, tiles: list[TilePlan], outputs: dict[int, OperandRec]) -> list[list[int]]:
    """The cluster tasks: the runs of task_runs, each run as one cluster task (gf_run_task), so the fixed cost of a
    task (the FC's set-up and dispatch, the cluster's wake-up) is paid once per run instead of once per layer. The
    FC compares every step's output with its golden after the task, so a task ends before a layer whose output
    would overwrite an earlier output of the same task (the placement keeps a run's outputs apart when L2 allows:
    build_gap9_program)."""
    by_index = {call.index: call for call in program.calls}
    tp_of = {call.index: tp for call, tp in zip(program.calls, tiles)}
    tasks: list[list[int]] = []
    for run in task_runs(program.calls, tiles):
        cur: list[int] = []
        written: list[tuple[str, int, int]] = []  # (level, offset, bytes) of the outputs of cur
        for i in run:
            out, nbytes = outputs[i], by_index[i].out.bytes
            overlaps = any(lvl == out.level and off < out.offset + nbytes and out.offset < off + n
                           for lvl, off, n in written)
            if tp_of[i].tiling != "fc" and overlaps:  # (a view rewrites nothing: it aliases an earlier output)
                lead = []
                while cur and runs_nothing(by_index[cur[-1]], tp_of[cur[-1]]):
                    if "into" in tp_of[cur[-1]].fused:  # a fused conv goes with its pool
                        lead.insert(0, cur[-1])
                    cur.pop()
                tasks.append(cur)
                cur, written = lead, []
            cur.append(i)
            if "into" not in tp_of[i].fused:  # a fused conv's output is in no arena (placement.l1_only)
                written.append((out.level, out.offset, nbytes))
        tasks.append(cur)
    return [t for t in tasks if t]


def _tables(step, net) -> dict[str, int]:
    """Lookup tables of a step (its declaration's Tiling.tables): bytes per table and table count."""
    from gapforge.ops import registry

    rule = registry().ir_ops[step.kind].tiling
    if rule is None or rule.tables is None:
        return {"t_bytes": 0, "t_chans": 0}
    tables, size, _ = rule.tables(step, net)
    return {"t_bytes": size, "t_chans": tables}


def _check_buffers(tiles: list[TilePlan], budgets: Budgets) -> None:
    """Sanity: the DMA limits of the hardware model hold for every tile buffer line."""
    for tp in tiles:
        for key, size in tp.buffers.items():
            if size and align(size) > budgets.hw.l1_size:
                raise GapforgeError(f"layer '{tp.step}': {key} tile of {size} B exceeds L1")
