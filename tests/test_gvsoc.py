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
import subprocess

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
    # the same compile options (plan.json build.cflags); -fms-extensions: the compat header's wrapped struct
    assert flags[:len(plan["build"]["cflags"]) + 1] == [*plan["build"]["cflags"], "-fms-extensions"]
    assert f"target_compile_options(${{TARGET_NAME}} PRIVATE {' '.join(plan['build']['cflags'])})" in cmake
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


def _symbol_sections(obj) -> dict[str, str]:
    """{symbol: section} of an rv32 object file (objdump -t)."""
    out = subprocess.run([toolchains.RV32_CC.replace("gcc", "objdump"), "-t", str(obj)], capture_output=True,
                         text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1].startswith("gf_"):
            found[parts[-1]] = parts[-3]
    return found


def test_descriptor_tables_leave_the_fc_private_bank_in_the_pulp_sdk_build(project, tmp_path):
    """pulpos' siracusa link puts .rodata in L2 private bank 0 with the FC stack and gives the FC
    allocator the rest; the network's tables (~290 B a step) filled it for transformer_multiblock and
    pulpos' L1 allocator was NULL. The tables carry GF_TABLE: a .l2_data section (the shared banks)
    in the pulp-sdk build (gf_pulp_sdk.h), .rodata elsewhere (gf_gap9.h). The layer descriptors are in the
    layers' records (gf_net_recs, bound at run time): writable .data, which pulpos' link also puts in the shared
    banks (its .l2_data output section)."""
    net_c = (project / "src" / "network.c").read_text()
    tables = ("gf_regions", "gf_layer_ops", "gf_steps")
    assert not re.search(r"^(static )?const ", net_c, re.M)  # every file-scope table is placed
    assert all(re.search(rf"^GF_TABLE const \w+ {t}\[", net_c, re.M) for t in tables)
    compat = (project / "runtime" / "gap9" / "gf_pulp_sdk.h").read_text()
    attr = re.search(r"^#define GF_TABLE (.+)$", compat, re.M).group(1)
    section = re.fullmatch(r'__attribute__\(\(section\("(\.l2_data\.[\w.]+)"\)\)\)', attr).group(1)
    assert "#ifndef GF_TABLE" in (project / "runtime" / "gap9" / "gf_gap9.h").read_text()
    plan = json.loads((project / "plan.json").read_text())
    cc = [toolchains.RV32_CC, "--specs=picolibc.specs", "-march=rv32imac", "-mabi=ilp32", *plan["build"]["cflags"],
          "-Werror", *[f"-I{project / d}" for d in plan["build"]["include_dirs"]], f"-I{project / 'runtime/gap9/emu'}",
          *[f"-D{d}" for d in plan["build"]["defines"]], "-c", str(project / "src" / "network.c")]
    for name, extra, where in (("pulp", [f"-DGF_TABLE={attr}"], section), ("gap9", [], ".rodata")):
        obj = tmp_path / f"{name}.o"
        subprocess.run([*cc, *extra, "-o", str(obj)], check=True, capture_output=True)
        placed = _symbol_sections(obj)
        assert {t: placed[t] for t in tables} == dict.fromkeys(tables, where)
        assert placed["gf_net_recs"] == ".data"
    # the boot check runs first in the pulp-sdk build: an overflow is one line, not a crash in pulpos
    main_c = (project / "src" / "main.c").read_text()
    body = main_c[main_c.index("int main(void)\n{"):]
    assert body.index("gf_pulp_fc_data_check()") < body.index("crc_init()") < body.index("open_devices()")
    assert "static inline int gf_pulp_fc_data_check(void)" in compat and "GF ERROR" in compat


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
    assert r.returncode == 2 and "--platform siracusa: the project was planned for gap9" in r.stderr


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
    # the cluster's own pi_perf counters: every cluster step has them, the busiest core is one that forked
    planned = {r["name"]: r for r in plan["gap9"]["layers"]}
    for layer in res["layers"]:
        p = planned[layer["name"]]
        if p["tiling"] == "fc":
            assert "cluster_cycles" not in layer
        else:
            assert layer["cluster_cycles"] > layer["cluster_instr"] > 0
            assert layer["cluster"]["cycles_core"] < p["cores"] and layer["cluster"]["cc_instr"] > 0
    assert res["counters"]["cycles"].startswith("fabric controller")
    # the timed inference pass: every step back to back, the network's outputs equal again, the same DMA bytes
    inf = res["inference"]
    assert inf["outputs_match"] and inf["outputs"] == len(plan["gap9"]["inference"]["outputs"]) > 0
    assert 0 < inf["cycles"] < res["totals"]["inference_cycles"] and inf["instret"] > 0
    assert inf["mac_per_cycle"] == round(res["totals"]["macs"] / inf["cycles"], 4)
    assert inf["dma_bytes"] == sum(layer["mem"][k] for layer in res["layers"] if "mem" in layer
                                   for k in ("l3_to_l2", "l2_to_l1", "l1_to_l2", "l2_to_l3"))


def test_cluster_counters_are_parsed_and_profiled_beside_the_fcs():
    """GF CLUSTER (the busiest forked core's pi_perf counters) next to GF PERF (the FC's) in
    results.json and in the profile rows, each column named for what it counts."""
    from codegen.profile import rows
    from codegen.results import COUNTERS, parse_output

    out = ("GF LAYER 1 conv kind=conv2d kernel=gf_conv2d_3x3 elements=8 mismatches=0 max_diff=0\n"
           "GF PERF 1 conv instret=1873 cycles=43483 macs=18432\n"
           "GF CLUSTER 1 conv cycles_max=47169 instr_max=20656 core=0 instr_core=3 cc_cycles=2143 cc_instr=464\n"
           "GF MEM 1 conv tiles=2 l1=4096 l3_to_l2=0 l2_to_l1=100 l1_to_l2=50 l2_to_l3=0 dma_cmds=3\n"
           "GF LAYER 2 view kind=reshape kernel=- elements=8 mismatches=0 max_diff=0\n"
           "GF PERF 2 view instret=26 cycles=114 macs=0\n")
    layers = parse_output(out)["layers"]
    assert layers[0]["cycles"] == 43483 and layers[0]["instret"] == 1873  # the FC's, unchanged
    assert layers[0]["cluster_cycles"] == 47169 and layers[0]["cluster_instr"] == 20656
    assert layers[0]["cluster"] == {"cycles_core": 0, "instr_core": 3, "cc_cycles": 2143, "cc_instr": 464}
    assert "cluster_cycles" not in layers[1]
    results = {"layers": layers, "totals": {}, "passed": True}
    _, lrows, _ = rows({"steps": []}, results, "n", "gvsoc")
    assert (lrows[0]["fc_cycles"], lrows[0]["cluster_cycles"], lrows[0]["cluster_instr"]) == (43483, 47169, 20656)
    assert lrows[0]["instructions"] == "" and lrows[0]["tiles"] == 2  # the FC's instret is not the step's work
    _, lrows, _ = rows({"steps": []}, results, "n", "gap9-emu")  # host nanoseconds: not a profile figure
    assert (lrows[0]["fc_cycles"], lrows[0]["cluster_cycles"], lrows[0]["cluster_instr"]) == ("", "", "")
    for target in ("gap9-emu", "gap9-qemu", "gvsoc"):
        assert set(COUNTERS[target]) == {"cycles", "instret", "cluster_cycles", "cluster_instr"}


def test_deploy_run_gvsoc_is_checked_before_any_work(tmp_path, monkeypatch):
    """tools/deploy.py --target gap9 --run gvsoc: the same installation look-up, one line and exit 2
    before anything is extracted; --run and --pulp-sdk/--gvsoc are refused where they do not apply."""
    for var in ("PULP_SDK_HOME", "GVSOC"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "d"
    r = run_tool("deploy", "--test-network", "simple_cnn", "--out", str(out), "--target", "gap9", "--run", "gvsoc")
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0
    assert "PULP_SDK_HOME" in r.stderr and not out.exists()
    r = run_tool("deploy", "--test-network", "simple_cnn", "--out", str(out), "--target", "host", "--run", "gvsoc")
    assert r.returncode == 2 and "--run applies to --target gap9 only" in r.stderr
    r = run_tool("deploy", "--test-network", "simple_cnn", "--out", str(out), "--target", "gap9", "--gvsoc", "x")
    assert r.returncode == 2 and "apply to --run gvsoc only" in r.stderr


@pytest.mark.skipif(not INSTALLED, reason=WHY)
def test_many_step_network_is_bit_exact_on_gvsoc_siracusa(golden, tmp_path):
    """transformer_multiblock (81 steps): its tables once overflowed L2 private bank 0 (see above)."""
    proj = tmp_path / "tmb"
    generate_project(golden("transformer_multiblock"), proj, "gap9", 1, platform="siracusa")
    passed, res = run_project(proj, "gvsoc", timeout=900, gvsoc={"platform": "siracusa"})
    assert passed, res["reasons"][:5]
    assert res["totals"]["compared"] == res["totals"]["layers"] == 81 and res["totals"]["mismatches"] == 0
    assert res["totals"]["cluster_cycles"] > 0


@pytest.mark.skipif(not INSTALLED, reason=WHY)
def test_deploy_runs_on_gvsoc_siracusa(tmp_path):
    out = tmp_path / "d"
    r = run_tool("deploy", "--test-network", "simple_cnn", "--out", str(out), "--target", "gap9", "--run", "gvsoc",
                 "--skip-fidelity")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    summary = json.loads((out / "deploy_summary.json").read_text())
    assert summary["run"]["target"] == "gvsoc" and summary["run"]["mismatches"] == 0 and summary["run"]["cycles"] > 0
    res = json.loads((out / "project_gap9" / "results.json").read_text())
    assert res["target"] == "gvsoc" and res["gvsoc"]["platform"] == "siracusa" and res["plan_mismatches"] == []


def test_profile_suite_gvsoc_without_installation_is_one_line(tmp_path, monkeypatch):
    for var in ("PULP_SDK_HOME", "GVSOC"):
        monkeypatch.delenv(var, raising=False)
    r = run_tool("profile_suite", "--networks", "mlp", "--targets", "gvsoc", "--workers", "0", "--out",
                 str(tmp_path / "p"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0
    assert "PULP_SDK_HOME" in r.stderr and not (tmp_path / "p").exists()


def test_profiles_written_before_fc_cycles_still_merge(tmp_path):
    """merge_profile_runs: a run without the gvsoc column (written before it existed) merges, empty there."""
    from codegen import profile

    old = tmp_path / "old"
    old.mkdir()
    for name, cols in profile.COLUMNS.items():
        cols = [c for c in cols if c != "fc_cycles"]
        row = {c: "" for c in cols}
        row.update(network="mlp", target="rv32", index=0, phase="fc", passed=True, instructions=7)
        profile.write_csv(old / name, cols, [row])
    r = run_tool("merge_profile_runs", str(old), "--out", str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr
    rows = profile.read_csv(tmp_path / "m" / "tests.csv")
    assert rows[0]["fc_cycles"] == "" and rows[0]["instructions"] == "7"
    profile.write_csv(old / "tests.csv", ["network", "target", "bogus"], [{"network": "a", "target": "b", "bogus": 1}])
    r = run_tool("merge_profile_runs", str(old), "--out", str(tmp_path / "m2"))
    assert r.returncode == 2 and "columns differ" in r.stderr and "bogus" in r.stderr


@pytest.mark.skipif(not INSTALLED, reason=WHY)
def test_profile_suite_on_gvsoc_counts_what_gap9_emu_counts(tmp_path):
    from codegen import profile

    r = run_tool("profile_suite", "--networks", "simple_cnn", "--targets", "gap9-emu", "gvsoc", "--workers", "0",
                 "-q", "--out", str(tmp_path / "p"))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    tests = {t["target"]: t for t in profile.read_csv(tmp_path / "p" / "tests.csv")}
    assert tests["gvsoc"]["passed"] == "True" and int(tests["gvsoc"]["fc_cycles"]) > 0
    assert tests["gvsoc"]["dma_bytes"] == tests["gap9-emu"]["dma_bytes"] != ""
    layers = profile.read_csv(tmp_path / "p" / "layers.csv")
    emu = {r["name"]: r for r in layers if r["target"] == "gap9-emu"}
    for row in (r for r in layers if r["target"] == "gvsoc"):  # layer by layer: the same DMA bytes and tiles
        e = emu[row["name"]]
        assert (row["dma_in_bytes"], row["dma_out_bytes"], row["tiles"]) == (e["dma_in_bytes"], e["dma_out_bytes"],
                                                                            e["tiles"])
