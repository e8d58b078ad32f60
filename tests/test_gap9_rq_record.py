"""gap9: a per-tensor requantization of one source keeps its constants in the layer's run record.

The FC binds m, sh and o once (gf_tiled.c bind_rq, from the parameters in L2 or L3) into the run record, which core
0 copies into L1 before the layer; the kernels read them there (tile_requant), the SIMD kernels the one precomputed
gf_rqc_t beside them (gf_requant_t.pre). So no tile moves them and the L1 parameter buffer holds the bias (and
tables) only; the planner counts the same bytes (tiling.ParamSpec.in_record) and the emulation checks them."""

from __future__ import annotations

import json

import pytest

from codegen import toolchains
from codegen.gap9.program import build_gap9_program
from codegen.gap9.tiling import ParamSpec, conv_geometry
from codegen.generate import generate_project
from gapforge import ir
from gapforge.plan import build_plan
from tools.run_generated import run_project

# L1 tile budgets that cut a stride2_cnn convolution over its output channels (portable: relu3 in 5 tiles of 7
# channels, relu2 too; SIMD, whose per-core work buffers need more: relu2 in 5)
SMALL_L1 = {"portable": 1200, "simd": 20000}


def test_param_spec_leaves_per_tensor_constants_to_the_record():
    one = ParamSpec(bias=True, sources=1, per_channel=False)
    assert one.in_record and one.l1_bytes(7) == 32 and one.l1_bytes(16) == 64
    assert one.payload(7, 32, 7) == 28 and one.payload(32, 32, 32) == 128  # the bias alone, merged or not
    no_bias = ParamSpec(bias=False, sources=1, per_channel=False)
    assert no_bias.l1_bytes(8) == 0 and no_bias.payload(8, 8, 8) == 0  # nothing to load at all
    lut = ParamSpec(bias=False, sources=1, per_channel=False, table_bytes=256)
    assert lut.l1_bytes(4) == 256 and lut.payload(4, 4, 4) == 256
    # two sources (add) and per-channel requantization keep their constants in the parameter buffer
    add = ParamSpec(bias=False, sources=2, per_channel=False)
    assert not add.in_record and add.l1_bytes(1) == 8 + 8 + 8 and add.payload(1, 1, 1) == 24
    pc = ParamSpec(bias=True, sources=1, per_channel=True)
    assert not pc.in_record and pc.l1_bytes(4) == 16 + 16 + 8 + 32 and pc.payload(4, 4, 4) == 16 + 16 + 8 + 32


@pytest.mark.parametrize("kernels", ["portable", "simd"])
def test_per_tensor_layers_move_only_their_bias(golden, kernels):
    """stride2_cnn's convolutions (per-tensor requantization, one source): each tile's parameter DMA is its channels'
    bias, the L1 parameter buffer the tile's bias (no m / sh / o, no SIMD copies)."""
    d = golden("stride2_cnn")
    plan = build_plan(ir.load(d))
    g = build_gap9_program(plan, d / "test_cases" / "test_case_1", None, None, kernels=kernels, fc_layers="off",
                           tile_l1_budget=SMALL_L1[kernels])
    convs = [i for i, t in enumerate(g.tiles) if t.tiling == "conv"]
    assert convs and any(g.tiles[i].counts[0] > 1 for i in convs)  # a layer cut over its output channels
    for i in convs:
        step, tp = plan.steps[i], g.tiles[i]
        assert step.requant is not None and step.requant.channels == 1 and step.requant.m.shape[0] == 1
        geo = conv_geometry(step, plan.net)
        spatial = tp.counts[1] * tp.counts[2]
        assert tp.dma["p"] == geo.o * 4 * (1 if "p" in tp.resident else spatial), step.output
        assert tp.buffers["p"] == (tp.tile["co"] * 4 + 7) // 8 * 8, step.output
        _, rec, _ = g.layers[i]
        assert (rec.rq_sources, rec.rq_channels) == (1, 1) and rec.buf_p == tp.buffers["p"]


@pytest.mark.skipif(not toolchains.cross_compiler_available()[0],
                    reason=f"rv32 cross compiler: {toolchains.cross_compiler_available()[1]}")
@pytest.mark.parametrize("kernels", ["portable", "simd"])
def test_per_tensor_constants_from_the_record_are_bit_exact_on_gap9_emu(golden, tmp_path, kernels):
    """Bit-exact on gap9-emu with the executor's DMA bytes as planned, one tile per layer (the default L1) and with
    the layers cut over their output channels (a small L1): then each tile moves its bias in one command where the
    bias, multipliers, shifts and offsets took four (relu3, a 1x1 conv of whole maps: input, weights, bias, output,
    at most 4 commands a tile, 7 before; portable: cut into 5 tiles)."""
    for l1 in (None, SMALL_L1[kernels]):
        proj = tmp_path / f"{kernels}_{l1}"
        generate_project(golden("stride2_cnn"), proj, "gap9", 1, kernels=kernels, fc_layers="off", l1_budget=l1)
        passed, res = run_project(proj, "gap9-emu", timeout=600)
        assert passed, res["reasons"][:5]
        assert res["plan_mismatches"] == [] and res["totals"]["mismatches"] == 0
        plan = json.loads((proj / "plan.json").read_text())
        rows = {r["name"]: r for r in plan["gap9"]["layers"]}
        layers = {layer["name"]: layer for layer in res["layers"]}
        for name in ("relu1", "relu2", "relu3"):
            assert layers[name]["mem"]["l2_to_l1"] == rows[name]["dma_bytes"]["l2_to_l1"]
        r3 = layers["relu3"]["mem"]
        if l1 is not None:
            assert max(rows[n]["tile_counts"][0] for n in ("relu2", "relu3")) > 1
            if kernels == "portable":
                assert rows["relu3"]["tile_counts"][0] > 1
        assert r3["dma_cmds"] <= 4 * r3["tiles"], r3
