#!/usr/bin/env python3
"""INT8 inference engine over network_info.json: the golden reference.

The engine executes the fusion planner's steps (gapforge/plan.py) with the numpy
reference operators in atomic_ops/, integers only (the float32 input is quantized on the
host exactly as Brevitas does). How a step runs is its op's declaration (gapforge/ops:
``sources`` for requantizing ops, ``run`` for the others); the engine itself only applies the
requantization. ``forward`` returns the float output and every step's integer output; the
golden generator and the C code use the same plan.

Example:
  python tools/int8_inference.py --network golden_outputs/simple_cnn --input x.npy
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import atomic_ops  # noqa: E402
from gapforge import inputs, ir  # noqa: E402
from gapforge.errors import EXIT_OK, ArgumentParser, GapforgeError, run_cli  # noqa: E402
from gapforge.inputs import Several, arrays_of, check_shapes, checked  # noqa: E402
from gapforge.ops import registry  # noqa: E402
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
        self._decls = {s.kind: registry().ir_ops[s.kind] for s in self.plan.steps}
        missing = sorted(k for k, d in self._decls.items() if d.sources is None and d.run is None)
        if missing:
            raise GapforgeError(f"{self.net.name}: the engine cannot execute {missing}")

    # -- public API ---------------------------------------------------------------------
    def forward(self, input_fp32) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run the network. Returns (float32 output, {tensor: integers}) for every step output.

        ``input_fp32`` may be one sample (the network's input shape without batch) or a batch.
        With several network outputs, the float output is the first one.
        """
        if len(self.net.inputs) > 1 or isinstance(input_fp32, (Several, tuple, list)):
            # several inputs: a Several batch (or a tuple/list of arrays), one array per graph input
            xs = arrays_of(check_shapes(input_fp32, self.net, "input"))
            x = xs[0]
        else:
            x = checked(input_fp32, "input")  # NaN and complex values are refused; +-inf saturate
            in_shape = self.net.tensors[self.net.inputs[0]].shape
            if x.ndim == len(in_shape) - 1:
                x = x[None]
            if list(x.shape[1:]) != list(in_shape[1:]):
                raise GapforgeError(f"input shape {list(x.shape)} does not match the network's {in_shape} "
                                    "(batch first)")
            xs = [x]
        env: dict[str, np.ndarray] = dict(zip(self.net.inputs, xs))
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
        decl = self._decls[step.kind]
        if decl.sources is None:
            return decl.run(self, step, inputs)
        srcs = decl.sources(self, step, inputs)
        if step.requant is None:
            return srcs[0] if len(srcs) == 1 else atomic_ops.get("add")(*srcs)
        rq = step.requant
        return atomic_ops.get("requantize")(srcs, rq.m, rq.sh, rq.o, rq.zp, rq.lo, rq.hi, rq.channel_axis)

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
        decl = self._decls[step.kind]
        if step.requant is not None:
            rq = step.requant
            srcs = decl.sources(self, step, inputs)
            nd = srcs[0].ndim
            v = self._along(rq.B, rq.channel_axis, nd).astype(np.float64)
            for s, q in enumerate(srcs):
                v = v + q.astype(np.float64) * self._along(rq.M[s], rq.channel_axis, nd)
            return v
        return decl.exact(self, step, inputs) if decl.exact is not None else None

    # -- helpers -------------------------------------------------------------------------
    @staticmethod
    def _along(v: np.ndarray, axis, nd):
        if axis is None or v.size == 1:
            return v.reshape(())
        shape = [1] * nd
        shape[axis] = v.size
        return v.reshape(shape)

    def param(self, step: Step, name: str) -> np.ndarray | None:
        """Integer parameter ``name`` of the step's main op (None when the op has none)."""
        op = self.net.op_by_name(step.main_op)
        return self.net.param(op, name) if name in op.params else None


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="int8_inference.py", description=__doc__.split("\n")[0],
                       epilog="Example:" + __doc__.split("Example:")[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", required=True, metavar="DIR", help="directory with network_info.json")
    p.add_argument("--input", metavar="X.npy", help="float32 input (one sample or a batch; an .npz with one array per "
                   "input for a network with several inputs); default: the network's stored inputs")
    p.add_argument("--plan", action="store_true", help="print the fused execution plan")
    args = p.parse_args(argv)
    eng = INT8InferenceEngine(args.network)
    if args.plan:
        print(eng.plan.describe())
    x = inputs.load(args.input) if args.input else inputs.stored(Path(args.network))[0]
    out, ints = eng.forward(x)
    np.set_printoptions(precision=5, suppress=True)
    print(f"{len(ints)} integer tensors computed; output {list(out.shape)}:")
    print(out)
    print("argmax:", out.reshape(out.shape[0], -1).argmax(axis=1).tolist())
    return EXIT_OK


if __name__ == "__main__":
    run_cli(main)
