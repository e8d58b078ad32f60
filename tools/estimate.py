#!/usr/bin/env python3
"""Estimate MACs, bytes per memory level, tiles, latency and energy on architecture profiles.

Examples:
  python tools/estimate.py --network golden_outputs/simple_cnn                 (network_info.json)
  python tools/estimate.py --model-file my_float_model.py --profiles cpu gpu   (torch.fx, before quantizing)
  python tools/estimate.py --family mlp --sizes 64 256 1024 --csv mlp.csv      (the sweep families, float)
  python tools/estimate.py --network DIR --per-node --profiles gap9 --l1-budget 16K
  python tools/estimate.py --list-profiles

Models: an extracted network (--network DIR: the fused steps the device runs; on gap9 the real
tiler and placement of codegen/gap9, planned without max-pool fusion: the estimate is of the
unfused program, docs/characterize.md), a model file (--model-file F: create_model() and
example_input(); float PyTorch or Brevitas, walked as its torch.fx graph and estimated as deployed
in INT8), or a synthetic family at several sizes. Profiles: gapforge/characterize/profiles/*.json
or a path to a profile file (validated against gapforge/characterize/profile.schema.json).
Latency on rv32 and gap9 uses the instruction models calibrated on measured counts
(tools/calibrate_cost_model.py). Exit codes: 0 done; 2 bad input (a profile failing the schema
is named with its field).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codegen.gap9.hw import add_platform_flag  # noqa: E402
from codegen.profile import write_csv  # noqa: E402
from gapforge.characterize import director, families, profiles  # noqa: E402
from gapforge.errors import EXIT_OK, ArgumentParser, GapforgeError, run_cli  # noqa: E402
from tools.generate_c_code import _budget  # noqa: E402


def _model_file(path: str) -> director.ModelSpec:
    from gapforge.modelsrc import load_model

    src = load_model(argparse.Namespace(test_network=None, model_file=path, model_class=None, input_shape=None))
    return director.torch_model(src.name, "", lambda: (src.model, src.example_inputs[0]))


def format_table(rows: list[dict]) -> str:
    lines = [f"{'model':<14} {'size':>7} {'profile':<6} {'node':<18} {'MACs':>11} {'tiles':>6} {'regime':<18} "
             f"{'latency':>11} {'energy':>11}"]
    for r in rows:
        lat, en = float(r["latency_s"]), float(r["energy_j"])
        lines.append(f"{r['model']:<14} {r['size']:>7} {r['profile']:<6} {r['node'][:18]:<18} {r['macs']:>11} "
                     f"{r['tiles']:>6} {r['regime']:<18} {lat * 1e6:>9.2f}us {en * 1e6:>9.3f}uJ")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="estimate.py", description=__doc__.split("\n")[0],
                       epilog=__doc__.split("Examples:")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--network", nargs="+", metavar="DIR", help="extracted networks (network_info.json)")
    src.add_argument("--model-file", nargs="+", metavar="F", help="model files (float PyTorch or Brevitas)")
    src.add_argument("--family", choices=families.FAMILIES, help="a synthetic family (float models)")
    src.add_argument("--list-profiles", action="store_true", help="print every profile's figures and their sources")
    p.add_argument("--sizes", nargs="+", metavar="S", help="--family: sizes (default: the sweep's)")
    p.add_argument("--profiles", nargs="+", default=None, metavar="P", help="names or files (default: all)")
    p.add_argument("--per-node", action="store_true", help="one row per node instead of totals")
    p.add_argument("--l1-budget", metavar="BYTES", help="gap9: L1 budget for tiles")
    p.add_argument("--l2-budget", metavar="BYTES", help="gap9: L2 budget")
    add_platform_flag(p, "profiles with tiling strategy gap9 (instead of their own tiling.platform)")
    p.add_argument("--csv", metavar="OUT", help="write the table as CSV")
    args = p.parse_args(argv)
    profs = [profiles.load(n) for n in (args.profiles or profiles.names())]
    if args.list_profiles:
        for prof in profs:
            print(f"{prof.name}: {prof.data['description']}")
            for path, value, unit, how in prof.figures():
                print(f"  {path:<48} {value:>12g} {unit:<22} {how}")
        return EXIT_OK
    if args.network:
        for d in args.network:
            if not (Path(d) / "network_info.json").is_file():
                raise GapforgeError(f"--network {d}: no network_info.json (run tools/pytorch_extractor.py)")
        models = [director.network_info_model(d) for d in args.network]
    elif args.model_file:
        models = [_model_file(f) for f in args.model_file]
    elif args.family:
        models = director.family_models(args.family, args.sizes or families.DEFAULT_SIZES[args.family])
    else:
        raise GapforgeError("give --network, --model-file or --family (or --list-profiles)")
    rows = director.analyze(models, profs, per_node=args.per_node, l1_budget=_budget(args.l1_budget, "--l1-budget"),
                            l2_budget=_budget(args.l2_budget, "--l2-budget"), platform=args.platform)
    print(format_table(rows))
    if args.csv:
        write_csv(args.csv, director.columns(rows), rows)
        print(f"wrote {args.csv}")
    return EXIT_OK


if __name__ == "__main__":
    run_cli(main)
