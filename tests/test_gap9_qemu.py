"""gap9-qemu: the generated GAP9 program and the PMSIS emulation built for rv32, run under QEMU.

The same sources as gap9-emu, compiled with the rv32 cross compiler; every layer must match the
golden, the measured DMA bytes, tiles and peaks must equal the plan (as on gap9-emu), and the
per-core instruction counts (GF CORES) must be consistent: the busiest core, the sum, the cores
that ran, the controller, the whole cluster task; and the program's own cluster-side pi_perf counters
(GF CLUSTER, read by every forked core around its share of the tile loop) must agree with them: the
same busiest core, and its count the emulator's for that core minus the same fixed number of
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
    cluster_layers = 0
    outside = set()  # GF CORES core_max - GF CLUSTER instr_max, per cluster layer
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
            assert 1 <= c["cores_used"] <= p["cores"]
            # the critical path (per barrier round, its busiest core) lies between the busiest
            # core's total and the sum over cores
            assert c["core_max"] <= c["core_crit"] <= c["core_sum"]
            assert layer["mem"]["tiles"] == p["tiles"]
            k = layer["cluster"]
            assert k["instr_core"] == per_core.index(c["core_max"]) and k["cycles_core"] == k["instr_core"]
            outside.add(c["core_max"] - layer["cluster_instr"])
            # under the emulation PI_PERF_CYCLES counts instructions too: read first, a few fewer
            assert 0 < layer["cluster_instr"] - layer["cluster_cycles"] < 100
            assert 0 < k["cc_instr"] < c["cc"]  # the controller outside the fork: part of its share
        elif p is not None:
            assert c["cluster"] == 0
            assert "cluster_instr" not in layer  # FC steps print no GF CLUSTER line
    assert cluster_layers > 0
    assert len(outside) == 1 and 0 < min(outside) < 1000, outside
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
    outside = {layer["cores"]["core_max"] - layer["cluster_instr"] for layer in cluster}
    assert len(outside) == 1 and 0 < min(outside) < 1000, outside
