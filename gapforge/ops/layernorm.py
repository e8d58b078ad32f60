"""layernorm: LayerNorm over the last axes of a quantized tensor, then a quantizer."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

import atomic_ops
from atomic_ops import layernorm as ref
from gapforge.ops._base import Attr, Frontend, IROp, Tiling, checked_bound, output_range
from gapforge.ops._shapes import ShapeError, inputs_of

FLOATS = {"type": "array", "items": {"type": "number"}}


def _affine(step, n: int) -> tuple[np.ndarray, np.ndarray]:
    a = step.attrs
    gamma = np.asarray(a["weight"], dtype=np.float64) if a.get("weight") is not None else np.ones(n)
    beta = np.asarray(a["bias"], dtype=np.float64) if a.get("bias") is not None else np.zeros(n)
    return gamma, beta


def row_length(shape, axes: int) -> int:
    return int(math.prod(shape[len(shape) - axes:]))


def prepare(net, step) -> ref.LayerNormParams:
    x = net.tensors[step.inputs[0]]
    y = net.tensors[step.output]
    lo, hi = output_range(net, step)
    n = row_length(x.shape, int(step.attrs["axes"]))
    gamma, beta = _affine(step, n)
    return checked_bound(ref.prepare(float(x.scale), x.qrange(), float(step.attrs["eps"]), gamma, beta,
                                     float(y.scale), int(y.zero_point), lo, hi))


def _exact(engine, step, inputs):
    x = engine.net.tensors[step.inputs[0]]
    y = engine.net.tensors[step.output]
    n = row_length(x.shape, int(step.attrs["axes"]))
    gamma, beta = _affine(step, n)
    return ref.exact(inputs[0], n, float(x.scale), float(step.attrs["eps"]), gamma, beta, float(y.scale))


def _call(cg):
    rows, n = cg.rows_extent()
    return cg.call("gf_layernorm", (cg.X[0], cg.T[0], rows, n, cg.param_block(), cg.Y))


def infer_shapes(inputs, attrs, params):
    """One input; the normalized trailing axes exclude the batch axis; output of the same shape."""
    (x,) = inputs_of(inputs, 1)
    axes = int(attrs["axes"])
    if not 1 <= axes < len(x):
        raise ShapeError(f"normalizes {axes} trailing axes of the {len(x)}-D input {x}; the batch axis "
                         "must not be normalized", "attrs.axes")
    n = row_length(x, axes)
    for key in ("weight", "bias"):
        if attrs.get(key) is not None and len(attrs[key]) != n:
            raise ShapeError(f"{key} has {len(attrs[key])} values, the normalized shape {x[-axes:]} has {n}",
                             f"attrs.{key}")
    return [list(x)]


def norm_op(name: str, **decl) -> IROp:
    """The declaration of a row normalization (LayerNorm, RMSNorm, GroupNorm): what they share (the
    numpy reference and kernel named after the op, a row tiling, fusion head, 2 MACs per output: the
    sum of squares and c_i * D_i) around what each declares (summary, semantics, inputs, attrs, hooks)."""
    return IROp(name=name, reference=name, kernels=(f"gf_{name}",), fusion="head", tiling=Tiling("rows"),
                run=lambda engine, step, inputs: atomic_ops.get(name)(inputs[0], step.params),
                macs=lambda net, step: 2 * net.tensors[step.output].numel, **decl)


IR_OP = norm_op(
    "layernorm",
    summary="LayerNorm over the last axes (optional elementwise affine), quantized by the following quantizer.",
    semantics="Per row of N codes: exact A = sum q, V = N sum q^2 - A^2, D = N q - A; 1/sqrt(V + N^2 eps/s^2) "
              "from an exact 64-bit integer square root of a normalized fixed-point value; affine and "
              "output scale folded into per-element multipliers; one round-half-even to the output code; "
              "error below 1e-5 output steps (docs/integer_contract.md, LayerNorm).",
    inputs="one quant tensor (per-tensor scale, any zero point, 1-8 bits)",
    attrs={
        "axes": Attr({"type": "integer", "minimum": 1}, "number of trailing axes normalized (normalized_shape)"),
        "eps": Attr({"type": "number", "minimum": 0}, "epsilon added to the variance"),
        "weight": Attr(FLOATS, "elementwise affine weight (float32 values, C order of the normalized shape)",
                       required=False),
        "bias": Attr(FLOATS, "elementwise affine bias (float32 values)", required=False),
    },
    prepare=prepare, exact=_exact, call=_call, infer_shapes=infer_shapes,
)


def _floats(t) -> list[float] | None:
    if t is None:
        return None
    if not isinstance(t, torch.Tensor):
        raise TypeError("not a tensor")
    return [float(v) for v in t.detach().to(torch.float32).reshape(-1)]


def check_norm_input(ctx, x, what: str) -> None:
    """The input of a row normalization (LayerNorm, RMSNorm, GroupNorm) must be a per-tensor quant tensor."""
    if x.kind == "float":
        ctx.fail(f"applies {what} to the unquantized network input", hint="put a QuantIdentity before it")
    if x.kind != "quant":
        _refuse_unquantized(ctx, x, what)
    if x.per_channel:
        ctx.fail(f"applies {what} to a tensor with per-channel scales",
                 hint=f"use a per-tensor quantizer (QuantIdentity) before the {what}")


def _lower(ctx) -> None:
    x = ctx.input_tensor(0)
    nd = len(x.shape)
    if ctx.node.kind == "module":
        m = ctx.module
        shape = list(m.normalized_shape)
        eps = float(m.eps)
        weight = m.weight if m.elementwise_affine else None
        bias = m.bias if m.elementwise_affine else None
    else:
        shape = ctx.arg(1, "normalized_shape")
        shape = [int(shape)] if isinstance(shape, int) else [int(v) for v in shape]
        weight, bias = ctx.arg(2, "weight"), ctx.arg(3, "bias")
        eps = float(ctx.arg(4, "eps", 1e-5))
        if any(ctx.act_of(a) is not None for a in (weight, bias)):
            ctx.fail("layer_norm with a weight or bias computed from activations is not supported",
                     hint="use parameters (nn.LayerNorm) for the affine transform")
    axes = len(shape)
    if axes >= nd:
        ctx.fail(f"LayerNorm over {shape} normalizes the batch axis of the input {x.shape}",
                 hint="normalize the feature axes only (normalized_shape = the trailing axes without batch)")
    if list(x.shape[nd - axes:]) != shape:
        ctx.fail(f"normalized_shape {shape} does not match the trailing axes of the input {x.shape}")
    check_norm_input(ctx, x, "LayerNorm")
    attrs = {"axes": axes, "eps": eps}
    try:
        if weight is not None:
            attrs["weight"] = _floats(weight)
        if bias is not None:
            attrs["bias"] = _floats(bias)
    except TypeError:
        ctx.fail("layer_norm weight and bias must be tensors")
    out = ctx.new_tensor(ctx.name, "real", x.shape)
    ctx.emit("layernorm", [x], [out], attrs=attrs)
    ctx.bind(out)


RESIDUAL_HINT = ("quantize the residual sum before the LayerNorm: x = self.res_q(x + self.attn(self.ln1(x))) "
                 "with a QuantIdentity res_q (docs/integer_contract.md, Residual and LayerNorm)")


def _refuse_unquantized(ctx, x, what: str = "LayerNorm") -> None:
    """A LayerNorm input without an 8-bit encoding: name what it is and where the QuantIdentity goes."""
    prod = ctx.producer_op(x)
    if prod is not None and prod.type == "add" and x.kind == "real":
        ctx.fail(f"applies {what} to the float sum of a residual add (operands of different scales, e.g. a "
                 "quantized x plus a layer's float output: Brevitas adds and normalizes them in float32, and "
                 "that sum has no integer encoding)", hint=RESIDUAL_HINT)
    if prod is not None and prod.type == "add":
        ctx.fail(f"applies {what} to the integer sum of a residual add (a QuantTensor + QuantTensor of one "
                 f"scale, bit width + 1), which is wider than the 8-bit {what} input", hint=RESIDUAL_HINT)
    ctx.fail(f"applies {what} to {x.described}",
             hint=f"put a QuantIdentity before the {what} (or set output_quant on the layer before it)")


FRONTENDS = [
    Frontend(
        name="torch.nn.LayerNorm / F.layer_norm",
        modules=(nn.LayerNorm,),
        functions=("layer_norm",),
        lowers_to=("layernorm",),
        doc="LayerNorm over the last axis or the last few axes (not the batch axis) of a quantized tensor "
            "(per-tensor scale, any zero point), with or without elementwise affine (and bias=False), any "
            "eps, followed by a quantizer. An int32 accumulator or a residual sum (x + attn(x): a float sum of "
            "two scales, or an integer sum of one) needs a QuantIdentity first: x = res_q(x + attn(ln1(x))).",
        lower=_lower,
    ),
]
