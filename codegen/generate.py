"""Render a complete C project for one network, target and golden test case."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import jinja2

from codegen import manifest as mf
from codegen.gap9.fc_placement import MODES as FC_LAYERS  # gap9 --fc-layers: which small layers run on the FC
from codegen.gap9.fc_placement import format_choices
from codegen.gap9.fusion import MODES as FUSE_POOLS  # gap9 --fuse-pools: max pools fused into their conv
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
    srcs = ["src/main.c", "src/network.c"]
    srcs += [f"runtime/{p.name}" for p in kernel_sources() if p.name not in target.omit_kernel_files]
    srcs += [f"runtime/hal/{h}" for h in target.hal_sources]
    srcs += [f"runtime/{f}" for f in target.runtime_extra if f.endswith(".c")]
    return srcs


def plan_json(program: Program, target: Target, gap9=None, gap9_extra: dict | None = None) -> dict:
    """plan.json. ``gap9_extra`` (gap9): the build defines, stacks, code size (codegen/gap9/resources.py)."""
    doc = {
        "generator": {"name": "gapforge", "version": __version__},
        "network": program.name, "target": target.name, "test_case": program.test_case,
        "build": {"sources": _sources(target), "include_dirs": list(target.include_dirs), "defines": [],
                  "data_dir": "data"},
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
        "layout": {"steps": program.layout},
    }
    if gap9 is not None:
        extra = gap9_extra or {}
        doc["build"]["defines"] = list(extra.get("defines", []))
        doc["build"]["cflags"] = list(target.cflags)
        doc["gap9"] = gap9.plan_json()
        for i, c in gap9.fusions.items():  # a conv fused into its max pool (codegen/gap9/fusion.py): not compared
            doc["steps"][c]["fused_into"] = program.calls[i].name
            doc["steps"][i]["fused_conv"] = program.calls[c].name
        doc["gap9"].update({k: extra[k] for k in ("stacks", "code") if k in extra})
        if "code" in extra:
            doc["gap9"]["l2"].update(reserved_bytes=extra["code"]["l2_reserved_bytes"],
                                     code_bytes=extra["code"]["bytes"])
        doc["build_emu"] = {
            "sources": _sources(target) + [f"runtime/{f}" for f in target.emu_sources],
            "include_dirs": [*target.include_dirs, *target.emu_include_dirs],
            "defines": [*doc["build"]["defines"], *extra.get("emu_defines", [])], "data_dir": "data"}
    return doc


# Faults injected at generation (tests): these change the build, the others the layer descriptors
# (codegen/gap9/program.py) or the tiling budget (generate_c_code --inject-fault tile-too-large).
BUILD_FAULTS = ("deep-call", "small-stack", "inference-output")
SMALL_STACK = 1024  # small-stack: the compute-core stack configured before it was measured


KERNELS = ("portable", "simd")  # gap9 --kernels: the portable C kernels, or the SIMD ones (gf_simd.c)
SIMD_DEFINES = ["GF_K_SIMD", "GF_SIMD_KERNELS"]


def _gap9_resources(tmp: Path, target: Target, program: Program, hw, base, fault: str,
                    kernels: str = "portable") -> dict:
    """Measure the rendered project's SDK build (codegen/gap9/resources.py): check its stacks
    against ``hw``, record them and the code size beside the L2 reserve (warning if over). ``base``:
    the platform entry (``hw`` is it, or it with the small-stack fault's stack)."""
    from codegen.gap9 import resources as rs

    defines = rs.kernel_defines(program.calls) + (SIMD_DEFINES if kernels == "simd" else [])
    m, all_kernels = rs.measure_project(tmp, _sources(target), [*target.include_dirs, *target.emu_include_dirs],
                                        defines, base)
    if fault != "small-stack":  # that fault configures a stack too small on purpose
        rs.check_stacks(m, hw)
    fc_stack = m.chain("fc")
    code = {"bytes": m.linked["total"], "sections": {k: v for k, v in m.linked.items() if k != "total"},
            "objects": m.objects, "all_kernels_bytes": all_kernels["total"], "fc_stack_bytes": fc_stack,
            "l2_reserved_bytes": hw.l2_reserved, "kernels": defines[1:],
            "measured": "rv32imc -O2 objects linked with --gc-sections from main; PMSIS and the C library "
                        "(the SDK's) not included"}
    code["warning"] = None
    if code["bytes"] + fc_stack > hw.l2_reserved:
        code["warning"] = (f"the program's code and data ({code['bytes']} B) and FC stack ({fc_stack} B) exceed the "
                           f"{hw.l2_reserved} B of L2 reserved for code, runtime and drivers (codegen/gap9/hw.py "
                           "l2_reserved): the SDK build may not fit L2")
    # the emulation's memories are the platform's (pmsis_emu.c GF_EMU_L1_SIZE / GF_EMU_L2_SIZE)
    emu = [f"GF_EMU_L1_SIZE={base.l1_size}u", f"GF_EMU_L2_SIZE={base.l2_size}u"]
    emu += [f"GF_FAULT_DEEP_CALL={8 * hw.core_stack}"] if fault == "deep-call" else []
    # inference-output: one bit of the first network output flipped after the timed inference pass (gap9_main.c.j2)
    emu += ["GF_FAULT_INFERENCE_OUTPUT"] if fault == "inference-output" else []
    return {"defines": defines, "emu_defines": emu, "stacks": rs.stacks_json(m, hw), "code": code}


def generate_project(net_dir: Path, out: Path, target_name: str, test_case: int = 1, *,
                     l1_budget: int | None = None, l2_budget: int | None = None, fault: str = "none",
                     tile_l1_budget: int | None = None, platform: str | None = None, kernels: str = "portable",
                     fc_layers: str = "auto", fuse_pools: str = "on"):
    """Generate the project; returns the Program (gap9: the Gap9Program, whose .program is the Program).
    ``platform``: the entry of codegen/gap9/hw.py PLATFORMS the gap9 target plans for (None: gap9).
    ``kernels`` (gap9): "portable" or "simd" (the cluster's convolutions, linear and matmul with the
    SIMD kernels of gf_simd.c; recorded in plan.json generate.kernels and build.defines); ``fc_layers``
    (gap9): which small layers run on the fabric controller (codegen/gap9/fc_placement.py MODES); ``fuse_pools``
    (gap9): "on" runs a max pool fused into the conv before it where codegen/gap9/fusion.py allows, "off" never."""
    target = TARGETS.get(target_name)
    if target is None:
        raise GapforgeError(f"--target '{target_name}': unknown (choose from {', '.join(TARGETS)})")
    if kernels not in KERNELS:
        raise GapforgeError(f"--kernels '{kernels}': unknown (choose from {', '.join(KERNELS)})")
    if not target.tiled and kernels != "portable":
        raise GapforgeError(f"--kernels {kernels} applies to the gap9 target only; {target_name} uses the portable "
                            "kernels")
    if fuse_pools not in FUSE_POOLS:
        raise GapforgeError(f"--fuse-pools '{fuse_pools}': unknown (choose from {', '.join(FUSE_POOLS)})")
    if fc_layers not in FC_LAYERS:
        raise GapforgeError(f"--fc-layers '{fc_layers}': unknown (choose from {', '.join(FC_LAYERS)})")
    if not target.tiled and (l1_budget or l2_budget or fault != "none" or platform not in (None, "gap9")
                             or fc_layers != "auto" or fuse_pools != "on"):
        raise GapforgeError(f"platforms, memory budgets, fault injection, --fc-layers and --fuse-pools apply to the gap9 target only, "
                            f"not {target_name}")
    from codegen.gap9.hw import platform as hw_platform

    base = hw_platform(platform)
    net = ir.load(net_dir)
    plan = build_plan(net)
    case_dir = Path(net_dir) / "test_cases" / f"test_case_{test_case}"
    if not case_dir.is_dir():
        raise GapforgeError(f"{case_dir}: no such golden test case (run tools/generate_golden_outputs.py "
                            f"--network {net_dir})")
    gap9 = hw = None
    if target.tiled:
        from dataclasses import replace

        from codegen.gap9.placement import format_report
        from codegen.gap9.program import build_gap9_program, format_tasks
        from codegen.gap9.resources import rv32_compiler

        if l1_budget is not None and l1_budget > base.l1_budget:
            raise GapforgeError(f"--l1-budget {l1_budget}: more than {base.name}'s {base.l1_size} B of L1 minus the "
                                f"{base.l1_reserved} B of cluster stacks and layer control block (at most {base.l1_budget} B)")
        rv32_compiler()
        hw = replace(base, core_stack=SMALL_STACK) if fault == "small-stack" else base
        gap9 = build_gap9_program(plan, case_dir, l1_budget, l2_budget, "none" if fault in BUILD_FAULTS else fault,
                                  tile_l1_budget, hw=base, kernels=kernels, fc_layers=fc_layers,
                                  fuse_pools=fuse_pools)
        program = gap9.program
    else:
        program = build_program(plan, case_dir)
    env = _env()
    ctx = {"p": program, "target": target, "version": __version__}
    if gap9 is not None:
        ctx.update(g=gap9, scratch=gap9.placement.budgets.hw.l2_scratch, hw=hw,
                   fc_calls=[c for c, tp in zip(program.calls, gap9.tiles)
                             if tp.tiling == "fc" and c.kernel and not tp.fused])  # (a fused conv: none)
    args = {"test_case": test_case, "l1_budget": l1_budget, "l2_budget": l2_budget, "fault": fault,
            "tile_l1_budget": tile_l1_budget, "kernels": kernels}
    if gap9 is not None:
        args.update(platform=base.name, fc_layers=fc_layers, fuse_pools=fuse_pools)
    # the layout hash: of the layout record and of the sources rendered without it (codegen/manifest.py)
    draft = {name: env.get_template(tmpl).render(**ctx, layout_hash=mf.HASH_PLACEHOLDER)
             for name, tmpl in target.program_templates.items()}
    lhash = mf.layout_hash(dict(plan_json(program, target, gap9, {}), generate=args), draft)
    ctx["layout_hash"] = mf.hash_hex(lhash)
    goldens = [program.golden_files[c.out.golden] for c in program.calls]
    manifest = mf.build_manifest(lhash, program.params, program.regions, goldens)
    with atomic_directory(out) as tmp:
        for sub in ("src", "runtime", "data"):
            (tmp / sub).mkdir(parents=True)
        for name, tmpl in target.program_templates.items():
            (tmp / "src" / name).write_text(env.get_template(tmpl).render(**ctx), encoding="utf-8")
        _copy_runtime(target, tmp / "runtime")
        (tmp / "data" / "params.bin").write_bytes(program.params)
        for name, raw in program.golden_files.items():
            (tmp / "data" / name).write_bytes(raw)
        (tmp / "data" / mf.MANIFEST_FILE).write_bytes(manifest.to_bytes())
        extra = _gap9_resources(tmp, target, program, hw, base, fault, kernels) if gap9 is not None else {}
        doc = plan_json(program, target, gap9, extra)
        doc["generate"] = args
        doc["data"] = data_json(lhash, manifest)
        build_ctx = dict(ctx, sources=_sources(target), include_dirs=doc["build"]["include_dirs"],
                         defines=doc["build"]["defines"], compile_options=doc["build"].get("cflags", []),
                         stacks=extra.get("stacks"),
                         exe="network.elf" if target.name != "host" else "network",
                         data_files=["params.bin", mf.MANIFEST_FILE, *sorted(program.golden_files)],
                         **make_variables(target))
        for tmpl in target.build_templates:
            source = target.build_template_sources.get(tmpl, f"{tmpl}.j2")
            (tmp / tmpl).write_text(env.get_template(source).render(**build_ctx), encoding="utf-8")
        (tmp / "plan.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        if gap9 is not None:
            report = (format_report(gap9.placement, program.name) + "\n" + format_tasks(doc["gap9"]) + "\n"
                      + format_choices(doc["gap9"]) + "\n" + format_resources(doc["gap9"]))
            (tmp / "plan_report.txt").write_text(report + "\n", encoding="utf-8")
    if gap9 is not None and doc["gap9"]["code"]["warning"]:
        print(f"gapforge: warning: {program.name}: {doc['gap9']['code']['warning']}", file=sys.stderr)
    return gap9 if gap9 is not None else program


def data_json(lhash: int, manifest: mf.Manifest) -> dict:
    """plan.json's ``data`` section: the manifest's file, layout hash and flags (docs/golden_format.md)."""
    return {"manifest": f"data/{mf.MANIFEST_FILE}", "layout_hash": mf.hash_hex(lhash), "flags": manifest.flags,
            "params_crc32": manifest.params_crc32}


def format_resources(g: dict) -> str:
    """The stack and code-size lines of plan_report.txt (from plan.json's gap9 section)."""
    st, code = g["stacks"], g["code"]
    lines = [f"stacks (rv32 call chains, configured): cluster controller {st['cluster_controller']['chain_bytes']} B "
             f"of {st['cluster_controller']['configured_bytes']} B, compute core {st['compute_core']['chain_bytes']} B "
             f"of {st['compute_core']['configured_bytes']} B (L1 reserved {st['l1_reserved_bytes']} B), FC "
             f"{st['fc']['chain_bytes']} B",
             f"code: {code['bytes']} B linked ({code['all_kernels_bytes']} B with every kernel), FC stack "
             f"{code['fc_stack_bytes']} B, L2 reserve {code['l2_reserved_bytes']} B"]
    if code["warning"]:
        lines.append(f"WARNING: {code['warning']}")
    return "\n".join(lines)
