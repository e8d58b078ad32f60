"""Small layers on the fabric controller (codegen/gap9/fc_placement.py): the cost model's arithmetic, its choice over a
network (a layer moved between two cluster layers splits their task), the modes, the steps that must stay on the
cluster, and the programs it makes: bit-exact, the FC steps calling the FC kernel over L2 operands."""

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from codegen import toolchains
from codegen.gap9 import fc_placement as fp
from codegen.gap9.hw import PLATFORMS
from codegen.gap9.tiling import TilePlan
from codegen.generate import generate_project
from gapforge.errors import GapforgeError
from tools.run_generated import run_project

needs_rv32 = pytest.mark.skipif(not toolchains.cross_compiler_available()[0],
                                reason=f"rv32 cross compiler: {toolchains.cross_compiler_available()[1]}")

HW = replace(PLATFORMS["siracusa"], cluster_per_fc_cycle=2.0, cluster_layer_cycles=4000, cluster_task_fc_cycles=3000,
             dma_bytes_per_cycle=8.0, tile_fixed_cycles=1000, cluster_cycles_per_mac=4.0, cluster_cycles_per_mac_simd=1.0,
             fc_step_cycles=100, fc_cycles_per_mac=6.0, fc_cycles_per_mac_simd=1.0, fc_cycles_per_output=10.0,
             fc_cycles_per_output_simd=10.0)


def _linear(macs, outputs, w_bits=8, dtype="GF_U8"):
    step = SimpleNamespace(kind="linear")
    call = SimpleNamespace(kernel="gf_linear", w_bits=w_bits, macs=macs, kind="linear",
                           out=SimpleNamespace(bytes=outputs * (4 if dtype == "GF_S32" else 1), dtype=dtype))
    tp = TilePlan("x", "linear", {"co": outputs}, [1], 1, {}, False, [], 0, {"in": 64, "w": macs, "out": outputs},
                  min(8, outputs), 0, busiest_units=macs // 8)
    return step, call, tp


def _conv(macs):
    step = SimpleNamespace(kind="conv2d")
    call = SimpleNamespace(kernel="gf_conv2d", w_bits=8, macs=macs, kind="conv2d",
                           out=SimpleNamespace(bytes=256, dtype="GF_U8"))
    tp = TilePlan("c", "conv", {}, [1, 1, 1], 1, {}, False, [], 0, {"in": 256}, 8, 0, busiest_units=macs // 8)
    return step, call, tp


def _fc_step(kind="concat"):
    return (SimpleNamespace(kind=kind), SimpleNamespace(kernel="gf_concat", w_bits=8, macs=0, kind=kind),
            TilePlan("f", "fc", {}, [], 0, {}, False, [], 0, {}, 0))


def _choose(items, mode="auto", simd=True, hw=HW):
    steps, calls, tiles = zip(*items)
    return fp.choose(list(steps), list(calls), list(tiles), hw, simd, mode)


def test_estimates_follow_the_platform_figures():
    step, call, tp = _linear(4096, 64)
    # cluster: (4000 + (64 + 4096 + 64) / 8 + 1 x 1000 + 512 MACs x 1.0 (SIMD)) / 2.0 FC cycles
    assert fp.cluster_fc_cycles(HW, tp, simd=True) == round((4000 + 4224 / 8 + 1000 + 512 * 1.0) / 2.0) == 3020
    assert fp.cluster_fc_cycles(HW, tp, simd=False) == round((4000 + 4224 / 8 + 1000 + 512 * 4.0) / 2.0) == 3788
    # FC: 100 + 4096 MACs x 1.0 (SIMD) or 6.0 + 64 outputs x 10
    assert fp.fc_cycles(HW, call, simd=True) == 100 + 4096 + 640
    assert fp.fc_cycles(HW, call, simd=False) == 100 + 6 * 4096 + 640
    int32_out = _linear(320, 10, dtype="GF_S32")[1]  # outputs counted as elements, not bytes
    assert fp.fc_cycles(HW, int32_out, simd=False) == 100 + 6 * 320 + 100
    assert fp.fc_cycles(HW, int32_out, simd=True) == 100 + 320  # the one-row SIMD kernel: int32 stores in the MACs'
    assert fp.fc_cycles(replace(HW, fc_cycles_per_output_simd=14.0), call, simd=True) == 100 + 4096 + 64 * 14


def test_a_lone_small_layer_moves_to_the_fc():
    """One linear layer: 4836 FC cycles on the FC against 3020 + 3000 (its own task) on the cluster."""
    est = _choose([_linear(4096, 64)])
    assert est[0].on_fc and (est[0].fc, est[0].cluster) == (4836, 3020)
    assert not _choose([_linear(4096, 64)], simd=False)[0].on_fc  # 25.3 k portable FC cycles: the cluster


def test_a_layer_between_cluster_layers_stays_when_the_split_costs_more():
    """conv (cluster only), linear, conv: moving the linear to the FC saves 2.0 k of its 2.5 k cluster cycles but
    splits the task (3 k more); with a cheap task it moves. At the end of the network, layers move without a split."""
    small = _linear(256, 16)  # FC 516 vs cluster about 2.5 k
    est = _choose([_conv(100_000), small, _conv(100_000)])
    assert not est[1].on_fc  # 516 + 3000 (the second task) > 2.5 k
    cheap_task = replace(HW, cluster_task_fc_cycles=100)
    assert _choose([_conv(100_000), small, _conv(100_000)], hw=cheap_task)[1].on_fc
    est = _choose([_conv(100_000), _linear(256, 16), _linear(256, 16)])
    assert est[1].on_fc and est[2].on_fc  # the tail leaves the task without splitting it


def test_fc_steps_between_layers_already_split_the_task():
    """After an FC step (a concat) the next cluster layer starts a task anyway: the small layer there moves."""
    est = _choose([_conv(100_000), _fc_step(), _linear(256, 16), _conv(100_000)])
    assert est[2].on_fc


def test_modes_and_steps_that_stay_on_the_cluster():
    items = [_linear(50_000, 128), _linear(256, 16, w_bits=4), _conv(1000), _linear(256, 16)]
    auto = _choose(items)
    assert sorted(auto) == [0, 3]  # packed weights (w_bits 4) and convolutions (no Tiling.fc) never move
    assert not auto[0].on_fc and auto[3].on_fc
    assert all(e.on_fc for e in _choose(items, "all").values())
    assert not any(e.on_fc for e in _choose(items, "off").values())


def test_generate_refuses_an_unknown_mode(golden, tmp_path):
    with pytest.raises(GapforgeError, match="--fc-layers 'some'"):
        generate_project(golden("mlp"), tmp_path / "p", "gap9", 1, fc_layers="some")
    with pytest.raises(GapforgeError, match="gap9 target only"):
        generate_project(golden("mlp"), tmp_path / "h", "host", 1, fc_layers="all")


def _plan(proj: Path) -> dict:
    return json.loads((proj / "plan.json").read_text())


@needs_rv32
@pytest.mark.parametrize("kernels,fc_kernel", [("simd", "gf_linear_simd"), ("portable", "gf_linear")])
def test_fc_layers_all_runs_bit_exact(golden, tmp_path, kernels, fc_kernel):
    """mlp with every linear layer on the FC: no cluster task; each FC step calls the FC kernel with its operands in
    the L2 arena and its requantization record; every layer bit-exact on gap9-emu; plan.json says why."""
    proj = tmp_path / f"mlp_{kernels}"
    generate_project(golden("mlp"), proj, "gap9", 1, kernels=kernels, fc_layers="all", platform="siracusa")
    plan = _plan(proj)
    rows = [r for r in plan["gap9"]["layers"] if "placement" in r]
    assert [r["name"] for r in rows] == ["relu1", "relu2", "fc3"]
    assert all(r["tiling"] == "fc" and r["placement"]["on"] == "fc" and r["placement"]["est_fc_cycles"] > 0
               for r in rows)
    assert plan["gap9"]["tasks"] == [] and plan["generate"]["fc_layers"] == "all"
    src = (proj / "src" / "network.c").read_text()
    assert src.count(f"    {fc_kernel}(A + ") == 3
    if kernels == "simd":  # per tensor: the record filled once before the first step (gf_fc_prepare), not per step
        assert "static gf_requant_t rq_relu1;" in src and "rq_relu1 = rqi_1;" in src
    else:
        assert "const gf_requant_t rq_relu1 = {" in src
    passed, res = run_project(proj, "gap9-emu", timeout=600)
    assert passed and res["totals"]["mismatches"] == 0 and res["totals"]["compared"] == len(plan["steps"])
    assert res["plan_mismatches"] == []


@needs_rv32
def test_fc_layers_off_keeps_the_cluster(golden, tmp_path):
    proj = tmp_path / "mlp_off"
    generate_project(golden("mlp"), proj, "gap9", 1, kernels="simd", fc_layers="off")
    plan = _plan(proj)
    assert [t["layers"] for t in plan["gap9"]["tasks"]] == [[1, 2, 3]]
    assert all(r["placement"]["on"] == "cluster" for r in plan["gap9"]["layers"] if "placement" in r)


def test_parameters_in_l3_keep_every_layer_on_the_cluster(golden):
    """big_mlp_l3's parameters do not fit L2: the FC kernels could not read them, so nothing moves even with all."""
    from codegen.gap9.program import build_gap9_program
    from gapforge import ir
    from gapforge.plan import build_plan

    d = golden("big_mlp_l3")
    g = build_gap9_program(build_plan(ir.load(d)), Path(d) / "test_cases" / "test_case_1", None, None,
                           fc_layers="all")
    assert g.placement.params == "L3"
    rows = [r for r in g.placement.layers if "placement" in r]
    assert rows and all(r["placement"]["on"] == "cluster" and r["tiling"] == "linear" for r in rows)


def test_a_placement_that_fails_with_fc_steps_keeps_every_layer_on_the_cluster(golden, monkeypatch):
    """An FC step's operands are pinned in L2: when that makes the placement fail, the plan falls back to every
    layer on the cluster (whose operands may move to L3) instead of failing."""
    from codegen.gap9 import program as gp
    from gapforge import ir
    from gapforge.plan import build_plan

    real = gp.place

    def place(program, plan, tiles, budgets, **kw):
        if any(tp.tiling == "fc" and s.kind == "linear" for tp, s in zip(tiles, plan.steps)):
            raise gp.PlacementError("L2 does not fit with the FC steps' operands pinned")
        return real(program, plan, tiles, budgets, **kw)

    monkeypatch.setattr(gp, "place", place)
    d = golden("mlp")
    g = gp.build_gap9_program(build_plan(ir.load(d)), Path(d) / "test_cases" / "test_case_1", None, None,
                              fc_layers="all")
    rows = [r for r in g.placement.layers if "placement" in r]
    assert [r["tiling"] for r in rows] == ["linear"] * 3 and all(r["placement"]["on"] == "cluster" for r in rows)
    assert [[i for i in t if i in g.layers] for t in g.tasks] == [[1, 2, 3]]
    assert [c.kernel for c in g.program.calls[1:]] == ["gf_linear"] * 3
