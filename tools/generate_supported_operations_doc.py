#!/usr/bin/env python3
"""Write docs/supported_operations.md from the operator declarations in gapforge/ops.

Examples:
  python tools/generate_supported_operations_doc.py          # rewrite the doc
  python tools/generate_supported_operations_doc.py --check  # exit 1 if the doc is stale

Exit codes: 0 written / up to date, 1 stale (with --check).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gapforge.errors import EXIT_OK, EXIT_VERDICT, ArgumentParser, run_cli  # noqa: E402
from gapforge.fsutil import atomic_write_text  # noqa: E402
from gapforge.modelsrc import REPO_ROOT  # noqa: E402
from gapforge.opsdoc import render  # noqa: E402

DOC = REPO_ROOT / "docs" / "supported_operations.md"


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="generate_supported_operations_doc.py", description=__doc__.split("\n")[0],
                       epilog=__doc__.split("Examples:")[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="do not write; exit 1 if the file differs")
    p.add_argument("--out", default=str(DOC), help=f"output file (default: {DOC.relative_to(REPO_ROOT)})")
    args = p.parse_args(argv)
    text = render()
    out = Path(args.out)
    if args.check:
        current = out.read_text(encoding="utf-8") if out.is_file() else ""
        if current != text:
            print(f"{out}: out of date; run python tools/generate_supported_operations_doc.py", file=sys.stderr)
            return EXIT_VERDICT
        print(f"{out}: up to date")
        return EXIT_OK
    atomic_write_text(out, text)
    print(f"wrote {out}")
    return EXIT_OK


if __name__ == "__main__":
    run_cli(main)
