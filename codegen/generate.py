"""Render a complete C project for one network, target and golden test case."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jinja2

from codegen.program import Program, build_program
from codegen.targets import TARGETS, Target
from gapforge import __version__, ir
from gapforge.errors import GapforgeError
from gapforge.fsutil import atomic_directory
from gapforge.plan import build_plan

HERE = Path(__file__).resolve().parent
RUNTIME = HERE / "runtime"
TEMPLATES = HERE / "templates"


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, autoescape=False)


def make_variables(target: Target) -> dict:
    """Compiler, flags and run command of the project's Makefile: the same as codegen.toolchains uses."""
    from codegen import toolchains as tc

    if target.name == "host":
        return {"cc": tc.HOST_CC, "cflags": tc.HOST_CFLAGS + ["-O2"], "ldflags": [], "run_hint": "../network"}
    semi = f"{tc.SEMIHOSTING},arg="
    return {"cc": tc.RV32_CC, "cflags": tc.RV32_CFLAGS + ["-O2"], "ldflags": tc.RV32_LDFLAGS,
            "run_hint": " ".join([tc.QEMU, *tc.QEMU_ARGS, "-semihosting-config", semi, "-kernel", "../network.elf"])}


def runtime_sources(target: Target) -> list[Path]:
    """The runtime .c files a target compiles: portable kernels plus the target's HAL."""
    kernels = sorted(p for p in RUNTIME.glob("*.c"))
    return kernels + [RUNTIME / "hal" / h for h in target.hal_sources]


def plan_json(program: Program, target: Target, sources: list[str]) -> dict:
    return {
        "build": {"sources": sources, "include_dirs": ["src", "runtime", "runtime/hal"], "data_dir": "data"},
        "generator": {"name": "gapforge", "version": __version__},
        "network": program.name, "target": target.name, "test_case": program.test_case,
        "steps": [{"index": c.index, "name": c.name, "kind": c.kind, "kernel": c.kernel or None,
                   "inputs": [t.name for t in c.inputs], "in_offsets": list(c.in_offsets),
                   "out_offset": c.out_offset, "out_bytes": c.out.bytes, "dtype": c.out.dtype, "macs": c.macs,
                   "golden": c.out.golden, "golden_crc32": c.out.golden_crc32} for c in program.calls],
        "memory": program.memory.to_json(),
        "params": {"file": "data/params.bin", "bytes": len(program.params), "alignment": 8,
                   "regions": [{"name": r.name, "offset": r.offset, "size": r.size, "crc32": r.crc32}
                               for r in program.regions]},
        "totals": {"macs": sum(c.macs for c in program.calls), "arena_bytes": program.arena_bytes,
                   "params_bytes": len(program.params)},
    }


def generate_project(net_dir: Path, out: Path, target_name: str, test_case: int = 1) -> Program:
    target = TARGETS.get(target_name)
    if target is None:
        raise GapforgeError(f"--target '{target_name}': unknown (choose from {', '.join(TARGETS)})")
    net = ir.load(net_dir)
    plan = build_plan(net)
    case_dir = Path(net_dir) / "test_cases" / f"test_case_{test_case}"
    if not case_dir.is_dir():
        raise GapforgeError(f"{case_dir}: no such golden test case (run tools/generate_golden_outputs.py "
                            f"--network {net_dir})")
    program = build_program(plan, case_dir)
    env = _env()
    ctx = {"p": program, "target": target, "version": __version__}
    with atomic_directory(out) as tmp:
        for sub in ("src", "runtime/hal", "data"):
            (tmp / sub).mkdir(parents=True)
        for name in ("main.c", "network.c", "network.h"):
            (tmp / "src" / name).write_text(env.get_template(f"{name}.j2").render(**ctx), encoding="utf-8")
        for src in runtime_sources(target):
            rel = src.relative_to(RUNTIME)
            shutil.copy2(src, tmp / "runtime" / rel)
        for hdr in list(RUNTIME.glob("*.h")) + list((RUNTIME / "hal").glob("*.h")):
            shutil.copy2(hdr, tmp / "runtime" / hdr.relative_to(RUNTIME))
        (tmp / "data" / "params.bin").write_bytes(program.params)
        for name, raw in program.golden_files.items():
            (tmp / "data" / name).write_bytes(raw)
        sources = [f"src/{n}" for n in ("main.c", "network.c")] + \
                  [f"runtime/{p.relative_to(RUNTIME)}" for p in runtime_sources(target)]
        build_ctx = dict(ctx, sources=sources, exe="network.elf" if target.name != "host" else "network",
                         data_files=["params.bin", *sorted(program.golden_files)],
                         **make_variables(target))
        for tmpl in target.build_templates:
            (tmp / tmpl).write_text(env.get_template(f"{tmpl}.j2").render(**build_ctx), encoding="utf-8")
        (tmp / "plan.json").write_text(json.dumps(plan_json(program, target, sources), indent=1) + "\n", encoding="utf-8")
    return program
