"""The GAP9 tiler's objective (codegen/gap9/tiling.py tile_cost): estimated cycles = DMA bytes at the
platform's DMA bandwidth + a fixed cost per tile + the busiest core's work, the same for every tiling
kind. It stops cutting strided 1x1 convolutions into one-row tiles (issue 15)."""

from __future__ import annotations

import pytest

from codegen.gap9.hw import DEFAULT, PLATFORMS
from codegen.gap9.tiling import _conv_eval, conv_geometry, tile_cost, tile_step
from gapforge import ir
from gapforge.plan import build_plan


def test_tile_cost_reads_the_platform_figures():
    hw = DEFAULT
    assert tile_cost(hw, 0, 0, 0) == 0
    assert tile_cost(hw, 800, 0, 0) == round(800 / hw.dma_bytes_per_cycle)
    assert tile_cost(hw, 0, 3, 0) == 3 * hw.tile_fixed_cycles
    assert tile_cost(hw, 0, 0, 10) == round(10 * hw.core_cycles_per_unit)
    for p in PLATFORMS.values():
        assert "assumption" in p.sources["tile_cost"]  # the figures say what they rest on


@pytest.mark.parametrize("name", ["resnet18", "stride2_cnn"])
def test_strided_1x1_convs_are_not_cut_into_one_row_tiles(name, extracted):
    """The downsampling 1x1 convolutions (stride 2) fit L1 whole: one tile now, although one-row tiles
    skip the odd input rows and so move fewer DMA bytes; by the objective the one-row plan costs more."""
    net = ir.load(extracted(name))
    plan = build_plan(net)
    b = DEFAULT.with_budgets(None, None)
    seen = 0
    for step in plan.steps:
        if step.kind != "conv2d":
            continue
        g = conv_geometry(step, net)
        if (g.kh, g.kw, g.sy) != (1, 1, 2):
            continue
        seen += 1
        tp = tile_step(step, net, b)
        rows, _ = _conv_eval(g, g.o, 1, g.ow, DEFAULT)  # the former choice: every channel, one row per tile
        assert rows.n_tiles == g.oh > 1 and rows.dma_total < tp.dma_total  # fewer bytes, ...
        assert tp.n_tiles == 1 and tp.cost_cycles < rows.cost_cycles  # ... but more cycles by the estimate
    assert seen
