"""Measured resources of the GAP9 program: the stack each core's entry point needs, and code size.

At generation, the project's SDK build (the sources and defines of plan.json's ``build``) is
compiled with the rv32 toolchain the way GAP9's cores run it: ``riscv64-unknown-elf-gcc
-march=rv32imc -mabi=ilp32 -O2 -fstack-usage -fcallgraph-info=su -Wstack-usage=<core stack>``
against the emulation's ``pmsis.h`` used as declarations only (``GF_PMSIS_DECLARATIONS_ONLY``),
objects cached by codegen.toolchains. From GCC's per-function frames and call graph
(codegen/callgraph.py) come the deepest call chains of the three entry points:

* ``cluster_entry``: the cluster controller (core 8), on ``cc_stack`` bytes of L1;
* ``tile_loop``: every compute core (0-7) and all it calls (the kernels), on ``core_stack`` bytes;
* ``main``: the fabric controller (its stack is in L2, part of the L2 reserve).

Functions the objects do not define get the declared bounds of ``RV32_EXTERNAL``; the FC's one
indirect call (``s->fc_run``) may reach the generated ``fc_step_*`` functions; any other indirect
call, recursion or dynamic frame is refused (:class:`codegen.callgraph.StackError`). The chains
must fit the stacks configured in codegen/gap9/hw.py, or generation fails naming the chain.

Code size: the same objects linked with ``--gc-sections`` from ``main`` (PMSIS and the C library
left unresolved: they are the SDK's), their .text, .rodata, .data and .bss; also for the whole
runtime (every kernel, linked without --gc-sections), which is what a project that did not select
its kernels would carry.

The host emulation (gap9-emu) runs each core on a stack of the configured size times the
measured ratio host chain / rv32 chain of the same entry point (:func:`emu_stack_ratios`): the
emulation's stacks have the same margin over the host code as the configured ones over the rv32
code, so a chain that would overflow on GAP9 by more than the margin overflows there too.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from codegen import toolchains as tc
from codegen.callgraph import CallGraph, Frame, StackError, chain_bytes, format_chain
from codegen.gap9.hw import Platform

RUNTIME = Path(__file__).resolve().parents[1] / "runtime"

ENTRIES = {"cluster_controller": "cluster_entry", "compute_core": "tile_loop", "fc": "main"}
HW_FIELD = {"cluster_controller": "cc_stack", "compute_core": "core_stack"}

RV32_FLAGS = ["--specs=picolibc.specs", "-march=rv32imc", "-mabi=ilp32", "-std=c99", "-Wall", "-Wextra",
              "-Werror", "-O2", "-ffunction-sections", "-fdata-sections", "-DGF_PMSIS_DECLARATIONS_ONLY"]
STACK_FLAGS = ["-fstack-usage", "-fcallgraph-info=su"]
AUX = (".su", ".ci")

# Bounds (bytes, for the function and all it calls) of what the measured objects call but do not
# define. None of them can be measured here; each is an assumption, stated:
RV32_EXTERNAL = {
    "pi_*": 256,  # PMSIS (the GAP SDK's; small driver and runtime functions on GAP9)
    "mem*": 64, "str*": 64,  # libc leaf functions (picolibc's rv32 memset/memcpy use no frame)
    "printf": 1024, "puts": 1024, "putchar": 1024,  # the SDK's printf (FC and error paths)
    "__*di3": 64, "__*si3": 64,  # libgcc arithmetic helpers (leaf functions)
}
# The host emulation's build: glibc (not built with -fstack-usage) and the sanitizer runtimes;
# generous, and checked from the other side: every emulated stack's painted peak use stays below
# the host chain computed with them (tests/test_gap9.py, every network).
HOST_EXTERNAL = {
    "mem*": 256, "str*": 512, "getenv": 256, "strtoull": 512, "strtod": 1024, "__errno_location": 64,
    "malloc": 1024, "free": 1024, "realloc": 1024, "posix_memalign": 1024,
    "getcontext": 256, "setcontext": 256, "makecontext": 256, "sigaltstack": 256, "sigaction": 256,
    "mmap": 256, "munmap": 256, "mprotect": 256, "sysconf": 512, "clock_gettime": 256,
    "printf": 8192, "puts": 8192, "putchar": 8192, "fflush": 8192, "snprintf": 8192, "vfprintf": 8192,
    # AddressSanitizer / UBSan (sanitized builds): their report paths symbolize on the faulting
    # stack; this much room keeps a sanitizer report from turning into a stack overflow
    "__asan_*": 65536, "__ubsan_*": 65536, "__sanitizer_*": 65536,
}
# The FC steps of network.c, called through gf_steps[i].fc_run; the tile kernels (gf_tile_kernels.c),
# called through gf_layer_t.compute by the tiling kinds' compute functions of gf_tiled.c (inlined into
# tile_loop or not): the ones compiled are exactly the ones the plan selected.
_TILE_KERNELS = ("gf_tile_*",)
INDIRECT = {"main": ("fc_step_*",), "tile_loop": _TILE_KERNELS, "compute_conv": _TILE_KERNELS,
            "compute_linear": _TILE_KERNELS, "compute_eltwise": _TILE_KERNELS, "compute_rows": _TILE_KERNELS,
            "compute_gemm": _TILE_KERNELS, "compute_scan": _TILE_KERNELS}
# Not followed in the host analysis: fail_report prints an emulator error on a stack of its own
# when raised on an emulated stack (pmsis_emu.c, fail_elsewhere); gf_fault_* is test-only fault
# code made to overflow (--inject-fault deep-call).
HOST_IGNORE = ("fail_report", "gf_fault_*")

# Kernel selection (gf_runtime.h): the cluster kernels of the operator declarations (gapforge/ops,
# ops with a GAP9 tiling), each with a GF_K_<NAME> macro; the kernels of ops declared
# ``kernels_per_input_type`` are compiled per input signedness (GF_K_<NAME>_S8 / GF_K_<NAME>_U8); those of
# ops declared ``wide_input`` read int32 codes only with GF_K_<NAME>_S32.
def _declared_kernels(per_input_type: bool = False, wide_input: bool = False) -> tuple[str, ...]:
    from gapforge.ops import registry

    return tuple(k for op in registry().ir_ops.values() if op.tiling is not None
                 and (op.kernels_per_input_type or not per_input_type) and (op.wide_input or not wide_input)
                 for k in op.kernels)


SELECTABLE = _declared_kernels()
WIDE_INPUT = _declared_kernels(wide_input=True)
CONVOLUTIONS = _declared_kernels(per_input_type=True)
SELECTED = "GF_KERNELS_SELECTED"


def kernel_macro(kernel: str) -> str:
    return "GF_K_" + kernel.removeprefix("gf_").upper()


def kernel_defines(calls) -> list[str]:
    """-D macros selecting exactly the kernels, and the input types of each convolution, the calls use."""
    used = {kernel_macro(c.kernel) for c in calls if c.kernel in SELECTABLE}
    used |= {f"{kernel_macro(c.kernel)}_{'U8' if c.inputs[0].dtype == 'GF_U8' else 'S8'}" for c in calls
             if c.kernel in CONVOLUTIONS}  # the kernels' own dispatch: GF_U8, else the int8 copy
    used |= {f"{kernel_macro(c.kernel)}_S32" for c in calls  # int32 codes (``wide_input`` ops: pool sums)
             if c.kernel in WIDE_INPUT and c.inputs and c.inputs[0].dtype == "GF_S32"}
    return [SELECTED, *sorted(used)]


def parse_defines(defines: Iterable[str]) -> dict[str, str]:
    """["A", "B=1"] (plan.json, CMake) -> {"A": "", "B": "1"} (codegen.toolchains)."""
    return dict((d.split("=", 1) + [""])[:2] for d in defines)


@dataclass
class Measurement:
    chains: dict[str, list[Frame]]  # role -> deepest chain, entry first
    kernels: dict[str, int]  # selectable kernel -> bytes of the deepest compute-core chain through it
    linked: dict[str, int]  # section class -> bytes (text, rodata, data, bss, total)
    objects: dict[str, int] = field(default_factory=dict)  # object (source stem) -> bytes of its sections

    def chain(self, role: str) -> int:
        return chain_bytes(self.chains[role])


def rv32_compiler() -> None:
    """Raises ToolchainError when the rv32 cross compiler (and picolibc's headers) are missing."""
    ok, why = tc.cross_compiler_available()
    if not ok:
        raise tc.ToolchainError(f"the GAP9 target measures its stacks and code with the rv32 compiler: {why}")


def _size_of(path: Path) -> dict[str, int]:
    """Bytes per section class of an object or ELF file (binutils size -A)."""
    out = subprocess.run([tc.RV32_SIZE, "-A", str(path)], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise tc.ToolchainError(f"{tc.RV32_SIZE} -A {path.name} failed: {out.stderr.strip()}")
    sizes = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        name = parts[0]
        for cls, prefixes in (("text", (".text",)), ("rodata", (".rodata", ".srodata")),
                              ("data", (".data", ".sdata")), ("bss", (".bss", ".sbss"))):
            if name.startswith(prefixes):
                sizes[cls] += int(parts[1])
    sizes["total"] = sum(sizes.values())
    return sizes


def _compile(sources: Sequence[Path], include_dirs: Sequence[Path], defines: Sequence[str], hw: Platform,
             tmp: Path) -> list[Path]:
    rv32_compiler()
    cflags = [tc.RV32_CC, *RV32_FLAGS, *STACK_FLAGS, f"-Wstack-usage={hw.core_stack}",
              *[f"-I{Path(d).resolve()}" for d in include_dirs], *[f"-D{d}" for d in defines]]
    return tc.compile_objects(cflags, sources, "gap9 (rv32 measurement)", tmp, aux=AUX)


def _link_size(objects: Sequence[Path], entry: str, tmp: Path, gc: bool = True) -> dict[str, int]:
    """Linked size from ``entry``; ``gc=False`` keeps every section (a build without --gc-sections)."""
    elf = tmp / "measure.elf"
    cmd = [tc.RV32_CC, "-march=rv32imc", "-mabi=ilp32", "-nostdlib", "-nostartfiles",
           *(["-Wl,--gc-sections"] if gc else []),
           f"-Wl,-e,{entry}", "-Wl,--unresolved-symbols=ignore-all", *map(str, objects), "-o", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise tc.ToolchainError(f"linking the gap9 program for its code size failed: {proc.stderr.strip()[-300:]}")
    return _size_of(elf)


def _measure(objs: Sequence[Path], sources: Sequence[Path], roles: Sequence[str], size_entry: str,
             tmp: Path) -> Measurement:
    graph = CallGraph([o.with_suffix(".ci") for o in objs], external=RV32_EXTERNAL, indirect=INDIRECT)
    chains = {role: graph.chain(ENTRIES[role]) for role in roles}
    kernels = {}
    if "compute_core" in roles:
        for k in SELECTABLE:
            path = graph.chain(ENTRIES["compute_core"], through=k)
            if path:
                kernels[k] = chain_bytes(path)
    objects = {Path(s).stem: _size_of(o)["total"] for s, o in zip(sources, objs)}
    return Measurement(chains, kernels, _link_size(objs, size_entry, tmp), objects)


def runtime_sources(selected: bool = True, root: Path = RUNTIME) -> list[Path]:
    """The portable kernels and the layer executor the GAP9 project compiles (``selected``: its
    list, without the reference loops; else every kernel file, as before kernel selection)."""
    from codegen.generate import kernel_sources
    from codegen.targets import TARGETS

    omit = TARGETS["gap9"].omit_kernel_files if selected else ()
    gap9 = [root / f for f in TARGETS["gap9"].runtime_extra if f.endswith(".c")]
    return [root / p.name for p in kernel_sources() if p.name not in omit] + gap9


RUNTIME_INCLUDES = [RUNTIME, RUNTIME / "gap9", RUNTIME / "gap9" / "emu"]


def measure_runtime(hw: Platform, defines: Sequence[str] = ()) -> Measurement:
    """The cluster entry points of the runtime itself (every kernel unless ``defines`` select)."""
    srcs = runtime_sources()
    with tempfile.TemporaryDirectory(prefix="gf-measure-") as t:
        objs = _compile(srcs, RUNTIME_INCLUDES, defines, hw, Path(t))
        return _measure(objs, srcs, ("cluster_controller", "compute_core"), "gf_run_task", Path(t))


def measure_project(project: Path, sources: Sequence[str], include_dirs: Sequence[str], defines: Sequence[str],
                    hw: Platform) -> tuple[Measurement, dict[str, int]]:
    """The generated project's SDK build (``sources``, relative to ``project``): its measurement,
    and the linked size of the same program with every kernel of the runtime (no selection)."""
    srcs = [project / s for s in sources]
    inc = [project / d for d in include_dirs]
    with tempfile.TemporaryDirectory(prefix="gf-measure-") as t:
        tmp = Path(t)
        objs = _compile(srcs, inc, defines, hw, tmp)
        m = _measure(objs, srcs, tuple(ENTRIES), "main", tmp)
        own = [o for s, o in zip(sources, objs) if s.startswith("src/")]  # main.c, network.c: no kernel macros
        every = _compile(runtime_sources(selected=False), RUNTIME_INCLUDES, (), hw, tmp)
        # every kernel compiled and linked: a build without the selection macros and without
        # --gc-sections (layers call their tile kernels through a pointer, so only a link that keeps
        # every section shows what an unselected build carries)
        return m, _link_size([*own, *every], "main", tmp, gc=False)


def check_stacks(m: Measurement, hw: Platform) -> None:
    """Refuse a program whose cluster call chains do not fit the stacks hw configures."""
    for role, attr in HW_FIELD.items():
        path = m.chains[role]
        need, have = chain_bytes(path), getattr(hw, attr)
        if need > have:
            kernel = next((f.name for f in path if f.name in SELECTABLE), None)
            via = f" (through the kernel {kernel})" if kernel else ""
            raise StackError(f"GAP9 {role.replace('_', ' ')} stack: the call chain {format_chain(path)} needs {need} B"
                             f"{via}, more than the {have} B configured (codegen/gap9/hw.py {attr}; derived size for "
                             f"this chain: {hw.stack_size_for(need)} B)")


def stacks_json(m: Measurement, hw: Platform) -> dict:
    """plan.json's gap9.stacks: the chains per entry point, the configured and derived sizes."""
    doc = {"toolchain": f"{tc.RV32_CC} {' '.join(RV32_FLAGS[1:3])} -O2 -fstack-usage -fcallgraph-info=su",
           "margin": f"{hw.stack_margin_percent}% of the chain, at least {hw.stack_margin_min} B, rounded up to "
                     f"{hw.stack_round} B", "external_bounds": RV32_EXTERNAL, "l1_reserved_bytes": hw.l1_reserved}
    for role, path in m.chains.items():
        doc[role] = {"entry": ENTRIES[role], "chain_bytes": chain_bytes(path),
                     "chain": [[f.name, f.bytes] for f in path]}
        if role in HW_FIELD:
            doc[role].update(configured_bytes=getattr(hw, HW_FIELD[role]), derived_bytes=hw.stack_size_for(
                chain_bytes(path)))
    doc["compute_core"]["kernels"] = m.kernels
    return doc


# -- the host emulation --------------------------------------------------------------------------
# On the emulated stacks, the emulator's own context entry runs first (pmsis_emu.c: cc_main calls the
# task entry, core_main the fork entry, both through a pointer), above it makecontext's start frame.
EMU_ENTRIES = {"cluster_controller": ("cc_main", "cluster_entry"), "compute_core": ("core_main", "tile_loop")}
MAKECONTEXT_BYTES = 64  # glibc x86-64 makecontext: return address and alignment above the entry's frame


def emu_stack_ratios(plan: dict, ci_files: Sequence[Path]) -> dict[str, float]:
    """(host chain + MAKECONTEXT_BYTES) / rv32 chain of the cluster entry points: the host chains
    from the .ci files of the emulation build (host gcc, pmsis_emu.c included, each from the
    emulator's context entry), the rv32 ones from plan.json."""
    indirect = {**INDIRECT, **{ctx: (entry,) for ctx, entry in EMU_ENTRIES.values()}}
    graph = CallGraph(ci_files, external=HOST_EXTERNAL, indirect=indirect, ignore=HOST_IGNORE)
    stacks = plan["gap9"]["stacks"]
    return {role: (chain_bytes(graph.chain(ctx)) + MAKECONTEXT_BYTES) / stacks[role]["chain_bytes"]
            for role, (ctx, _) in EMU_ENTRIES.items()}


def build_emu(project: Path, plan: dict, exe: Path, sanitize: bool = False) -> tuple[Path, dict[str, str]]:
    """Build the gap9-emu program; returns it and the environment modelling its stacks."""
    b = plan["build_emu"]
    # -z now: every library symbol is bound at load; lazy binding would run the dynamic linker's
    # resolver (which saves the whole vector register file: kilobytes) on the emulated stack of the
    # first core to call a library function, invisible to the stack analysis.
    exe, objs = tc.build_objects("host", [project / s for s in b["sources"]], [project / d for d in b["include_dirs"]],
                                 exe, defines=parse_defines(b.get("defines", [])), sanitize=sanitize,
                                 extra_flags=STACK_FLAGS, aux=AUX, ldflags=["-Wl,-z,now"])
    ratios = emu_stack_ratios(plan, [o.with_suffix(".ci") for o in objs])
    up = {role: math.ceil(r * 1e6) / 1e6 for role, r in ratios.items()}  # rounded up: never below the host chain
    env = {"GF_EMU_CC_STACK_RATIO": f"{up['cluster_controller']:.6f}", "GF_EMU_CORE_STACK_RATIO": f"{up['compute_core']:.6f}"}
    return exe, env


def build_qemu(project: Path, plan: dict, exe: Path, budgets: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """Build the gap9-qemu program: the gap9-emu sources (the generated GAP9 project, unchanged, and
    the PMSIS emulation) compiled for bare-metal rv32 (codegen.toolchains' rv32 recipe), run under
    QEMU. The emulation's environment (budgets, stack model) is compiled in as GF_EMU_ENV (there is
    no environment under semihosting). Returns the ELF and that environment.

    The stacks are modelled at the configured sizes with the ratio measured from this build's call
    graph against the SDK build's (the emulator's DMA and allocation code runs on the cores' stacks
    where the SDK's would), never below 1."""
    b = plan["build_emu"]
    env = dict(budgets)
    defines = parse_defines(b.get("defines", []))
    objs_flags = [*STACK_FLAGS]
    ratios = {"cluster_controller": 1.0, "compute_core": 1.0}
    exe_tmp, objs = tc.build_objects("rv32", [project / s for s in b["sources"]],
                                     [project / d for d in b["include_dirs"]], exe,
                                     defines={**defines, "GF_EMU_ENV": '""'}, extra_flags=objs_flags, aux=AUX)
    graph = CallGraph([o.with_suffix(".ci") for o in objs], external={**RV32_EXTERNAL, **QEMU_EXTERNAL},
                      indirect={**INDIRECT, **{ctx: (entry,) for ctx, entry in EMU_ENTRIES.values()}},
                      ignore=HOST_IGNORE)
    stacks = plan["gap9"]["stacks"]
    for role, (ctx, _) in EMU_ENTRIES.items():
        ratios[role] = max(1.0, chain_bytes(graph.chain(ctx)) / stacks[role]["chain_bytes"])
    env.update({"GF_EMU_CC_STACK_RATIO": f"{math.ceil(ratios['cluster_controller'] * 1e6) / 1e6:.6f}",
                "GF_EMU_CORE_STACK_RATIO": f"{math.ceil(ratios['compute_core'] * 1e6) / 1e6:.6f}"})
    text = ";".join(f"{k}={v}" for k, v in sorted(env.items()))
    exe, _ = tc.build_objects("rv32", [project / s for s in b["sources"]], [project / d for d in b["include_dirs"]],
                              exe, defines={**defines, "GF_EMU_ENV": '"' + text + '"'})
    return exe, env


# picolibc and the bare-metal coroutines of gf_emu_bare.h (the gap9-qemu build): assumptions as above
QEMU_EXTERNAL = {
    "gf_bare_getcontext": 0, "gf_bare_setcontext": 0, "malloc": 512, "free": 512, "realloc": 512, "posix_memalign": 512,
    "strtoull": 256, "strtod": 512, "snprintf": 1024, "vfprintf": 1024, "fprintf": 1024, "fflush": 512,
    "fputc": 512, "fopen": 512, "fread": 512, "fseek": 512, "ftell": 512, "fclose": 512, "exit": 512,
    "__errno": 32, "abort": 256, "__fixunsdfsi": 512, "__adddf3": 512, "__muldf3": 512, "__floatunsidf": 512,
}


__all__ = ["Measurement", "measure_project", "measure_runtime", "check_stacks", "kernel_defines", "emu_stack_ratios",
           "build_emu", "build_qemu", "StackError"]
