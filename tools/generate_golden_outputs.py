#!/usr/bin/env python3
"""Generate golden test cases (inputs, every fused layer's integers, outputs) for a network.

Examples:
  python tools/generate_golden_outputs.py --network golden_outputs/simple_cnn
  python tools/generate_golden_outputs.py --network build/net --inputs x.npy --num-cases 10

Writes DIR/test_cases/ (replaced atomically):
  summary.json
  test_case_<n>/input_fp32.npy, output_fp32.npy, metadata.json,
                intermediate_int8/<tensor>.npy and <tensor>.bin
The .bin files are the raw integers, C order (row-major, NCHW), little-endian, in the
tensor's container type (int8 / uint8 / int32), no header; metadata.json lists each with
its dtype, shape, byte size and CRC-32 (see docs/golden_format.md).

Exit codes: 0 written, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gapforge.errors import EXIT_OK, ArgumentParser, GapforgeError, run_cli  # noqa: E402
from gapforge.fsutil import atomic_directory  # noqa: E402
from gapforge.inputs import DEFAULT_CASES, Several, arrays_of, check_shapes, file_names, select  # noqa: E402
from tools.int8_inference import INT8InferenceEngine  # noqa: E402


def tensor_record(name: str, arr: np.ndarray, rel: str) -> dict:
    raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    return {"tensor": name, "dtype": str(arr.dtype), "shape": list(arr.shape), "bytes": len(raw),
            "npy": f"{rel}.npy", "bin": f"{rel}.bin", "crc32": zlib.crc32(raw)}, raw


def write_case(case_dir: Path, n: int, engine: INT8InferenceEngine, x: np.ndarray, label, what: str) -> dict:
    out, ints = engine.forward(x[None])
    (case_dir / "intermediate_int8").mkdir(parents=True)
    for f, arr in zip(file_names("input_fp32", len(engine.net.inputs)), arrays_of(x[None])):
        np.save(case_dir / f"{f}.npy", arr)
    np.save(case_dir / "output_fp32.npy", out)
    records = []
    for step in engine.plan.steps:
        arr = ints[step.output]
        rec, raw = tensor_record(step.output, arr, f"intermediate_int8/{step.output}")
        rec["step"] = step.kind + ("+relu" if step.relu else "")
        np.save(case_dir / rec["npy"], arr)
        (case_dir / rec["bin"]).write_bytes(raw)
        records.append(rec)
    pred = int(out.reshape(-1).argmax())
    meta = {"test_case": n, "network": engine.net.name, "input_source": what, "label": label,
            "prediction": pred, "output_tensor": engine.net.outputs[0],
            "output_fp32": [float(v) for v in out.reshape(-1)], "tensors": records}
    (case_dir / "metadata.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return {"test_case": n, "label": label, "prediction": pred, "dir": case_dir.name}


def generate(net_dir: Path, x: np.ndarray, labels, what: str, progress: bool = True) -> dict:
    from tqdm import tqdm

    engine = INT8InferenceEngine(net_dir)
    if len(engine.net.inputs) > 1 or isinstance(x, Several):
        x = check_shapes(x, engine.net)
    else:
        want = engine.net.tensors[engine.net.inputs[0]].shape
        if list(x.shape[1:]) != list(want[1:]):
            raise GapforgeError(f"inputs of shape {list(x.shape)} (batch first) do not match the network's input {want}")
    cases = []
    with atomic_directory(net_dir / "test_cases") as tmp:
        it = tqdm(range(len(x)), desc=f"golden {engine.net.name}", unit="case", disable=not progress,
                  file=sys.stderr)
        for i in it:
            label = int(labels[i]) if labels is not None else None
            cases.append(write_case(tmp / f"test_case_{i + 1}", i + 1, engine, x[i], label, what))
        summary = {
            "network": engine.net.name, "cases": len(cases), "input_source": what,
            "tensors": [{"tensor": s.output, "step": s.kind + ("+relu" if s.relu else ""),
                         "dtype": engine.net.tensors[s.output].dtype, "shape": engine.net.tensors[s.output].shape}
                        for s in engine.plan.steps],
            "output_tensor": engine.net.outputs[0],
            "test_cases": cases,
            "correct": (sum(c["label"] == c["prediction"] for c in cases) if labels is not None else None),
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="generate_golden_outputs.py", description=__doc__.split("\n")[0],
                       epilog=__doc__.split("Examples:")[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", required=True, metavar="DIR", help="directory with network_info.json")
    p.add_argument("--inputs", metavar="X.npy", help="float32 inputs, batch first; for a network with several "
                   "inputs an .npz with one array per input (np.savez(f, x0, x1)) (default: the network's "
                   "held-out samples, else its example input, as stored by the extractor)")
    p.add_argument("--num-cases", type=int, metavar="K",
                   help=f"number of test cases (default: all of --inputs, else {DEFAULT_CASES} of the stored "
                        "inputs or as many as there are)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    args = p.parse_args(argv)
    net_dir = Path(args.network)
    x, labels, what = select(net_dir, args.inputs, args.num_cases)
    if not args.quiet:
        print(f"{len(x)} test case{'s' if len(x) > 1 else ''} from {what}")
    summary = generate(net_dir, x, labels, what, progress=not args.quiet)
    if not args.quiet:
        extra = f", {summary['correct']}/{summary['cases']} correct" if summary["correct"] is not None else ""
        print(f"wrote {summary['cases']} test cases x {len(summary['tensors'])} tensors to "
              f"{net_dir / 'test_cases'}{extra}")
    return EXIT_OK


if __name__ == "__main__":
    run_cli(main)
