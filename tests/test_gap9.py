"""GAP9 memory hierarchy: tiling, L2/L3 placement and the cluster executor, run on the PMSIS emulation.

The gap9 project's own sources are built on the host against codegen/runtime/gap9/emu, which
enforces the budgets, completes DMA only at the wait (poisoning destinations before) and runs
the 8 cores as deterministic coroutines. Every layer must match the golden reference, and the
executor's and the emulator's byte counters must equal the planner's predictions.
"""

import json
import re
import subprocess
from dataclasses import replace

import pytest
from conftest import DEPLOYABLE, run_tool

from codegen import toolchains
from codegen.callgraph import CallGraph, StackError
from codegen.gap9 import resources
from codegen.gap9.hw import DEFAULT, parse_bytes
from codegen.gap9.tiling import _rows, tile_step
from codegen.generate import generate_project
from gapforge import ir
from gapforge.plan import build_plan
from tools.run_generated import run_project

KIB = 1024
GAP9_NETS = DEPLOYABLE
# generation measures the cluster program's stacks and code with the rv32 cross compiler
pytestmark = pytest.mark.skipif(not toolchains.cross_compiler_available()[0],
                                reason=f"rv32 cross compiler: {toolchains.cross_compiler_available()[1]}")


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
    stacks, emu_env = plan["gap9"]["stacks"], res["emulator_budgets"]
    for layer in res["layers"]:
        planned = next(r for r in plan["gap9"]["layers"] if r["name"] == layer["name"])
        if planned["tiling"] != "fc":
            assert layer["mem"]["tiles"] == planned["tiles"]
            # the tiles within the budget; the task's one L1 block: the control block (in its reserve) and the
            # buffers of the task's largest layer
            control = plan["gap9"]["platform"]["l1_control"]
            task = next(t for t in plan["gap9"]["tasks"] if planned["index"] in t["steps"])
            most = max(r["l1_bytes"] for r in plan["gap9"]["layers"] if r["index"] in task["layers"])
            assert layer["emu"]["l1_peak"] == planned["l1_block_bytes"] == task["l1_block_bytes"] == most + control
            assert planned["l1_bytes"] <= plan["gap9"]["budgets"]["l1_budget"]
            assert layer["emu"]["l2_peak"] <= plan["gap9"]["budgets"]["l2_budget"]
            # every core ran on a guarded stack of the configured size x the measured host/rv32 ratio,
            # and used no more of it than the host call-graph bound (ratio x rv32 chain) allows
            for role, key in (("compute_core", "core_stack"), ("cluster_controller", "cc_stack")):
                ratio = float(emu_env["GF_EMU_CORE_STACK_RATIO" if key == "core_stack" else "GF_EMU_CC_STACK_RATIO"])
                assert layer["emu"][key] >= ratio * stacks[role]["configured_bytes"]
                assert 0 < layer["emu"][f"{key}_peak"] <= ratio * stacks[role]["chain_bytes"]
    code = plan["gap9"]["code"]
    assert 0 < code["bytes"] <= code["all_kernels_bytes"] and code["l2_reserved_bytes"] == DEFAULT.l2_reserved
    return plan


@pytest.mark.parametrize("name", GAP9_NETS)
def test_bit_exact_with_full_budgets(name, golden, tmp_path):
    _assert_exact(*_gap9(golden, name, tmp_path, l1=None, l2=1536 * KIB)[1:])


@pytest.mark.parametrize("name", GAP9_NETS)
def test_bit_exact_with_16k_l1(name, golden, tmp_path):
    g, passed, res, proj = _gap9(golden, name, tmp_path, l1=16 * KIB, l2=1536 * KIB)
    plan = _assert_exact(passed, res, proj)
    assert all(r["l1_bytes"] <= 16 * KIB for r in plan["gap9"]["layers"])


def test_sub_byte_weights_are_packed_to_fit_l3(golden, tmp_path):
    """11.2 M weights of 4 bits: 11.2 MB one per byte (more than the 8 MiB L3), 5.6 MB packed."""
    g, passed, res, proj = _gap9(golden, "thirdparty_resnet18_4w4a", tmp_path, l1=None, l2=1536 * KIB)
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
    g, passed, res, proj = _gap9(golden, "big_mlp_l3", tmp_path, l1=None, l2=1536 * KIB)
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
    g, passed, res, proj = _gap9(golden, "large_cnn_96", tmp_path, l1=None, l2=1536 * KIB)
    plan = _assert_exact(passed, res, proj)
    first_conv = next(r for r in plan["gap9"]["layers"] if r["tiling"] == "conv")
    # conv1 fused with pool1 (codegen/gap9/fusion.py): tiles of whole 2x2 windows, bit-exact across tiles
    assert first_conv["tiles"] > 1 and first_conv["fused_conv"] == "relu1" and first_conv["tile"]["oh"] % 2 == 0
    assert sum(r["tiles"] for r in plan["gap9"]["layers"]) > 5


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


# -- stacks, allocations, code size (issue 14) -----------------------------------------------
def test_stack_sizes_are_derived_from_the_measured_chains():
    """The configured stacks are the margin rule applied to the deepest rv32 chains of the runtime
    (every kernel); today's former 1 KiB compute-core stacks are refused with the chain named."""
    m = resources.measure_runtime(DEFAULT)
    cc, core = m.chain("cluster_controller"), m.chain("compute_core")
    assert DEFAULT.cc_stack == DEFAULT.stack_size_for(cc) and DEFAULT.core_stack == DEFAULT.stack_size_for(core)
    assert DEFAULT.l1_reserved == DEFAULT.cc_stack + 8 * DEFAULT.core_stack + DEFAULT.l1_control == \
        DEFAULT.l1_size - DEFAULT.l1_budget
    deepest = [f.name for f in m.chains["compute_core"]]
    assert deepest[0] == "tile_loop" and "gf_conv1x1_p_s8" in deepest  # the 1x1 kernel's 1520-B frame
    assert max(m.kernels.values()) == core > 2048 and m.kernels["gf_conv2d_1x1"] > 2048 > m.kernels["gf_conv2d_3x3"]
    resources.check_stacks(m, DEFAULT)
    with pytest.raises(StackError) as err:
        resources.check_stacks(m, replace(DEFAULT, core_stack=1024))
    msg = err.value.one_line()
    tile_loop = m.chains["compute_core"][0].bytes  # its frame, measured (the tile kernel call's arguments)
    assert f"compute core stack: the call chain tile_loop {tile_loop} > gf_tile_conv2d" in msg and f"needs {core} B" in msg
    assert "through the kernel gf_conv2d" in msg and "more than the 1024 B configured" in msg


def test_stack_analysis_refuses_what_it_cannot_bound(tmp_path):
    src = tmp_path / "t.c"
    src.write_text("extern void ext(int);\ntypedef void (*fn)(int);\n"
                   "int rec(int n) { volatile int a[8]; a[0] = n; return n ? rec(n - 1) + a[0] : 0; }\n"
                   "void ind(fn f) { f(1); }\nvoid dyn(int n) { volatile char b[n]; b[0] = 1; ext(b[0]); }\n"
                   "void ok(void) { ext(2); }\n")
    obj = toolchains.compile_objects([toolchains.HOST_CC, "-O2", *resources.STACK_FLAGS], [src], "host", tmp_path,
                                     aux=resources.AUX)[0]
    g = CallGraph([obj.with_suffix(".ci")], external={"ext": 100})
    assert sum(f.bytes for f in g.chain("ok")) >= 100
    for entry, text in (("rec", "recursion rec -> rec"), ("ind", "calls through a function pointer"),
                        ("dyn", "dynamically sized frame")):
        with pytest.raises(StackError, match=text):
            g.chain(entry)
    with pytest.raises(StackError, match="'ok' calls 'ext', which is defined in none"):
        CallGraph([obj.with_suffix(".ci")]).chain("ok")


def test_former_1k_core_stacks_overflow_in_the_emulation(golden, tmp_path):
    """depthwise_cnn's pointwise convolutions need about 2.2 KiB: with the 1 KiB compute-core stacks
    the project used to configure the emulated cores overflow (guard page); with the derived
    3 KiB they do not (bit-exact: test_bit_exact_with_full_budgets)."""
    g, passed, res, proj = _gap9(golden, "depthwise_cnn", tmp_path, fault="small-stack")
    assert not passed and res["exit_code"] == 3
    assert any(re.match(r"GF EMU ERROR stack overflow on core \d: .*\(the 1024 bytes the program configured", r)
               for r in res["reasons"]), res["reasons"]
    assert "CONFIG_CL_SLAVE_CORE_STACK_SIZE=1024" in (proj / "sdk.config").read_text()
    g, passed, res, proj = _gap9(golden, "depthwise_cnn", tmp_path / "derived")
    assert passed, res["reasons"][:3]
    assert f"CONFIG_CL_SLAVE_CORE_STACK_SIZE={DEFAULT.core_stack}" in (proj / "sdk.config").read_text()


def test_injected_deep_call_overflows_loudly(golden, tmp_path):
    g, passed, res, proj = _gap9(golden, "simple_cnn", tmp_path, fault="deep-call")
    assert not passed and res["exit_code"] == 3
    assert any(r.startswith("GF EMU ERROR stack overflow on core 0: the call chain ran past the end of its")
               for r in res["reasons"]), res["reasons"]
    plan = json.loads((proj / "plan.json").read_text())
    assert f"GF_FAULT_DEEP_CALL={8 * DEFAULT.core_stack}" in plan["build_emu"]["defines"]
    assert not any("FAULT" in d for d in plan["build"]["defines"])  # the SDK build is the real program


@pytest.mark.parametrize("level,nth", [("L1", 1), ("L1", 7), ("L2", 1), ("L2", 2), ("L2", 3), ("L3", 1), ("L3", 2)])
def test_failed_allocations_are_reported(golden, tmp_path_factory, monkeypatch, level, nth):
    """resnet18 with 16 KiB L1 / 40 KiB L2: L2 scratch, arena and bounce buffers, L3 arena and
    parameters, L1 tiles. The emulator makes the n-th allocation of a level fail as the SDK does
    (NULL / -1); the program names the level and the bytes and exits 2, with no NULL access."""
    proj = tmp_path_factory.getbasetemp() / "alloc_resnet18"
    if not (proj / "plan.json").exists():
        generate_project(golden("resnet18"), proj, "gap9", 1, l1_budget=16 * KIB, l2_budget=40 * KIB)
    monkeypatch.setenv("GF_EMU_FAIL_ALLOC", f"{level}:{nth}")
    passed, res = run_project(proj, "gap9-emu", timeout=300)
    assert not passed and res["exit_code"] == 2, res["reasons"][:3]
    errors = [r for r in res["reasons"] if r.startswith("GF ")]
    assert re.fullmatch(rf"GF ERROR {level} allocation of \d+ bytes failed \(.+\)", errors[0]), errors
    assert not any(r.startswith("GF EMU ERROR") for r in errors), errors


def test_code_size_is_measured_and_unused_kernels_are_not_linked(golden, tmp_path):
    proj = tmp_path / "p"
    generate_project(golden("simple_cnn"), proj, "gap9", 1)
    plan = json.loads((proj / "plan.json").read_text())
    code = plan["gap9"]["code"]
    assert plan["build"]["defines"][0] == "GF_KERNELS_SELECTED" and code["kernels"] == plan["build"]["defines"][1:]
    assert "GF_K_CONV2D_1X1" not in code["kernels"] and "GF_K_CONV2D_3X3" in code["kernels"]
    assert "GF_K_LINEAR" in code["kernels"] and "GF_K_LINEAR_S32" not in code["kernels"]  # int8 inputs only
    assert code["bytes"] < code["all_kernels_bytes"] / 3 and code["warning"] is None
    assert code["sections"]["text"] > 0 and code["bytes"] == sum(code["sections"].values())
    assert plan["gap9"]["l2"]["reserved_bytes"] == 160 * KIB and plan["gap9"]["l2"]["code_bytes"] == code["bytes"]
    assert "gf_ref" not in code["objects"] and "runtime/gf_ref.c" not in plan["build"]["sources"]
    report = (proj / "plan_report.txt").read_text()
    assert f"code: {code['bytes']} B linked ({code['all_kernels_bytes']} B with every kernel)" in report


SDK_HEADERS = ("pmsis.h", "bsp/bsp.h")  # provided by the GAP SDK


def _include_dirs_of_cmake(text: str) -> list[str]:
    m = re.search(r"target_include_directories\(\$\{TARGET_NAME\} PRIVATE ([^)]*)\)", text)
    return m.group(1).split()


def _unresolved_includes(proj, sources, include_dirs) -> list[str]:
    """Headers the preprocessor cannot find when the SDK build's sources are compiled with exactly
    these include directories (the SDK's own headers stubbed, as the GAP SDK provides them)."""
    sdk = proj / "sdk_stub"
    for h in SDK_HEADERS:
        (sdk / h).parent.mkdir(parents=True, exist_ok=True)
        (sdk / h).write_text("")
    missing = []
    for src in sources:
        cmd = ["gcc", "-MM", "-MG", *[f"-I{proj / d}" for d in include_dirs], f"-I{sdk}", str(proj / src)]
        deps = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.replace("\\\n", " ").split()[1:]
        missing += [f"{src}: {d}" for d in deps if not (proj / d).is_file() and not d.startswith("/")]
    return missing


def test_cmake_include_dirs_are_the_plans_and_resolve_every_include(golden, tmp_path):
    proj = tmp_path / "p"
    generate_project(golden("depthwise_cnn"), proj, "gap9", 1)
    plan = json.loads((proj / "plan.json").read_text())
    cmake = (proj / "CMakeLists.txt").read_text()
    dirs = _include_dirs_of_cmake(cmake)
    assert dirs == plan["build"]["include_dirs"] == ["src", "runtime", "runtime/gap9"]
    assert f"target_compile_definitions(${{TARGET_NAME}} PRIVATE {' '.join(plan['build']['defines'])})" in cmake
    # every quoted include of every source of the SDK build resolves against those directories
    assert _unresolved_includes(proj, plan["build"]["sources"], dirs) == []
    # ... which the list the template used to hard-code did not: main.c's gf_gap9.h is in runtime/gap9
    assert any("gf_gap9.h" in m for m in _unresolved_includes(proj, plan["build"]["sources"],
                                                                ["src", "runtime", "runtime/hal"]))
    quoted = {h for f in [*proj.glob("src/*"), *proj.glob("runtime/*.[ch]"), *proj.glob("runtime/gap9/*.[ch]")]
              for h in re.findall(r'#include "([^"]+)"', f.read_text())}
    assert set(SDK_HEADERS) <= quoted  # the whitelist is what the sources do include


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
    assert f"CONFIG_CL_MASTER_CORE_STACK_SIZE={DEFAULT.cc_stack}\n" in cfg
    assert f"CONFIG_CL_SLAVE_CORE_STACK_SIZE={DEFAULT.core_stack}\n" in cfg
    header = (proj / "src" / "network.h").read_text()
    assert f"#define GF_CC_STACK_BYTES {DEFAULT.cc_stack} " in header
    assert f"#define GF_CORE_STACK_BYTES {DEFAULT.core_stack} " in header
    main = (proj / "src" / "main.c").read_text()
    assert "cl_conf.cc_stack_size = GF_CC_STACK_BYTES;" in main and "GF_CORE_STACK_BYTES," in main
    for api in ("pi_cluster_open", "pi_fs_mount", "pi_perf_read", "pi_l2_malloc"):
        assert api in main
    assert (proj / "plan_report.txt").read_text().startswith("gap9 plan for 'depthwise_cnn'")
    doc = json.loads((proj / "plan.json").read_text())
    assert {"budgets", "params_level", "l2", "l3", "layers"} <= set(doc["gap9"])


def test_plan_report_cli(golden, tmp_path):
    r = run_tool("generate_c_code", "--network", str(golden("resnet_block")), "--out", str(tmp_path / "p"),
                 "--target", "gap9", "--l1-budget", "16K", "--l2-budget", "1.5M")
    assert r.returncode == 0, r.stderr
    assert "gap9 plan for 'resnet_block': L1 budget 16384 B, L2 budget 1572864 B" in r.stdout
    assert "platform gap9 (codegen/gap9/hw.py): GreenWaves GAP9" in r.stdout
    r = run_tool("generate_c_code", "--network", str(golden("resnet_block")), "--out", str(tmp_path / "q"),
                 "--target", "gap9", "--l1-budget", "lots")
    assert r.returncode == 2 and "--l1-budget 'lots'" in r.stderr
    r = run_tool("generate_c_code", "--network", str(golden("resnet_block")), "--out", str(tmp_path / "q"),
                 "--target", "gap9", "--l1-budget", "128K")  # the cluster stacks need part of the 128 KiB
    assert r.returncode == 2 and f"more than gap9's 131072 B of L1 minus the {DEFAULT.l1_reserved} B of " \
        "cluster stacks" in r.stderr and not (tmp_path / "q").exists()


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
def test_tiles_fit_and_cost_is_minimal(name, extracted):
    net = ir.load(extracted(name))
    plan = build_plan(net)
    for l1 in (16 * KIB, 64 * KIB, DEFAULT.l1_budget):
        b = DEFAULT.with_budgets(l1, None)
        for step in plan.steps:
            tp = tile_step(step, net, b)
            assert tp.l1_bytes <= l1
            if tp.tiling == "conv":
                # the output is written exactly once, and a bigger budget never costs more by the
                # objective (tiling.tile_cost: DMA bytes, tiles and the busiest core's work; a strided
                # 1x1 conv reads more input bytes in one tile than in one-row tiles, and is cheaper so)
                y = net.tensors[step.output]
                assert tp.dma["out"] == y.numel * (4 if y.dtype == "int32" else 1)
                bigger = tile_step(step, net, DEFAULT.with_budgets(2 * l1, None))
                assert bigger.cost_cycles <= tp.cost_cycles


def test_long_encoder_scores_and_softmax_are_tiled_over_tokens_at_128k(golden):
    """long_encoder (256 tokens, 2 heads of 8): the 2 x 256 x 256 scores, their softmax rows and the
    weighted sum do not fit the default L1 whole (int8 scores: 128 KiB in, as much out), so each head is
    cut into several tiles of tokens; the cores split a tile's tokens."""
    d = golden("long_encoder")
    net = ir.load(d)
    plan = build_plan(net)
    seen = {}
    for step in plan.steps:
        if step.kind not in ("matmul", "softmax"):
            continue
        tp = tile_step(step, net, DEFAULT.with_budgets(None, None), pack=True)
        x, y = net.tensors[step.inputs[0]], net.tensors[step.output]
        assert x.numel + y.numel > DEFAULT.l1_budget  # int8 codes: the step does not fit L1 whole
        assert tp.n_tiles > 2 and tp.l1_bytes <= DEFAULT.l1_budget and tp.cores == 8
        if step.kind == "matmul":  # one group per head, several row (token) tiles per head
            assert tp.counts[0] == 2 and tp.counts[1] > 1 and tp.counts[2] == 1
        else:
            assert tp.tile["rows"] < 256 * 2
        seen[step.kind] = seen.get(step.kind, 0) + 1
    assert seen == {"matmul": 2, "softmax": 1}


def test_long_encoder_streams_from_l3_at_a_48k_l2_and_stays_exact(golden, tmp_path):
    """At a 48 KiB L2 the parameters and the large activations (the scores, the softmax output, the residual
    stream) live in L3. The layers' L1 tiles, planned for 128 KiB, would need more L2 bounce buffers than
    the budget leaves, so the placement re-tiles the layers with the largest bounce sets for smaller L1
    tiles (without that, placement refuses); every layer bit-exact, DMA as planned."""
    from codegen.gap9.placement import PlacementError, place
    from codegen.program import build_program

    d = golden("long_encoder")
    plan = build_plan(ir.load(d))
    budgets = DEFAULT.with_budgets(None, 48 * KIB)
    tiles = [tile_step(s, plan.net, budgets, pack=True) for s in plan.steps]
    with pytest.raises(PlacementError):  # the 128 KiB tiles alone: their bounce buffers exceed L2
        place(build_program(plan, d / "test_cases" / "test_case_1", pack_weights=True), plan, tiles, budgets)
    full = {s.output: tp for s, tp in zip(plan.steps, tiles)}

    g, passed, res, proj = _gap9(golden, "long_encoder", tmp_path, l1=None, l2=48 * KIB)
    plan_json = _assert_exact(passed, res, proj)
    gp = plan_json["gap9"]
    assert gp["params_level"] == "L3" and gp["l2"]["peak_bytes"] <= 48 * KIB
    big = [r for r in gp["layers"] if r["kind"].split("+")[0] in ("matmul", "softmax")]
    # each streams through L2 from or to L3 (the scores' matmul reads its inputs in L2 and its per-tensor constants
    # in its run record, bound once from the L3 parameters: it only writes the scores to L3)
    assert len(big) == 3 and all(r["dma_bytes"]["l3_to_l2"] + r["dma_bytes"]["l2_to_l3"] > 0 for r in big)
    assert all("L3" in (r["levels"]["in"], r["levels"]["out"]) for r in big)
    soft = next(r for r in big if r["kind"].startswith("softmax"))
    assert soft["levels"]["in"] == soft["levels"]["out"] == "L3"
    retiled = [r for r in big if r["tiles"] > full[r["name"]].n_tiles]
    assert soft in retiled and all(r["l1_bytes"] < full[r["name"]].l1_bytes for r in retiled)
    assert sum(r["dma_bytes"]["l2_to_l3"] for r in gp["layers"]) >= 2 * 2 * 256 * 256  # scores + softmax out


def test_long_sequence_tiled_over_time_and_streamed_at_small_l2(golden, tmp_path):
    """kws_conv1d (8 x 1024 input): the conv tiles cut the time axis at 16 KiB of L1, and with 24 KiB of
    L2 its activations and weights live in L3 and stream through L2."""
    g, passed, res, proj = _gap9(golden, "kws_conv1d", tmp_path, l1=16 * KIB, l2=24 * KIB)
    plan = _assert_exact(passed, res, proj)
    long = [r for r in plan["gap9"]["layers"] if r["tiling"] == "conv" and r["tile"]["ow"] < 1024
            and r["name"] in ("r1",)]
    assert long and long[0]["tiles"] > 1
    assert plan["gap9"]["params_level"] == "L3" and "L3" in plan["gap9"]["buffers"].values()
    assert sum(r["dma_bytes"]["l3_to_l2"] for r in plan["gap9"]["layers"]) > 0


def test_mamba_scan_runs_on_the_cluster_with_its_parameters_in_l3(golden, tmp_path):
    """A small L2 puts the parameters (the scan's tables among them) in L3: the scan step, a cluster step
    tiled over its channels, streams its head, channel records and tables from L3 per tile and stays exact."""
    g, passed, res, proj = _gap9(golden, "mamba_block", tmp_path, l1=16 * KIB, l2=32 * KIB)
    plan = _assert_exact(passed, res, proj)
    assert plan["gap9"]["params_level"] == "L3"
    (scan,) = [r for r in plan["gap9"]["layers"] if r["kind"] == "scan"]
    assert scan["tiling"] == "scan" and scan["tiles"] > 1 and scan["cores"] > 1 and scan["levels"]["params"] == "L3"
    tables = 16 * 4 * 256 * 2  # D x N x entries int16: every channel's tables cross L3 -> L2 once
    assert scan["dma_bytes"]["l3_to_l2"] >= tables
    measured = next(layer for layer in res["layers"] if layer["name"] == scan["name"])
    assert measured["emu"]["l3_to_l2"] == scan["dma_bytes"]["l3_to_l2"]
