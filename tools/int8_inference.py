#!/usr/bin/env python3
"""INT8 inference engine over network_info.json: the golden reference.

The engine executes the fusion planner's steps (gapforge/plan.py) with the numpy
reference operators in atomic_ops/, integers only (the float32 input is quantized on the
host exactly as Brevitas does). ``forward`` returns the float output and every step's
integer output; the golden generator and the C code use the same plan.

Example:
  python tools/int8_inference.py --network golden_outputs/simple_cnn --input x.npy
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import atomic_ops  # noqa: E402
from gapforge import ir  # noqa: E402
from gapforge.errors import EXIT_OK, GapforgeError, run_cli  # noqa: E402
from gapforge.plan import Plan, Step, build_plan  # noqa: E402


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """The BLAS libraries of this process, scanned once (reading /proc/self/maps takes about 1 ms,
    too much for every forward call)."""
    return ThreadpoolController()


NP_DTYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32}


class INT8InferenceEngine:
    """Exact integer execution of an extracted network."""

    def __init__(self, network: ir.Network | str | Path):
        self.net = network if isinstance(network, ir.Network) else ir.load(network)
        self.plan: Plan = build_plan(self.net)
        self._exec: dict[str, Callable[[Step, list[np.ndarray]], np.ndarray]] = {
            "quantize": self._quantize, "conv2d": self._conv2d, "linear": self._linear,
            "avgpool2d": self._avgpool2d, "add": self._add, "requantize": self._requantize,
            "relu": self._relu, "maxpool2d": self._maxpool2d, "trunc_avgpool2d": self._trunc_avgpool2d,
            "concat": self._concat, "reshape": self._reshape, "permute": self._permute,
        }
        missing = {s.kind for s in self.plan.steps} - set(self._exec)
        if missing:
            raise GapforgeError(f"{self.net.name}: the engine cannot execute {sorted(missing)}")

    # -- public API ---------------------------------------------------------------------
    def forward(self, input_fp32) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run the network. Returns (float32 output, {tensor: integers}) for every step output.

        ``input_fp32`` may be one sample (the network's input shape without batch) or a batch.
        With several network outputs, the float output is the first one.
        """
        x = np.asarray(input_fp32, dtype=np.float32)
        in_shape = self.net.tensors[self.net.inputs[0]].shape
        if x.ndim == len(in_shape) - 1:
            x = x[None]
        if list(x.shape[1:]) != list(in_shape[1:]):
            raise GapforgeError(f"input shape {list(x.shape)} does not match the network's {in_shape} "
                                "(batch first)")
        env: dict[str, np.ndarray] = {self.net.inputs[0]: x}
        ints: dict[str, np.ndarray] = {}
        # Small batches give small matrix products, where BLAS threads cost more than they save
        # (measured: 10-40x slower on a loaded 2-core machine); large batches keep the default.
        with _blas_controller().limit(limits=1 if x.shape[0] < 8 else None, user_api="blas"):
            for step in self.plan.steps:
                y = self.run_step(step, [env[t] for t in step.inputs])
                env[step.output] = y
                ints[step.output] = y.astype(NP_DTYPES[self.net.tensors[step.output].dtype])
        return self.dequantize(self.net.outputs[0], env[self.net.outputs[0]]), ints

    def run_step(self, step: Step, inputs: list[np.ndarray]) -> np.ndarray:
        """One step on given integer inputs (float32 for the quantize step); int64 result."""
        return self._exec[step.kind](step, inputs)

    def dequantize(self, tensor: str, q: np.ndarray) -> np.ndarray:
        """Real values of an integer tensor (float32): quant ``s*(q-zp)``, acc ``s*q + offset``."""
        t = self.net.tensors[tensor]
        nd = q.ndim
        if t.kind == "quant":
            real = t.scale_array(nd) * (q.astype(np.float64) - t.zero_point)
        else:
            real = t.scale_array(nd) * q.astype(np.float64) + t.offset_array(nd)
        return real.astype(np.float32)

    def pre_rounding(self, step: Step, inputs: list[np.ndarray]) -> np.ndarray | None:
        """The exact value (float64) the step rounds, for near-tie diagnostics; None if it does not round."""
        if step.requant is not None:
            rq = step.requant
            srcs = self._requant_sources(step, inputs)
            nd = srcs[0].ndim
            v = self._along(rq.B, rq.channel_axis, nd).astype(np.float64)
            for s, q in enumerate(srcs):
                v = v + q.astype(np.float64) * self._along(rq.M[s], rq.channel_axis, nd)
            return v
        if step.kind == "trunc_avgpool2d":
            a = step.attrs
            acc = atomic_ops.get("avgpool2d")(inputs[0], a["kernel_size"], a["stride"], a["padding"])
            return acc.astype(np.float64) / 2.0 ** a["shift"]
        if step.kind == "quantize":
            t = self.net.tensors[step.output]
            s = np.asarray(t.scale, dtype=np.float32)
            return (inputs[0].astype(np.float32) / s).astype(np.float64)
        return None

    # -- helpers -------------------------------------------------------------------------
    @staticmethod
    def _along(v: np.ndarray, axis, nd):
        if axis is None or v.size == 1:
            return v.reshape(())
        shape = [1] * nd
        shape[axis] = v.size
        return v.reshape(shape)

    def _param(self, step: Step, name: str) -> np.ndarray | None:
        op = self.net.op_by_name(step.main_op)
        return self.net.param(op, name) if name in op.params else None

    def _requant_sources(self, step: Step, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if step.kind == "conv2d":
            return [self._conv_acc(step, inputs)]
        if step.kind == "linear":
            return [atomic_ops.get("linear")(inputs[0], self._param(step, "weight"), self._param(step, "bias"))]
        if step.kind == "avgpool2d":
            a = step.attrs
            return [atomic_ops.get("avgpool2d")(inputs[0], a["kernel_size"], a["stride"], a["padding"])]
        return list(inputs)

    def _conv_acc(self, step: Step, inputs):
        a = step.attrs
        return atomic_ops.get("conv2d")(inputs[0], self._param(step, "weight"), self._param(step, "bias"),
                                        a["stride"], a["padding"], a["dilation"], a["groups"])

    def _finish(self, step: Step, srcs: list[np.ndarray]) -> np.ndarray:
        if step.requant is None:
            return srcs[0] if len(srcs) == 1 else atomic_ops.get("add")(*srcs)
        rq = step.requant
        return atomic_ops.get("requantize")(srcs, rq.m, rq.sh, rq.o, rq.zp, rq.lo, rq.hi, rq.channel_axis)

    # -- executors (one per step kind) -----------------------------------------------------
    def _quantize(self, step, inputs):
        t = self.net.tensors[step.output]
        lo, hi = t.qrange()
        return atomic_ops.get("quantize")(inputs[0], t.scale, t.zero_point, lo, hi, t.channel_axis)

    def _conv2d(self, step, inputs):
        return self._finish(step, self._requant_sources(step, inputs))

    _linear = _avgpool2d = _add = _requantize = _conv2d

    def _relu(self, step, inputs):
        return atomic_ops.get("relu")(inputs[0], self.net.tensors[step.output].zero_code)

    def _maxpool2d(self, step, inputs):
        a = step.attrs
        return atomic_ops.get("maxpool2d")(inputs[0], a["kernel_size"], a["stride"], a["padding"], a["ceil_mode"])

    def _trunc_avgpool2d(self, step, inputs):
        a = step.attrs
        lo, hi = self.net.tensors[step.output].qrange()
        return atomic_ops.get("trunc_avgpool2d")(inputs[0], a["kernel_size"], a["stride"], a["padding"],
                                                 a["shift"], a["rounding"], lo, hi)

    def _concat(self, step, inputs):
        return atomic_ops.get("concat")(inputs, step.attrs["axis"])

    def _reshape(self, step, inputs):
        return atomic_ops.get("reshape")(inputs[0], step.attrs["shape"])

    def _permute(self, step, inputs):
        return atomic_ops.get("permute")(inputs[0], step.attrs["perm"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="int8_inference.py", description=__doc__.split("\n")[0],
                                epilog="Example:" + __doc__.split("Example:")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", required=True, metavar="DIR", help="directory with network_info.json")
    p.add_argument("--input", metavar="X.npy", help="float32 input (one sample or a batch); default: "
                   "the network's stored example input")
    p.add_argument("--plan", action="store_true", help="print the fused execution plan")
    args = p.parse_args(argv)
    eng = INT8InferenceEngine(args.network)
    if args.plan:
        print(eng.plan.describe())
    path = Path(args.input) if args.input else Path(args.network) / "inputs" / "example_input.npy"
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise GapforgeError(f"{path}: cannot load input ({exc})") from None
    out, ints = eng.forward(x)
    np.set_printoptions(precision=5, suppress=True)
    print(f"{len(ints)} integer tensors computed; output {list(out.shape)}:")
    print(out)
    print("argmax:", out.reshape(out.shape[0], -1).argmax(axis=1).tolist())
    return EXIT_OK


if __name__ == "__main__":
    run_cli(main)
