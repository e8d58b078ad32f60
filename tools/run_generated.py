#!/usr/bin/env python3
"""Build and run a generated project, compare every layer with the golden, write results.json.

Examples:
  python tools/run_generated.py --project build/simple_cnn_host --target host
  python tools/run_generated.py --project build/simple_cnn_rv32 --target rv32

Exit codes: 0 every layer of the golden was compared and matched exactly; 1 a mismatch, a missing
layer, a checksum failure or a crash; 2 bad input (no project, unknown target, build failure).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codegen import toolchains  # noqa: E402
from codegen.results import parse_output, verdict  # noqa: E402
from gapforge.errors import EXIT_OK, EXIT_VERDICT, GapforgeError, run_cli  # noqa: E402
from gapforge.fsutil import atomic_write_text  # noqa: E402

RUNNABLE = ("host", "rv32")


def load_plan(project: Path) -> dict:
    path = project / "plan.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GapforgeError(f"{path}: not a generated project (run tools/generate_c_code.py)") from None
    except json.JSONDecodeError as exc:
        raise GapforgeError(f"{path}: not valid JSON ({exc.msg})") from None


def build(project: Path, plan: dict, target: str, sanitize: bool = False) -> Path:
    b = plan["build"]
    exe = project / "build" / target / ("network" if target == "host" else "network.elf")
    exe.parent.mkdir(parents=True, exist_ok=True)
    return toolchains.build(target, [project / s for s in b["sources"]], [project / d for d in b["include_dirs"]],
                            exe, sanitize=sanitize)


def run_project(project: Path, target: str, timeout: float = 600.0, sanitize: bool = False) -> tuple[bool, dict]:
    plan = load_plan(project)
    if target not in RUNNABLE:
        raise GapforgeError(f"--target {target}: only {', '.join(RUNNABLE)} can run on these machines")
    ok, why = toolchains.available(target)
    if not ok:
        raise GapforgeError(f"target {target} is not available here: {why}")
    exe = build(project, plan, target, sanitize)
    res = toolchains.run(target, exe, cwd=project / plan["build"]["data_dir"], timeout=timeout)
    parsed = parse_output(res.stdout)
    passed, reasons = verdict(plan, parsed, res.returncode)
    results = {
        "network": plan["network"], "target": target, "plan_target": plan["target"], "sanitized": sanitize,
        "test_case": plan["test_case"], "passed": passed, "reasons": reasons, "exit_code": res.returncode,
        "seconds": round(res.seconds, 3), "checksum": parsed["checksum"],
        "layers": parsed["layers"],
        "totals": {"layers": len(plan["steps"]), "compared": len(parsed["layers"]),
                   "mismatches": sum(l.get("mismatches", 0) for l in parsed["layers"]),
                   "instret": sum(l.get("instret", 0) for l in parsed["layers"]),
                   "cycles": sum(l.get("cycles", 0) for l in parsed["layers"]),
                   "macs": sum(l.get("macs", 0) for l in parsed["layers"])},
        "stderr_tail": res.stderr[-2000:],
    }
    atomic_write_text(project / "results.json", json.dumps(results, indent=1) + "\n")
    return passed, results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="run_generated.py", description=__doc__.split("\n")[0],
                                epilog=__doc__.split("Examples:")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", required=True, metavar="PROJ", help="directory made by tools/generate_c_code.py")
    p.add_argument("--target", required=True, choices=RUNNABLE, help="where to build and run")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before the run is killed")
    p.add_argument("--sanitize", action="store_true", help="host only: build with AddressSanitizer and UBSan")
    p.add_argument("-q", "--quiet", action="store_true", help="only the final line")
    args = p.parse_args(argv)
    if args.sanitize and args.target != "host":
        raise GapforgeError("--sanitize is only available for --target host")
    passed, r = run_project(Path(args.project), args.target, args.timeout, args.sanitize)
    if not args.quiet:
        for l in r["layers"]:
            perf = f"instret={l['instret']}" if l.get("instret") else f"cycles={l.get('cycles', 0)}"
            print(f"  {l['index']:>3} {l['name']:<40} {l.get('kind') or '':<18} {l.get('elements', 0):>8} elems "
                  f"{l.get('mismatches', '?'):>5} mismatches  {perf}")
    t = r["totals"]
    status = "PASS" if passed else "FAIL"
    print(f"{status}: {r['network']} on {args.target}: {t['compared']}/{t['layers']} layers compared, "
          f"{t['mismatches']} mismatches" + (f", {t['instret']} instructions" if t["instret"] else "")
          + ("" if passed else f" ({'; '.join(r['reasons'][:3])})"))
    return EXIT_OK if passed else EXIT_VERDICT


if __name__ == "__main__":
    run_cli(main)
