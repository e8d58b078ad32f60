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


def kernel_sources() -> list[Path]:
    """The portable kernels every target compiles."""
    return sorted(RUNTIME.glob("*.c"))


def _copy_runtime(target: Target, dst: Path) -> None:
    files = kernel_sources() + sorted(RUNTIME.glob("*.h")) + sorted((RUNTIME / "hal").glob("*.h"))
    files += [RUNTIME / "hal" / h for h in target.hal_sources]
    files += [RUNTIME / f for f in target.runtime_extra]
    for f in target.emu_sources:  # the emulation and its headers (pmsis.h, bsp/bsp.h, gf_emu.h)
        emu_dir = (RUNTIME / f).parent
        files += [p for p in emu_dir.rglob("*") if p.is_file() and p.suffix in (".c", ".h")
                  and "tests" not in p.relative_to(emu_dir).parts]
    for f in files:
        out = dst / f.relative_to(RUNTIME)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, out)


def _sources(target: Target) -> list[str]:
    srcs = ["src/main.c", "src/network.c"] + [f"runtime/{p.name}" for p in kernel_sources()]
    srcs += [f"runtime/hal/{h}" for h in target.hal_sources]
    srcs += [f"runtime/{f}" for f in target.runtime_extra if f.endswith(".c")]
    return srcs


def plan_json(program: Program, target: Target, gap9=None) -> dict:
    doc = {
        "generator": {"name": "gapforge", "version": __version__},
        "network": program.name, "target": target.name, "test_case": program.test_case,
        "build": {"sources": _sources(target), "include_dirs": ["src", "runtime", "runtime/hal"], "data_dir": "data"},
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
    if gap9 is not None:
        doc["gap9"] = gap9.plan_json()
        doc["build_emu"] = {
            "sources": _sources(target) + [f"runtime/{f}" for f in target.emu_sources],
            "include_dirs": ["src", "runtime", "runtime/gap9", "runtime/gap9/emu"], "data_dir": "data"}
        doc["build"]["include_dirs"] = ["src", "runtime", "runtime/gap9"]
    return doc


def generate_project(net_dir: Path, out: Path, target_name: str, test_case: int = 1, *,
                     l1_budget: int | None = None, l2_budget: int | None = None, fault: str = "none",
                     tile_l1_budget: int | None = None):
    """Generate the project; returns the Program (gap9: the Gap9Program, whose .program is the Program)."""
    target = TARGETS.get(target_name)
    if target is None:
        raise GapforgeError(f"--target '{target_name}': unknown (choose from {', '.join(TARGETS)})")
    if not target.tiled and (l1_budget or l2_budget or fault != "none"):
        raise GapforgeError(f"memory budgets and fault injection apply to the gap9 target only, not {target_name}")
    net = ir.load(net_dir)
    plan = build_plan(net)
    case_dir = Path(net_dir) / "test_cases" / f"test_case_{test_case}"
    if not case_dir.is_dir():
        raise GapforgeError(f"{case_dir}: no such golden test case (run tools/generate_golden_outputs.py "
                            f"--network {net_dir})")
    gap9 = None
    if target.tiled:
        from codegen.gap9.placement import format_report
        from codegen.gap9.program import build_gap9_program

        gap9 = build_gap9_program(plan, case_dir, l1_budget, l2_budget, fault, tile_l1_budget)
        program = gap9.program
    else:
        program = build_program(plan, case_dir)
    env = _env()
    ctx = {"p": program, "target": target, "version": __version__}
    if gap9 is not None:
        ctx.update(g=gap9, scratch=gap9.placement.budgets.hw.l2_scratch,
                   fc_calls=[c for c, tp in zip(program.calls, gap9.tiles)
                             if tp.tiling == "fc" and c.kernel])
    with atomic_directory(out) as tmp:
        for sub in ("src", "runtime", "data"):
            (tmp / sub).mkdir(parents=True)
        for name, tmpl in target.program_templates.items():
            (tmp / "src" / name).write_text(env.get_template(tmpl).render(**ctx), encoding="utf-8")
        _copy_runtime(target, tmp / "runtime")
        (tmp / "data" / "params.bin").write_bytes(program.params)
        for name, raw in program.golden_files.items():
            (tmp / "data" / name).write_bytes(raw)
        build_ctx = dict(ctx, sources=_sources(target), exe="network.elf" if target.name != "host" else "network",
                         data_files=["params.bin", *sorted(program.golden_files)], **make_variables(target))
        for tmpl in target.build_templates:
            (tmp / tmpl).write_text(env.get_template(f"{tmpl}.j2").render(**build_ctx), encoding="utf-8")
        doc = plan_json(program, target, gap9)
        (tmp / "plan.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        if gap9 is not None:
            (tmp / "plan_report.txt").write_text(format_report(gap9.placement, program.name) + "\n", encoding="utf-8")
    return gap9 if gap9 is not None else program
