"""GAP9 memory hierarchy: tiling, L2/L3 placement and the cluster executor, run on the PMSIS emulation.

The gap9 project's own sources are built on the host against codegen/runtime/gap9/emu, which
enforces the budgets, completes DMA only at the wait (poisoning destinations before) and runs
the 8 cores as deterministic coroutines. Every layer must match the golden reference, and the
executor's and the emulator's byte counters must equal the planner's predictions.
"""

import json

import pytest
from conftest import DEPLOYABLE, run_tool

from codegen.gap9.hw import DEFAULT, parse_bytes
from codegen.gap9.tiling import _rows, tile_step
from codegen.generate import generate_project
from gapforge import ir
from gapforge.plan import build_plan
from tools.run_generated import run_project

KIB = 1024
GAP9_NETS = DEPLOYABLE


def _gap9(golden, name, tmp_path, l1=None, l2=None, fault="none", tile_l1=None, **run):
    proj = tmp_path / f"{name}_gap9"
    g = generate_project(golden(name), proj, "gap9", 1, l1_budget=l1, l2_budget=l2, fault=fault,
                         tile_l1_budget=tile_l1)
    passed, res = run_project(proj, "gap9-emu", timeout=300, **run)
    return g, passed, res, proj


def _assert_exact(passed, res, proj):
    plan = json.loads((proj / "plan.json").read_text())
    assert passed, res["reasons"][:5]
    assert res["totals"]["compared"] == len(plan["steps"]) and res["totals"]["mismatches"] == 0
    assert res["plan_mismatches"] == []  # measured DMA bytes, tiles and L1/L2/L3 peaks == planned
    for layer in res["layers"]:
        planned = next(r for r in plan["gap9"]["layers"] if r["name"] == layer["name"])
        if planned["tiling"] != "fc":
            assert layer["mem"]["tiles"] == planned["tiles"]
            assert layer["emu"]["l1_peak"] <= plan["gap9"]["budgets"]["l1_budget"]
            assert layer["emu"]["l2_peak"] <= plan["gap9"]["budgets"]["l2_budget"]
    return plan


@pytest.mark.parametrize("name", GAP9_NETS)
def test_bit_exact_with_full_budgets(name, golden, tmp_path):
    _assert_exact(*_gap9(golden, name, tmp_path, l1=128 * KIB, l2=1536 * KIB)[1:])


@pytest.mark.parametrize("name", GAP9_NETS)
def test_bit_exact_with_16k_l1(name, golden, tmp_path):
    g, passed, res, proj = _gap9(golden, name, tmp_path, l1=16 * KIB, l2=1536 * KIB)
    plan = _assert_exact(passed, res, proj)
    assert all(r["l1_bytes"] <= 16 * KIB for r in plan["gap9"]["layers"])


def test_sub_byte_weights_are_packed_to_fit_l3(golden, tmp_path):
    """11.2 M weights of 4 bits: 11.2 MB one per byte (more than the 8 MiB L3), 5.6 MB packed."""
    g, passed, res, proj = _gap9(golden, "thirdparty_resnet18_4w4a", tmp_path, l1=128 * KIB, l2=1536 * KIB)
    plan = _assert_exact(passed, res, proj)
    assert plan["gap9"]["params_level"] == "L3"
    assert 11_000_000 / 2 < len(g.program.params) < 8 * 1024 * KIB
    packed = [c for c in g.program.calls if c.w_bits == 4]
    assert len(packed) >= 16 and all(t.buffers.get("wp") for t, c in zip(g.tiles, g.program.calls) if c.w_bits == 4)


def test_packing_round_trip_and_layout():
    import numpy as np

    from codegen.packing import pack_rows, row_bytes, unpack_rows
    rng = np.random.default_rng(0)
    for bits, lo, hi in ((4, -8, 8), (2, -2, 2)):
        for k in (1, 3, 9, 16, 27):
            w = rng.integers(lo, hi, size=(6, k))
            packed = pack_rows(w, bits)
            assert packed.shape == (6, row_bytes(k, bits)) and (unpack_rows(packed, k, bits) == w).all()
    assert pack_rows(np.array([[1, -1, -8, 7]]), 4).tolist() == [[0xF1, 0x78]]  # low nibble first


def test_model_larger_than_l3_is_refused_clearly(golden):
    from dataclasses import replace

    from codegen.gap9.hw import Budgets
    from codegen.gap9.placement import PlacementError, place
    from codegen.gap9.tiling import tile_step
    from codegen.program import build_program
    from gapforge.errors import GapforgeError
    d = golden("big_mlp_l3")
    plan = build_plan(ir.load(d))
    prog = build_program(plan, d / "test_cases" / "test_case_1", pack_weights=True)
    small = Budgets(replace(DEFAULT, l3_size=1024 * KIB), DEFAULT.l1_budget, DEFAULT.l2_budget)
    tiles = [tile_step(s, plan.net, small, pack=True) for s in plan.steps]
    with pytest.raises(PlacementError) as err:
        place(prog, plan, tiles, small)
    assert isinstance(err.value, GapforgeError) and "more than the 1048576 bytes of L3" in err.value.one_line()


def test_weights_beyond_l2_are_streamed_from_l3(golden, tmp_path):
    g, passed, res, proj = _gap9(golden, "big_mlp_l3", tmp_path, l1=128 * KIB, l2=1536 * KIB)
    plan = _assert_exact(passed, res, proj)
    assert len(g.program.params) > 1536 * KIB and plan["gap9"]["params_level"] == "L3"
    streamed = sum(r["dma_bytes"]["l3_to_l2"] for r in plan["gap9"]["layers"])
    assert streamed >= len(g.program.params) - 64  # every weight crosses L3 -> L2 at least once
    assert sum(layer["emu"]["l3_to_l2"] for layer in res["layers"] if "emu" in layer) == streamed


def test_weights_and_activations_in_l3_at_once(golden, tmp_path):
    g, passed, res, proj = _gap9(golden, "resnet18", tmp_path, l1=16 * KIB, l2=40 * KIB)
    plan = _assert_exact(passed, res, proj)
    levels = plan["gap9"]["buffers"]
    assert plan["gap9"]["params_level"] == "L3" and "L3" in levels.values() and "L2" in levels.values()
    assert any(r["levels"].get("out") == "L3" and r["dma_bytes"]["l2_to_l3"] > 0 for r in plan["gap9"]["layers"])


def test_single_buffered_fallback_for_tiny_l1(golden, tmp_path):
    """With 4 KiB of L1 some 3x3 convolutions fit only one buffer per operand: loads then wait for compute."""
    g, passed, res, proj = _gap9(golden, "resnet18", tmp_path, l1=4 * KIB)
    _assert_exact(passed, res, proj)
    single = [t for t in g.tiles if t.n_tiles > 1 and not t.double_buffered]
    assert single and all(t.l1_bytes <= 4 * KIB for t in g.tiles)


def test_large_spatial_cnn_is_multi_tile(golden, tmp_path):
    g, passed, res, proj = _gap9(golden, "large_cnn_96", tmp_path, l1=128 * KIB, l2=1536 * KIB)
    plan = _assert_exact(passed, res, proj)
    first_conv = next(r for r in plan["gap9"]["layers"] if r["tiling"] == "conv")
    assert first_conv["tiles"] > 1 and sum(r["tiles"] for r in plan["gap9"]["layers"]) > 10


def test_tile_too_large_is_caught(golden, tmp_path):
    g, passed, res, proj = _gap9(golden, "large_cnn_96", tmp_path, l1=16 * KIB, tile_l1=64 * KIB)
    assert not passed and res["exit_code"] == 3
    assert any("L1 budget exceeded" in r for r in res["reasons"]), res["reasons"]


def test_missing_dma_wait_is_caught(golden, tmp_path):
    g, passed, res, proj = _gap9(golden, "simple_cnn", tmp_path, fault="no-dma-wait")
    assert not passed
    assert res["totals"]["mismatches"] > 0 or any("never waited" in r for r in res["reasons"]), res["reasons"]


def test_missing_barrier_is_caught(golden, tmp_path):
    g, passed, res, proj = _gap9(golden, "simple_cnn", tmp_path, fault="no-barrier")
    assert not passed and res["totals"]["mismatches"] > 0, res["reasons"]
    # the correct program passes in both core orders
    for order in ("forward", "reverse"):
        g, passed, res, proj = _gap9(golden, "simple_cnn", tmp_path / order, core_order=order)
        assert passed, order


def test_smaller_emulator_budget_than_planned_fails_loudly(golden, tmp_path):
    g, passed, res, proj = _gap9(golden, "resnet_block", tmp_path, l1=64 * KIB)
    assert passed
    r = run_tool("run_generated", "--project", str(proj), "--target", "gap9-emu", "--l1-budget", "8K")
    assert r.returncode == 1 and "L1 budget exceeded" in r.stdout + r.stderr


def test_project_is_complete(golden, tmp_path):
    proj = tmp_path / "p"
    generate_project(golden("depthwise_cnn"), proj, "gap9", 1)
    cmake = (proj / "CMakeLists.txt").read_text()
    assert "setupos(" in cmake and "readfs_add_files(FILES" in cmake and "data/params.bin" in cmake
    for f in sorted((proj / "data").iterdir()):
        assert f"data/{f.name}" in cmake
    assert "pmsis_emu.c" not in cmake  # the SDK build uses the real PMSIS
    cfg = (proj / "sdk.config").read_text()
    assert "CONFIG_DRIVER_CLUSTER=y" in cfg and "CONFIG_DRIVER_READFS=y" in cfg
    main = (proj / "src" / "main.c").read_text()
    for api in ("pi_cluster_open", "pi_fs_mount", "pi_perf_read", "pi_l2_malloc"):
        assert api in main
    assert (proj / "plan_report.txt").read_text().startswith("GAP9 plan for 'depthwise_cnn'")
    doc = json.loads((proj / "plan.json").read_text())
    assert {"budgets", "params_level", "l2", "l3", "layers"} <= set(doc["gap9"])


def test_plan_report_cli(golden, tmp_path):
    r = run_tool("generate_c_code", "--network", str(golden("resnet_block")), "--out", str(tmp_path / "p"),
                 "--target", "gap9", "--l1-budget", "16K", "--l2-budget", "1.5M")
    assert r.returncode == 0, r.stderr
    assert "GAP9 plan for 'resnet_block': L1 budget 16384 B, L2 budget 1572864 B" in r.stdout
    r = run_tool("generate_c_code", "--network", str(golden("resnet_block")), "--out", str(tmp_path / "q"),
                 "--target", "gap9", "--l1-budget", "lots")
    assert r.returncode == 2 and "--l1-budget 'lots'" in r.stderr


# -- tiling, unit level ----------------------------------------------------------------------
def test_rows_hand_computed():
    # 3x3, stride 1, pad 1 on 8 rows: output rows 0..3 need input rows 0..4 with one padded row on top
    assert _rows(0, 4, 1, 1, 3, 1, 8) == (0, 5, 1, 0)
    assert _rows(4, 4, 1, 1, 3, 1, 8) == (3, 5, 0, 1)
    # stride 2, pad 0, 3x3 on 9 rows: output rows 2..3 read input rows 4..8
    assert _rows(2, 2, 2, 0, 3, 1, 9) == (4, 5, 0, 0)


def test_rows_of_windows_wholly_in_the_padding():
    """1x1, stride 2, pad 2 on 7 rows (6 output rows): output rows 0 and 5 read only padding.

    The box is the nearest input row (never empty: the fuzzer found a -1 row count, a 64 KiB DMA).
    """
    assert _rows(0, 1, 2, 2, 1, 1, 7) == (0, 1, 2, -2)   # window [-2, -1): before the input
    assert _rows(5, 1, 2, 2, 1, 1, 7) == (6, 1, -2, 2)   # window [8, 9): after it
    assert _rows(0, 2, 2, 2, 1, 1, 7) == (0, 1, 2, 0)    # rows 0..1 touch input row 0
    for o0 in range(6):  # pad_before + count + pad_after always spans the windows
        i0, n, pa, pb = _rows(o0, 1, 2, 2, 1, 1, 7)
        assert n >= 1 and 0 <= i0 < 7 and pa + n + pb == 1


def test_budget_parsing():
    assert parse_bytes("131072") == parse_bytes("128K") == parse_bytes("128KB") == 131072
    assert parse_bytes("1.5M") == 1572864
    with pytest.raises(ValueError):
        parse_bytes("-1")


@pytest.mark.parametrize("name", ["resnet18", "depthwise_cnn", "thirdparty_mobilenet_v1", "large_cnn_96"])
def test_tiles_fit_and_dma_is_minimal(name, extracted):
    net = ir.load(extracted(name))
    plan = build_plan(net)
    for l1 in (16 * KIB, 64 * KIB, DEFAULT.l1_budget):
        b = DEFAULT.with_budgets(l1, None)
        for step in plan.steps:
            tp = tile_step(step, net, b)
            assert tp.l1_bytes <= l1
            if tp.tiling == "conv":
                # the output is written exactly once, and a bigger budget never moves more bytes
                y = net.tensors[step.output]
                assert tp.dma["out"] == y.numel * (4 if y.dtype == "int32" else 1)
                bigger = tile_step(step, net, DEFAULT.with_budgets(2 * l1, None))
                assert bigger.dma_total <= tp.dma_total
