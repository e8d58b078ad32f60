#!/usr/bin/env python3
"""Generate a C project (sources, runtime, .bin data, plan.json) for an extracted network.

Examples:
  python tools/generate_c_code.py --network golden_outputs/simple_cnn --out build/simple_cnn_host --target host
  python tools/generate_c_code.py --network golden_outputs/resnet18 --out build/resnet18_gap9 --target gap9

The network directory must hold network_info.json and golden test cases
(tools/generate_golden_outputs.py). The project compares every layer with test case N.
Exit codes: 0 generated, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codegen.generate import generate_project  # noqa: E402
from codegen.targets import TARGETS  # noqa: E402
from gapforge.errors import EXIT_OK, run_cli  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="generate_c_code.py", description=__doc__.split("\n")[0],
                                epilog=__doc__.split("Examples:")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", required=True, metavar="DIR", help="extracted network with golden test cases")
    p.add_argument("--out", required=True, metavar="PROJ", help="project directory (replaced atomically)")
    p.add_argument("--target", required=True, choices=sorted(TARGETS),
                   help="; ".join(f"{t.name}: {t.description}" for t in TARGETS.values()))
    p.add_argument("--test-case", type=int, default=1, metavar="N", help="golden test case compared on the device")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    prog = generate_project(Path(args.network), Path(args.out), args.target, args.test_case)
    if not args.quiet:
        m = prog.memory
        extra = "" if m.arena_size == m.lower_bound else f" (+{m.arena_size - m.lower_bound} B: see plan.json)"
        print(f"generated {args.target} project for '{prog.name}' in {args.out}: {len(prog.calls)} steps, "
              f"{sum(c.macs for c in prog.calls)} MACs, params {len(prog.params)} B, arena {m.arena_size} B "
              f"(liveness lower bound {m.lower_bound} B){extra}")
    return EXIT_OK


if __name__ == "__main__":
    run_cli(main)
