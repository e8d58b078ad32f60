"""Targets as data: what each target compiles, with which HAL, and how its project is built.

A target is a record, not a code path: the generator renders the same network code for host
and rv32 and picks the HAL sources and build files listed here. ``gap9`` extends ``rv32`` (same
ISA family and portable kernels) with its own program templates (cluster tasks, tiled layers,
flash file system, L3), the layer executor, and an SDK build; ``gap9-emu`` is not a separate
project but a way to build the gap9 project on the host against the PMSIS emulation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Target:
    name: str
    hal_sources: tuple[str, ...]  # files of codegen/runtime/hal compiled into the program
    build_templates: tuple[str, ...]  # templates rendered at the project root
    runnable_here: bool  # can tools/run_generated.py build and run it on these machines
    counters: tuple[str, ...]  # what the PERF lines measure
    description: str
    program_templates: dict[str, str] = field(default_factory=lambda: {
        "main.c": "main.c.j2", "network.c": "network.c.j2", "network.h": "network.h.j2"})
    runtime_extra: tuple[str, ...] = ()  # further runtime files (relative to codegen/runtime)
    emu_sources: tuple[str, ...] = ()  # compiled only for the host emulation build
    tiled: bool = False  # memory-hierarchy planning (L1 tiling, L2/L3 placement)
    # Include directories of the project build (relative to the project root): the one list that
    # plan.json's build.include_dirs, the Makefile and the CMakeLists.txt are rendered from.
    include_dirs: tuple[str, ...] = ("src", "runtime", "runtime/hal")
    emu_include_dirs: tuple[str, ...] = ()  # added for the host emulation build (before the others' headers)
    omit_kernel_files: tuple[str, ...] = ()  # portable kernel files the target does not compile
    # a build file rendered from a template of another name (default: <file>.j2)
    build_template_sources: dict[str, str] = field(default_factory=dict)


HOST = Target(
    name="host", hal_sources=("gf_hal_stdio.c", "gf_hal_host.c"), build_templates=("Makefile",), runnable_here=True,
    counters=("cycles (ns of a monotonic clock)",),
    description="native build with the host gcc; PERF cycles are nanoseconds")

RV32 = Target(
    name="rv32", hal_sources=("gf_hal_stdio.c", "gf_hal_rv32.c"), build_templates=("Makefile",), runnable_here=True,
    counters=("instret (exact with QEMU -icount shift=0)", "cycles"),
    description="bare-metal rv32imac (picolibc, semihosting) run in qemu-system-riscv32")

GAP9 = replace(
    RV32, name="gap9", hal_sources=(), build_templates=("CMakeLists.txt", "sdk.config", "Makefile"),
    # Makefile: the same sources built with pulp-sdk's rules, for gvsoc's PULP platforms (--target gvsoc)
    build_template_sources={"Makefile": "gap9_pulp_sdk.mk.j2"},
    runnable_here=False, counters=("PI_PERF_CYCLES", "PI_PERF_INSTR"),
    description="GAP9 SDK 5.x project (CMake + Kconfig, cluster + L1 tiling + L3), and the same sources "
                "as a pulp-sdk Makefile for gvsoc's PULP platforms; built here against the PMSIS emulation "
                "(run_generated --target gap9-emu / gap9-qemu) and, with a user's installation, gvsoc",
    program_templates={"main.c": "gap9_main.c.j2", "network.c": "gap9_network.c.j2",
                       "network.h": "gap9_network.h.j2"},
    runtime_extra=("gap9/gf_tiled.c", "gap9/gf_tile_kernels.c", "gap9/gf_gap9.h", "gap9/gf_pulp_sdk.h"),
    emu_sources=("gap9/emu/pmsis_emu.c",), tiled=True,
    include_dirs=("src", "runtime", "runtime/gap9"), emu_include_dirs=("runtime/gap9/emu",),
    omit_kernel_files=("gf_ref.c",))  # reference loops: tests and benchmarks only

TARGETS = {t.name: t for t in (HOST, RV32, GAP9)}


def hal_sources(target: str):
    """Paths of the HAL files a target compiles (the test drivers and benchmarks use them too)."""
    from pathlib import Path

    hal = Path(__file__).resolve().parent / "runtime" / "hal"
    return [hal / h for h in TARGETS[target].hal_sources]
