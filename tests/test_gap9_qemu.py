"""gap9-qemu: the generated GAP9 program and the PMSIS emulation built for rv32, run under QEMU.

The same sources as gap9-emu, compiled with the rv32 cross compiler; every layer must match the
golden, the measured DMA bytes, tiles and peaks must equal the plan (as on gap9-emu), and the
per-core instruction counts (GF CORES) must be consistent: the busiest core, the sum, the cores
that ran, the controller, the whole cluster task; and the program's own cluster-side pi_perf counters
(GF CLUSTER, read by every forked core around its share of the tile loop) must agree with them: the
same busiest core (core 0, or the emulator's busiest of the others), and its count the emulator's for that core minus the same fixed number of
instructions on every layer (the core's coroutine entry and exit, the tile loop's prologue before
pi_perf_start, and the last barrier after the read, which lie outside the counted window).
"""

import json

import pytest

from codegen import toolchains
from codegen.generate import generate_project
from tools.run_generated import run_project

pytestmark = pytest.mark.skipif(not toolchains.available("rv32")[0],
                                reason=f"rv32 target: {toolchains.available('rv32')[1]}")

NETS = ["simple_cnn", "resnet_block", "big_mlp_l3"]  # conv+pool+linear; add + global pool; weights in L3


def _task_positions(plan: dict) -> dict[str, tuple[bool, bool]]:
    """Each cluster layer's place in its task (first, last): one fork per task, so the busiest core's instructions
    outside its counted windows differ by place (the fork's entry is the first layer's, its end the last's)."""
    names = {r["index"]: r["name"] for r in plan["gap9"]["layers"]}
    return {names[i]: (i == t["layers"][0], i == t["layers"][-1]) for t in plan["gap9"]["tasks"] for i in t["layers"]}


def _own(layer: dict) -> list[int]:
    """Each core's emulated instructions without core 0's bookkeeping (the copies of the layer's control block in and
    back: bk_instr, outside the counted windows)."""
    per_core = [layer["cores"][f"core{i}"] for i in range(8)]
    return [v - (layer["cluster"]["bk_instr"] if i == 0 else 0) for i, v in enumerate(per_core)]


def _outside(layer: dict) -> int:
    """The busiest core's instructions outside its counted window."""
    return _own(layer)[layer["cluster"]["instr_core"]] - layer["cluster_instr"]


def _key(place: dict, layer: dict) -> tuple:
    """A layer's place in its task and whether its busiest core is core 0 (which alone does the bookkeeping)."""
    return (*place[layer["name"]], layer["cluster"]["instr_core"] == 0)


def _one_per_place(outside: dict) -> None:
    assert outside and all(len(v) == 1 and 0 < min(v) < 1000 for v in outside.values()), outside


@pytest.mark.parametrize("name", NETS)
def test_gap9_qemu_bit_exact_with_per_core_counts(name, golden, tmp_path):
    proj = tmp_path / f"{name}_gap9"
    generate_project(golden(name), proj, "gap9", 1)
    passed, res = run_project(proj, "gap9-qemu", timeout=600)
    plan = json.loads((proj / "plan.json").read_text())
    assert passed, res["reasons"][:5]
    assert res["totals"]["compared"] == len(plan["steps"]) and res["totals"]["mismatches"] == 0
    assert res["plan_mismatches"] == []  # DMA bytes, tiles, L1/L2/L3 peaks == planned, as on gap9-emu
    planned = {r["name"]: r for r in plan["gap9"]["layers"]}
    place = _task_positions(plan)
    cores_of = {r["index"]: r["cores"] for r in plan["gap9"]["layers"]}
    task_cores = {i: max(cores_of[j] for j in t["layers"]) for t in plan["gap9"]["tasks"] for i in t["layers"]}
    cluster_layers = 0
    outside = {}  # GF CORES core_max - GF CLUSTER instr_max - bk_instr, per cluster layer, by place in its task
    for layer in res["layers"]:
        c = layer["cores"]
        per_core = [c[f"core{i}"] for i in range(8)]
        assert c["core_max"] == max(per_core) and c["core_sum"] == sum(per_core)
        assert c["cores_used"] == sum(1 for v in per_core if v)
        assert c["cluster"] == c["core_sum"] + c["cc"]
        assert layer["instret"] >= c["cluster"]  # the step includes the FC's share
        p = planned.get(layer["name"])
        if p is not None and p["tiling"] != "fc":
            cluster_layers += 1
            assert 1 <= c["cores_used"] <= task_cores[p["index"]]  # the task's fork: its layers' most cores
            # the critical path (per barrier round, its busiest core) lies between the busiest
            # core's total and the sum over cores
            assert c["core_max"] <= c["core_crit"] <= c["core_sum"]
            assert layer["mem"]["tiles"] == p["tiles"]
            k = layer["cluster"]
            # the busiest share: core 0 (whose emulated count also holds its uncounted work after layer_out's read), or
            # the emulator's busiest of the other cores
            own = _own(layer)
            assert k["instr_core"] in (0, 1 + own[1:].index(max(own[1:]))) and k["cycles_core"] == k["instr_core"]
            outside.setdefault(_key(place, layer), set()).add(_outside(layer))
            # under the emulation PI_PERF_CYCLES counts instructions too: read first, a few fewer
            assert 0 < layer["cluster_instr"] - layer["cluster_cycles"] < 100
            # the bookkeeping: core 0's copies (bk, in core 0's count), plus the controller's work outside the
            # task's fork on its first and last layer (part of the controller's share)
            assert 0 < k["bk_instr"] <= k["cc_instr"] and k["cc_instr"] - k["bk_instr"] < c["cc"]
            if place[layer["name"]] == (False, False):
                assert k["cc_instr"] == k["bk_instr"]
        elif p is not None:
            assert c["cluster"] == 0
            assert "cluster_instr" not in layer  # FC steps print no GF CLUSTER line
    assert cluster_layers > 0
    _one_per_place(outside)
    assert res["counters"]["cluster_instr"].startswith("busiest forked core")
    assert res["totals"]["cluster_instr"] == sum(layer.get("cluster_instr", 0) for layer in res["layers"])


def test_gap9_qemu_counts_are_repeatable(golden, tmp_path):
    proj = tmp_path / "mlp_gap9"
    generate_project(golden("mlp"), proj, "gap9", 1)
    runs = [run_project(proj, "gap9-qemu", timeout=600)[1] for _ in range(2)]
    assert all(r["passed"] for r in runs)
    assert [layer["cores"] for layer in runs[0]["layers"]] == [layer["cores"] for layer in runs[1]["layers"]]
    assert [layer["instret"] for layer in runs[0]["layers"]] == [layer["instret"] for layer in runs[1]["layers"]]


def test_gap9_qemu_cluster_counters_over_many_tiles(golden, tmp_path):
    """With a 2 KiB L1 most layers run in several tiles (several barrier rounds inside the counted
    window): the busiest core's pi_perf count is still the emulator's minus the same fixed number."""
    proj = tmp_path / "simple_cnn_gap9_2k"
    generate_project(golden("simple_cnn"), proj, "gap9", 1, l1_budget=2048)
    passed, res = run_project(proj, "gap9-qemu", timeout=600)
    assert passed, res["reasons"][:5]
    cluster = [layer for layer in res["layers"] if "cluster_instr" in layer]
    assert max(layer["mem"]["tiles"] for layer in cluster) > 1
    place = _task_positions(json.loads((proj / "plan.json").read_text()))
    outside = {}
    for layer in cluster:
        outside.setdefault(_key(place, layer), set()).add(_outside(layer))
    _one_per_place(outside)
