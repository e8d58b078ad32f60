#!/usr/bin/env python3
"""Measure the INT8 engine's fidelity to Brevitas, layer by layer, and the accuracy of both.

Teacher-forced (each layer fed Brevitas' own integers): every element must match except
where the exact value is within 1e-4 of a .5 tie; power-of-two-scale networks must match
everywhere. Free-running: top-1 agreement and maximum output difference. Optionally the
accuracy of the float model (quantization disabled), Brevitas and the engine on held-out data.

Examples:
  python tools/check_fidelity.py --test-network resnet_block
  python tools/check_fidelity.py --model-file my_model.py --network build/my_model --inputs x.npy

Exit codes: 0 pass, 1 unexplained mismatches (or any mismatch for a power-of-two network),
2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gapforge import fidelity, inputs  # noqa: E402
from gapforge.errors import EXIT_OK, EXIT_VERDICT, ArgumentParser, GapforgeError, run_cli  # noqa: E402
from gapforge.extract import extract, model_inputs, write_network  # noqa: E402
from gapforge.fsutil import atomic_write_text  # noqa: E402
from gapforge.modelsrc import add_model_arguments, load_model  # noqa: E402
from tools.int8_inference import INT8InferenceEngine  # noqa: E402


def accuracy_report(model, engine, x: np.ndarray, y: np.ndarray) -> dict:
    """Top-1 accuracy of the float model (quantization disabled), Brevitas and the INT8 engine."""
    import torch
    from brevitas.graph.calibrate import quantization_status_manager

    xt = inputs.torch_args(x)
    note = None
    with torch.no_grad():
        brev = fidelity.first_output(model(*xt))
        try:
            with quantization_status_manager(model, disable_act_quant=True, disable_weight_quant=True,
                                             disable_bias_quant=True, is_training=False):
                flt = fidelity.first_output(model(*xt))
        except Exception as exc:  # e.g. models that assert they receive QuantTensors
            flt = None
            note = f"the model cannot run with quantization disabled ({type(exc).__name__}: {exc})"
    eng, _ = engine.forward(x)

    def acc(out):
        return None if out is None else float((out.reshape(len(y), -1).argmax(1) == y).mean())

    return {"network": engine.net.name, "samples": int(len(y)), "note": note,
            "accuracy": {"float": acc(flt), "brevitas": acc(brev), "int8_engine": acc(eng)},
            "top1_agreement_engine_vs_brevitas": fidelity.top1_agreement(eng.reshape(len(y), -1),
                                                                         brev.reshape(len(y), -1))}


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="check_fidelity.py", description=__doc__.split("\n")[0],
                       epilog=__doc__.split("Examples:")[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    p.add_argument("--network", metavar="DIR", help="extracted network to check (default: extract to a temporary directory)")
    p.add_argument("--inputs", metavar="X.npy", help="float32 inputs, batch first; an .npz with one array per "
                   "input for a network with several inputs (default: the held-out data, "
                   "else the example input)")
    p.add_argument("--num-cases", type=int, default=None, metavar="K", help="use only the first K inputs")
    p.add_argument("--json-out", metavar="FILE", help="write the fidelity report as JSON "
                   "(default with --network: DIR/fidelity_report.json)")
    p.add_argument("--accuracy", action="store_true", help="also write the accuracy report "
                   "(float vs Brevitas vs engine on held-out data) to DIR/accuracy_report.json")
    args = p.parse_args(argv)
    if args.num_cases is not None and args.num_cases < 1:
        raise GapforgeError("--num-cases must be at least 1")
    given = inputs.load(args.inputs) if args.inputs else None  # a bad inputs file is refused before any work
    src = load_model(args)
    with tempfile.TemporaryDirectory() as tmp:
        net_dir = Path(args.network) if args.network else Path(tmp) / src.name
        if not args.network:
            write_network(extract(src), net_dir, model_inputs(src))
        engine = INT8InferenceEngine(net_dir)
        x, _, what = (given, None, args.inputs) if given is not None else inputs.stored(net_dir)
        if args.num_cases:
            x = x[:args.num_cases]
        for note in src.notes:
            print(f"note: {note}")
        rep = fidelity.check(src.model, engine, x, src.name)
        print(fidelity.format_report(rep, what))
        json_out = args.json_out or (str(net_dir / "fidelity_report.json") if args.network else None)
        if json_out:
            atomic_write_text(json_out, json.dumps(rep.to_json(), indent=1) + "\n")
        if args.accuracy:
            hy = net_dir / "inputs" / "held_out_y.npy"
            if not hy.is_file():
                raise GapforgeError(f"{src.source}: no held_out_data() in the model file, so no accuracy report")
            acc = accuracy_report(src.model, engine, inputs.stored(net_dir)[0], np.load(hy))
            a = acc["accuracy"]
            flt = "n/a" if a["float"] is None else f"{a['float'] * 100:.2f}%"
            print(f"accuracy on {acc['samples']} held-out samples: float {flt}, "
                  f"Brevitas {a['brevitas'] * 100:.2f}%, INT8 engine {a['int8_engine'] * 100:.2f}%")
            if args.network:
                atomic_write_text(net_dir / "accuracy_report.json", json.dumps(acc, indent=1) + "\n")
    return EXIT_OK if rep.passed else EXIT_VERDICT


if __name__ == "__main__":
    run_cli(main)
