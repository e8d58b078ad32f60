"""Generated C reproduces the golden reference bit for bit, layer by layer, on host and rv32."""

import json
import subprocess

import pytest
from conftest import DEPLOYABLE, REPO, run_tool

from codegen import toolchains
from codegen.generate import generate_project
from tools.run_generated import run_project

RV32_OK, RV32_WHY = toolchains.available("rv32")


def _run(golden, name, target, tmp_path, sanitize=False, case=1):
    proj = tmp_path / f"{name}_{target}"
    generate_project(golden(name), proj, target, case)
    passed, res = run_project(proj, target, timeout=300, sanitize=sanitize)
    return passed, res, proj


def _assert_bit_exact(passed, res, proj):
    plan = json.loads((proj / "plan.json").read_text())
    assert passed, res["reasons"]
    assert res["totals"]["compared"] == len(plan["steps"]) == res["totals"]["layers"]
    assert res["totals"]["mismatches"] == 0
    assert res["checksum"] == {"regions": len(plan["params"]["regions"]), "failed": 0}


@pytest.mark.parametrize("name", DEPLOYABLE)
def test_host_bit_exact(name, golden, tmp_path):
    _assert_bit_exact(*_run(golden, name, "host", tmp_path))


@pytest.mark.skipif(not RV32_OK, reason=f"rv32 toolchain: {RV32_WHY}")
@pytest.mark.parametrize("name", DEPLOYABLE)
def test_rv32_bit_exact(name, golden, tmp_path):
    passed, res, proj = _run(golden, name, "rv32", tmp_path)
    _assert_bit_exact(passed, res, proj)
    assert res["seconds"] < 60
    compute = [layer for layer in res["layers"] if layer["kernel"]]
    assert all(layer["instret"] > 0 for layer in compute)  # minstret counts from QEMU


@pytest.mark.parametrize("name", ["resnet_block", "implicit_cat", "depthwise_cnn"])
def test_host_sanitizers_report_nothing(name, golden, tmp_path):
    passed, res, proj = _run(golden, name, "host", tmp_path, sanitize=True)
    _assert_bit_exact(passed, res, proj)
    assert "runtime error" not in res["stderr_tail"] and "AddressSanitizer" not in res["stderr_tail"]


def test_second_test_case_and_corruption_are_detected(golden, tmp_path):
    passed, res, proj = _run(golden, "simple_cnn", "host", tmp_path, case=2)
    assert passed
    # a flipped weight byte fails the parameter checksum
    data = bytearray((proj / "data" / "params.bin").read_bytes())
    data[0] ^= 1
    (proj / "data" / "params.bin").write_bytes(data)
    passed, res = run_project(proj, "host")
    assert not passed and res["exit_code"] == 2 and res["checksum"]["failed"] == 1
    data[0] ^= 1
    (proj / "data" / "params.bin").write_bytes(data)
    plan = json.loads((proj / "plan.json").read_text())
    step = next(s for s in plan["steps"] if s["kind"].startswith("conv2d"))
    g = proj / "data" / step["golden"]
    raw = bytearray(g.read_bytes())
    raw[5] ^= 0x40
    g.write_bytes(raw)
    # a golden file that does not match its recorded CRC is refused
    passed, res = run_project(proj, "host")
    assert not passed and res["exit_code"] == 2 and any(step["golden"] in r for r in res["reasons"])
    # with a consistent CRC (data/manifest.bin, rewritten from the files as they are), the device
    # output differs from the golden on exactly that element
    from codegen.projectdata import ProjectData

    ProjectData(proj).save()
    r = run_tool("run_generated", "--project", str(proj), "--target", "host")
    assert r.returncode == 1 and "FAIL" in r.stdout
    res = json.loads((proj / "results.json").read_text())
    bad = [layer for layer in res["layers"] if layer["mismatches"]]
    assert [(layer["name"], layer["mismatches"], layer["max_diff"]) for layer in bad] == [(step["name"], 1, 64)]


def test_plan_file_reports_arena_and_liveness_bound(golden, tmp_path):
    proj = tmp_path / "p"
    generate_project(golden("resnet18"), proj, "host", 1)
    mem = json.loads((proj / "plan.json").read_text())["memory"]
    assert mem["arena_bytes"] >= mem["liveness_lower_bound_bytes"] > 0
    assert mem["arena_bytes"] == mem["liveness_lower_bound_bytes"] or mem["gap_reason"]


def test_generated_gap9_sources_compile_cleanly_with_strict_warnings(golden, tmp_path):
    """The gap9 project's sources build with -pedantic -Werror against the PMSIS API subset."""
    proj = tmp_path / "g"
    generate_project(golden("depthwise_cnn"), proj, "gap9", 1)
    srcs = [proj / "src" / "main.c", proj / "src" / "network.c", proj / "runtime" / "gap9" / "gf_tiled.c"]
    srcs += sorted((proj / "runtime").glob("*.c"))
    incs = [proj / "src", proj / "runtime", proj / "runtime" / "gap9", proj / "runtime" / "gap9" / "emu"]
    r = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only",
                        *[f"-I{i}" for i in incs], *map(str, srcs)], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for f in ("CMakeLists.txt", "sdk.config", "plan.json", "data/params.bin"):
        assert (proj / f).is_file(), f


def test_run_generated_rejects_bad_project(tmp_path):
    r = run_tool("run_generated", "--project", str(tmp_path), "--target", "host")
    assert r.returncode == 2 and "not a generated project" in r.stderr and "Traceback" not in r.stderr


def test_a_crash_is_attributed_to_the_first_step_without_a_result():
    """Killed by a signal: the reason names the step that was running (the programs flush stdout per step)."""
    from codegen.results import parse_output, verdict

    plan = {"steps": [{"name": n, "out_bytes": 4, "dtype": "GF_S8"} for n in ("add0", "shortcut", "fc")]}
    out = "GF BEGIN network=n\nGF LAYER 0 add0 kind=add kernel=gf_add elements=4 mismatches=0 max_diff=0\n"
    passed, reasons = verdict(plan, parse_output(out), -8)
    assert not passed and reasons[0] == "program killed by SIGFPE in step 1 'shortcut'"
    passed, reasons = verdict(plan, parse_output(out), 3)
    assert not passed and reasons[0] == "program exited with status 3"
    for tmpl in ("main.c.j2", "gap9_main.c.j2"):  # every step's lines leave the buffer before the next step runs
        text = (REPO / "codegen" / "templates" / tmpl).read_text()
        loop = text[text.index('printf("GF LAYER'):text.index('printf("GF RESULT')]
        assert "fflush(stdout);" in loop, tmpl
