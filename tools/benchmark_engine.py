#!/usr/bin/env python3
"""Benchmark the numpy INT8 engine against onnxruntime on the same network's QCDQ export.

Prints, per network, the median latency of the engine and of onnxruntime (Brevitas QCDQ
export, CPU provider) at batch 1 and batch 64, and their ratio. A benchmark script, not a
test: figures depend on the machine and its load.

Examples:
  python tools/benchmark_engine.py                         # all regression networks
  python tools/benchmark_engine.py --networks resnet18 mlp --repeat 20 --plot bench.png

Exit codes: 0 done, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gapforge.errors import EXIT_OK, ArgumentParser, GapforgeError, run_cli  # noqa: E402
from gapforge.extract import extract, model_inputs, write_network  # noqa: E402
from gapforge.fsutil import atomic_write_text  # noqa: E402
from gapforge.modelsrc import list_test_networks, load_model  # noqa: E402
from gapforge.onnx_check import export_qcdq, session  # noqa: E402
from gapforge.plan import step_cost  # noqa: E402
from tools.int8_inference import INT8InferenceEngine  # noqa: E402


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def bench_network(name: str, repeat: int, tmp: Path) -> dict:
    import torch

    src = load_model(argparse.Namespace(test_network=name, model_file=None, model_class=None, input_shape=None))
    d = tmp / name
    write_network(extract(src), d, model_inputs(src))
    engine = INT8InferenceEngine(d)
    x1 = np.load(d / "inputs" / "example_input.npy")
    pool = np.load(d / "inputs" / "held_out_x.npy") if (d / "inputs" / "held_out_x.npy").is_file() else x1
    x64 = np.concatenate([pool] * (64 // len(pool) + 1))[:64]
    row = {"network": name, "macs": sum(step_cost(engine.net, s).macs for s in engine.plan.steps)}
    for batch, x in ((1, x1), (64, x64)):
        onnx_path = export_qcdq(src.model, torch.from_numpy(x), tmp / f"{name}_b{batch}.onnx")
        sess, _ = session(onnx_path, expose_quantized=False, fused=True)
        feed = {sess.get_inputs()[0].name: x}
        row[f"engine_b{batch}_ms"] = _median_ms(lambda x=x: engine.forward(x), repeat)
        row[f"ort_b{batch}_ms"] = _median_ms(lambda feed=feed, sess=sess: sess.run(None, feed), repeat)
        row[f"ratio_b{batch}"] = row[f"engine_b{batch}_ms"] / row[f"ort_b{batch}_ms"]
    return row


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["network"] for r in rows]
    idx = np.arange(len(rows))
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(rows) + 2), sharey=True)
    for ax, b in zip(axes, (1, 64)):
        ax.barh(idx - 0.2, [r[f"engine_b{b}_ms"] for r in rows], 0.4, label="gapforge engine (numpy)")
        ax.barh(idx + 0.2, [r[f"ort_b{b}_ms"] for r in rows], 0.4, label="onnxruntime QCDQ")
        ax.set_xscale("log")
        ax.set_xlabel(f"median latency per batch of {b} [ms]")
        ax.set_title(f"batch {b}")
    axes[0].set_yticks(idx, names)
    axes[0].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="benchmark_engine.py", description=__doc__.split("\n")[0],
                       epilog=__doc__.split("Examples:")[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", nargs="+", metavar="NAME", help="test networks (default: all regression networks)")
    p.add_argument("--repeat", type=int, default=10, help="timed runs per measurement (median reported)")
    p.add_argument("--json-out", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--plot", metavar="PNG", help="also draw the figures")
    args = p.parse_args(argv)
    names = args.networks or [n for n in list_test_networks() if not n.startswith("thirdparty_")]
    unknown = sorted(set(names) - set(list_test_networks()))
    if unknown:
        raise GapforgeError(f"--networks: unknown {', '.join(unknown)}")
    if args.repeat < 1:
        raise GapforgeError("--repeat must be at least 1")
    rows = []
    print(f"{'network':<26} {'MMAC':>7} {'engine b1':>10} {'ort b1':>9} {'ratio':>6} "
          f"{'engine b64':>11} {'ort b64':>9} {'ratio':>6}   (median ms per batch)")
    with tempfile.TemporaryDirectory() as tmp:
        for n in names:
            r = bench_network(n, args.repeat, Path(tmp))
            rows.append(r)
            print(f"{n:<26} {r['macs'] / 1e6:>7.2f} {r['engine_b1_ms']:>10.2f} {r['ort_b1_ms']:>9.2f} "
                  f"{r['ratio_b1']:>6.1f} {r['engine_b64_ms']:>11.1f} {r['ort_b64_ms']:>9.1f} {r['ratio_b64']:>6.1f}",
                  flush=True)
    if args.json_out:
        atomic_write_text(args.json_out, json.dumps(rows, indent=1) + "\n")
    if args.plot:
        plot(rows, args.plot)
    return EXIT_OK


if __name__ == "__main__":
    run_cli(main)
