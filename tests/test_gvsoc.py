"""The gvsoc target: the GAP9 project's pulp-sdk Makefile, the installation look-up, and (with a
user's installation: PULP_SDK_HOME, GVSOC, PULP_RISCV_GCC_TOOLCHAIN) a bit-exact run on siracusa.

Without an installation (CI) everything but the run is checked: the Makefile builds exactly the
sources, include directories, defines and data files of CMakeLists.txt / plan.json's build, and a
missing piece of the installation is one line and exit 2.
"""

import json
import os
import re
import stat

import pytest
from conftest import run_tool

from codegen import gvsoc, toolchains
from codegen.generate import generate_project
from gapforge.errors import GapforgeError
from tools.run_generated import run_project

pytestmark = pytest.mark.skipif(not toolchains.cross_compiler_available()[0],
                                reason=f"rv32 cross compiler: {toolchains.cross_compiler_available()[1]}")


def _installed() -> tuple[bool, str]:
    try:
        gvsoc.find_installation()
    except GapforgeError as err:
        return False, f"no gvsoc installation: {err.one_line()}"
    return True, ""


def _make_vars(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Z_]+)\s*(\+?=)\s*(.*)$", line)
        if m:
            name, op, value = m.groups()
            out[name] = (out.get(name, "") + " " + value).strip() if op == "+=" else value
    return out


@pytest.fixture(scope="module")
def project(golden, tmp_path_factory):
    proj = tmp_path_factory.mktemp("gv") / "depthwise_cnn_gap9"
    generate_project(golden("depthwise_cnn"), proj, "gap9", 1)
    return proj


def test_makefile_builds_what_cmakelists_builds(project):
    plan = json.loads((project / "plan.json").read_text())
    mk = _make_vars((project / "Makefile").read_text())
    cmake = (project / "CMakeLists.txt").read_text()
    srcs = mk["PULP_APP_SRCS"].split()
    assert srcs == plan["build"]["sources"]
    assert all(f"\n    {s}" in cmake for s in srcs) and "pmsis_emu.c" not in mk["PULP_APP_SRCS"]
    flags = mk["PULP_CFLAGS"].split()
    assert [f[len("-I$(CURDIR)/"):] for f in flags if f.startswith("-I")] == plan["build"]["include_dirs"]
    defines = [f[2:] for f in flags if f.startswith("-D")]
    assert defines[:len(plan["build"]["defines"])] == plan["build"]["defines"]
    assert f"target_compile_definitions(${{TARGET_NAME}} PRIVATE {' '.join(plan['build']['defines'])})" in cmake
    # the pulp-sdk build's own: the compatibility header, the controller's stack (codegen/gap9/hw.py)
    stacks = plan["gap9"]["stacks"]
    assert defines[len(plan["build"]["defines"]):] == [
        "GF_PULP_SDK", f"GF_PULP_CC_STACK_BYTES={stacks['cluster_controller']['configured_bytes']}"]
    # the same data files as readfs_add_files, every file of data/
    data = sorted(f.name for f in (project / "data").iterdir())
    readfs = sorted(p.removeprefix("$(CURDIR)/data/") for p in mk["READFS_FILES"].split())
    assert readfs == data and all(f"data/{f}" in cmake for f in data)
    assert mk["PULP_APP"] == f"gapforge_{plan['network']}"
    assert "include $(RULES_DIR)/pmsis_rules.mk" in (project / "Makefile").read_text()
    assert (project / "runtime" / "gap9" / "gf_pulp_sdk.h").is_file()


def test_compat_header_is_included_only_by_the_pulp_sdk_build(project):
    gap9_h = (project / "runtime" / "gap9" / "gf_gap9.h").read_text()
    assert '#ifdef GF_PULP_SDK' in gap9_h and '#include "gf_pulp_sdk.h"' in gap9_h
    compat = (project / "runtime" / "gap9" / "gf_pulp_sdk.h").read_text()
    # every GAP9-only name the program uses and pulp-sdk lacks is mapped there
    main = (project / "src" / "main.c").read_text()
    tiled = (project / "runtime" / "gap9" / "gf_tiled.c").read_text()
    for name, target in (("pi_default_flash_conf", "pi_hyperflash_conf"),
                         ("pi_default_flash_conf_init", "pi_hyperflash_conf_init"),
                         ("pi_default_ram_conf", "pi_hyperram_conf"),
                         ("pi_default_ram_conf_init", "pi_hyperram_conf_init")):
        assert name in main and f"#define {name} {target}\n" in compat
    assert "cc_stack_size" in main and "uint32_t cc_stack_size;" in compat
    assert "pi_cluster_task_stacks(" in tiled and "pi_cluster_task_stacks(struct pi_cluster_task" in compat


def _fake_install(root, with_tc=True):
    sdk = root / "sdk"
    (sdk / "configs").mkdir(parents=True)
    (sdk / "configs" / "siracusa.sh").write_text("export TARGET_CHIP=SIRACUSA\n")
    (sdk / "tools" / "rules").mkdir(parents=True)
    (sdk / "tools" / "rules" / "pmsis_rules.mk").write_text("")
    gv = root / "gv" / "bin" / "gvsoc"
    gv.parent.mkdir(parents=True)
    gv.write_text("#!/bin/sh\n")
    gv.chmod(gv.stat().st_mode | stat.S_IXUSR)
    tc = root / "tc"
    if with_tc:
        (tc / "bin").mkdir(parents=True)
        cc = tc / "bin" / gvsoc.TOOLCHAIN_CC
        cc.write_text("#!/bin/sh\n")
        cc.chmod(cc.stat().st_mode | stat.S_IXUSR)
    return sdk, gv, tc


def test_installation_is_found_from_flags_or_environment(tmp_path):
    sdk, gv, tc = _fake_install(tmp_path)
    env = {"PULP_SDK_HOME": str(sdk), "GVSOC": str(gv), "PULP_RISCV_GCC_TOOLCHAIN": str(tc), "PATH": ""}
    inst = gvsoc.find_installation(environ=env)
    assert (inst.pulp_sdk, inst.gvsoc, inst.toolchain) == (sdk.resolve(), gv.resolve(), tc.resolve())
    # flags win over the environment; a gvsoc install directory is accepted for its bin/gvsoc
    inst = gvsoc.find_installation(str(sdk), str(gv.parent.parent), environ={"PULP_RISCV_GCC_TOOLCHAIN": str(tc)})
    assert inst.gvsoc == gv.resolve()


@pytest.mark.parametrize("drop, words", [
    ("PULP_SDK_HOME", "--pulp-sdk DIR or set PULP_SDK_HOME"),
    ("GVSOC", "--gvsoc PATH or set GVSOC"),
])
def test_missing_installation_is_one_line(tmp_path, drop, words):
    sdk, gv, tc = _fake_install(tmp_path)
    env = {"PULP_SDK_HOME": str(sdk), "GVSOC": str(gv), "PULP_RISCV_GCC_TOOLCHAIN": str(tc), "PATH": ""}
    del env[drop]
    with pytest.raises(GapforgeError, match=re.escape(words)):
        gvsoc.find_installation(environ=env)


def test_wrong_installation_paths_are_named(tmp_path):
    sdk, gv, tc = _fake_install(tmp_path, with_tc=False)
    (sdk / "configs" / "siracusa.sh").unlink()
    with pytest.raises(GapforgeError, match="siracusa.sh: not found"):
        gvsoc.find_installation(str(sdk), str(gv), environ={})
    (sdk / "configs" / "siracusa.sh").write_text("")
    with pytest.raises(GapforgeError, match="--platform pulp-open: the program loads its data through ReadFS"):
        gvsoc.find_installation(str(sdk), str(gv), platform="pulp-open", environ={})
    with pytest.raises(GapforgeError, match="not an executable gvsoc launcher"):
        gvsoc.find_installation(str(sdk), str(tmp_path / "nothing"), environ={})
    with pytest.raises(GapforgeError, match="needs the PULP toolchain: set PULP_RISCV_GCC_TOOLCHAIN"):
        gvsoc.find_installation(str(sdk), str(gv), environ={"PATH": ""})
    with pytest.raises(GapforgeError, match="bin/riscv32-unknown-elf-gcc: not found"):
        gvsoc.find_installation(str(sdk), str(gv), environ={"PULP_RISCV_GCC_TOOLCHAIN": str(tc)})


def test_cli_without_installation_exits_2_with_one_line(project, monkeypatch):
    for var in ("PULP_SDK_HOME", "GVSOC"):
        monkeypatch.delenv(var, raising=False)
    r = run_tool("run_generated", "--project", str(project), "--target", "gvsoc")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "PULP_SDK_HOME" in r.stderr
    res = json.loads((project / "results.json").read_text())
    assert res["passed"] is False and "PULP_SDK_HOME" in res["reasons"][0]
    r = run_tool("run_generated", "--project", str(project), "--target", "gap9-emu", "--platform", "siracusa")
    assert r.returncode == 2 and "apply to --target gvsoc only" in r.stderr


INSTALLED, WHY = _installed()


@pytest.mark.skipif(not INSTALLED, reason=WHY)
def test_bit_exact_on_gvsoc_siracusa(project):
    passed, res = run_project(project, "gvsoc", timeout=900, gvsoc={"platform": "siracusa"})
    plan = json.loads((project / "plan.json").read_text())
    assert passed, res["reasons"][:5]
    assert res["totals"]["compared"] == len(plan["steps"]) and res["totals"]["mismatches"] == 0
    assert res["plan_mismatches"] == []  # the executor's DMA bytes and tiles on gvsoc == planned
    assert res["gvsoc"]["platform"] == "siracusa" and res["totals"]["cycles"] > 0
    assert os.path.isfile(project / res["program"]["path"])
