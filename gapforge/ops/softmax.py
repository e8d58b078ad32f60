"""softmax: softmax over the last axis of a quantized tensor or an int32 accumulator, then a quantizer."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

import atomic_ops
from atomic_ops import softmax as ref
from gapforge.ops._base import Attr, Frontend, IROp, Tiling, checked_bound, output_range, per_tensor_scale
from gapforge.ops._shapes import ShapeError, same_shape

HINT_AXIS = ("move the axis last (x.transpose(d, -1)) before the softmax and back after its quantizer, "
             "or apply the softmax over the last axis")


HINT_MASK = ("apply a constant mask (a registered buffer, or torch.tril / torch.ones of the static size) with "
             "scores.masked_fill(mask, float('-inf')) right before F.softmax(scores, dim=-1)")


# -- the constant attention mask: attr "mask", one list of allowed [begin, end) key runs per pattern row;
# row r of the softmax's input (its rows: the last axis) uses pattern row r mod P
def mask_runs(allowed: np.ndarray) -> list[list[list[int]]]:
    """The attr of a bool [P, n] mask (True: the key takes part)."""
    out = []
    for row in np.asarray(allowed, dtype=bool):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
        out.append([[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2])])
    return out


def mask_array(runs, n: int) -> np.ndarray:
    """The bool [P, n] mask of the attr."""
    m = np.zeros((len(runs), n), dtype=bool)
    for p, row in enumerate(runs):
        for a, b in row:
            m[p, a:b] = True
    return m


def step_mask(step, n: int) -> np.ndarray | None:
    runs = step.attrs.get("mask")
    return None if runs is None else mask_array(runs, n)


def mask_pattern(allowed: np.ndarray) -> np.ndarray:
    """The shortest period P (a divisor of the rows) of a bool [rows, n] mask: its first P rows."""
    rows = allowed.shape[0]
    for p in range(1, rows + 1):
        if rows % p == 0 and (allowed.reshape(rows // p, p, -1) == allowed[:p]).all():
            return allowed[:p]
    return allowed


def prepare(net, step) -> ref.SoftmaxParams:
    x = net.tensors[step.inputs[0]]
    y = net.tensors[step.output]
    lo, hi = output_range(net, step)
    n = x.shape[-1]
    return checked_bound(ref.prepare(per_tensor_scale(x), x.qrange() if x.kind == "quant" else None,
                                     float(y.scale), int(y.zero_point), lo, hi, n, step_mask(step, n)),
                         f" (rows of {n} elements)")


def _exact(engine, step, inputs):
    x = engine.net.tensors[step.inputs[0]]
    y = engine.net.tensors[step.output]
    return ref.exact(inputs[0], per_tensor_scale(x), float(y.scale), step_mask(step, x.shape[-1]))


def _call(cg):
    rows, n = cg.rows_extent()
    return cg.call("gf_softmax", (cg.X[0], cg.T[0], "0", rows, n, cg.param_block(), cg.Y))


def infer_shapes(inputs, attrs, params):
    out = same_shape(inputs, attrs, params)
    runs = attrs.get("mask")
    if runs is not None:
        shape = inputs[0]
        n, rows = shape[-1], math.prod(shape[:-1])
        if not runs or rows % len(runs):
            raise ShapeError(f"a mask of {len(runs)} rows does not divide the {rows} rows of {shape}")
        for row in runs:
            if not row or any(not 0 <= a < b <= n for a, b in row):
                raise ShapeError(f"mask runs {row} are not non-empty ranges of the {n} keys")
    return out


IR_OP = IROp(
    name="softmax",
    summary="Softmax over the last axis, quantized by the following quantizer.",
    semantics="Per row: d = max - x; exp(-s d) from per-digit tables in Q62 (rounded products), summed "
              "in Q36 (exact integer sum), one exact integer division and one round-half-even to the "
              "output code; error below 1e-5 output steps (docs/integer_contract.md, Softmax). With a "
              "constant mask the masked keys are out of the max and the sum, their output is the code of 0.",
    inputs="one quant tensor (per-tensor scale, any zero point) or int32 acc (per-tensor scale and offset)",
    attrs={"mask": Attr({"type": "array", "minItems": 1,
                         "items": {"type": "array", "minItems": 1,
                                   "items": {"type": "array", "minItems": 2, "maxItems": 2,
                                             "items": {"type": "integer", "minimum": 0}}}},
                        "constant attention mask: per pattern row the [begin, end) runs of allowed keys; row r of "
                        "the input uses pattern row r mod (number of pattern rows); masked keys take no part in "
                        "the max and the sum, their output is the code of 0.0", required=False)},
    reference="softmax",
    kernels=("gf_softmax",),
    fusion="head",
    prepare=prepare,
    run=lambda engine, step, inputs: atomic_ops.get("softmax")(inputs[0], step.params),
    exact=_exact,
    call=_call,
    tiling=Tiling("rows"),
    macs=lambda net, step: net.tensors[step.output].numel,  # the product e * R of every element
    infer_shapes=infer_shapes,
)


def _lower(ctx) -> None:
    x = ctx.input_tensor(0)
    nd = len(x.shape)
    if ctx.node.kind == "module":
        dim = ctx.module.dim
    else:
        dim = ctx.arg(1, "dim")
        if ctx.node.kwargs.get("dtype") is not None or any(isinstance(a, torch.dtype) for a in ctx.node.args):
            ctx.fail("softmax with a dtype argument is not supported", hint="drop the dtype argument")
    if dim is None:
        ctx.fail("softmax without dim (PyTorch's implicit dimension) is not supported",
                 hint="pass dim=-1 (the last axis)")
    if int(dim) % nd != nd - 1:
        ctx.fail(f"softmax over axis {dim} of a {nd}-D tensor; only the last axis is supported", hint=HINT_AXIS)
    if x.kind == "float":
        ctx.fail("applies softmax to the unquantized network input", hint="put a QuantIdentity before it")
    if x.kind not in ("quant", "acc"):
        ctx.fail(f"applies softmax to {x.described} (no integer encoding)",
                 hint="put a QuantIdentity before the softmax")
    if x.per_channel:
        ctx.fail("applies softmax to a tensor with per-channel scales",
                 hint="use a per-tensor quantizer (QuantIdentity) before the softmax")
    if x.kind == "acc" and isinstance(x.offset, list) and len(set(x.offset)) > 1:
        ctx.fail("applies softmax to an accumulator with a float per-feature bias (not an integer)",
                 hint="use bias_quant=Int32Bias on the layer, or put a QuantIdentity before the softmax")
    out = ctx.new_tensor(ctx.name, "real", x.shape)
    ctx.emit("softmax", [x], [out])
    ctx.bind(out)


FRONTENDS = [
    Frontend(
        name="torch.nn.Softmax / F.softmax / torch.softmax / Tensor.softmax",
        modules=(nn.Softmax,),
        functions=("softmax",),
        lowers_to=("softmax",),
        doc="Softmax over the last axis of a quantized tensor (per-tensor scale) or of an int32 "
            "accumulator (e.g. logits of a QuantLinear with Int32Bias, or a product of activations), "
            "followed by a quantizer (QuantIdentity, e.g. Uint8ActPerTensorFloat). Other axes, "
            "log_softmax and a dtype argument are refused with a hint.",
        lower=_lower,
    ),
]
