#!/usr/bin/env python3
"""Extract a Brevitas model into network_info.json + weights/*.npy.

Examples:
  python tools/pytorch_extractor.py --test-network simple_cnn --out golden_outputs/simple_cnn
  python tools/pytorch_extractor.py --model-file my_model.py --out build/my_model

Exit codes: 0 extracted, 2 bad input or a construct that cannot be deployed (the message
names the module; run tools/check_model_compatibility.py for the full report).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gapforge.errors import EXIT_OK, ArgumentParser, run_cli  # noqa: E402
from gapforge.extract import extract, model_inputs, write_network  # noqa: E402
from gapforge.modelsrc import add_model_arguments, load_model  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="pytorch_extractor.py",
        description="Capture a Brevitas model's dataflow from one forward pass and write "
                    "network_info.json (schema: gapforge/schema/network_info.schema.json) and weights/*.npy.",
        epilog=__doc__.split("Examples:")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory (replaced atomically if it exists)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    src = load_model(args)
    net = extract(src)
    out = write_network(net, args.out, model_inputs(src))
    if not args.quiet:
        for note in src.notes:
            print(f"note: {note}")
        kinds: dict[str, int] = {}
        for op in net.ops:
            kinds[op.type] = kinds.get(op.type, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        print(f"extracted '{net.name}': {len(net.ops)} ops ({summary}), {len(net.arrays)} weight files -> "
              f"{out / 'network_info.json'}")
    return EXIT_OK


if __name__ == "__main__":
    run_cli(main)
