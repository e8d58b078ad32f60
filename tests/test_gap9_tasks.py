"""GAP9 cluster tasks: consecutive cluster layers run as one cluster task (plan.json gap9.tasks, gf_run_task).

The FC compares every step's output after the task that produced it, so the placement keeps the outputs of a
task's layers apart in the arena (when that costs only L2 arena bytes within the budget), else the tasks end
before a layer that would overwrite an earlier output of the same task. Per-layer results stay per layer: every
layer bit-exact, the executor's and the emulator's counters (recorded on the cluster per layer) equal to the plan.
"""

import json
import re
from pathlib import Path

import pytest

from codegen import toolchains
from codegen.gap9.program import TASK_MAX_LAYERS, task_runs
from codegen.generate import generate_project
from tools.run_generated import run_project

pytestmark = pytest.mark.skipif(not toolchains.cross_compiler_available()[0],
                                reason=f"rv32 cross compiler: {toolchains.cross_compiler_available()[1]}")

GF_GAP9_H = Path(__file__).resolve().parents[1] / "codegen" / "runtime" / "gap9" / "gf_gap9.h"


def _run(golden, name, tmp_path, target="gap9-emu", fuse_pools="on", **budgets):
    """Every tiled layer on the cluster (--fc-layers off): these tests are about the cluster tasks."""
    proj = tmp_path / f"{name}_gap9"
    generate_project(golden(name), proj, "gap9", 1, fc_layers="off", fuse_pools=fuse_pools, **budgets)
    passed, res = run_project(proj, target, timeout=600)
    plan = json.loads((proj / "plan.json").read_text())
    assert passed, res["reasons"][:5]
    assert res["totals"]["mismatches"] == 0 and res["totals"]["compared"] == len(plan["steps"])
    assert res["plan_mismatches"] == []  # per layer: DMA bytes, tiles, L1/L2/L3 peaks as planned
    return plan, res


def _cluster_steps(plan):
    return [r["index"] for r in plan["gap9"]["layers"] if r["tiling"] != "fc"]


def _check_tasks(plan, res):
    """Every cluster step in exactly one task, in order; per step the task it ran in; the FC's figures of a task
    on its first step (GF TASK), per-layer cluster counters and GF MEM on every layer."""
    tasks = plan["gap9"]["tasks"]
    assert [i for t in tasks for i in t["layers"]] == _cluster_steps(plan)
    by_index = {layer["index"]: layer for layer in res["layers"]}
    planned = {r["index"]: r for r in plan["gap9"]["layers"]}
    reported = {t["first"]: t for t in res.get("tasks", [])}
    for t in tasks:
        steps = t["steps"]
        assert steps == list(range(steps[0], steps[-1] + 1)) and len(t["layers"]) <= TASK_MAX_LAYERS
        assert all(planned[i]["tiling"] != "fc" or planned[i]["kind"] in ("view", "reshape", "flatten")
                   or "fused_into" in planned[i] for i in steps)  # (a conv fused into its pool runs nothing)
        if len(steps) > 1:
            assert reported[steps[0]]["steps"] == len(steps) and reported[steps[0]]["layers"] == len(t["layers"])
            assert all(by_index[i]["task"] == {"first": steps[0], "steps": len(steps)} for i in steps)
        for i in t["layers"]:
            assert by_index[i]["mem"]["tiles"] == planned[i]["tiles"] and by_index[i]["mem"]["l1"] > 0
            assert by_index[i]["emu"]["l2_peak"] == planned[i]["l2_peak_bytes"]
            assert "cluster_cycles" in by_index[i]
    return tasks


def test_task_bound_is_the_runtimes():
    assert re.search(rf"#define GF_TASK_MAX_LAYERS {TASK_MAX_LAYERS}\b", GF_GAP9_H.read_text())


def test_control_block_reserve_is_the_runtimes():
    """The L1 every platform reserves for the layer control block is the runtime's (whose rv32 struct sizes a
    static assertion checks against it in every 32-bit build: gap9-qemu, the SDK builds)."""
    from codegen.gap9.hw import PLATFORMS

    assert {p.l1_control for p in PLATFORMS.values()} == {1536}
    assert re.search(r"#define GF_L1_CONTROL_BYTES 1536u\b", GF_GAP9_H.read_text())


@pytest.mark.parametrize("name,tasks,fuse", [("mlp", [[1, 2, 3]], "on"), ("simple_cnn", [[1, 2, 3, 4, 5, 6]], "off"),
                                             ("simple_cnn", [[1, 2, 3, 4, 5, 6]], "on")])
def test_consecutive_cluster_layers_run_as_one_task(golden, tmp_path, name, tasks, fuse):
    """mlp: its 3 linear layers in one task; simple_cnn: its 5 cluster layers and the flatten view between pool2
    and fc in one task (--fuse-pools off), or with the pools fused (codegen/gap9/fusion.py) its 3 cluster layers
    pool1, pool2, fc with relu1 and relu2 (fused, running nothing: relu1 leads the task, no round of its own) and
    the view between them. The outputs are held apart (the arena grows from the liveness plan's 128 B to 136 B for
    mlp) and every layer compares exactly after the task."""
    plan, res = _run(golden, name, tmp_path, fuse_pools=fuse)
    assert [t["steps"] for t in _check_tasks(plan, res)] == tasks
    assert [t["first"] for t in res["tasks"]] == [t[0] for t in tasks]
    first = next(layer for layer in res["layers"] if layer["index"] == tasks[0][0])
    assert first["cycles"] == res["tasks"][0]["cycles"] > 0  # the FC's counters around the whole task
    assert all(layer["cycles"] == 0 for layer in res["layers"] if layer["index"] in tasks[0][1:])


def test_tasks_end_where_an_output_would_be_overwritten(golden, tmp_path):
    """mlp at an L2 budget 8 bytes below its one-task plan's peak: holding the three outputs apart (8 more arena
    bytes than the liveness plan's 128) would push data to L3, so the arena is the liveness plan's, where fc3
    writes over relu1's output; the task ends before fc3, and both tasks compare exactly."""
    held, _ = _run(golden, "mlp", tmp_path / "held")
    assert held["gap9"]["l2"]["arena_bytes"] == 136
    plan, res = _run(golden, "mlp", tmp_path / "tight", l2_budget=held["gap9"]["l2"]["peak_bytes"] - 8)
    assert [t["steps"] for t in _check_tasks(plan, res)] == [[1, 2], [3]]
    assert plan["gap9"]["l2"]["arena_bytes"] == 128
    assert plan["gap9"]["params_level"] == "L2" and plan["gap9"]["l3"]["arena_bytes"] == 0


def test_l3_operands_stream_through_the_tasks_bounce_area(golden, tmp_path):
    """big_mlp_l3 (weights in L3 at the default budgets): its layers in one task, the bounce area the largest
    layer's, every layer's L3 -> L2 bytes and L2 peak as planned."""
    plan, res = _run(golden, "big_mlp_l3", tmp_path)
    assert plan["gap9"]["params_level"] == "L3"
    tasks = _check_tasks(plan, res)
    assert len(tasks) == 1 and len(tasks[0]["layers"]) == 3
    planned = {r["index"]: r for r in plan["gap9"]["layers"]}
    assert tasks[0]["bounce_bytes"] > 0
    assert all(layer["emu"]["l3_to_l2"] == planned[layer["index"]]["dma_bytes"]["l3_to_l2"] > 0
               for layer in res["layers"] if layer["index"] in tasks[0]["layers"])


def test_runs_are_cut_at_the_runtimes_task_bound(golden):
    """resnet18's 35 consecutive cluster steps (a view before its classifier): tasks of at most 16 layers, every
    cluster step in one, in order."""
    from codegen.gap9.program import build_gap9_program
    from gapforge import ir
    from gapforge.plan import build_plan

    d = golden("resnet18")
    plan = build_plan(ir.load(d))
    # every layer on the cluster (the cost model would put the classifier on the FC)
    g = build_gap9_program(plan, Path(d) / "test_cases" / "test_case_1", None, None, fc_layers="off")
    assert [len([i for i in t if i in g.layers]) for t in g.tasks] == [16, 16, 3]
    assert [i for t in g.tasks for i in t if i in g.layers] == sorted(g.layers)
    assert [len(r) for r in task_runs(g.program.calls, g.tiles)] == [len(t) for t in g.tasks]  # held apart: no cut


def test_qemu_instructions_stay_per_layer(golden, tmp_path):
    """gap9-qemu: the per-layer records give every step of a task its own serialised instructions (its cluster
    share; the first step also the FC's share), summing to the FC's count around the task; the critical path of
    each layer is its own."""
    plan, res = _run(golden, "mlp", tmp_path, target="gap9-qemu")
    (task,) = res["tasks"]
    steps = [layer for layer in res["layers"] if layer["index"] in range(task["first"], task["first"] + task["steps"])]
    assert sum(layer["instret"] for layer in steps) == task["instret"]
    for layer in steps[1:]:
        assert layer["instret"] == layer["cycles"] == layer["cores"]["cluster"] > 0
        assert layer["instret"] >= layer["cores"]["cc"] + layer["cores"]["core_crit"]
    assert steps[0]["instret"] > steps[0]["cores"]["cluster"]
