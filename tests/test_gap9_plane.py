"""Whole input planes for a conv tile that covers whole output planes but whose windows read a crop of the input
(codegen/gap9/tiling.py TilePlan.in_plane, gf_layer_t.in_plane): the tiler's choice by hand-computed cases, and
the programs bit-exact on gap9-emu with the DMA bytes and commands as planned (issue 15)."""

from __future__ import annotations

import argparse
import json

import pytest
from test_gap9 import _assert_exact

from codegen import toolchains
from codegen.gap9.hw import DEFAULT, PLATFORMS
from codegen.gap9.tiling import _conv_eval, _rows, box_dma, conv_geometry, tile_step
from gapforge import ir
from gapforge.extract import extract, model_inputs, write_network
from gapforge.modelsrc import load_model
from gapforge.plan import build_plan
from tools.run_generated import run_project

MODEL = __import__("pathlib").Path(__file__).resolve().parent / "user_models" / "strided_crops.py"


def _conv(net: ir.Network, name: str):
    step = next(s for s in build_plan(net).steps if s.output == name)
    return step, conv_geometry(step, net)


def test_box_commands_mirror_the_executor():
    # whole planes: one contiguous run, split below 64 KiB
    assert box_dma(8, 8, 1, 16, 8, 8)[0] == 1 and box_dma(256, 256, 1, 2, 256, 256)[0] == 3
    # every column, a crop of the rows: 2-D commands of whole blocks of planes (65535 // 56 planes each)
    assert box_dma(8, 8, 1, 16, 7, 8)[0] == 1 and box_dma(8, 8, 1, 2000, 7, 8)[0] == 2
    # a crop of the columns: one 2-D command per plane (its rows as lines)
    assert box_dma(8, 8, 1, 16, 7, 7)[0] == 16 and box_dma(9, 9, 1, 4, 8, 8)[0] == 4
    # strided (2-D) commands: a crop of the columns, or of the rows of several planes; one plane's rows are 1-D
    assert box_dma(8, 8, 1, 16, 7, 7)[1] and box_dma(8, 8, 1, 16, 7, 8)[1] and box_dma(8, 8, 1, 1, 8, 7)[1]
    assert not box_dma(8, 8, 1, 16, 8, 8)[1] and not box_dma(8, 8, 1, 1, 7, 8)[1]


def test_stride2_cnn_conv2_loads_whole_planes(extracted):
    """conv2 of stride2_cnn: 3x3, stride 2, no padding over 16 x 8 x 8 (3 x 3 outputs): its windows read rows and
    columns 0-6, a 7 x 7 crop, 16 strided commands; the whole planes are one command and 16 x 15 bytes more."""
    net = ir.load(extracted("stride2_cnn"))
    step, g = _conv(net, "relu2")
    assert _rows(0, 3, 2, 0, 3, 1, 8) == (0, 7, 0, 0)
    for hw in (DEFAULT, PLATFORMS["siracusa"]):
        tp = tile_step(step, net, hw.with_budgets(None, None))
        assert tp.n_tiles == 1 and tp.in_plane
        assert tp.buffers["in"] == 16 * 8 * 8 and tp.dma["in"] == 16 * 8 * 8
        crop, _ = _conv_eval(g, g.o, g.oh, g.ow, hw)
        assert not crop.in_plane and crop.dma["in"] == 16 * 7 * 7 and crop.buffers["in"] == 16 * 7 * 7
        # the estimate: 15 commands saved and the strided load of a one-tile layer, 240 bytes more
        assert tp.cost_cycles == crop.cost_cycles + round(240 / hw.dma_bytes_per_cycle) - 15 * hw.dma_cmd_cycles \
            - hw.dma_strided_cycles
        assert tp.l1_bytes - crop.l1_bytes == 16 * 8 * 8 - 16 * 7 * 7  # one buffer (a single tile)
        # where the planes do not fit but the crop does, the crop stays
        tight = tile_step(step, net, hw.with_budgets(crop.l1_bytes, None))
        assert tight.n_tiles == 1 and not tight.in_plane and tight.dma == crop.dma
    # conv1 (3x3, stride 2, padding 1 over 16 x 16) and conv3 (1x1, stride 2 over 3 x 3) read every row and column
    for name in ("relu1", "relu3"):
        s, _ = _conv(net, name)
        assert not tile_step(s, net, DEFAULT.with_budgets(None, None)).in_plane


def test_multi_tile_layers_keep_their_boxes(extracted):
    """Only tiles of whole output planes load whole planes: at a 16 KiB L1 resnet18's row tiles keep their boxes."""
    net = ir.load(extracted("resnet18"))
    b = DEFAULT.with_budgets(16 * 1024, None)
    for step in build_plan(net).steps:
        tp = tile_step(step, net, b)
        if tp.in_plane:
            assert tp.tiling == "conv" and tp.counts[1:] == [1, 1]


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    from gapforge.inputs import select
    from tools.generate_golden_outputs import generate

    src = load_model(argparse.Namespace(test_network=None, model_file=str(MODEL), model_class=None, input_shape=None))
    d = tmp_path_factory.mktemp("strided_crops") / "net"
    write_network(extract(src), d, model_inputs(src))
    x, labels, what = select(d, None, 2)
    generate(d, x, labels, what, progress=False)
    return d


@pytest.mark.skipif(not toolchains.cross_compiler_available()[0],
                    reason=f"rv32 cross compiler: {toolchains.cross_compiler_available()[1]}")
@pytest.mark.parametrize("kernels", ["portable", "simd"])
def test_strided_crops_bit_exact_with_whole_planes(kernels, crops, tmp_path):
    """tests/user_models/strided_crops.py: its four convs load whole planes (a depthwise one, a column crop, a
    crop of the rows only: one 2-D command for all its planes, against one 1-D command, and a 1x1 one).
    Bit-exact on gap9-emu, every layer's DMA bytes as planned (_assert_exact), 4 commands per layer (input,
    weights, parameters, output)."""
    from codegen.generate import generate_project

    proj = tmp_path / f"crops_{kernels}"
    generate_project(crops, proj, "gap9", 1, kernels=kernels)
    passed, res = run_project(proj, "gap9-emu", timeout=300)
    plan = _assert_exact(passed, res, proj)
    rows = {r["name"]: r for r in plan["gap9"]["layers"]}
    assert all(rows[n].get("in_plane") for n in ("relu0", "relu1", "relu2", "relu3"))
    assert rows["relu0"]["l1_buffers"]["in"] == 4 * 20 * 20 and rows["relu1"]["l1_buffers"]["in"] == 4 * 9 * 9
    assert rows["relu2"]["l1_buffers"]["in"] == 8 * 9 * 4
    cmds = {lay["name"]: lay["mem"]["dma_cmds"] for lay in res["layers"]}
    assert all(cmds[n] == 4 for n in ("relu0", "relu1", "relu2", "relu3")), cmds
    text = (proj / "plan_report.txt").read_text()
    assert text.count("(whole input planes)") == 4


@pytest.mark.skipif(not toolchains.cross_compiler_available()[0],
                    reason=f"rv32 cross compiler: {toolchains.cross_compiler_available()[1]}")
def test_stride2_cnn_on_siracusa_with_simd_kernels(golden, tmp_path):
    """The network of the measurement (docs/gap9.md): conv2 in 4 DMA commands (19 with its 7 x 7 crop), bit-exact."""
    from codegen.generate import generate_project

    proj = tmp_path / "stride2_simd"
    generate_project(golden("stride2_cnn"), proj, "gap9", 1, platform="siracusa", kernels="simd")
    passed, res = run_project(proj, "gap9-emu", timeout=300)
    assert passed and res["plan_mismatches"] == [] and res["totals"]["mismatches"] == 0
    plan = json.loads((proj / "plan.json").read_text())
    conv2 = next(r for r in plan["gap9"]["layers"] if r["name"] == "relu2")
    # the input's 16 x 8 x 8 bytes (16 x 7 x 7 as a crop), 32 x 16 x 9 of weights, 152 of bias and requantization
    # whole input planes, the weights and the bias (the per-tensor constants are in the run record)
    assert conv2["in_plane"] and conv2["dma_bytes"]["l2_to_l1"] == 16 * 8 * 8 + 32 * 16 * 9 + 32 * 4
    assert next(lay for lay in res["layers"] if lay["name"] == "relu2")["mem"]["dma_cmds"] == 4
