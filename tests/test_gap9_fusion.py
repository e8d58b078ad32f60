"""gap9: a max pool fused into the conv before it (codegen/gap9/fusion.py; --fuse-pools on|off).

The plan's decision (which pools, the fused layer's tiles in whole pool windows, its L1 and DMA bytes),
the unfused plan with fusion off, the cases that stay unfused, and the fused program bit-exact on gap9-emu
with the executor's byte counters as planned."""

from __future__ import annotations

import copy
import json

import pytest

from codegen import toolchains
from codegen.gap9.fusion import pool_fusions
from codegen.gap9.hw import DEFAULT
from codegen.gap9.program import build_gap9_program
from codegen.gap9.tiling import tile_step
from codegen.generate import generate_project
from gapforge import ir
from gapforge.errors import GapforgeError
from gapforge.plan import build_plan
from tools.run_generated import run_project


def _plan(golden, name):
    d = golden(name)
    return d, build_plan(ir.load(d))


def _g9(d, plan, **kw):
    return build_gap9_program(plan, d / "test_cases" / "test_case_1", None, None, **kw)


def test_plan_fuses_simple_cnns_two_pools(golden):
    """simple_cnn: conv1 (8x16x16) -> pool1 2x2 and conv2 (16x8x8) -> pool2 2x2 are fused: the pool's step holds
    one conv layer of the conv's tiles (whole 2x2 windows) that stores only the pooled map; the conv's step runs
    nothing; the fused layer reads the conv's input and its L1 holds the conv tile ('mid') and the pooled tile."""
    d, plan = _plan(golden, "simple_cnn")
    assert pool_fusions(plan) == {2: 1, 4: 3}
    for kernels in ("portable", "simd"):
        g = _g9(d, plan, kernels=kernels)
        assert g.fusions == {2: 1, 4: 3}
        assert g.tiles[1].tiling == "fc" and g.tiles[1].fused == {"into": 2, "into_step": "pool1"}
        assert g.tiles[3].fused == {"into": 4, "into_step": "pool2"}
        assert 1 not in g.layers and 3 not in g.layers and {2, 4} <= set(g.layers)
        conv = tile_step(plan.steps[1], plan.net, DEFAULT.with_budgets(None, None), pack=True,
                         simd=kernels == "simd")
        t = g.tiles[2]
        assert t.tiling == "conv" and t.fused == {"conv": 1, "conv_step": "relu1", "pool": [2, 2]}
        assert t.tile["oh"] % 2 == 0 and t.tile["ow"] % 2 == 0
        assert t.dma["in"] == conv.dma["in"] == 1 * 16 * 16 and t.dma["w"] == conv.dma["w"]
        assert t.dma["out"] == 8 * 8 * 8 == conv.dma["out"] // 4  # only the pooled map leaves L1
        assert t.buffers["mid"] == t.tile["co"] * t.tile["oh"] * t.tile["ow"]
        assert t.buffers["out"] == t.buffers["mid"] // 4
        assert t.l1_bytes == conv.l1_bytes - conv.buffers["out"] + t.buffers["out"] + t.buffers["mid"]
        _, rec, ops = g.layers[2]
        assert (rec.name, rec.pool_kh, rec.pool_kw, rec.buf_mid) == ("pool1", 2, 2, t.buffers["mid"])
        assert rec.compute.startswith("gf_tile_conv2d") and rec.w_off >= 0
        assert ops["in"] == g.outputs[0] and ops["out"] == g.outputs[2]  # the conv's input, the pool's output
        assert g.fused_into(1) == 2 and g.fused_into(3) == 4 and g.fused_into(2) == -1
        # relu1 and relu2 run nothing: one task from relu1 (no round of its own before it) over pool1 and pool2
        assert [t for t in g.tasks if 2 in t][0][:4] == [1, 2, 3, 4]
        j = g.plan_json()
        assert j["fuse_pools"] == "on" and [(f["conv"], f["pool"]) for f in j["fusions"]] == \
            [("relu1", "pool1"), ("relu2", "pool2")]
        rows = {r["index"]: r for r in j["layers"]}
        assert rows[2]["fused_conv"] == "relu1" and rows[1]["fused_into"] == "pool1"
        assert rows[2]["dma_bytes"]["l1_to_l2"] == 512 and rows[1]["dma_bytes"]["l2_to_l1"] == 0


def test_fusion_off_plans_every_step_as_its_own_layer(golden):
    """--fuse-pools off: today's plan, every tile the step's own (tile_step), nothing fused."""
    d, plan = _plan(golden, "simple_cnn")
    for kernels in ("portable", "simd"):
        g = _g9(d, plan, kernels=kernels, fuse_pools="off")
        b = DEFAULT.with_budgets(None, None)
        assert g.fusions == {} and all(not t.fused for t in g.tiles)
        assert all(g.fused_into(i) == -1 for i in range(len(plan.steps)))
        own = [tile_step(s, plan.net, b, pack=True, simd=kernels == "simd") for s in plan.steps]
        assert [t.tiling for t in g.tiles[:5]] == ["fc", "conv", "conv", "conv", "conv"]
        assert g.tiles[1:5] == own[1:5]
        assert all(rec.pool_kh == 0 and rec.buf_mid == 0 for _, rec, _ in g.layers.values())
        assert g.plan_json()["fusions"] == []
    with pytest.raises(GapforgeError, match="--fuse-pools 'maybe'"):
        _g9(d, plan, fuse_pools="maybe")


def test_pools_that_cannot_be_fused_stay_unfused(golden):
    """A window other than the stride, padding, a map that is not whole windows, a conv output read by another
    step too or that is a network output: the pool stays its own layer (only the other pool is fused)."""
    d, plan = _plan(golden, "simple_cnn")

    def fused(edit):
        p = copy.deepcopy(plan)
        edit(p)
        return pool_fusions(p)

    def attrs(**kw):
        return lambda p: p.steps[2].attrs.update(kw)

    assert fused(attrs(stride=[1, 1])) == {4: 3}  # kernel != stride (the pool's shape aside: refused on attrs)
    assert fused(attrs(padding=[1, 1, 1, 1])) == {4: 3}
    assert fused(attrs(kernel_size=[3, 3], stride=[3, 3])) == {4: 3}  # 16 rows: not whole 3x3 windows
    assert fused(lambda p: p.steps[3].inputs.append("relu1")) == {4: 3}  # relu1 also read by conv2's step
    assert fused(lambda p: p.net.outputs.append("relu2")) == {2: 1}  # relu2 is also a network output
    p = copy.deepcopy(plan)
    p.steps[3].inputs.append("relu1")
    g = _g9(d, p)
    assert g.fusions == {4: 3} and 1 in g.layers and 2 in g.layers and not g.tiles[2].fused
    assert g.tiles[2].dma["out"] == 8 * 8 * 8 and "mid" not in g.tiles[2].buffers


@pytest.mark.skipif(not toolchains.cross_compiler_available()[0],
                    reason=f"rv32 cross compiler: {toolchains.cross_compiler_available()[1]}")
@pytest.mark.parametrize("kernels", ["portable", "simd"])
def test_fused_simple_cnn_is_bit_exact_on_gap9_emu(golden, tmp_path, kernels):
    """The fused program: each pool compared with its golden, each fused conv reported fused_into its pool (not
    compared), the executor's and emulator's DMA bytes, tiles and L1/L2 peaks as planned; fusion off compares the
    convs too, with the pooled layers' traffic back to two layers'."""
    out = {}
    for mode in ("on", "off"):
        proj = tmp_path / mode
        generate_project(golden("simple_cnn"), proj, "gap9", 1, kernels=kernels, fuse_pools=mode, fc_layers="off")
        passed, res = run_project(proj, "gap9-emu", timeout=600)
        plan = json.loads((proj / "plan.json").read_text())
        assert passed, res["reasons"][:5]
        assert res["plan_mismatches"] == [] and res["totals"]["mismatches"] == 0
        out[mode] = (plan, {layer["index"]: layer for layer in res["layers"]})
    plan, layers = out["on"]
    assert [s.get("fused_into") for s in plan["steps"]][:5] == [None, "pool1", None, "pool2", None]
    # the convs' outputs in no arena (L1 only), the task led by relu1: the L2 peaks the emulator measured as planned
    assert plan["gap9"]["buffers"]["relu1"] == plan["gap9"]["buffers"]["relu2"] == "L1"
    assert plan["gap9"]["tasks"][0]["steps"][0] == 1 and layers[1]["task"]["first"] == 1
    assert plan["gap9"]["l2"]["arena_bytes"] < out["off"][0]["gap9"]["l2"]["arena_bytes"]
    assert plan["steps"][2]["fused_conv"] == "relu1" and plan["generate"]["fuse_pools"] == "on"
    for conv, pool, pooled, conv_out in ((1, 2, 512, 2048), (3, 4, 256, 1024)):
        assert layers[conv]["fused_into"] == plan["steps"][pool]["name"] and layers[conv]["elements"] == 0
        assert layers[conv]["mem"]["l1_to_l2"] == 0 and "cluster_cycles" not in layers[conv]
        assert layers[pool]["fused_conv"] == plan["steps"][conv]["name"]
        assert layers[pool]["elements"] == pooled and layers[pool]["mismatches"] == 0
        assert layers[pool]["mem"]["l1_to_l2"] == pooled and "cluster_cycles" in layers[pool]
        off_plan, off = out["off"]
        assert "fused_into" not in off[conv] and off[conv]["elements"] == conv_out
        assert off[conv]["mem"]["l1_to_l2"] == conv_out and off[pool]["mem"]["l2_to_l1"] == conv_out
        assert layers[pool]["mem"]["l2_to_l1"] == off[conv]["mem"]["l2_to_l1"]  # the conv's input and weights
    assert off_plan["gap9"]["fusions"] == [] and all("fused_into" not in s for s in off_plan["steps"])


def test_fused_conv_output_has_no_arena_slot(golden):
    """The conv's own output never leaves the fused layer's L1 (its tiles are pooled there): the placement gives it
    no L2 (or L3) arena slot, its level is L1 in plan.json, and the L2 arena and peak shrink by what it held; with
    fusion off it is an L2 buffer as before."""
    d, plan = _plan(golden, "simple_cnn")
    for kernels in ("portable", "simd"):
        on, off = _g9(d, plan, kernels=kernels, fc_layers="off"), _g9(d, plan, kernels=kernels, fc_layers="off",
                                                                     fuse_pools="off")
        for conv in ("relu1", "relu2"):
            assert on.placement.buffer_level[conv] == "L1" and off.placement.buffer_level[conv] == "L2"
            assert conv not in on.placement.l2.buffers and conv not in on.placement.l3.buffers
            assert conv in off.placement.l2.buffers
        j, j_off = on.plan_json(), off.plan_json()
        assert j["buffers"]["relu1"] == "L1" and j_off["buffers"]["relu1"] == "L2"
        rows = {r["index"]: r for r in j["layers"]}
        assert rows[1]["levels"]["out"] == rows[3]["levels"]["out"] == "L1"
        # relu1 (2048 B) was the largest buffer: the arena is what the pools' outputs and the classifier need
        assert j["l2"]["arena_bytes"] < j_off["l2"]["arena_bytes"] - 1024
        assert j["l2"]["peak_bytes"] - j["l2"]["arena_bytes"] == j_off["l2"]["peak_bytes"] - j_off["l2"]["arena_bytes"]
        # the leading fused conv runs in the pools' task: no round of its own before it
        assert on.tasks[0][0] == 1 and on.task_steps(1) == len(on.tasks[0]) and 1 not in on.layers
