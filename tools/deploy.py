#!/usr/bin/env python3
"""The whole pipeline in one command: check -> extract -> fidelity -> golden -> codegen -> build -> run -> verify.

Examples:
  python tools/deploy.py --test-network simple_cnn --out golden_outputs/simple_cnn --target host
  python tools/deploy.py --model-file my_model.py --out build/my_model --target rv32
  python tools/deploy.py --test-network resnet18 --out build/r18 --target gap9 --l1-budget 64K
  python tools/deploy.py --test-network resnet18 --out build/r18 --target gap9 --run gvsoc

Writes into DIR: network_info.json, weights/, inputs/, compatibility_report.json,
fidelity_report.json, accuracy_report.json (when the model has held-out data), test_cases/,
project_<target>/ (the generated C project with its results.json), deploy_summary.json. The gap9
target is built and run on the host against the PMSIS emulation (gap9-emu; --run gap9-qemu: the
same program on rv32 under QEMU; --run gvsoc: its pulp-sdk Makefile on the user's gvsoc siracusa,
found from --pulp-sdk / PULP_SDK_HOME, --gvsoc / GVSOC and PULP_RISCV_GCC_TOOLCHAIN); the GAP SDK is not available here.

Everything is built in a temporary directory next to DIR and renamed at the very end: a passing
run replaces DIR; a failing run leaves an existing DIR byte for byte as it was and puts its own
outputs in DIR.failed; an error leaves nothing behind.

Exit codes: 0 deployed and verified bit-exact; 1 not deployable, fidelity failure or a device
mismatch; 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codegen.gap9.hw import add_platform_flag  # noqa: E402
from codegen.generate import FC_LAYERS, FUSE_POOLS, generate_project  # noqa: E402
from codegen.targets import TARGETS  # noqa: E402
from gapforge import fidelity, inputs  # noqa: E402
from gapforge.compat import check_model  # noqa: E402
from gapforge.errors import EXIT_OK, EXIT_VERDICT, ArgumentParser, GapforgeError, run_cli  # noqa: E402
from gapforge.extract import extract, model_inputs, write_network  # noqa: E402
from gapforge.fsutil import atomic_write_text, replace_directory, temporary_sibling  # noqa: E402
from gapforge.inputs import DEFAULT_CASES, check_shapes, select  # noqa: E402
from gapforge.inputs import load as load_inputs  # noqa: E402
from gapforge.inputs import stored as stored_inputs  # noqa: E402
from gapforge.modelsrc import ModelSource, add_model_arguments, load_model  # noqa: E402
from tools.check_fidelity import accuracy_report  # noqa: E402
from tools.generate_c_code import _budget  # noqa: E402
from tools.generate_golden_outputs import generate as generate_golden  # noqa: E402
from tools.int8_inference import INT8InferenceEngine  # noqa: E402
from tools.run_generated import GAP9_PROJECTS, inference_summary, run_project  # noqa: E402

STAGES = ["check", "extract", "fidelity", "golden", "codegen", "build+run", "verify"]
RUN_AS = {"host": "host", "rv32": "rv32", "gap9": "gap9-emu"}


class Progress:
    """Stage-by-stage progress lines and the final summary table."""

    def __init__(self, quiet: bool = False) -> None:
        self.rows: list[tuple[str, str, float]] = []
        self.t = time.perf_counter()
        self.n = 0
        self.quiet = quiet

    def start(self, stage: str) -> None:
        self.n += 1
        self.t = time.perf_counter()
        if not self.quiet:
            print(f"[{self.n}/{len(STAGES)}] {stage} ...", flush=True)

    def note(self, text: str) -> None:
        if not self.quiet:
            print(f"note: {text}", flush=True)

    def done(self, stage: str, summary: str) -> None:
        dt = time.perf_counter() - self.t
        self.rows.append((stage, summary, dt))
        if not self.quiet:
            print(f"      {summary} ({dt:.1f} s)", flush=True)

    def table(self) -> str:
        w = max(len(s) for s, _, _ in self.rows)
        return "\n".join(f"  {s:<{w}}  {txt}  [{dt:.1f} s]" for s, txt, dt in self.rows)


def run_pipeline(src: ModelSource, out: Path, target: str, *, num_cases: int | None = None,
                 fidelity_cases: int = 64, skip_fidelity: bool = False, l1_budget: int | None = None,
                 l2_budget: int | None = None, progress: Progress | None = None,
                 inputs: str | None = None, run_on: str | None = None,
                 gvsoc: dict | None = None, platform: str | None = None, kernels: str = "portable",
                 fc_layers: str = "auto", fuse_pools: str = "on") -> dict:
    """Run every stage; returns a summary dict with ``passed`` and the figures of each stage.

    Everything is built in a temporary sibling of ``out`` and renamed at the very end: a passing run
    replaces ``out``; a failing run (exit 1) leaves ``out`` byte for byte as it was and keeps its own
    outputs in ``<out>.failed`` for inspection; an error (exit 2) leaves nothing behind.
    """
    out = Path(out)
    tmp = temporary_sibling(out)
    try:
        summary = _stages(src, tmp, out, target, num_cases=num_cases, fidelity_cases=fidelity_cases,
                          skip_fidelity=skip_fidelity, l1_budget=l1_budget, l2_budget=l2_budget,
                          prog=progress or Progress(quiet=True), inputs=inputs, run_on=run_on, gvsoc=gvsoc,
                          platform=platform, kernels=kernels, fc_layers=fc_layers, fuse_pools=fuse_pools)
        summary["output"] = str(out if summary["passed"] else out.with_name(out.name + ".failed"))
        (tmp / "deploy_summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_directory(tmp, summary["output"])
    return summary


def _stages(src: ModelSource, work: Path, out: Path, target: str, *, num_cases, fidelity_cases, skip_fidelity,
            l1_budget, l2_budget, prog: Progress, inputs, run_on=None, gvsoc=None, platform=None,
            kernels: str = "portable", fc_layers: str = "auto", fuse_pools: str = "on") -> dict:
    """The stages, writing into ``work``; messages name the final directory ``out``."""
    summary: dict = {"network": src.name, "target": target, "passed": False, "notes": list(src.notes)}
    for note in src.notes:
        prog.note(note)

    prog.start("check")
    report = check_model(src)
    atomic_write_text(work / "compatibility_report.json", json.dumps(report.to_json(), indent=1) + "\n")
    c = report.counts()
    summary["check"] = {"deployable": report.deployable, **c}
    if not report.deployable:
        prog.done("check", f"NOT deployable: {c['unsupported']} unsupported")
        summary["problems"] = [f"{d.name} ({d.type_name}): {d.message}" + (f" -- fix: {d.hint}" if d.hint else "")
                               for d in report.items if d.status == "unsupported"]
        return summary
    prog.done("check", f"deployable ({c['supported']} supported, {c['warning']} warnings)")

    prog.start("extract")
    net = extract(src)
    write_network(net, work, model_inputs(src))
    atomic_write_text(work / "compatibility_report.json", json.dumps(report.to_json(), indent=1) + "\n")
    summary["extract"] = {"ops": len(net.ops), "weight_arrays": len(net.arrays)}
    prog.done("extract", f"{len(net.ops)} IR ops, {len(net.arrays)} weight arrays -> {out / 'network_info.json'}")
    engine = INT8InferenceEngine(work)
    if inputs:  # the user's inputs against the graph's input shapes, before any of them runs
        check_shapes(load_inputs(inputs), net, inputs)

    prog.start("fidelity")
    if skip_fidelity:
        prog.done("fidelity", "skipped (--skip-fidelity)")
    else:
        x, _, what = select(work, inputs, None) if inputs else stored_inputs(work)
        x = x[:fidelity_cases]
        rep = fidelity.check(src.model, engine, x, src.name)
        atomic_write_text(work / "fidelity_report.json", json.dumps(rep.to_json(), indent=1) + "\n")
        summary["fidelity"] = {"inputs": len(x), "input_source": what, "mismatches": rep.total_mismatches,
                               "outside_near_tie_window": rep.outside_window, "unexplained": rep.unexplained,
                               "power_of_two": rep.power_of_two, "top1_agreement": rep.top1_agreement,
                               "max_rel_output_diff": rep.max_rel_output_diff, "passed": rep.passed}
        text = (f"{len(x)} input{'s' if len(x) != 1 else ''} ({what}): {rep.total_mismatches} teacher-forced "
                f"mismatches ({rep.unexplained} unexplained), top-1 agreement {rep.top1_agreement * 100:.1f}%")
        if len(x) == 1:
            text += " [ONE input only]"
            summary["fidelity"]["note"] = f"fidelity {fidelity.SINGLE_INPUT_NOTE}"
        held_y = work / "inputs" / "held_out_y.npy"
        if held_y.is_file():
            acc = accuracy_report(src.model, engine, stored_inputs(work)[0], np.load(held_y))
            atomic_write_text(work / "accuracy_report.json", json.dumps(acc, indent=1) + "\n")
            summary["accuracy"] = acc["accuracy"]
            a = acc["accuracy"]
            flt = "n/a" if a["float"] is None else f"{a['float'] * 100:.1f}%"
            text += f"; accuracy float {flt} / Brevitas {a['brevitas'] * 100:.1f}% / INT8 {a['int8_engine'] * 100:.1f}%"
        prog.done("fidelity", text)
        if len(x) == 1:
            prog.note(summary["fidelity"]["note"])
        if not rep.passed:
            summary["problems"] = [fidelity.format_report(rep, what)]
            return summary

    prog.start("golden")
    xs, labels, what = select(work, inputs, num_cases)
    gold = generate_golden(work, xs, labels, what, progress=False)
    prog.done("golden", f"{gold['cases']} test case{'s' if gold['cases'] != 1 else ''} x {len(gold['tensors'])} "
                        f"tensors ({what})")

    prog.start("codegen")
    proj = f"project_{target}"
    result = generate_project(work, work / proj, target, 1, l1_budget=l1_budget, l2_budget=l2_budget,
                              platform=platform, kernels=kernels, **({"fc_layers": fc_layers, "fuse_pools": fuse_pools} if target == "gap9" else {}))
    program = getattr(result, "program", result)
    m = program.memory
    summary["codegen"] = {"steps": len(program.calls), "params_bytes": len(program.params),
                          "arena_bytes": m.arena_size, "liveness_lower_bound_bytes": m.lower_bound}
    text = (f"{len(program.calls)} steps, params {len(program.params)} B, arena {m.arena_size} B "
            f"(liveness lower bound {m.lower_bound} B)")
    if hasattr(result, "placement"):
        pl = result.placement
        summary["codegen"]["gap9"] = {"platform": pl.budgets.hw.name, "params_level": pl.params, "l2_peak": pl.l2_total, "l3_peak": pl.l3_total,
                                      "tiles": sum(t.n_tiles for t in result.tiles)}
        text += f"; gap9 ({pl.budgets.hw.name}): params in {pl.params}, peak L2 {pl.l2_total} B, {sum(t.n_tiles for t in result.tiles)} tiles"
    prog.done("codegen", f"{text} -> {out / proj}")

    prog.start("build+run")
    runner = run_on or RUN_AS[target]
    passed, results = run_project(work / proj, runner, gvsoc=gvsoc)
    t = results["totals"]
    if runner == "gvsoc":  # the fabric controller's pi_perf cycles around every step
        perf = f", {t['cycles']} FC cycles on {results.get('gvsoc', {}).get('platform', 'gvsoc')}"
    else:
        perf = f", {t['instret']} instructions" if t["instret"] else f", {t['cycles'] / 1e6:.2f} ms"
    if results.get("inference"):  # the timed inference pass after the verified one (codegen/results.py)
        perf += "; " + inference_summary(results["inference"], runner)
    prog.done("build+run", f"ran on {runner} in {results['seconds']:.1f} s{perf}")
    summary["run"] = {"target": runner, **t, "passed": passed}
    if results.get("inference"):
        summary["run"]["inference"] = {k: v for k, v in results["inference"].items() if k != "compared"}

    prog.start("verify")
    fused = f", {t['fused']} convs fused into their max pools (kept in L1; --fuse-pools off compares them)" \
        if t.get("fused") else ""
    prog.done("verify", f"{t['compared'] - t.get('fused', 0)}/{t['layers']} layers compared{fused}, "
                        f"{t['mismatches']} mismatches: "
                        + ("BIT-EXACT" if passed else "FAILED: " + "; ".join(results["reasons"][:3])))
    summary["passed"] = passed
    if not passed:
        summary["problems"] = results["reasons"]
    return summary


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="deploy.py", description=__doc__.split("\n")[0],
                       epilog=__doc__.split("Examples:")[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output directory for everything")
    p.add_argument("--target", default="host", choices=sorted(TARGETS),
                   help="device target (default: host); gap9 runs on the PMSIS emulation")
    p.add_argument("--inputs", metavar="X.npy", help="float32 inputs, batch first (an .npz with one array per input "
                   "for a network with several inputs), for fidelity and the golden "
                   "test cases (default: the model file's held-out samples, else its example input)")
    p.add_argument("--num-cases", type=int, metavar="K",
                   help=f"golden test cases (default: {DEFAULT_CASES}, or as many inputs as there are)")
    p.add_argument("--fidelity-cases", type=int, default=64, metavar="K",
                   help="held-out inputs for the fidelity check (default 64)")
    p.add_argument("--skip-fidelity", action="store_true", help="do not compare the engine with Brevitas")
    p.add_argument("--l1-budget", metavar="BYTES", help="gap9: L1 bytes for tiles (e.g. 128K)")
    p.add_argument("--l2-budget", metavar="BYTES", help="gap9: L2 bytes for data (e.g. 1.5M)")
    p.add_argument("--run", choices=GAP9_PROJECTS, metavar="WHERE",
                   help="gap9: run the project on " + ", ".join(GAP9_PROJECTS) + " (default gap9-emu; gvsoc: the "
                        "installation below, platform siracusa)")
    p.add_argument("--pulp-sdk", metavar="DIR", help="--run gvsoc: the pulp-sdk checkout (default: $PULP_SDK_HOME)")
    p.add_argument("--gvsoc", metavar="PATH", help="--run gvsoc: the installed gvsoc launcher (default: $GVSOC)")
    add_platform_flag(p, "--target gap9: the chip planned for")
    p.add_argument("--kernels", default="portable", choices=["portable", "simd"],
                   help="gap9: portable C kernels (default) or the SIMD convolution, linear and matmul kernels")
    p.add_argument("--fc-layers", default="auto", choices=list(FC_LAYERS),
                   help="gap9: small layers on the fabric controller where the cost model finds it faster (auto, "
                        "default), never (off), or every layer that may run there (all)")
    p.add_argument("--fuse-pools", default="on", choices=list(FUSE_POOLS),
                   help="gap9: a max pool right after a conv runs as one cluster layer with it (on, default) or as "
                        "its own layer (off: the conv's output is compared too)")
    args = p.parse_args(argv)
    if args.run and args.target != "gap9":
        raise GapforgeError(f"--run applies to --target gap9 only, not {args.target}")
    if (args.pulp_sdk or args.gvsoc) and args.run != "gvsoc":
        raise GapforgeError("--pulp-sdk/--gvsoc apply to --run gvsoc only")
    if args.run == "gvsoc":  # a missing installation is refused before any work
        from codegen import gvsoc

        gvsoc.find_installation(args.pulp_sdk, args.gvsoc)
    if args.fidelity_cases < 1:
        raise GapforgeError("--fidelity-cases must be at least 1")
    if args.num_cases is not None and args.num_cases < 1:
        raise GapforgeError("--num-cases must be at least 1")
    l1, l2 = _budget(args.l1_budget, "--l1-budget"), _budget(args.l2_budget, "--l2-budget")
    if (l1 or l2) and args.target != "gap9":
        raise GapforgeError(f"--l1-budget/--l2-budget apply to --target gap9 only, not {args.target}")
    if args.platform and args.target != "gap9":
        raise GapforgeError(f"--platform applies to --target gap9 only, not {args.target}")
    if args.kernels != "portable" and args.target != "gap9":
        raise GapforgeError(f"--kernels {args.kernels} applies to --target gap9 only, not {args.target}")
    if args.fc_layers != "auto" and args.target != "gap9":
        raise GapforgeError(f"--fc-layers {args.fc_layers} applies to --target gap9 only, not {args.target}")
    if args.fuse_pools != "on" and args.target != "gap9":
        raise GapforgeError(f"--fuse-pools {args.fuse_pools} applies to --target gap9 only, not {args.target}")
    if args.inputs:
        inputs.load(args.inputs)  # a bad inputs file is refused before any work
    src = load_model(args)
    prog = Progress()
    summary = run_pipeline(src, Path(args.out), args.target, num_cases=args.num_cases,
                           fidelity_cases=args.fidelity_cases, skip_fidelity=args.skip_fidelity,
                           l1_budget=l1, l2_budget=l2, progress=prog, inputs=args.inputs, run_on=args.run,
                           gvsoc={"pulp_sdk": args.pulp_sdk, "gvsoc": args.gvsoc}, platform=args.platform,
                           kernels=args.kernels, fc_layers=args.fc_layers, fuse_pools=args.fuse_pools)
    for line in summary.get("problems", []):
        print(f"      {line}")
    print(f"\nsummary for '{src.name}' (target {args.target}):\n{prog.table()}")
    if not summary["passed"]:
        print(f"{args.out} was left as it was; the outputs of this failed run are in {summary['output']}")
    print("RESULT:", "PASS" if summary["passed"] else "FAIL")
    return EXIT_OK if summary["passed"] else EXIT_VERDICT


if __name__ == "__main__":
    run_cli(main)
