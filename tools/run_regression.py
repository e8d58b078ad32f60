#!/usr/bin/env python3
"""Run the whole pipeline on every regression network and summarise (table, JSON, plot).

Examples:
  python tools/run_regression.py --targets host rv32 gap9
  python tools/run_regression.py --networks resnet18 mlp --targets gap9 --l1-budget 16K --plot regression.png

For each network and target: compatibility check, extraction, teacher-forced fidelity on
held-out inputs, accuracy (float / Brevitas / INT8 engine), golden outputs, code generation,
build, run and per-layer verification. Written to OUT/<network>/ and OUT/summary.json.
Exit codes: 0 every network passed on every target (or was expected not to be deployable),
1 otherwise, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gapforge.errors import EXIT_OK, EXIT_VERDICT, ArgumentParser, GapforgeError, run_cli  # noqa: E402
from gapforge.fsutil import atomic_write_text  # noqa: E402
from gapforge.modelsrc import list_test_networks, load_model  # noqa: E402
from tools.deploy import run_pipeline  # noqa: E402
from tools.generate_c_code import _budget  # noqa: E402

EXPECTED_NOT_DEPLOYABLE = {"thirdparty_mobilenet_v1_raw"}


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in rows if r.get("accuracy")]
    names = [r["network"] for r in rows]
    idx = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(rows) + 1.5))
    for k, (key, label) in enumerate((("float", "float (quantization off)"), ("brevitas", "Brevitas"),
                                      ("int8_engine", "gapforge INT8 = device"))):
        ax.barh(idx + (k - 1) * 0.27, [(r["accuracy"][key] or 0) * 100 for r in rows], 0.27, label=label)
    ax.set_yticks(idx, names)
    ax.set_xlabel("top-1 accuracy on 360 held-out digits [%]")
    ax.set_xlim(0, 100)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="run_regression.py", description=__doc__.split("\n")[0],
                       epilog=__doc__.split("Examples:")[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", nargs="+", metavar="NAME", help="test networks (default: all)")
    p.add_argument("--targets", nargs="+", default=["host"], choices=["host", "rv32", "gap9"])
    p.add_argument("--out", default="golden_outputs/regression", metavar="DIR")
    p.add_argument("--fidelity-cases", type=int, default=64)
    p.add_argument("--l1-budget", metavar="BYTES", help="gap9: L1 budget for tiles")
    p.add_argument("--l2-budget", metavar="BYTES", help="gap9: L2 budget")
    p.add_argument("--plot", metavar="PNG", help="accuracy chart (float / Brevitas / INT8 per network)")
    args = p.parse_args(argv)
    from tqdm import tqdm

    names = args.networks or list_test_networks()
    unknown = sorted(set(names) - set(list_test_networks()))
    if unknown:
        raise GapforgeError(f"--networks: unknown {', '.join(unknown)}")
    out = Path(args.out)
    rows, ok = [], True
    bar = tqdm([(n, t) for n in names for t in args.targets], desc="regression", unit="run", file=sys.stderr)
    for name, target in bar:
        bar.set_postfix_str(f"{name} on {target}")
        src = load_model(argparse.Namespace(test_network=name, model_file=None, model_class=None, input_shape=None))
        try:
            s = run_pipeline(src, out / f"{name}_{target}", target, fidelity_cases=args.fidelity_cases,
                             l1_budget=_budget(args.l1_budget, "--l1-budget"),
                             l2_budget=_budget(args.l2_budget, "--l2-budget"))
        except GapforgeError as err:
            s = {"network": name, "target": target, "passed": False, "problems": [err.one_line()]}
        s["expected_not_deployable"] = name in EXPECTED_NOT_DEPLOYABLE
        good = s["passed"] or (s["expected_not_deployable"] and not s.get("check", {}).get("deployable", True))
        ok &= good
        rows.append(s)
    print(f"{'network':<28} {'target':<7} {'fid.mism':>8} {'unexpl':>6} {'top1':>6} {'acc fl/br/int8 %':>18} "
          f"{'layers':>7} {'mism':>5} {'arena/bound B':>15}  result")
    for s in rows:
        f, a, r, c = s.get("fidelity", {}), s.get("accuracy"), s.get("run", {}), s.get("codegen", {})
        acc = "/".join("-" if a[k] is None else f"{a[k] * 100:.0f}" for k in ("float", "brevitas", "int8_engine")) \
            if a else "-"
        arena = f"{c['arena_bytes']}/{c['liveness_lower_bound_bytes']}" if c else "-"
        status = "PASS" if s["passed"] else ("not deployable (expected)" if s["expected_not_deployable"] else "FAIL")
        print(f"{s['network']:<28} {s['target']:<7} {f.get('mismatches', '-'):>8} {f.get('unexplained', '-'):>6} "
              f"{(str(round(f['top1_agreement'] * 100)) + '%') if f else '-':>6} {acc:>18} "
              f"{r.get('layers', '-'):>7} {r.get('mismatches', '-'):>5} {arena:>15}  {status}")
        if not s["passed"] and not s["expected_not_deployable"]:
            for line in s.get("problems", [])[:3]:
                print(f"    {line}")
    atomic_write_text(out / "summary.json", json.dumps(rows, indent=1) + "\n")
    if args.plot:
        plot(rows, args.plot)
    return EXIT_OK if ok else EXIT_VERDICT


if __name__ == "__main__":
    run_cli(main)
