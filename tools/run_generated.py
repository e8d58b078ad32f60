#!/usr/bin/env python3
"""Build and run a generated project, compare every layer with the golden, write results.json.

Examples:
  python tools/run_generated.py --project build/simple_cnn_host --target host
  python tools/run_generated.py --project build/simple_cnn_rv32 --target rv32
  python tools/run_generated.py --project build/resnet18_gap9 --target gap9-emu --l1-budget 16K
  python tools/run_generated.py --project build/resnet18_gap9 --target gap9-qemu
  python tools/run_generated.py --project build/resnet18_gap9 --target gvsoc --platform siracusa
  python tools/run_generated.py --project build/r18_siracusa --target gap9-emu --platform siracusa

gap9-emu builds the generated GAP9 project (unchanged sources) on the host against gapforge's
PMSIS emulation: L1/L2/L3 budgets enforced (allocation beyond them is a loud error), DMA that
completes only at its wait (destinations poisoned until then), the 8 compute cores as
deterministic coroutines (a missing barrier changes the result) on guarded stacks of the
configured sizes (scaled by the measured host/rv32 ratio), per-layer statistics; the memories and budgets are those of the platform recorded in plan.json
(tools/generate_c_code.py --platform) unless --l1-budget/--l2-budget override them. gap9-qemu builds
the same sources for bare-metal rv32 and runs them under QEMU -icount shift=0: the same checks, and
exact instruction counts of every core per layer (GF CORES lines; docs/gap9.md). gvsoc builds the
project's pulp-sdk Makefile against the user's PULP SDK and runs it on gvsoc (--platform siracusa,
the default; installation from --pulp-sdk / PULP_SDK_HOME, --gvsoc / GVSOC and
PULP_RISCV_GCC_TOOLCHAIN): cycles are the fabric controller's pi_perf counters.

PROJ/results.json is written for every run, failed ones included (passed: false and the reasons),
so an older results.json never survives a failed build or run.

Exit codes: 0 every layer of the golden was compared and matched exactly (gap9 projects: and the network's
outputs again after the timed inference pass, results.json ``inference``); 1 a mismatch (in either pass), a missing
layer, a checksum failure, a crash or a time-out; 2 bad input (no project, unknown target, build
failure, an unwritable project directory).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codegen import toolchains  # noqa: E402
from codegen.gap9.hw import add_platform_flag, gvsoc_platforms  # noqa: E402
from codegen.results import COUNTERS, inference, parse_output, verdict  # noqa: E402
from gapforge.errors import EXIT_OK, EXIT_VERDICT, ArgumentParser, GapforgeError, os_error, run_cli  # noqa: E402
from gapforge.fsutil import atomic_write_text  # noqa: E402
from tools.generate_c_code import _budget  # noqa: E402

RUNNABLE = ("host", "rv32", "gap9-emu", "gap9-qemu", "gvsoc")
GAP9_RUNS = ("gap9-emu", "gap9-qemu")  # the gap9 project, on the host or on rv32 under QEMU
GAP9_PROJECTS = (*GAP9_RUNS, "gvsoc")  # gvsoc: its pulp-sdk Makefile, on the user's gvsoc installation


def load_plan(project: Path) -> dict:
    path = project / "plan.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GapforgeError(f"{path}: not a generated project (run tools/generate_c_code.py)") from None
    except json.JSONDecodeError as exc:
        raise GapforgeError(f"{path}: not valid JSON ({exc.msg})") from None
    except OSError as exc:
        raise GapforgeError(f"{path}: cannot read ({exc.strerror}); not a generated project") from None


def executable(project: Path, target: str) -> Path:
    """Where ``build`` puts the program of ``target``."""
    return project / "build" / target / ("network.elf" if target in ("rv32", "gap9-qemu") else "network")


def build(project: Path, plan: dict, target: str, sanitize: bool = False,
          no_build: bool = False, budgets: dict[str, str] | None = None) -> tuple[Path, dict[str, str]]:
    """The executable, and the environment it runs with (gap9-emu: the emulated stacks, whose
    sizes come from this very build: codegen/gap9/resources.py; saved beside the program so that
    ``no_build`` can run the existing program unchanged)."""
    exe = executable(project, target)
    env_file = exe.parent / "run_env.json"
    if no_build:
        if not exe.is_file():
            raise GapforgeError(f"{exe}: no program built for {target} yet (run without --no-build first)")
        try:
            return exe, json.loads(env_file.read_text(encoding="utf-8")) if env_file.is_file() else {}
        except (OSError, json.JSONDecodeError) as exc:
            raise GapforgeError(f"{env_file}: unreadable ({exc}); run without --no-build") from None
    exe.parent.mkdir(parents=True, exist_ok=True)
    if target == "gap9-emu":
        from codegen.gap9.resources import build_emu

        exe, env = build_emu(project, plan, exe, sanitize)
    elif target == "gap9-qemu":  # the emulation's settings (``budgets``, stack model) are compiled in
        if sanitize:
            raise GapforgeError("--sanitize is not available for --target gap9-qemu")
        from codegen.gap9.resources import build_qemu

        exe, env = build_qemu(project, plan, exe, budgets or _emu_budgets(plan, None, None, None))
    else:
        b = plan["build"]
        exe, env = toolchains.build(target, [project / s for s in b["sources"]],
                                    [project / d for d in b["include_dirs"]], exe, sanitize=sanitize), {}
    atomic_write_text(env_file, json.dumps(env, indent=1) + "\n")
    return exe, env


def emu_env(plan: dict, target: str, l1_budget: int | None = None, l2_budget: int | None = None,
            core_order: str | None = None) -> dict[str, str]:
    """gap9-emu: the memory budgets the emulator enforces (the plan's unless given)."""
    return _emu_budgets(plan, l1_budget, l2_budget, core_order) if target == "gap9-emu" else {}


def sha256_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@contextlib.contextmanager
def _environ(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _check_plan_target(plan: dict, target: str) -> None:
    if (target in GAP9_PROJECTS) != (plan["target"] == "gap9"):
        want = "gap9" if target in GAP9_PROJECTS else "host or rv32"
        raise GapforgeError(f"the project was generated for {plan['target']}; --target {target} needs a {want} "
                            "project (tools/generate_c_code.py --target ...)")


def compare_with_plan(plan: dict, layers: list[dict]) -> list[str]:
    """gap9: the executor's and the emulator's byte counters must equal the planner's predictions."""
    problems = []
    planned = {r["name"]: r for r in plan["gap9"]["layers"]}
    control = l1_control(plan)
    for layer in layers:
        p = planned.get(layer["name"])
        if p is None or p["tiling"] == "fc":
            continue
        for key, want in p["dma_bytes"].items():
            for src in ("mem", "emu"):
                got = layer.get(src, {}).get(key)
                if got is not None and got != want:
                    problems.append(f"layer '{layer['name']}': {src} {key}={got}, planned {want}")
        if layer.get("mem", {}).get("tiles") not in (None, p["tiles"]):
            problems.append(f"layer '{layer['name']}': {layer['mem']['tiles']} tiles, planned {p['tiles']}")
        emu = layer.get("emu", {})
        # L1: the task's one block (gf_tiled.c cluster_entry: the control block and its largest layer's buffers),
        # allocated while each of its layers runs
        for key, want in (("l1_peak", p.get("l1_block_bytes", p["l1_bytes"] + control)), ("l2_peak", p["l2_peak_bytes"]),
                          ("l3_peak", p["l3_peak_bytes"])):
            if key in emu and emu[key] != want:
                problems.append(f"layer '{layer['name']}': emulator {key}={emu[key]}, planned {want}")
    return problems


def l1_control(plan: dict) -> int:
    """L1 bytes of the control block the executor allocates with each task's buffers (plan.json
    gap9.platform.l1_control; codegen/gap9/hw.py)."""
    return int(plan["gap9"]["platform"].get("l1_control", 0))


def _emu_budgets(plan: dict, l1_budget: int | None, l2_budget: int | None, core_order: str | None) -> dict[str, str]:
    """The PMSIS emulation's budgets (gap9-emu: environment; gap9-qemu: compiled in): L1 the tiles' budget and the
    layer control block."""
    b = plan["gap9"]["budgets"]
    env = {"GF_EMU_L1_BUDGET": str((l1_budget or b["l1_budget"]) + l1_control(plan)),
           "GF_EMU_L2_BUDGET": str(l2_budget or b["l2_budget"]), "GF_EMU_L3_SIZE": str(b["l3_size"])}
    if core_order:
        env["GF_EMU_CORE_ORDER"] = core_order
    return env


def _failed_results(plan: dict, target: str, sanitize: bool, reason: str, seconds: float = 0.0) -> dict:
    """results.json of a run that produced no layer results (build failure, time-out, ...)."""
    return {"network": plan.get("network"), "target": target, "plan_target": plan.get("target"),
            "sanitized": sanitize, "test_case": plan.get("test_case"), "passed": False, "reasons": [reason],
            "exit_code": None, "seconds": round(seconds, 3), "checksum": None, "layers": [],
            "totals": {"layers": len(plan.get("steps", [])), "compared": 0, "mismatches": 0, "instret": 0,
                       "cycles": 0, "macs": 0}, "stderr_tail": ""}


def _write_results(project: Path, results: dict) -> None:
    atomic_write_text(project / "results.json", json.dumps(results, indent=1) + "\n")


def plan_platform(plan: dict) -> str:
    """The platform a gap9 project was planned for (plan.json gap9.platform; gap9 before it was recorded)."""
    return plan.get("gap9", {}).get("platform", {}).get("name", "gap9")


def check_platform(plan: dict, name: str | None) -> None:
    """``--platform`` on a run names the platform the project was planned for, or is refused."""
    if name is None:
        return
    from codegen.gap9.hw import platform

    platform(name)
    have = plan_platform(plan) if plan.get("target") == "gap9" else None
    if have != name:
        raise GapforgeError(f"--platform {name}: the project was planned for {have or plan.get('target')}; "
                            f"regenerate it with tools/generate_c_code.py --target gap9 --platform {name}")


def gvsoc_platform(plan: dict, name: str | None) -> str:
    """The gvsoc platform a gap9 project runs on: ``name`` (--platform), else the one it was planned
    for when gvsoc models it, else siracusa. One whose L1/L2 budgets are below the plan's is refused."""
    from codegen import gvsoc as gv
    from codegen.gap9.hw import platform

    planned = plan_platform(plan)
    chosen = name or (planned if planned in gv.PLATFORMS else gv.DEFAULT_PLATFORM)
    hw = platform(chosen)
    b = plan.get("gap9", {}).get("budgets", {})
    if chosen != planned and (b.get("l1_budget", 0) > hw.l1_budget or b.get("l2_budget", 0) > hw.l2_budget):
        raise GapforgeError(f"--platform {chosen}: the project was planned for {planned} (L1 budget "
                            f"{b['l1_budget']} B, L2 {b['l2_budget']} B), more than {chosen}'s ({hw.l1_budget} B, "
                            f"{hw.l2_budget} B); regenerate it with tools/generate_c_code.py --platform {chosen}")
    return chosen


def run_project(project: Path, target: str, timeout: float = 600.0, sanitize: bool = False,
                l1_budget: int | None = None, l2_budget: int | None = None,
                core_order: str | None = None, no_build: bool = False,
                gvsoc: dict | None = None, platform: str | None = None) -> tuple[bool, dict]:
    """Build and run; ``PROJ/results.json`` is written for every run, failed ones included.
    ``gvsoc`` (target gvsoc): ``pulp_sdk``, ``gvsoc`` (paths or None: PULP_SDK_HOME / GVSOC).
    ``platform``: gap9-emu / gap9-qemu: the platform the project must have been planned for (None:
    any); gvsoc: the platform to run on (:func:`gvsoc_platform`).

    A bad request (wrong target, missing toolchain) or a build failure raises GapforgeError after
    writing results.json with ``passed: false`` and the reason, so an older results.json never
    survives a failed run; a run that times out is a failed verdict.
    """
    plan = load_plan(project)
    try:
        if target == "gvsoc":
            _check_plan_target(plan, "gvsoc")
            run_on = gvsoc_platform(plan, platform or (gvsoc or {}).get("platform"))
            return _run_gvsoc(project, plan, timeout, no_build, **{**(gvsoc or {}), "platform": run_on})
        check_platform(plan, platform)
        return _run(project, plan, target, timeout, sanitize, l1_budget, l2_budget, core_order, no_build)
    except GapforgeError as err:
        with contextlib.suppress(GapforgeError):
            _write_results(project, _failed_results(plan, target, sanitize, err.one_line()))
        raise
    except OSError as exc:
        err = os_error(exc)
        with contextlib.suppress(GapforgeError):
            _write_results(project, _failed_results(plan, target, sanitize, err.one_line()))
        raise err from None


def _results(project: Path, plan: dict, target: str, sanitize: bool, res, program: dict) -> tuple[bool, dict]:
    """results.json of a run that produced output: per-layer results, totals, the verdict."""
    parsed = parse_output(res.stdout)
    passed, reasons = verdict(plan, parsed, res.returncode)
    results = {
        "network": plan["network"], "target": target, "plan_target": plan["target"], "sanitized": sanitize,
        "test_case": plan["test_case"], "passed": passed, "reasons": reasons, "exit_code": res.returncode,
        "seconds": round(res.seconds, 3), "checksum": parsed["checksum"], "program": program,
        "manifest": parsed["manifest"], "layers": parsed["layers"],
        "totals": {"layers": len(plan["steps"]), "compared": len(parsed["layers"]),
                   # gap9: convs fused into their max pool (reported, not compared: codegen/gap9/fusion.py)
                   "fused": sum(1 for layer in parsed["layers"] if layer.get("fused_into")),
                   "mismatches": sum(layer.get("mismatches", 0) for layer in parsed["layers"]),
                   "instret": sum(layer.get("instret", 0) for layer in parsed["layers"]),
                   "cycles": sum(layer.get("cycles", 0) for layer in parsed["layers"]),
                   "macs": sum(layer.get("macs", 0) for layer in parsed["layers"])},
        "stderr_tail": res.stderr[-2000:],
    }
    # the steps that load the network's input (kind quantize: the device receives the host-quantized integers,
    # read from the data files) are test-harness I/O, not inference: the network's own cycles without them
    load = sum(layer.get("cycles", 0) for layer in parsed["layers"] if layer.get("kind") == "quantize")
    results["totals"]["input_load_cycles"] = load
    results["totals"]["inference_cycles"] = results["totals"]["cycles"] - load
    if target in COUNTERS:  # the FC's figures and the cluster's, each named for what it counts
        results["counters"] = COUNTERS[target]
        for key in ("cluster_cycles", "cluster_instr"):
            results["totals"][key] = sum(layer.get(key, 0) for layer in parsed["layers"])
    inf = inference(plan, parsed, target)  # gap9: the timed inference pass after the verified one
    if inf is not None:
        results["inference"] = inf
    if parsed.get("tasks"):  # gap9: cluster tasks of several steps (GF TASK: the FC's counters around each)
        results["tasks"] = parsed["tasks"]
    if parsed["values"]:
        results["values"] = parsed["values"]
    return passed, results


def _run_gvsoc(project: Path, plan: dict, timeout: float, no_build: bool, pulp_sdk: str | None = None,
               gvsoc: str | None = None, platform: str | None = None) -> tuple[bool, dict]:
    """The project's pulp-sdk Makefile built and run on the user's gvsoc (codegen/gvsoc.py)."""
    from codegen import gvsoc as gv

    platform = platform or gv.DEFAULT_PLATFORM
    inst = gv.find_installation(pulp_sdk, gvsoc, platform)
    if no_build:
        exe = gv.executable(project, plan)
        if exe is None:
            raise GapforgeError(f"{project / 'BUILD'}: no program built for gvsoc yet (run without --no-build first)")
    else:
        exe = gv.build(project, plan, inst, platform)
    program = {"path": str(exe.relative_to(project)), "sha256": sha256_of(exe), "rebuilt": not no_build}
    try:
        res = gv.run(project, inst, platform, timeout)
    except toolchains.ToolchainError as err:
        results = _failed_results(plan, "gvsoc", False, err.one_line(), timeout)
        _write_results(project, results)
        return False, results
    passed, results = _results(project, plan, "gvsoc", False, res, program)
    # exit_code is make's (make run: non-zero whenever the program's status is); the counters:
    # GF PERF cycles/instret are the fabric controller's pi_perf counters, GF MEM the executor's
    results["gvsoc"] = {"platform": platform, **inst.to_json()}
    results["plan_mismatches"] = compare_with_plan(plan, results["layers"])
    _write_results(project, results)
    return passed, results


def _run(project: Path, plan: dict, target: str, timeout: float, sanitize: bool, l1_budget: int | None,
         l2_budget: int | None, core_order: str | None, no_build: bool = False) -> tuple[bool, dict]:
    if target not in RUNNABLE:
        raise GapforgeError(f"--target {target}: only {', '.join(RUNNABLE)} can run on these machines")
    _check_plan_target(plan, target)
    run_on = {"gap9-emu": "host", "gap9-qemu": "rv32"}.get(target, target)
    ok, why = toolchains.available(run_on)
    if not ok:
        raise GapforgeError(f"target {target} is not available here: {why}")
    budgets = _emu_budgets(plan, l1_budget, l2_budget, core_order) if target in GAP9_RUNS else {}
    exe, env = build(project, plan, target, sanitize, no_build, budgets)
    env = dict(env)
    program = {"path": str(exe.relative_to(project)) if exe.is_relative_to(project) else str(exe),
               "sha256": sha256_of(exe), "rebuilt": not no_build}
    if target == "gap9-emu":
        env.update(budgets)
    with _environ(env):  # gap9-qemu: the same settings, compiled into the program
        try:
            res = toolchains.run(run_on, exe,
                                 cwd=project / plan["build"]["data_dir"], timeout=timeout)
        except toolchains.ToolchainError as err:  # timed out or could not start: a failed run
            results = _failed_results(plan, target, sanitize, err.one_line(), timeout)
            _write_results(project, results)
            return False, results
    passed, results = _results(project, plan, target, sanitize, res, program)
    if target in GAP9_RUNS:
        results["platform"] = plan_platform(plan)
        results["emulator_budgets"] = env
        results["plan_mismatches"] = compare_with_plan(plan, results["layers"])
    _write_results(project, results)
    return passed, results


def inference_summary(inf: dict, target: str) -> str:
    """One line on the timed inference pass (results.json ``inference``), with what its counters are on ``target``."""
    if target == "gvsoc":
        perf = f"{inf['cycles']} FC cycles, {inf['instret']} FC instructions"
        if inf.get("mac_per_cycle") is not None:
            perf += f", {inf['mac_per_cycle']:.3f} MAC / FC cycle"
    elif target == "gap9-qemu":
        perf = f"{inf['instret']} instructions (every core serialised)"
    else:
        perf = f"{inf['cycles'] / 1e6:.3f} ms of host time (no cycle counter)"
    match = "outputs match" if inf.get("outputs_match") else "OUTPUTS DIFFER"
    return (f"inference pass: {inf.get('steps')} steps back to back, {perf}; {inf.get('outputs')} outputs compared, "
            f"{inf.get('mismatches')} mismatches: {match}")


def plot_profile(results: dict, path: str) -> None:
    """Per-layer profile: instructions (rv32) or time per layer, and on gap9-emu the bytes each
    layer moves between the memory levels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    layers = [layer for layer in results["layers"] if layer.get("kernel")]
    names = [layer["name"] for layer in layers]
    idx = np.arange(len(layers))
    gap9 = any("mem" in layer for layer in layers)
    fig, axes = plt.subplots(1, 2 if gap9 else 1, figsize=(13 if gap9 else 8, 0.32 * len(layers) + 1.8),
                             sharey=True, squeeze=False)
    ax = axes[0][0]
    if any(layer.get("instret") for layer in layers):
        vals = [layer["instret"] for layer in layers]
        ax.set_xlabel("retired instructions per layer (QEMU minstret)")
        for i, layer in enumerate(layers):
            if layer.get("macs"):
                ax.text(vals[i], i, f" {vals[i] / layer['macs']:.2f}/MAC", va="center", fontsize=7)
    else:
        vals = [layer.get("cycles", 0) / 1e3 for layer in layers]
        ax.set_xlabel("time per layer [us] (host clock)")
    ax.barh(idx, vals, color="tab:blue")
    ax.set_yticks(idx, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_title(f"{results['network']} on {results['target']}")
    if gap9:
        ax2 = axes[0][1]
        left = np.zeros(len(layers))
        for key, color in (("l3_to_l2", "tab:red"), ("l2_to_l1", "tab:orange"), ("l1_to_l2", "tab:green"),
                           ("l2_to_l3", "tab:purple")):
            v = np.array([layer.get("mem", {}).get(key, 0) / 1024 for layer in layers])
            ax2.barh(idx, v, left=left, color=color, label=key.replace("_to_", " -> ").upper())
            left += v
        ax2.set_xlabel("DMA / RAM traffic per layer [KiB]")
        ax2.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="run_generated.py", description=__doc__.split("\n")[0],
                       epilog=__doc__.split("Examples:")[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", required=True, metavar="PROJ", help="directory made by tools/generate_c_code.py")
    p.add_argument("--target", required=True, choices=RUNNABLE, help="where to build and run")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before the run is killed")
    p.add_argument("--sanitize", action="store_true", help="host and gap9-emu: build with AddressSanitizer and UBSan")
    p.add_argument("--l1-budget", metavar="BYTES", help="gap9-emu: L1 bytes the emulator allows (default: the plan's)")
    p.add_argument("--l2-budget", metavar="BYTES", help="gap9-emu: L2 bytes the emulator allows (default: the plan's)")
    add_platform_flag(p, "gap9-emu/gap9-qemu: the platform the project must have been planned for (plan.json records "
                         "it; a different one is refused); gvsoc: the platform to run on (default: the planned one "
                         f"if gvsoc models it, else siracusa; gvsoc models {', '.join(gvsoc_platforms())})")
    p.add_argument("--plot", metavar="PNG", help="also draw the per-layer profile")
    p.add_argument("--no-build", action="store_true",
                   help="run the program already built in PROJ/build (e.g. after tools/update_weights.py); "
                        "results.json records its SHA-256")
    p.add_argument("--pulp-sdk", metavar="DIR", help="gvsoc: the pulp-sdk checkout (default: $PULP_SDK_HOME)")
    p.add_argument("--gvsoc", metavar="PATH", help="gvsoc: the installed gvsoc launcher (default: $GVSOC)")
    p.add_argument("-q", "--quiet", action="store_true", help="only the final line")
    args = p.parse_args(argv)
    if (args.pulp_sdk or args.gvsoc) and args.target != "gvsoc":
        raise GapforgeError("--pulp-sdk/--gvsoc apply to --target gvsoc only")
    if args.platform and args.target not in GAP9_PROJECTS:
        raise GapforgeError(f"--platform applies to the gap9 project's runs ({', '.join(GAP9_PROJECTS)}), "
                            f"not --target {args.target}")
    if args.sanitize and args.target == "gvsoc":
        raise GapforgeError("--sanitize is not available for --target gvsoc")
    if args.sanitize and args.target == "rv32":
        raise GapforgeError("--sanitize is not available for --target rv32")
    if (args.l1_budget or args.l2_budget) and args.target not in GAP9_RUNS:
        raise GapforgeError("--l1-budget/--l2-budget apply to --target gap9-emu and gap9-qemu only")
    passed, r = run_project(Path(args.project), args.target, args.timeout, args.sanitize,
                            _budget(args.l1_budget, "--l1-budget"), _budget(args.l2_budget, "--l2-budget"),
                            no_build=args.no_build, platform=args.platform,
                            gvsoc={"pulp_sdk": args.pulp_sdk, "gvsoc": args.gvsoc})
    if not args.quiet:
        for layer in r["layers"]:
            perf = f"instret={layer['instret']}" if layer.get("instret") else f"cycles={layer.get('cycles', 0)}"
            if args.target == "gvsoc":  # the fabric controller's pi_perf counters around the step
                perf = f"fc_cycles={layer.get('cycles', 0)} fc_instr={layer.get('instret', 0)}"
            if args.target == "gvsoc" and "cluster_cycles" in layer:  # the busiest cluster core's, on the cluster
                perf += f" cluster_cycles={layer['cluster_cycles']} cluster_instr={layer['cluster_instr']}"
            print(f"  {layer['index']:>3} {layer['name']:<40} {layer.get('kind') or '':<18} {layer.get('elements', 0):>8} elems "
                  f"{layer.get('mismatches', '?'):>5} mismatches  {perf}")
    if args.plot:
        plot_profile(r, args.plot)
    t = r["totals"]
    status = "PASS" if passed else "FAIL"
    if not args.quiet and r.get("program"):
        print(f"  program {r['program']['path']} sha256 {r['program']['sha256']}"
              + ("" if r["program"]["rebuilt"] else " (not rebuilt)"))
    fused = f", {t['fused']} convs fused into their max pools (kept in L1)" if t.get("fused") else ""
    if not args.quiet and r.get("inference"):
        print("  " + inference_summary(r["inference"], args.target))
    print(f"{status}: {r['network']} on {args.target}: {t['compared'] - t.get('fused', 0)}/{t['layers']} layers "
          f"compared{fused}, "
          f"{t['mismatches']} mismatches" + (f", {t['cycles']} cycles ({t['inference_cycles']} without the "
                                             "input load)" if args.target == "gvsoc"
                                             else f", {t['instret']} instructions" if t["instret"] else "")
          + ("" if passed else f" ({'; '.join(r['reasons'][:3])})"))
    return EXIT_OK if passed else EXIT_VERDICT


if __name__ == "__main__":
    run_cli(main)
