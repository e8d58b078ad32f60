"""Weights-only update of a built project, structured parameter patching, the layout probe, the GEMM template.

The compiled program holds only the layout (codegen/manifest.py); a retrained model of the same
architecture is written as data (tools/update_weights.py) and runs on the unchanged binary
bit-exact; an architecture change is refused with the diff and the project untouched; the layout
map (codegen/projectdata.py) is proven by single-hot writes through the real program
(tools/patch_params.py --probe); one compiled QuantLinear computes y = W x for many pairs
(tools/gemm_template.py).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from codegen import toolchains
from codegen.generate import generate_project
from codegen.manifest import Manifest
from codegen.packing import pack_rows
from codegen.projectdata import ProjectData
from gapforge.errors import GapforgeError
from tools import gemm_template, patch_params, update_weights
from tools.run_generated import run_project

MODELS = REPO / "tests" / "retrained"
RUN_AS = {"host": "host", "rv32": "rv32", "gap9": "gap9-emu"}


def _available(target: str) -> bool:
    return toolchains.available("host" if target == "gap9" else target)[0]


def tree_hash(root: Path, skip: tuple[str, ...] = ()) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = f.relative_to(root)
        if rel.parts[0] in skip:
            continue
        h.update(str(rel).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def mlp_projects(golden, tmp_path_factory):
    """project(target) -> a freshly generated and built mlp project (one per target, copied per test)."""
    root = tmp_path_factory.mktemp("wu")
    built: dict[str, Path] = {}

    def get(target: str, l1: int | None = None, l2: int | None = None) -> Path:
        key = f"{target}-{l1}-{l2}"
        if key not in built:
            proj = root / key
            generate_project(golden("mlp"), proj, target, 1, l1_budget=l1, l2_budget=l2)
            passed, _ = run_project(proj, RUN_AS[target])
            assert passed
            built[key] = proj
        return built[key]

    return get


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


@pytest.mark.parametrize("target", ["host", "rv32", "gap9"])
def test_retrained_weights_run_on_the_same_binary(target, mlp_projects, tmp_path, capsys):
    if not _available(target):
        pytest.skip(f"{target} toolchain not available")
    proj = _copy(mlp_projects(target), tmp_path / "proj")
    old = ProjectData(proj)
    old_golden = [old.golden(i) for i in range(len(old.steps))]
    program = tree_hash(proj, skip=("data", "plan.json", "results.json"))
    passed, before = run_project(proj, RUN_AS[target], no_build=True)
    assert passed and before["program"]["rebuilt"] is False

    assert update_weights.main(["--project", str(proj), "--model-file", str(MODELS / "mlp_seed1.py")]) == 0
    assert "UPDATED" in capsys.readouterr().out
    assert tree_hash(proj, skip=("data", "plan.json", "results.json")) == program  # sources and binary untouched

    passed, after = run_project(proj, RUN_AS[target], no_build=True)
    assert passed, after["reasons"]
    assert after["program"]["sha256"] == before["program"]["sha256"]
    assert after["totals"]["compared"] == len(old.steps) and after["totals"]["mismatches"] == 0
    new = ProjectData(proj)
    assert bytes(new.params) != bytes(old.params)
    # the data really changed: every computed layer's new golden (= the device output) differs from the old one
    for i, s in enumerate(new.steps):
        if s["kernel"]:
            assert (new.golden(i) != old_golden[i]).any(), s["name"]


def test_gap9_project_generated_with_pools_unfused_accepts_new_weights(golden, tmp_path, capsys):
    """A gap9 project generated with --fuse-pools off is regenerated unfused (plan.json generate.fuse_pools):
    the retrained simple_cnn (same architecture, new weights; its pools fuse by default) updates its data only."""
    if not _available("gap9"):
        pytest.skip("gap9 toolchain not available")
    proj = tmp_path / "proj"
    generate_project(golden("simple_cnn"), proj, "gap9", 1, fuse_pools="off")
    passed, before = run_project(proj, "gap9-emu")
    assert passed, before["reasons"]
    old = ProjectData(proj)
    assert old.plan["generate"]["fuse_pools"] == "off" and old.plan["gap9"]["fusions"] == []
    program = tree_hash(proj, skip=("data", "plan.json", "results.json"))

    assert update_weights.main(["--project", str(proj), "--model-file", str(MODELS / "simple_cnn_seed1.py")]) == 0
    assert "UPDATED" in capsys.readouterr().out
    assert tree_hash(proj, skip=("data", "plan.json", "results.json")) == program
    new = ProjectData(proj)
    assert new.plan["generate"]["fuse_pools"] == "off" and new.plan["gap9"]["fusions"] == []
    assert bytes(new.params) != bytes(old.params)
    passed, after = run_project(proj, "gap9-emu", no_build=True)
    assert passed, after["reasons"]
    assert after["totals"]["compared"] == len(new.steps) and after["totals"]["mismatches"] == 0


def test_old_golden_mismatches_on_the_updated_program(mlp_projects, tmp_path):
    """The old golden files, written as data (valid CRCs) beside the new weights: the program reports mismatches."""
    proj = _copy(mlp_projects("host"), tmp_path / "proj")
    old = ProjectData(proj)
    old_golden = [old.golden(i) for i in range(len(old.steps))]
    assert update_weights.main(["--project", str(proj), "--model-file", str(MODELS / "mlp_seed1.py")]) == 0
    d = ProjectData(proj)
    d.write_golden(0, d.golden(0))  # the new quantized input stays (the old one is for the old input scale)
    for i in range(1, len(d.steps)):
        d.write_golden(i, old_golden[i])
    d.save()
    passed, res = run_project(proj, "host", no_build=True)
    assert not passed
    mism = {layer["name"]: layer["mismatches"] for layer in res["layers"]}
    assert all(mism[s["name"]] > 0 for s in d.steps if s["kernel"]), mism


@pytest.mark.parametrize("change,expect", [
    ("width", "layer 'relu1' (layout.steps): params.weight.shape: [64, 64] -> [48, 64]"),
    ("bits", "layer 'relu2' (layout.steps): params.weight.bit_width: 8 -> 4"),
    ("layer", "only in the new model: extra.1"),
])
def test_architecture_change_is_refused(change, expect, mlp_projects, tmp_path, monkeypatch, capsys):
    proj = _copy(mlp_projects("host"), tmp_path / "proj")
    before = tree_hash(proj)
    monkeypatch.setenv("MLP_CHANGE", change)
    assert update_weights.main(["--project", str(proj), "--model-file", str(MODELS / "mlp_changed.py")]) == 1
    out = capsys.readouterr().out
    assert "NOT UPDATED" in out and "nothing was written" in out
    assert expect in out
    assert tree_hash(proj) == before


def test_stale_or_corrupt_data_is_refused_at_load(mlp_projects, tmp_path):
    host = _copy(mlp_projects("host"), tmp_path / "host")
    exe = host / "build" / "host" / "network"

    def run(data: Path):
        return toolchains.run("host", exe, cwd=data)

    if _available("rv32"):  # the data of another layout (the rv32 project's: another layout hash)
        other = tmp_path / "other"
        shutil.copytree(mlp_projects("rv32") / "data", other)
        res = run(other)
        assert res.returncode == 2 and "GF ERROR data layout" in res.stdout and "GF LAYER" not in res.stdout
    for name, pos in (("params.bin", 100), ("manifest.bin", 20), ("golden_001.bin", 3)):
        bad = tmp_path / f"bad_{name}"
        shutil.copytree(host / "data", bad)
        raw = bytearray((bad / name).read_bytes())
        raw[pos] ^= 0x10
        (bad / name).write_bytes(bytes(raw))
        res = run(bad)
        assert res.returncode == 2, name
        assert "CHECKSUM" in res.stdout and "FAIL" in res.stdout, res.stdout
    m = Manifest.from_bytes((host / "data" / "manifest.bin").read_bytes())
    assert len(m.regions) == len(ProjectData(host).plan["params"]["regions"])


def test_layout_map_matches_the_packing():
    """param_offset of packed rows agrees with codegen/packing.py on random weights (2 and 4 bits)."""
    rng = np.random.default_rng(3)
    for bits, k in ((4, 7), (2, 13), (8, 5)):
        w = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(3, k))
        packed = pack_rows(w, bits)
        rb = packed.shape[1]
        for o in range(3):
            for j in range(k):
                byte, bit = o * rb + (j * bits) // 8, (j * bits) % 8
                v = (int(packed.reshape(-1)[byte]) >> bit) & ((1 << bits) - 1)
                v = v - (1 << bits) if v >= 1 << (bits - 1) else v
                assert v == w[o, j]


def test_patch_params_cli(mlp_projects, tmp_path, capsys):
    proj = _copy(mlp_projects("host"), tmp_path / "proj")
    assert patch_params.main(["--project", str(proj), "--list"]) == 0
    out = capsys.readouterr().out
    assert "relu1: int8 PyTorch order" in out
    d = ProjectData(proj)
    r = d.region("relu1", "w")
    assert patch_params.main(["--project", str(proj), "--layer", "relu1", "--offset", "3,5"]) == 0
    assert f"byte {r['offset'] + 3 * 64 + 5}, bit 0" in capsys.readouterr().out
    assert patch_params.main(["--project", str(proj), "--layer", "relu1", "--index", "3,5", "--value", "-7"]) == 0
    d = ProjectData(proj)
    assert d.read_param("relu1", "w")[3, 5] == -7 and d.params[r["offset"] + 3 * 64 + 5] == 256 - 7
    passed, res = run_project(proj, "host", no_build=True)  # valid data (CRCs rewritten), the golden is now stale
    assert res["checksum"]["failed"] == 0 and res["exit_code"] in (0, 1)
    with pytest.raises(GapforgeError, match="outside the 8-bit signed range"):
        d.write_element("relu1", "w", (0, 0), -128)  # narrow range: -127..127
    with pytest.raises(GapforgeError, match="index \\[64, 0\\] outside shape"):
        d.param_offset("relu1", "w", 64, 0)
    w = np.full((32, 64), 127)
    d.write_param("relu2", "w", w)  # 64 * 127 * 255 + bias: fits int32
    assert (d.read_param("relu2", "w") == 127).all()


def test_layout_probe_host(golden, mlp_projects):
    rep = patch_params.layout_probe(mlp_projects("host"), golden("mlp"), "host", count=3, progress=False)
    assert rep["passed"], patch_params.format_probe(rep)
    assert {r["layer"] for r in rep["layers"]} == {"relu1", "relu2", "fc3"}
    assert all(r["exact"] == r["probes"] == 3 for r in rep["layers"])
    assert rep["corruption"]["refused"]


def test_layout_probe_gap9_packed_and_l3(tmp_path):
    """gap9: packed 2- and 4-bit rows (odd row length), streamed from L3 in row chunks (small L1 and L2)."""
    if not _available("gap9"):
        pytest.skip("host compiler not available")
    import argparse

    from gapforge.extract import extract, model_inputs, write_network
    from gapforge.inputs import select
    from gapforge.modelsrc import load_model
    from tools.generate_golden_outputs import generate

    src = load_model(argparse.Namespace(model_file=str(MODELS / "lowbit_mlp.py"), test_network=None,
                                        model_class=None, input_shape=None, input_quant=None))
    net = tmp_path / "net"
    write_network(extract(src), net, model_inputs(src))
    x, labels, what = select(net, None, 1)
    generate(net, x, labels, what, progress=False)
    proj = tmp_path / "proj"
    generate_project(net, proj, "gap9", 1, l1_budget=1024, l2_budget=4700)  # params 664 B: L3 below ~4.8 KB
    d = ProjectData(proj)
    assert d.plan["gap9"]["params_level"] == "L3"
    assert [d.weight_format(layer)[0] for layer in d.layers()] == [2, 4]
    assert max(layer["tiles"] for layer in d.plan["gap9"]["layers"]) > 1  # weights fetched in several chunks
    rep = patch_params.layout_probe(proj, net, "gap9-emu", count=3, progress=False)
    assert rep["passed"], patch_params.format_probe(rep)
    assert sum(r["exact"] for r in rep["layers"]) == 12


def test_gemm_template_100_pairs(tmp_path):
    gemm = gemm_template.GemmTemplate(12, 5, "host", tmp_path / "gemm")
    try:
        rep = gemm_template.run_pairs(gemm, 100, seed=7, progress=False)
    finally:
        gemm.close()
    assert rep["exact"] == rep["pairs"] == 100, rep["failures"][:3]
    assert rep["runs"] == 100
