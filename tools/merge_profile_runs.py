#!/usr/bin/env python3
"""Merge profile runs (tools/profile_suite.py outputs) into one: later inputs override earlier ones.

Examples:
  python tools/merge_profile_runs.py profiles/host_rv32 profiles/gap9 --out profiles/merged

For tests.csv a row is identified by (network, target), for layers.csv by (network, target, layer
index), for subops.csv by (network, target, layer index, phase). A (network, target) run present
in a later input replaces that run's rows from earlier inputs entirely (its layers and sub-operations
too, so a re-run never leaves stale layers behind). Rows are in input order (a replaced run's rows
take the place of its latest input).
A run written before a column was added has that column empty. DIR is written atomically.
Exit codes: 0 merged; 2 bad input (a missing file, unknown columns).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codegen import profile  # noqa: E402
from gapforge.errors import EXIT_OK, ArgumentParser, GapforgeError, run_cli  # noqa: E402
from gapforge.fsutil import atomic_directory  # noqa: E402


def load_run(d: Path) -> dict[str, list[dict]]:
    tables = {}
    for name, cols in profile.COLUMNS.items():
        path = d / name
        if not path.is_file():
            raise GapforgeError(f"{path}: missing (not a tools/profile_suite.py output directory)")
        try:
            rows = profile.read_csv(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise GapforgeError(f"{path}: cannot read ({exc})") from None
        if rows and not set(rows[0]) <= set(cols):
            extra = sorted(set(rows[0]) - set(cols))
            raise GapforgeError(f"{path}: columns differ from profile_suite's ({', '.join(extra[:4])})")
        for r in rows:  # a run written before a column was added (e.g. fc_cycles): empty there
            for c in cols:
                r.setdefault(c, "")
        tables[name] = rows
    return tables


def merge(runs: list[dict[str, list[dict]]]) -> dict[str, list[dict]]:
    merged: dict[str, dict[tuple, dict]] = {name: {} for name in profile.COLUMNS}
    for run in runs:
        replaced = {(r["network"], r["target"]) for r in run["tests.csv"]}
        for name, key in profile.KEYS.items():
            table = merged[name]
            for k in [k for k in table if k[:2] in replaced]:
                del table[k]
            for r in run[name]:
                table[tuple(r[c] for c in key)] = r
    return {name: list(t.values()) for name, t in merged.items()}


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="merge_profile_runs.py", description=__doc__.split("\n")[0],
                       epilog=__doc__.split("Examples:")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="profile_suite output directories, earliest first")
    p.add_argument("--out", required=True, metavar="DIR")
    args = p.parse_args(argv)
    runs = [load_run(Path(d)) for d in args.runs]
    tables = merge(runs)
    with atomic_directory(args.out) as tmp:
        for name, rows in tables.items():
            profile.write_csv(tmp / name, profile.COLUMNS[name], rows)
    print(f"merged {len(runs)} runs: {len(tables['tests.csv'])} network/target runs, {len(tables['layers.csv'])} "
          f"layers, {len(tables['subops.csv'])} sub-operations -> {args.out}")
    return EXIT_OK


if __name__ == "__main__":
    run_cli(main)
