#!/usr/bin/env python3
"""The whole pipeline in one command: check -> extract -> fidelity -> golden -> codegen -> build -> run -> verify.

Examples:
  python tools/deploy.py --test-network simple_cnn --out golden_outputs/simple_cnn --target host
  python tools/deploy.py --model-file my_model.py --out build/my_model --target rv32

Writes into DIR: network_info.json, weights/, inputs/, fidelity_report.json, test_cases/,
project_<target>/ (the generated C project with its results.json).

Exit codes: 0 deployed and verified bit-exact; 1 not deployable, fidelity failure or a device
mismatch; 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codegen.generate import generate_project  # noqa: E402
from codegen.targets import TARGETS  # noqa: E402
from gapforge import fidelity  # noqa: E402
from gapforge.compat import check_model  # noqa: E402
from gapforge.errors import EXIT_OK, EXIT_VERDICT, run_cli  # noqa: E402
from gapforge.extract import extract, model_inputs, write_network  # noqa: E402
from gapforge.fsutil import atomic_write_text  # noqa: E402
from gapforge.modelsrc import add_model_arguments, load_model  # noqa: E402
from tools.generate_golden_outputs import generate as generate_golden  # noqa: E402
from tools.generate_golden_outputs import load_inputs  # noqa: E402
from tools.int8_inference import INT8InferenceEngine  # noqa: E402
from tools.run_generated import RUNNABLE, run_project  # noqa: E402

STAGES = ["check", "extract", "fidelity", "golden", "codegen", "build+run", "verify"]


class Progress:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float]] = []
        self.t = time.perf_counter()
        self.n = 0

    def start(self, stage: str) -> None:
        self.n += 1
        self.t = time.perf_counter()
        print(f"[{self.n}/{len(STAGES)}] {stage} ...", flush=True)

    def done(self, stage: str, summary: str) -> None:
        dt = time.perf_counter() - self.t
        self.rows.append((stage, summary, dt))
        print(f"      {summary} ({dt:.1f} s)", flush=True)

    def table(self) -> str:
        w = max(len(s) for s, _, _ in self.rows)
        return "\n".join(f"  {s:<{w}}  {txt}  [{dt:.1f} s]" for s, txt, dt in self.rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="deploy.py", description=__doc__.split("\n")[0],
                                epilog=__doc__.split("Examples:")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output directory for everything")
    p.add_argument("--target", default="host", choices=sorted(TARGETS), help="device target (default: host)")
    p.add_argument("--num-cases", type=int, default=3, metavar="K", help="golden test cases (default 3)")
    p.add_argument("--fidelity-cases", type=int, default=64, metavar="K",
                   help="held-out inputs for the fidelity check (default 64)")
    p.add_argument("--skip-fidelity", action="store_true", help="do not compare the engine with Brevitas")
    args = p.parse_args(argv)
    out = Path(args.out)
    prog = Progress()

    prog.start("check")
    src = load_model(args)
    report = check_model(src)
    c = report.counts()
    atomic_write_text(out.parent / f".{out.name}.check.json", json.dumps(report.to_json(), indent=1))
    if not report.deployable:
        prog.done("check", f"NOT deployable: {c['unsupported']} unsupported")
        for d in report.items:
            if d.status == "unsupported":
                print(f"      FAIL {d.name} ({d.type_name}): {d.message}" + (f" -- fix: {d.hint}" if d.hint else ""))
        return EXIT_VERDICT
    prog.done("check", f"deployable ({c['supported']} supported, {c['warning']} warnings)")

    prog.start("extract")
    net = extract(src)
    write_network(net, out, model_inputs(src))
    (out.parent / f".{out.name}.check.json").replace(out / "compatibility_report.json")
    prog.done("extract", f"{len(net.ops)} IR ops, {len(net.arrays)} weight arrays -> {out / 'network_info.json'}")
    engine = INT8InferenceEngine(out)

    prog.start("fidelity")
    if args.skip_fidelity:
        prog.done("fidelity", "skipped (--skip-fidelity)")
    else:
        held = out / "inputs" / "held_out_x.npy"
        x = np.load(held)[:args.fidelity_cases] if held.is_file() else np.load(out / "inputs" / "example_input.npy")
        rep = fidelity.check(src.model, engine, x, src.name)
        atomic_write_text(out / "fidelity_report.json", json.dumps(rep.to_json(), indent=1) + "\n")
        prog.done("fidelity", f"{len(x)} inputs: {rep.total_mismatches} teacher-forced mismatches "
                              f"({rep.unexplained} unexplained), top-1 agreement {rep.top1_agreement * 100:.1f}%")
        if not rep.passed:
            print(fidelity.format_report(rep))
            return EXIT_VERDICT

    prog.start("golden")
    xs, labels, what = load_inputs(out, None, args.num_cases)
    summary = generate_golden(out, xs, labels, what, progress=False)
    prog.done("golden", f"{summary['cases']} test cases x {len(summary['tensors'])} tensors ({what})")

    prog.start("codegen")
    proj = out / f"project_{args.target}"
    program = generate_project(out, proj, args.target, 1)
    m = program.memory
    prog.done("codegen", f"{len(program.calls)} steps, params {len(program.params)} B, arena {m.arena_size} B "
                         f"(liveness lower bound {m.lower_bound} B) -> {proj}")

    prog.start("build+run")
    if args.target not in RUNNABLE:
        prog.done("build+run", f"not run: target {args.target} needs the GAP SDK, which is not on this machine")
        passed, results = True, None
    else:
        passed, results = run_project(proj, args.target)
        t = results["totals"]
        perf = f", {t['instret']} instructions" if t["instret"] else f", {t['cycles'] / 1e6:.2f} ms"
        prog.done("build+run", f"ran on {args.target} in {results['seconds']:.1f} s{perf}")

    prog.start("verify")
    if results is None:
        prog.done("verify", "skipped (not run)")
    else:
        t = results["totals"]
        prog.done("verify", f"{t['compared']}/{t['layers']} layers compared, {t['mismatches']} mismatches: "
                            + ("BIT-EXACT" if passed else "FAILED: " + "; ".join(results["reasons"][:3])))
    print(f"\nsummary for '{src.name}' (target {args.target}):\n{prog.table()}")
    print("RESULT:", "PASS" if passed else "FAIL")
    return EXIT_OK if passed else EXIT_VERDICT


if __name__ == "__main__":
    run_cli(main)
