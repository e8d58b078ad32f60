"""rescale: multiplication of an activation by a constant, folded into its scale (a view)."""

from __future__ import annotations

import numbers

import numpy as np
import torch

import atomic_ops
from gapforge.ops._base import Attr, Frontend, IROp
from gapforge.ops._shapes import same_shape


def infer_shapes(inputs, attrs, params):
    """One input; the output has its shape."""
    return same_shape(inputs, attrs, params)


IR_OP = IROp(
    name="rescale",
    summary="Multiply a tensor by a positive constant: the integers are unchanged, the scale is multiplied.",
    semantics="q unchanged; s_out = s_in * factor (a view of the input's buffer).",
    inputs="one quant tensor",
    attrs={"factor": Attr({"type": "number", "exclusiveMinimum": 0},
                          "the constant factor as applied: the float32 constant c of x * c, 1 / c of x / c")},
    reference="rescale",
    run=lambda engine, step, inputs: atomic_ops.get("rescale")(inputs[0]),
    view=True,
    infer_shapes=infer_shapes,
)


def _constant_factor(ctx, obj) -> float | None:
    """A Python number or a one-element constant tensor, as the float32 value PyTorch applies."""
    if isinstance(obj, bool):
        return None
    if isinstance(obj, numbers.Real):
        return float(np.float32(obj))
    if isinstance(obj, torch.Tensor) and obj.numel() == 1 and ctx.act_of(obj) is None:
        return float(obj.detach().to(torch.float32).reshape(()))
    return None


def fresh_sole_use(ctx, act: int, x) -> bool:
    """``x`` (the tensor of activation ``act``) is read by this node only and by no op emitted so far, and is
    no network output: a constant applied to it can fold into its scale and offset."""
    return (len(ctx.low.graph.consumers(act)) == 1 and act not in ctx.low.graph.outputs
            and not any(x.name in op.inputs for op in ctx.low.ops))


def scale_by_constant(ctx, act: int, factor: float) -> None:
    """Bind the node's output to ``x`` times ``factor``: folded into the scale of ``x``.

    An accumulator nobody has read yet (the fresh result of a conv, matmul or linear) takes the factor in
    place, any sign but 0 (a negative one flips its scale, as a folded BatchNorm's gamma does), so the
    requantization that follows still fuses with its producer; a quant tensor gets a ``rescale`` view
    (factor > 0).
    """
    x = ctx.tensor_of_act(act)
    if x.kind == "acc" and fresh_sole_use(ctx, act, x):
        if factor == 0 or not np.isfinite(factor):  # a negative factor is a negative scale, as a folded BatchNorm's
            ctx.fail(f"scales an accumulator by {factor}", hint="only non-zero finite constants fold into a scale")
        x.scale = [float(s) * factor for s in x.scale] if x.per_channel else float(x.scale) * factor
        if x.offset is not None:
            x.offset = [float(o) * factor for o in x.offset] if isinstance(x.offset, list) else float(x.offset) * factor
        ctx.bind(x)
        return
    if not factor > 0 or not np.isfinite(factor):
        ctx.fail(f"scales an activation by {factor}; only positive finite constants fold into a scale",
                 hint="negative or zero factors are not supported")
    if x.kind == "acc":
        ctx.fail("scales an accumulator that is also used elsewhere (its scale cannot take the factor)",
                 hint="put a QuantIdentity before the scaling")
    if x.kind != "quant":
        ctx.fail(f"scales {x.described} without an integer encoding"
                 + (" (the unquantized network input)" if x.kind == "float" else ""),
                 hint="put a QuantIdentity before the scaling")
    out = ctx.new_tensor(ctx.name, "quant", x.shape, zero_point=x.zero_point, bit_width=x.bit_width,
                         signed=x.signed, narrow_range=x.narrow_range, channel_axis=x.channel_axis,
                         scale=[float(s) * factor for s in x.scale] if x.per_channel else float(x.scale) * factor)
    ctx.emit("rescale", [x], [out], attrs={"factor": factor})
    ctx.bind(out)


def lower_constant_scaling(ctx) -> bool:
    """x * c, c * x or x / c with a constant c: lowered (True), or not a constant scaling (False)."""
    op = ctx.node.type_name
    a, b = ctx.arg(0, "input"), ctx.arg(1, "other")
    if op == "mul" and ctx.act_of(a) is None and ctx.act_of(b) is not None:
        a, b = b, a
    if ctx.act_of(a) is None:
        return False
    c = _constant_factor(ctx, b)
    if c is None:
        return False
    if op == "div":
        if ctx.node.kwargs.get("rounding_mode") is not None:
            ctx.fail("integer division (rounding_mode) of an activation is not supported")
        factor = 1.0 / c if c != 0 else float("inf")  # the exact quotient by the float32 divisor
    else:
        factor = c
    scale_by_constant(ctx, ctx.act_of(a), factor)
    return True


def _lower(ctx) -> None:
    if not lower_constant_scaling(ctx):
        what = "division" if ctx.node.type_name == "div" else "element-wise product"
        ctx.fail(f"{what} of two activations is not supported; only scaling by a positive constant is",
                 hint="scale by a Python number (e.g. x / math.sqrt(d) or x * 0.125)")


FRONTENDS = [
    Frontend(
        name="x / c, torch.div by a positive constant (x * c: gapforge/ops/mul.py)",
        functions=("div",),
        lowers_to=("rescale",),
        doc="Scaling of an activation by a positive constant (a Python number or a one-element "
            "constant tensor, applied in float32 as PyTorch does) folds into its scale: into the "
            "accumulator of the conv, matmul or linear that produced it (there any non-zero constant: a negative "
            "one flips the accumulator's scale, as a folded BatchNorm's gamma), else a rescale view of a quant "
            "tensor. The quantizer that follows requantizes exactly.",
        lower=_lower,
    ),
]
