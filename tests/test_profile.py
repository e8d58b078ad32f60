"""Measured profiles: tools/profile_suite.py (dask jobs vs serial), tools/merge_profile_runs.py."""

import pytest
from conftest import run_tool

from codegen import profile, toolchains
from tools.merge_profile_runs import load_run, merge
from tools.profile_suite import network_jobs, run_suite, write

pytestmark = pytest.mark.skipif(not toolchains.available("rv32")[0],
                                reason=f"rv32 target: {toolchains.available('rv32')[1]}")

NETS = ["mlp", "simple_cnn"]
TARGETS = ["rv32", "gap9-emu"]  # deterministic counters (host time is not)


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("serial")
    tables = run_suite(network_jobs(NETS, [], root / "runs"), TARGETS, root / "runs", workers=0, quiet=True)
    write(root, tables)
    return root, tables


def test_local_cluster_of_two_workers_gives_identical_csvs(serial_run, tmp_path):
    root, _ = serial_run
    tables = run_suite(network_jobs(NETS, [], tmp_path / "runs"), TARGETS, tmp_path / "runs", workers=2, quiet=True)
    write(tmp_path, tables)
    for name in profile.COLUMNS:
        assert (tmp_path / name).read_text() == (root / name).read_text(), name


def test_rows_are_the_measured_figures(serial_run):
    root, tables = serial_run
    tests = {(t["network"], t["target"]): t for t in tables["tests.csv"]}
    assert set(tests) == {(n, t) for n in NETS for t in TARGETS} and all(t["passed"] for t in tests.values())
    runs = root / "runs"
    import json

    for n in NETS:
        res = json.loads((runs / n / "rv32" / "results.json").read_text())
        assert tests[(n, "rv32")]["instructions"] == res["totals"]["instret"] > 0
        plan = json.loads((runs / n / "gap9-emu" / "plan.json").read_text())
        planned = {r["name"]: r for r in plan["gap9"]["layers"]}
        rows = [r for r in tables["layers.csv"] if r["network"] == n and r["target"] == "gap9-emu"]
        assert len(rows) == len(plan["steps"])
        for r in rows:
            p = planned[r["name"]]
            if p["tiling"] != "fc":  # measured DMA bytes and tiles == the plan's
                assert r["dma_in_bytes"] == p["dma_bytes"]["l3_to_l2"] + p["dma_bytes"]["l2_to_l1"]
                assert r["dma_out_bytes"] == p["dma_bytes"]["l1_to_l2"] + p["dma_bytes"]["l2_to_l3"]
                assert r["tiles"] == p["tiles"] and r["cores_planned"] == p["cores"]
        assert tests[(n, "gap9-emu")]["dma_bytes"] == sum(r["dma_in_bytes"] + r["dma_out_bytes"] for r in rows)
        # pool fusion (on by default): the conv's row (it ran nothing) and the pool's row are marked
        fused = {(f["conv"], f["pool"]) for f in plan["gap9"]["fusions"]}
        assert fused if n == "simple_cnn" else not fused
        assert {(r["name"], r["fused_into"]) for r in rows if r["fused_into"]} == fused
        assert {(r["fused_conv"], r["name"]) for r in rows if r["fused_conv"]} == fused
    sub = [s for s in tables["subops.csv"] if s["target"] == "gap9-emu"]
    assert sub and all(s["phase"].startswith("dma:") and s["bytes"] > 0 for s in sub)


def test_merge_later_runs_override_earlier_ones(serial_run, tmp_path):
    root, tables = serial_run
    a = load_run(root)
    b = {name: [dict(r) for r in rows if r["network"] == "mlp" and r["target"] == "rv32"] for name, rows in a.items()}
    for r in b["tests.csv"]:
        r["instructions"] = "1"
    b["layers.csv"] = b["layers.csv"][:1]  # the re-run has fewer layers: no stale ones survive
    merged = merge([a, b])
    t = {(r["network"], r["target"]): r for r in merged["tests.csv"]}
    assert len(t) == len(a["tests.csv"]) and t[("mlp", "rv32")]["instructions"] == "1"
    assert len([r for r in merged["layers.csv"] if (r["network"], r["target"]) == ("mlp", "rv32")]) == 1
    assert len(merged["layers.csv"]) == len(a["layers.csv"]) - (len(
        [r for r in a["layers.csv"] if (r["network"], r["target"]) == ("mlp", "rv32")]) - 1)
    out = tmp_path / "merged"
    proc = run_tool("merge_profile_runs", str(root), str(root), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "tests.csv").read_text() == (root / "tests.csv").read_text()


def test_bad_arguments_are_one_line_errors(tmp_path):
    proc = run_tool("profile_suite", "--networks", "no_such_net", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "no_such_net" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_tool("merge_profile_runs", str(tmp_path), "--out", str(tmp_path / "m"))
    assert proc.returncode == 2 and "tests.csv" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_kernels_reach_the_gap9_projects_only(tmp_path):
    """--kernels simd: the gap9 projects are generated with the SIMD kernels (plan.json records it)
    and still pass; the rv32 project has no such choice and keeps the portable ones."""
    import json

    proc = run_tool("profile_suite", "--networks", "mlp", "--targets", "rv32", "gap9-emu", "--kernels", "simd",
                    "--workers", "0", "-q", "--out", str(tmp_path / "k"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    plan = json.loads((tmp_path / "k" / "runs" / "mlp" / "gap9-emu" / "plan.json").read_text())
    assert plan["generate"]["kernels"] == "simd" and "GF_K_SIMD" in plan["build"]["defines"]
    assert json.loads((tmp_path / "k" / "runs" / "mlp" / "rv32" / "plan.json").read_text())["generate"]["kernels"] == \
        "portable"


def test_fuse_pools_off_reaches_the_gap9_projects_only(tmp_path):
    """--fuse-pools off (calibration runs): simple_cnn's gap9 project runs every pool as its own layer (plan.json
    generate.fuse_pools, no gap9.fusions, no fused rows in layers.csv); the rv32 project has no such choice."""
    import json

    proc = run_tool("profile_suite", "--networks", "simple_cnn", "--targets", "rv32", "gap9-emu", "--fuse-pools",
                    "off", "--workers", "0", "-q", "--out", str(tmp_path / "f"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    plan = json.loads((tmp_path / "f" / "runs" / "simple_cnn" / "gap9-emu" / "plan.json").read_text())
    assert plan["generate"]["fuse_pools"] == "off" and plan["gap9"]["fusions"] == []
    assert "fuse_pools" not in json.loads((tmp_path / "f" / "runs" / "simple_cnn" / "rv32" / "plan.json")
                                          .read_text())["generate"]
    rows = profile.read_csv(tmp_path / "f" / "layers.csv")
    assert rows and not any(r["fused_into"] or r["fused_conv"] for r in rows)
