#!/usr/bin/env python3
"""Check whether gapforge can deploy a model; classify every module and functional op.

Examples:
  python tools/check_model_compatibility.py --test-network resnet_block
  python tools/check_model_compatibility.py --model-file my_model.py --json-out report.json

Exit codes: 0 deployable, 1 not deployable (the report says why and how to fix it),
2 the model could not be loaded (bad path, import error, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gapforge.compat import check_model  # noqa: E402
from gapforge.errors import EXIT_OK, EXIT_VERDICT, ArgumentParser, run_cli  # noqa: E402
from gapforge.fsutil import atomic_write_text  # noqa: E402
from gapforge.modelsrc import add_model_arguments, load_model  # noqa: E402

_MARK = {"supported": "ok  ", "warning": "WARN", "unsupported": "FAIL"}


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="check_model_compatibility.py",
        description="Run one forward pass of the model, capture its dataflow and report, for every "
                    "module and functional operation, whether gapforge supports it (with a fix hint).",
        epilog=__doc__.split("Examples:")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    p.add_argument("--json-out", metavar="FILE", help="also write the report as JSON")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="list supported items and containers too (default: only problems and a summary)")
    return p


def print_report(report, verbose: bool) -> None:
    shown = [d for d in report.items if verbose or d.status != "supported"]
    width = min(max([len(d.name) for d in shown] + [10]), 40)
    print(f"model '{report.model}' ({report.source})")
    for note in report.notes:
        print(f"  note: {note}")
    for d in shown:
        loc = f" [{d.location}]" if d.location else ""
        lowered = f" -> {', '.join(d.lowered_to)}" if d.lowered_to and verbose else ""
        print(f"  {_MARK[d.status]}  {d.name:<{width}}  {d.type_name}{loc}: {d.message}{lowered}")
        if d.hint and d.status != "supported":
            print(f"        {'':<{width}}  fix: {d.hint}")
    c = report.counts()
    verdict = "DEPLOYABLE" if report.deployable else "NOT DEPLOYABLE"
    ops = len([d for d in report.items if d.kind in ("module", "function")])
    print(f"{verdict}: {c['supported']} supported, {_count(c['warning'], 'warning')}, {c['unsupported']} unsupported "
          f"of {_count(len(report.items), 'item')} checked ({ops} modules/operations, "
          f"{_count(len(report.items) - ops, 'other check')})")


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    src = load_model(args)
    report = check_model(src)
    print_report(report, args.verbose)
    if args.json_out:
        atomic_write_text(args.json_out, json.dumps(report.to_json(), indent=2) + "\n")
    return EXIT_OK if report.deployable else EXIT_VERDICT


if __name__ == "__main__":
    run_cli(main)
