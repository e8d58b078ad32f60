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
