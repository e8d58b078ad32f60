"""tools/sweep.py on one tiny point per run (the big sweeps are run by hand: README, docs/characterize.md)."""

import csv

import pytest

from codegen import toolchains
from gapforge.characterize import families
from tools.sweep import knees, main

pytestmark = pytest.mark.skipif(not toolchains.available("rv32")[0],
                                reason=f"rv32 target: {toolchains.available('rv32')[1]}")


def test_sweep_point_through_pipeline_and_model(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["--family", "conv3x3", "--sizes", "8", "--workers", "0", "-q", "--out", str(out)]) == 0
    measured = list(csv.DictReader(open(out / "conv3x3_measured.csv")))
    model = list(csv.DictReader(open(out / "conv3x3_model.csv")))
    assert len(measured) == 1 and measured[0]["passed"] == "True" and measured[0]["regime"] == "L1"
    assert int(measured[0]["rv32_instructions"]) > int(measured[0]["macs"]) > 0
    assert {r["profile"] for r in model} >= {"gap9", "cpu", "gpu", "tpu", "kpu", "rv32"}
    gap9 = next(r for r in model if r["profile"] == "gap9")
    assert gap9["tiles"] == measured[0]["tiles"]  # the model's GAP9 tiles are the real plan's
    assert int(gap9["bytes_l2_to_l1"]) + int(gap9["bytes_l1_to_l2"]) == int(measured[0]["dma_bytes"])
    for png in ("tiles", "latency_energy", "throughput"):
        assert (out / f"conv3x3_{png}.png").stat().st_size > 1000


def test_knees_name_the_regime_change_and_throughput():
    measured = [{"size": "64", "regime": "L1-tiled", "gap9_mac_per_cycle": "1.5", "rv32_mac_per_instruction": ""},
                {"size": "128", "regime": "L3-weights", "gap9_mac_per_cycle": "0.3", "rv32_mac_per_instruction": ""}]
    model = [{"profile": "cpu", "size": "64", "regime": "on-chip", "mac_per_cycle": "40"},
             {"profile": "cpu", "size": "128", "regime": "off-chip-streaming", "mac_per_cycle": "10"}]
    lines = knees(measured, model)
    assert "64 -> 128: L1-tiled -> L3-weights, measured gap9-qemu MAC per critical-path instruction 1.500 -> 0.300" \
        in lines[0]
    assert "cpu" in lines[1] and "(x4.0 lower)" in lines[1]


def test_bad_sizes_are_refused():
    from gapforge.errors import GapforgeError

    with pytest.raises(GapforgeError, match="family conv takes CxH"):
        families.parse_size("conv", "32")
    with pytest.raises(GapforgeError, match="positive integer"):
        families.parse_size("mlp", "0")
    with pytest.raises(GapforgeError, match="takes TxE"):
        families.parse_size("transformer", "64")
    with pytest.raises(GapforgeError, match="multiple of its 2 heads"):
        families.parse_size("transformer", "8x65")


def test_transformer_point_through_pipeline_and_model(tmp_path):
    """One tiny transformer block (4 tokens x 16 features: LayerNorm, attention with softmax, GELU MLP,
    residual adds) through generation, gap9-emu and rv32 (bit-exact), and the cost model."""
    out = tmp_path / "tr"
    assert main(["--family", "transformer", "--tiny", "--workers", "0", "-q", "--no-plots", "--out", str(out)]) == 0
    measured = list(csv.DictReader(open(out / "transformer_measured.csv")))
    layers = list(csv.DictReader(open(out / "transformer_layers.csv")))
    model = list(csv.DictReader(open(out / "transformer_model.csv")))
    assert [(r["size"], r["passed"], r["regime"]) for r in measured] == [("4x16", "True", "L1")]
    rv = [r for r in layers if r["target"] == "rv32"]
    # 6 QuantLinear over 4 rows (q, k, v, proj 16 -> 16, fc1 16 -> 64, fc2 64 -> 16) and q k^T, p v (1 head)
    products = sum(int(r["macs"]) for r in rv if r["kernel"] in ("gf_linear_rows", "gf_matmul"))
    assert products == 4 * (4 * 16 * 16 + 2 * 16 * 64) + 2 * 4 * 4 * 16
    assert int(measured[0]["macs"]) == sum(int(r["macs"]) for r in rv) > products  # + LayerNorm / softmax rows
    kernels = {r["kernel"] for r in rv}
    assert {"gf_layernorm", "gf_softmax", "gf_matmul", "gf_linear_rows", "gf_lut", "gf_add"} <= kernels
    assert all(r["mismatches"] == "0" for r in layers if r["kernel"])
    assert sum(int(r["instructions"]) for r in layers if r["target"] == "rv32" and r["instructions"]) \
        == int(measured[0]["rv32_instructions"])
    gap9 = next(r for r in model if r["profile"] == "gap9")
    assert gap9["tiles"] == measured[0]["tiles"] and gap9["regime"] == "L1"


def test_a_point_the_gap9_tiler_refuses_is_recorded_with_its_reason():
    from tools.sweep import _measured_row

    reason = "linear 'fc1.output_quant': no tile fits the L1 budget of 104704 bytes (the smallest tile needs 151512)"
    failed = {"test": {"target": "gap9-emu", "passed": False, "reason": reason, "tiles": "", "dma_bytes": "",
                       "l1_peak": "", "l2_peak": "", "l3_peak": "", "params_bytes": "", "macs": ""},
              "plan": {}, "layers": [], "results": {"error_class": "TilingError"}}
    rv32 = {"test": {"target": "rv32", "passed": True, "reason": "", "instructions": 26490700,
                     "mac_per_instruction": "0.2714", "macs": 7190016, "params_bytes": 454832},
            "plan": {}, "layers": [], "results": {}}
    row = _measured_row(families.parse_size("transformer", "16x192"), {"name": "transformer_16x192"}, [failed, rv32])
    assert (row["regime"], row["passed"], row["rv32_instructions"]) == ("refused", False, 26490700)
    assert row["reason"] == f"gap9-emu: {reason}"
    failed["results"] = {"error_class": "PlacementError"}
    row = _measured_row(families.parse_size("transformer", "16x192"), {"name": "transformer_16x192"}, [failed, rv32])
    assert row["regime"] == "does-not-fit"
