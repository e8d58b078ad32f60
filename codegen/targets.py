"""Targets as data: what each target compiles, with which HAL, and how its project is built.

A target is a record, not a code path: the generator renders the same network code for
every target and picks the HAL sources and build files listed here. ``gap9`` extends
``rv32`` (same ISA family and kernels) with its own HAL and an SDK build.
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
    kernel_overrides: dict[str, str] = field(default_factory=dict)  # portable kernel -> target kernel


HOST = Target(
    name="host", hal_sources=("gf_hal_host.c",), build_templates=("Makefile",), runnable_here=True,
    counters=("cycles (ns of a monotonic clock)",),
    description="native build with the host gcc; PERF cycles are nanoseconds")

RV32 = Target(
    name="rv32", hal_sources=("gf_hal_rv32.c",), build_templates=("Makefile",), runnable_here=True,
    counters=("instret (exact with QEMU -icount shift=0)", "cycles"),
    description="bare-metal rv32imac (picolibc, semihosting) run in qemu-system-riscv32")

GAP9 = replace(
    RV32, name="gap9", hal_sources=("gf_hal_gap9.c",), build_templates=("CMakeLists.txt", "sdk.config"),
    runnable_here=False, counters=("PI_PERF_CYCLES", "PI_PERF_INSTR"),
    description="GAP9 SDK 5.x project (CMake + Kconfig); cannot be built on these machines")

TARGETS = {t.name: t for t in (HOST, RV32, GAP9)}
