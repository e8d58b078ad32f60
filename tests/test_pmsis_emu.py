"""The GAP9 PMSIS emulator (codegen/runtime/gap9/emu): semantics and misuse detection.

The driver codegen/runtime/gap9/emu/tests/emu_check.c runs one scenario per invocation, written
the way generated GAP9 code uses PMSIS; it is built with the host toolchain flags
(-std=c99 -Wall -Wextra -Werror, plus -pedantic) once plainly and once under
AddressSanitizer/UBSan. Scenarios that must succeed print results checked here; misuse scenarios
must be stopped by the emulator with exit status 3 and a "GF EMU ERROR ..." line.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from codegen import toolchains

REPO = Path(__file__).resolve().parents[1]
EMU = REPO / "codegen" / "runtime" / "gap9" / "emu"
DRIVER = EMU / "tests" / "emu_check.c"

pytestmark = pytest.mark.skipif(not toolchains.available("host")[0], reason="no host C compiler")


def _build(tmp_path_factory, sanitize: bool) -> Path:
    out = tmp_path_factory.mktemp("emu") / ("emu_check_asan" if sanitize else "emu_check")
    # -z now as the gap9-emu build (codegen/gap9/resources.py): no lazy symbol binding on the emulated stacks
    return toolchains.build("host", [DRIVER, EMU / "pmsis_emu.c"], [EMU], out, sanitize=sanitize,
                            opt="-O1" if sanitize else "-O2", extra_flags=["-pedantic"], ldflags=["-Wl,-z,now"])


@pytest.fixture(scope="module")
def exe(tmp_path_factory) -> Path:
    return _build(tmp_path_factory, sanitize=False)


@pytest.fixture(scope="module")
def asan_exe(tmp_path_factory) -> Path:
    return _build(tmp_path_factory, sanitize=True)


def run(exe: Path, *args, cwd: Path | None = None, **env) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith("GF_EMU_")}
    e.update({k: str(v) for k, v in env.items()})
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=60, env=e,
                          cwd=str(cwd) if cwd else None)


def stats(stdout: str, label: str) -> dict[str, int]:
    m = re.search(rf"^GF EMU {label} (.*)$", stdout, re.M)
    assert m, stdout
    return {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def expect_error(res: subprocess.CompletedProcess, text: str) -> None:
    assert res.returncode == 3, (res.returncode, res.stdout, res.stderr)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("GF EMU ERROR ")]
    assert len(lines) == 1 and text in lines[0], res.stdout


def a8(n: int) -> int:
    return (n + 7) // 8 * 8


# ---------------------------------------------------------------------------------------------
# A correct double-buffered pipeline: right results, exact statistics, either core order


@pytest.mark.parametrize("order", ["reverse", "forward"])
@pytest.mark.parametrize("tiles,tile_bytes,cores", [(5, 1000, 8), (7, 1001, 3), (1, 64, 1), (9, 777, 5)])
def test_pipeline_results_and_exact_stats(exe, order, tiles, tile_bytes, cores):
    res = run(exe, "pipeline", tiles, tile_bytes, cores, GF_EMU_CORE_ORDER=order)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "pipeline mismatches=0" in res.stdout
    total = tiles * tile_bytes
    s = stats(res.stdout, "pipeline")
    # stacks not modelled (no GF_EMU_CORE_STACK_RATIO): 256 KiB host stacks, of which a little is used
    assert s.pop("cc_stack") == s.pop("core_stack") == 256 * 1024
    assert 0 < s.pop("cc_stack_peak") < 16384 and 0 < s.pop("core_stack_peak") < 16384
    assert s == {
        "l1_peak": 4 * a8(tile_bytes),  # two input and two output tile buffers
        "l2_peak": 2 * a8(total),
        "l3_peak": 2 * a8(total),
        "l3_to_l2": 2 * total,  # FC reads the input, then reads the output back
        "l2_to_l1": total,
        "l1_to_l2": total,
        "l2_to_l3": 2 * total,  # FC writes the input, then the output
        "dma_cmds": 2 * tiles,
    }


# ---------------------------------------------------------------------------------------------
# Completion at the wait, poison before it


def test_destination_is_poisoned_until_the_wait(exe):
    res = run(exe, "poison")
    assert res.returncode == 0, res.stdout
    for line in ("ext2loc before_wait_all_a5=1", "ext2loc after_wait_ok=1", "loc2ext before_wait_all_a5=1",
                 "loc2ext after_wait_ok=1"):
        assert line in res.stdout
    s = stats(res.stdout, "poison")
    assert (s["l2_to_l1"], s["l1_to_l2"], s["dma_cmds"], s["l1_peak"]) == (200, 200, 2, 200)


def test_missing_wait_is_reported(exe):
    expect_error(run(exe, "dma_misuse", 0), "DMA command issued but never waited")
    expect_error(run(exe, "l3_misuse", 1), "RAM request issued but never waited")


def test_source_modified_before_wait_is_reported(exe):
    expect_error(run(exe, "dma_misuse", 1), "DMA source modified before completion")
    # another core overwrites the source of core 3's load before the load is waited
    expect_error(run(exe, "core_misuse", 3), "DMA source modified before completion")
    assert run(exe, "core_misuse", 3, GF_EMU_CORE_ORDER="forward").returncode == 1  # no race in that order
    expect_error(run(exe, "l3_misuse", 3), "DMA source modified before completion")


def test_destination_written_before_wait_is_reported(exe):
    expect_error(run(exe, "dma_misuse", 2), "DMA destination modified before completion")


@pytest.mark.parametrize("mode,text", [
    (3, "waited twice"),
    (4, "never issued"),
    (5, "more than 16 DMA commands in flight"),
    (11, "1-D size 65536 >= 65536"),
    (12, "not a multiple of the line length"),
    (13, "2-D stride 65536 >= 65536"),
    (14, "waited twice"),  # a command completed by pi_cl_dma_flush must not be waited again
    (15, "freeing L2 memory used by a transfer in flight"),
    (16, "size 0"),
])
def test_dma_rules(exe, mode, text):
    expect_error(run(exe, "dma_misuse", mode), text)


def test_dma_only_from_cluster_cores(exe):
    expect_error(run(exe, "dma_from_fc"), "pi_cl_dma_cmd called outside a cluster task")


@pytest.mark.parametrize("mode,text", [
    (6, "ext (L2) address"),  # static host array
    (7, "is in L1, not L2"),
    (8, "is in L2, not L1"),
    (9, "is not inside one live L1 allocation"),
    (10, "is not inside one live L2 allocation"),
])
def test_out_of_range_dma_addresses_are_refused(exe, mode, text):
    expect_error(run(exe, "dma_misuse", mode), text)


def test_flush_completes_everything(exe):
    res = run(exe, "flush")
    assert res.returncode == 0 and "flush ok=1" in res.stdout, res.stdout
    assert stats(res.stdout, "flush")["dma_cmds"] == 16


def test_2d_dma_copies_a_strided_box(exe):
    res = run(exe, "dma2d")
    assert res.returncode == 0, res.stdout
    assert "dma2d ext2loc ok=1" in res.stdout
    assert "dma2d loc2ext ok=1 untouched=1" in res.stdout
    s = stats(res.stdout, "dma2d")
    assert (s["l2_to_l1"], s["l1_to_l2"], s["dma_cmds"]) == (115, 115, 2)


# ---------------------------------------------------------------------------------------------
# L3 RAM


def test_l3_round_trip_poison_and_2d(exe):
    res = run(exe, "l3")
    assert res.returncode == 0, res.stdout
    for line in ("fc_round_trip ok=1", "cl_read before_wait_all_a5=1", "cl_read after_wait_ok=1",
                 "cl_read_2d ok=1", "after_cluster ok=1", "fc_read_2d ok=1"):
        assert line in res.stdout
    s = stats(res.stdout, "l3")
    assert s["l3_to_l2"] == 512 + 256 + 64 + 512 + 30
    assert s["l2_to_l3"] == 512 + 256 + 64
    assert (s["l3_peak"], s["l2_peak"], s["dma_cmds"]) == (512, 256, 0)


@pytest.mark.parametrize("mode,text", [
    (0, "L3 range [0x1f4, +64) is not inside one live L3 allocation"),
    (2, "is in host memory outside the pools, not L2"),
    (4, "pi_ram_read called from cluster core 8"),
    (5, "L3 range [0x1e0, +64) is not inside one live L3 allocation"),
    (6, "L3 range [0x1000, +16) is not inside one live L3 allocation"),
])
def test_l3_misuse(exe, mode, text):
    expect_error(run(exe, "l3_misuse", mode), text)


# ---------------------------------------------------------------------------------------------
# Memory budgets and allocators


def test_l1_budget_exceeded_exits_3(exe):
    res = run(exe, "l1_budget", GF_EMU_L1_BUDGET=4096)
    assert "first allocation done" in res.stdout
    assert res.returncode == 3
    assert res.stdout.splitlines()[-1] == "GF EMU ERROR L1 budget exceeded: requested 200 bytes, 4000 in use, budget 4096"
    # the default budget (128 KiB) has room for both
    res = run(exe, "l1_budget")
    assert res.returncode == 1 and "GF EMU ERROR" not in res.stdout


def test_l2_and_l3_budgets(exe):
    res = run(exe, "l2_budget", GF_EMU_L2_BUDGET=1500)
    assert res.returncode == 3
    assert res.stdout.splitlines()[-1] == "GF EMU ERROR L2 budget exceeded: requested 1000 bytes, 1000 in use, budget 1500"
    res = run(exe, "alloc_misuse", 3, GF_EMU_L3_SIZE=10000)
    assert res.stdout.splitlines()[-1] == "GF EMU ERROR L3 budget exceeded: requested 8192 bytes, 4096 in use, budget 10000"
    expect_error(run(exe, "alloc_misuse", 5, GF_EMU_L2_BUDGET=4096), "L2 out of memory (fragmentation)")


def test_bad_environment(exe):
    expect_error(run(exe, "l1_budget", GF_EMU_L1_BUDGET=200000), "exceeds the 131072 bytes")
    expect_error(run(exe, "l1_budget", GF_EMU_L1_BUDGET="12k"), "is not a positive number of bytes")
    expect_error(run(exe, "cores", GF_EMU_CORE_ORDER="sideways"), "expected forward or reverse")


@pytest.mark.parametrize("mode,text", [
    (0, "pi_cl_l1_malloc called before pi_cluster_open"),
    (1, "free with the wrong size: allocated 64 bytes, freed with 32"),
    (2, "is not the start of a live L2 allocation"),
    (4, "is not the start of a live L2 allocation"),
])
def test_allocator_misuse(exe, mode, text):
    expect_error(run(exe, "alloc_misuse", mode), text)


def test_freed_memory_is_reused_first_fit(exe):
    res = run(exe, "reuse")
    assert res.returncode == 0, res.stdout
    assert "aligned64=1" in res.stdout
    s = stats(res.stdout, "reuse")
    assert s["l1_peak"] == 80000 and s["l2_peak"] == 104


# ---------------------------------------------------------------------------------------------
# Cores, scheduling order, barriers


def test_core_ids_and_deterministic_order(exe):
    res = run(exe, "cores")
    assert res.returncode == 0, res.stdout
    assert "task core=8" in res.stdout and "after fork core=8" in res.stdout
    # each core logs its id before the barrier, then its id and the team size after it
    assert "order=3210" + "34241404" in res.stdout
    assert "order8=76543210" + "7868584838281808" in res.stdout
    res = run(exe, "cores", GF_EMU_CORE_ORDER="forward")
    assert "order=0123" + "04142434" in res.stdout
    assert "order8=01234567" + "0818283848586878" in res.stdout


def test_missing_barrier_gives_a_wrong_result(exe):
    assert "phases result=wrong" in run(exe, "phases", 0).stdout  # default: reverse order
    assert "phases result=wrong" in run(exe, "phases", 0, GF_EMU_CORE_ORDER="reverse").stdout
    for order in ("reverse", "forward"):
        res = run(exe, "phases", 1, GF_EMU_CORE_ORDER=order)
        assert res.returncode == 0 and "phases result=ok" in res.stdout, res.stdout


def test_mismatched_barriers(exe):
    expect_error(run(exe, "mismatch"), "mismatched barriers: core 2 returned from the fork entry")


@pytest.mark.parametrize("mode,text", [
    (0, "pi_cl_team_barrier called by core 8 outside pi_cl_team_fork"),
    (1, "pi_cl_team_fork called from core 1"),
    (2, "pi_cl_team_fork: 9 cores"),
    (4, "pi_cl_team_critical_exit without pi_cl_team_critical_enter"),
    (5, "inside a critical section"),
])
def test_core_misuse(exe, mode, text):
    expect_error(run(exe, "core_misuse", mode), text)


def test_layers_of_one_task_are_recorded_apart(exe):
    """gf_run_task's pattern: one task, a fork per layer, gf_emu_layer_end after each; each record holds its own
    layer's DMA bytes and L1 peak (the first also the FC's L2 allocation before the task)."""
    res = run(exe, "layers")
    assert res.returncode == 0, res.stdout + res.stderr
    first, second = stats(res.stdout, "layer0"), stats(res.stdout, "layer1")
    assert (first["l2_to_l1"], first["dma_cmds"], first["l1_peak"]) == (100, 1, 64 + 104)
    assert (second["l2_to_l1"], second["dma_cmds"], second["l1_peak"]) == (40, 1, 128 + 40)
    assert first["l2_peak"] == second["l2_peak"] == 128
    assert first["cc_stack_peak"] > 0 and second["cc_stack_peak"] > 0


def test_layers_of_one_fork_are_recorded_apart(exe):
    """gf_run_task's pattern since one L1 block and one fork per task: core 0 records each layer inside the fork; each
    record holds its own layer's DMA bytes, the L1 peak is the task's block plus the layer's own allocation."""
    res = run(exe, "layers", 4)
    assert res.returncode == 0, res.stdout + res.stderr
    first, second = stats(res.stdout, "layer0"), stats(res.stdout, "layer1")
    assert (first["l2_to_l1"], first["dma_cmds"], first["l1_peak"]) == (100, 1, 128 + 104)
    assert (second["l2_to_l1"], second["dma_cmds"], second["l1_peak"]) == (40, 1, 128 + 40)
    assert first["cc_stack_peak"] > 0 and second["cc_stack_peak"] > 0
    assert first["core_stack_peak"] > 0 and second["core_stack_peak"] > 0


@pytest.mark.parametrize("mode,text", [
    (1, "gf_emu_layer_end called outside a cluster task"),
    (2, "gf_emu_layer_end called inside a fork by core 1"),
    (3, "gf_emu_print_layer_stats: record 2 of the last task, which has 2"),
])
def test_layer_record_misuse(exe, mode, text):
    expect_error(run(exe, "layers", mode), text)


# ---------------------------------------------------------------------------------------------
# ReadFS, performance counters


def test_readfs_reads_files_of_the_current_directory(exe, tmp_path):
    res = run(exe, "fs", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    for line in ("missing=1", "size=100", "total=100 last=99", "seek=0", "after_seek got=10 first=90"):
        assert line in res.stdout


def test_perf_counters(exe):
    res = run(exe, "perf")
    assert res.returncode == 0 and "increasing=1 stopped_stable=1 instr=0" in res.stdout, res.stdout


# ---------------------------------------------------------------------------------------------
# AddressSanitizer / UBSan


ASAN_CASES = [
    (("pipeline", 5, 1000, 8), 0), (("pipeline", 3, 4096, 8), 0), (("poison",), 0), (("flush",), 0),
    (("dma2d",), 0), (("l3",), 0), (("cores",), 0), (("phases", 1), 0), (("phases", 0), 0), (("reuse",), 0),
    (("perf",), 0), (("dma_misuse", 0), 3), (("dma_misuse", 1), 3), (("mismatch",), 3), (("l3_misuse", 3), 3),
    (("alloc_misuse", 1), 3),
]


def test_asan_ubsan_clean(asan_exe, tmp_path):
    for args, rc in ASAN_CASES:
        for order in ("reverse", "forward"):
            res = run(asan_exe, *args, GF_EMU_CORE_ORDER=order)
            assert res.returncode == rc, (args, res.stdout, res.stderr)
            assert res.stderr == "", (args, res.stderr)
    # an error raised on a forked core's stack (core 3, reverse order only: forward order runs the
    # writer, core 2, before the load is issued, so there is no race then)
    res = run(asan_exe, "core_misuse", 3)
    assert res.returncode == 3 and res.stderr == "", res.stderr
    res = run(asan_exe, "fs", cwd=tmp_path)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    # fake stacks (detect_stack_use_after_return) across the coroutine switches
    res = subprocess.run([str(asan_exe), "pipeline", "4", "512", "8"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "ASAN_OPTIONS": "detect_stack_use_after_return=1"})
    assert res.returncode == 0 and res.stderr == "", res.stderr


@pytest.mark.parametrize("mode", [6, 7])
def test_asan_sees_pool_overflow_and_use_after_free(asan_exe, exe, mode):
    # unallocated pool memory is poisoned for ASan: an L1 overflow and a read of freed L2 memory
    res = run(asan_exe, "alloc_misuse", mode)
    assert res.returncode != 0 and "AddressSanitizer: use-after-poison" in res.stderr, res.stderr
    # without ASan the bytes read back are the fill pattern of freed memory (0xDD = 221)
    res = run(exe, "alloc_misuse", mode)
    assert res.returncode == 0
    if mode == 7:
        assert "v=221" in res.stdout


# ---------------------------------------------------------------------------------------------
# Stacks: every core on a guarded stack; modelled sizes (configured x ratio) reserved in L1

L1 = 131072
DRIVER_STACKS = 4096 + 8 * 1024  # emu_check configures cc_stack_size 4096 and 1024-byte core stacks


@pytest.mark.parametrize("core", [0, 5, 8])
def test_deep_call_runs_into_the_stack_guard(exe, core):
    res = run(exe, "deep", core, 20000)  # fits the default 256 KiB host stacks
    assert res.returncode == 0, res.stdout
    assert stats(res.stdout, "deep")["cc_stack_peak" if core == 8 else "core_stack_peak"] > 20000
    expect_error(run(exe, "deep", core, 1_000_000),
                 f"stack overflow on core {core}: the call chain ran past the end of its 262144-byte stack")


def test_modelled_stacks_are_scaled_and_reserved_in_l1(exe):
    env = {"GF_EMU_CORE_STACK_RATIO": 8, "GF_EMU_CC_STACK_RATIO": 4, "GF_EMU_L1_BUDGET": L1 - DRIVER_STACKS}
    res = run(exe, "deep", 0, 6000, **env)
    assert res.returncode == 0, res.stdout
    s = stats(res.stdout, "deep")
    assert s["core_stack"] == 8 * 1024 and s["cc_stack"] == 4 * 4096 and 6000 < s["core_stack_peak"] < 8192
    expect_error(run(exe, "deep", 0, 9000, **env), "stack overflow on core 0: the call chain ran past the end of "
                 "its 8192-byte stack (the 1024 bytes the program configured, times the host/rv32 ratio)")
    expect_error(run(exe, "deep", 8, 20000, **env), "stack overflow on core 8: the call chain ran past the end of "
                 "its 16384-byte stack (the 4096 bytes the program configured")
    # the configured stacks come out of L1: a budget that leaves them no room is refused
    expect_error(run(exe, "deep", 0, 100, **{**env, "GF_EMU_L1_BUDGET": L1 - DRIVER_STACKS + 8}),
                 f"the cluster stacks do not fit L1: L1 budget {L1 - DRIVER_STACKS + 8} + controller stack 4096 + "
                 f"8 x 1024 compute-core stacks = {L1 + 8} bytes > the 131072 bytes of L1")
    expect_error(run(exe, "deep", 0, 100, GF_EMU_CORE_STACK_RATIO="fast"), "is not a ratio in (0, 1000]")


def test_errors_on_a_small_emulated_stack_are_printed_on_the_error_stack(exe):
    # 1024-byte host stacks: the report (stdio) runs on the emulator's error stack, not the core's
    res = run(exe, "core_misuse", 3, GF_EMU_CORE_STACK_RATIO=1, GF_EMU_L1_BUDGET=L1 - DRIVER_STACKS)
    expect_error(res, "DMA source modified before completion (pi_cl_dma_cmd EXT2LOC of 64 bytes issued by core 3)")


def test_asan_build_reports_the_overflow_too(asan_exe):
    res = run(asan_exe, "deep", 3, 20000)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    expect_error(run(asan_exe, "deep", 3, 1_000_000), "stack overflow on core 3")


@pytest.mark.parametrize("level,nth", [(1, 1), (1, 4), (2, 2), (2, 5), (3, 1), (3, 3)])
def test_injected_allocation_failure(exe, level, nth):
    res = run(exe, "alloc_fail", GF_EMU_FAIL_ALLOC=f"L{level}:{nth}")
    assert res.returncode == 0, res.stdout
    failed = {1: "NULL", 2: "NULL", 3: "failed"}
    for lv in (1, 2, 3):
        for i in range(1, 6):
            want = failed[lv] if (lv, i) == (level, nth) else "ok"
            assert f"L{lv} {i} {want}\n" in res.stdout, res.stdout
    assert "L2 1 NULL" in run(exe, "alloc_fail", GF_EMU_FAIL_ALLOC="L2").stdout  # N defaults to 1
    expect_error(run(exe, "alloc_fail", GF_EMU_FAIL_ALLOC="L4"), "GF_EMU_FAIL_ALLOC=L4: expected L1, L2 or L3")
    expect_error(run(exe, "alloc_fail", GF_EMU_FAIL_ALLOC="L1:0"), "N must be a positive number")
