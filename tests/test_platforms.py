"""Platforms as data: codegen/gap9/hw.py PLATFORMS (gap9, siracusa, pulp-open) chosen with --platform.

Planning, budgets, stacks and the reports read the chosen entry and record its name; the PMSIS
emulation gets the platform's memories; pulp-open (no working flash/L3 path) refuses plans that
need L3; an unknown name is one line and exit 2.
"""

import json

import pytest
from conftest import run_tool

from codegen import toolchains
from codegen.gap9.hw import DEFAULT, PLATFORMS, gvsoc_platforms, platform
from codegen.generate import generate_project
from gapforge.errors import GapforgeError
from tools.run_generated import gvsoc_platform, run_project

KIB = 1024
needs_cross = pytest.mark.skipif(not toolchains.cross_compiler_available()[0],
                                 reason=f"rv32 cross compiler: {toolchains.cross_compiler_available()[1]}")


def test_every_platform_figure_has_a_source_or_is_an_assumption():
    assert list(PLATFORMS) == ["gap9", "siracusa", "pulp-open"] and platform(None) is DEFAULT
    for p in PLATFORMS.values():
        for key in ("l1_size", "l2_size", "l2_reserved", "l3_size", "clock_hz", "compute_cores", "dma", "stacks"):
            assert p.sources.get(key), (p.name, key)
        assert p.l1_budget > 0 and p.l2_budget > 0 and p.controller_core == p.compute_cores
        rec = p.to_json()
        assert rec["name"] == p.name and rec["l1_size"] == p.l1_size and rec["sources"] == p.sources
    sir, po = PLATFORMS["siracusa"], PLATFORMS["pulp-open"]
    # the facts: siracusa 8 cluster cores and 256 KiB L1 with HyperRAM; pulp-open 64 KiB, no L3
    assert (sir.compute_cores, sir.l1_size, sir.l3_works) == (8, 256 * KIB, True) and sir.l3_size > 0
    assert (po.l1_size, po.l3_works, po.l3_size) == (64 * KIB, False, 0)
    assert gvsoc_platforms() == ("siracusa", "pulp-open") and DEFAULT.gvsoc is None
    with pytest.raises(GapforgeError, match=r"--platform 'gap10': unknown platform \(choose from gap9, siracusa, "
                                            r"pulp-open\)"):
        platform("gap10")


@needs_cross
@pytest.mark.parametrize("name", ["siracusa", "pulp-open"])
def test_platform_sets_the_budgets_recorded_in_plan_json(name, golden, tmp_path):
    hw = PLATFORMS[name]
    g = generate_project(golden("simple_cnn"), tmp_path / name, "gap9", 1, platform=name)
    plan = json.loads((tmp_path / name / "plan.json").read_text())
    rec = plan["gap9"]
    assert rec["platform"]["name"] == name and rec["budgets"]["platform"] == name
    assert rec["budgets"]["l1_budget"] == hw.l1_budget != DEFAULT.l1_budget
    assert rec["budgets"]["l2_budget"] == hw.l2_budget != DEFAULT.l2_budget
    assert rec["budgets"]["l1_size"] == hw.l1_size and plan["generate"]["platform"] == name
    assert all(r["l1_bytes"] <= hw.l1_budget for r in rec["layers"])
    # the emulation is built with the platform's memories
    assert f"GF_EMU_L1_SIZE={hw.l1_size}u" in plan["build_emu"]["defines"]
    report = (tmp_path / name / "plan_report.txt").read_text()
    assert report.startswith(f"{name} plan for 'simple_cnn'") and g.placement.budgets.hw is hw


@needs_cross
@pytest.mark.parametrize("net", ["simple_cnn", "big_mlp_l3"])
def test_siracusa_at_its_l1_is_bit_exact_on_gap9_emu(net, golden, tmp_path):
    proj = tmp_path / net
    r = run_tool("generate_c_code", "--network", str(golden(net)), "--out", str(proj), "--target", "gap9",
                 "--platform", "siracusa")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"siracusa plan for '{net}'")
    passed, res = run_project(proj, "gap9-emu", timeout=600, platform="siracusa")
    plan = json.loads((proj / "plan.json").read_text())
    assert passed, res["reasons"][:5]
    assert res["totals"]["mismatches"] == 0 and res["totals"]["compared"] == len(plan["steps"])
    assert res["plan_mismatches"] == [] and res["platform"] == "siracusa"
    sir = PLATFORMS["siracusa"]  # the tiles' budget and the layer control block
    assert int(res["emulator_budgets"]["GF_EMU_L1_BUDGET"]) == sir.l1_budget + sir.l1_control
    if net == "big_mlp_l3":  # tiles even at siracusa's 256 KiB (gap9-emu checks every tile's DMA)
        assert sum(r["tiles"] for r in plan["gap9"]["layers"] if r["tiling"] != "fc") > \
            sum(1 for r in plan["gap9"]["layers"] if r["tiling"] != "fc")


@needs_cross
def test_pulp_open_refuses_a_plan_that_needs_l3(golden, tmp_path):
    r = run_tool("generate_c_code", "--network", str(golden("big_mlp_l3")), "--out", str(tmp_path / "p"),
                 "--target", "gap9", "--platform", "pulp-open")
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr
    assert "platform pulp-open: the plan needs" in r.stderr and "has no working L3" in r.stderr
    assert not (tmp_path / "p").exists()


@needs_cross
def test_bad_platform_and_mismatched_runs_are_one_line(golden, tmp_path):
    net = str(golden("simple_cnn"))
    for tool, args in (("generate_c_code", ["--network", net, "--out", str(tmp_path / "q"), "--target", "gap9"]),
                       ("deploy", ["--test-network", "simple_cnn", "--out", str(tmp_path / "d"), "--target", "gap9"]),
                       ("run_generated", ["--project", str(tmp_path / "q"), "--target", "gap9-emu"]),
                       ("estimate", ["--network", net]),
                       ("profile_suite", ["--out", str(tmp_path / "s")]),
                       ("sweep", ["--out", str(tmp_path / "w")])):
        r = run_tool(tool, *args, "--platform", "gap10")
        assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, (tool, r.stderr)
        assert "invalid choice: 'gap10' (choose from 'gap9', 'siracusa', 'pulp-open')" in r.stderr, (tool, r.stderr)
    proj = tmp_path / "g"
    generate_project(golden("simple_cnn"), proj, "gap9", 1)
    r = run_tool("run_generated", "--project", str(proj), "--target", "gap9-emu", "--platform", "siracusa")
    assert r.returncode == 2 and "--platform siracusa: the project was planned for gap9" in r.stderr
    r = run_tool("run_generated", "--project", str(proj), "--target", "host", "--platform", "gap9")
    assert r.returncode == 2 and "--platform applies to the gap9 project's runs" in r.stderr
    r = run_tool("generate_c_code", "--network", net, "--out", str(tmp_path / "h"), "--target", "host",
                 "--platform", "siracusa")
    assert r.returncode == 2 and "platforms, memory budgets, fault injection, --fc-layers and --fuse-pools apply to the gap9 target" in r.stderr


def test_gvsoc_runs_on_the_planned_platform_or_one_that_holds_its_budgets():
    def plan(name, l1, l2):
        return {"target": "gap9", "gap9": {"platform": {"name": name}, "budgets": {"l1_budget": l1, "l2_budget": l2}}}

    gap9 = plan("gap9", DEFAULT.l1_budget, DEFAULT.l2_budget)
    assert gvsoc_platform(gap9, None) == "siracusa"  # GAP9's gvsoc model is not public: siracusa holds it
    sir = PLATFORMS["siracusa"]
    assert gvsoc_platform(plan("siracusa", sir.l1_budget, sir.l2_budget), None) == "siracusa"
    assert gvsoc_platform(plan("pulp-open", 1, 1), None) == "pulp-open"
    with pytest.raises(GapforgeError, match="--platform pulp-open: the project was planned for gap9"):
        gvsoc_platform(gap9, "pulp-open")
