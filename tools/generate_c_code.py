#!/usr/bin/env python3
"""Generate a C project (sources, runtime, .bin data, plan.json) for an extracted network.

Examples:
  python tools/generate_c_code.py --network golden_outputs/simple_cnn --out build/simple_cnn_host --target host
  python tools/generate_c_code.py --network golden_outputs/resnet18 --out build/resnet18_gap9 --target gap9
  python tools/generate_c_code.py --network DIR --out PROJ --target gap9 --l1-budget 16K --l2-budget 1.5M
  python tools/generate_c_code.py --network DIR --out PROJ --target gap9 --platform siracusa

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

from codegen.gap9.hw import add_platform_flag, parse_bytes, platform  # noqa: E402
from codegen.gap9.placement import format_report  # noqa: E402
from codegen.generate import FC_LAYERS, FUSE_POOLS, generate_project  # noqa: E402
from codegen.targets import TARGETS  # noqa: E402
from gapforge.errors import EXIT_OK, ArgumentParser, GapforgeError, run_cli  # noqa: E402


def _budget(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_bytes(text)
    except ValueError:
        raise GapforgeError(f"{flag} '{text}': expected a byte count such as 131072, 128K or 1.5M") from None


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="generate_c_code.py", description=__doc__.split("\n")[0],
                       epilog=__doc__.split("Examples:")[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", required=True, metavar="DIR", help="extracted network with golden test cases")
    p.add_argument("--out", required=True, metavar="PROJ", help="project directory (replaced atomically)")
    p.add_argument("--target", required=True, choices=sorted(TARGETS),
                   help="; ".join(f"{t.name}: {t.description}" for t in TARGETS.values()))
    p.add_argument("--test-case", type=int, default=1, metavar="N", help="golden test case compared on the device")
    p.add_argument("--l1-budget", metavar="BYTES", help="gap9: L1 bytes available for tiles (e.g. 131072, 128K; "
                   "default: the platform's L1 minus the cluster stacks and the layer control block)")
    p.add_argument("--l2-budget", metavar="BYTES", help="gap9: L2 bytes available for data (e.g. 1.5M; default: "
                   "the platform's L2 minus code and runtime reserve)")
    add_platform_flag(p)
    p.add_argument("--inject-fault", choices=["none", "no-barrier", "no-dma-wait", "tile-too-large", "deep-call",
                                              "small-stack", "inference-output"],
                   default="none", help=argparse.SUPPRESS)
    p.add_argument("--kernels", default="portable", choices=["portable", "simd"],
                   help="gap9: the cluster's convolution, linear and matmul kernels: portable C (default) or the "
                        "SIMD kernels (4-way int8 dot products; the same results)")
    p.add_argument("--fc-layers", default="auto", choices=list(FC_LAYERS),
                   help="gap9: which small layers run on the fabric controller instead of the cluster: auto (default: "
                        "where the platform's cost model finds it faster, codegen/gap9/fc_placement.py), off (every "
                        "tiled layer on the cluster), all (every layer that may run on the FC)")
    p.add_argument("--fuse-pools", default="on", choices=list(FUSE_POOLS),
                   help="gap9: run a max pool right after a conv as one cluster layer with it (on, default: where "
                        "codegen/gap9/fusion.py allows; the conv's output stays in L1 and is not compared) or every "
                        "step as its own layer (off: to compare the conv's output too)")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    l1, l2 = (_budget(args.l1_budget, "--l1-budget"), _budget(args.l2_budget, "--l2-budget"))
    fault, tile_l1 = args.inject_fault, None
    if fault == "tile-too-large":  # testing aid: tiles planned for 4x the L1 budget the program will get
        fault, tile_l1 = "none", 4 * (l1 or platform(args.platform).l1_budget)
    result = generate_project(Path(args.network), Path(args.out), args.target, args.test_case,
                              l1_budget=l1, l2_budget=l2, fault=fault, tile_l1_budget=tile_l1,
                              platform=args.platform, kernels=args.kernels, fc_layers=args.fc_layers,
                              fuse_pools=args.fuse_pools)
    prog = getattr(result, "program", result)
    if not args.quiet and hasattr(result, "placement"):
        print(format_report(result.placement, prog.name))
    if not args.quiet:
        m = prog.memory
        extra = "" if m.arena_size == m.lower_bound else f" (+{m.arena_size - m.lower_bound} B: see plan.json)"
        print(f"generated {args.target} project for '{prog.name}' in {args.out}: {len(prog.calls)} steps, "
              f"{sum(c.macs for c in prog.calls)} MACs, params {len(prog.params)} B, arena {m.arena_size} B "
              f"(liveness lower bound {m.lower_bound} B){extra}")
    return EXIT_OK


if __name__ == "__main__":
    run_cli(main)
