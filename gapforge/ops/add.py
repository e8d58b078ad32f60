"""add: element-wise sum of two activations (residual connections)."""

from __future__ import annotations

import brevitas.nn as qnn
import torch

from gapforge.lowering import same_scale
from gapforge.ops._base import Frontend, IROp, Tiling
from gapforge.ops._shapes import ShapeError, inputs_of
from gapforge.ops.requantize import quantize_to


def infer_shapes(inputs, attrs, params):
    """Two inputs of equal shape (no broadcasting) -> that shape."""
    a, b = inputs_of(inputs, 2)
    if list(a) != list(b):
        raise ShapeError(f"adds tensors of shapes {a} and {b}; they must be equal (no broadcasting)")
    return [list(a)]


IR_OP = IROp(
    name="add",
    summary="Element-wise sum of two tensors of the same shape.",
    semantics="Same scales: acc = q_a + q_b exactly (int32), offsets add up. Different scales: the sum "
              "is real and the following requantize computes rne(q_a*M_a + q_b*M_b + O) with one "
              "64-bit accumulator and a shared shift.",
    inputs="two quant/acc/real tensors of equal shape (quant inputs: zero point 0)",
    reference="add",
    kernels=("gf_add",),
    fusion="head",
    requantizes=True,
    sources=lambda engine, step, inputs: list(inputs),
    call=lambda cg: cg.call("gf_add", (cg.X[0], cg.T[0], cg.X[1], cg.T[1], *cg.eltwise_extent(), cg.rq_arg, cg.Y)),
    tiling=Tiling("eltwise"),
    infer_shapes=infer_shapes,
)


def emit_add(ctx, a, b, base):
    for t in (a, b):
        if t.kind == "float":
            ctx.fail("adds the unquantized network input", hint="quantize the input first")
        if t.kind == "quant" and t.zero_point != 0:
            ctx.fail(f"adds a tensor with zero point {t.zero_point}; only zero point 0 is supported")
    if a.shape != b.shape:
        ctx.fail(f"adds tensors of shapes {a.shape} and {b.shape}; broadcasting is not supported")
    if a.kind in ("quant", "acc") and b.kind in ("quant", "acc") and same_scale(a, b):
        offset = None
        if any(t.kind == "acc" and t.offset is not None for t in (a, b)):
            n = a.shape[a.channel_axis]
            offset = [x + y for x, y in zip(a.offset_list(n), b.offset_list(n))]
        out = ctx.new_tensor(base, "acc", a.shape, scale=a.scale, channel_axis=a.channel_axis, offset=offset)
    else:
        out = ctx.new_tensor(base, "real", a.shape)
    ctx.emit("add", [a, b], [out])
    return out


def _lower_add_function(ctx) -> None:
    args = [a for a in (ctx.arg(0, "input"), ctx.arg(1, "other"))]
    alpha = ctx.node.kwargs.get("alpha", 1)
    if alpha != 1:
        ctx.fail(f"torch.add with alpha={alpha} is not supported")
    acts = [ctx.act_of(a) for a in args]
    if acts.count(None) == 1 and isinstance(args[acts.index(None)], torch.Tensor):
        from gapforge.ops.add_constant import lower_add_constant

        lower_add_constant(ctx, acts[1 - acts.index(None)], args[acts.index(None)])
        return
    if None in acts:
        ctx.fail("adds a Python number to an activation; only sums of two activations or of an activation "
                 "and a constant tensor are supported", hint="add a constant tensor (e.g. an nn.Parameter)")
    a, b = (ctx.tensor_of_act(x) for x in acts)
    from gapforge.ops.lincomb import add_forms, form_of

    if form_of(ctx, a) is not None or form_of(ctx, b) is not None:
        ctx.bind(add_forms(ctx, a, b))  # a sum of products with constants (RoPE): gapforge/ops/lincomb.py
        return
    ctx.bind(emit_add(ctx, a, b, ctx.name))


def _lower_eltwise_add(ctx) -> None:
    m = ctx.module
    a, b = ctx.input_tensor(0), ctx.input_tensor(1)
    if m.input_quant.is_quant_enabled:
        a = quantize_to(ctx, a, m.input_quant, f"{ctx.name}.input_quant")
        b = quantize_to(ctx, b, m.input_quant, f"{ctx.name}.input_quant")
    y = emit_add(ctx, a, b, ctx.name)
    if m.output_quant.is_quant_enabled:
        y = quantize_to(ctx, y, m.output_quant, f"{ctx.name}.output_quant")
    ctx.bind(y)


FRONTENDS = [
    Frontend(
        name="x + y / torch.add / Tensor.add (two activations)",
        functions=("add",),
        lowers_to=("add", "add_constant", "lincomb"),
        doc="Sum of two activations of equal shape, QuantTensors (Brevitas requires equal scales in "
            "eval mode: the sum is an exact integer) or float tensors of any scales (the next "
            "quantizer requantizes the real sum). An activation plus a constant tensor (a learned position "
            "embedding nn.Parameter, broadcastable to it) lowers to add_constant and must go to a "
            "QuantIdentity; Python numbers and broadcasting of two activations are refused. A sum of products "
            "of one quantized tensor with constant tensors (RoPE) goes to lincomb.",
        lower=_lower_add_function,
    ),
    Frontend(
        name="brevitas.nn.QuantEltwiseAdd",
        modules=(qnn.QuantEltwiseAdd,),
        lowers_to=("requantize", "add", "requantize"),
        doc="Both inputs go through the shared input quantizer, then add, then the output quantizer.",
        lower=_lower_eltwise_add,
    ),
]
