"""concat: concatenation of quantized activations."""

from __future__ import annotations

import math

import brevitas.nn as qnn

import atomic_ops
from gapforge.ops._base import Attr, Frontend, IROp
from gapforge.ops._shapes import ShapeError, inputs_of
from gapforge.ops.requantize import quantize_to


def _call(cg):
    axis = cg.attrs["axis"]
    outer = math.prod(cg.out_t.shape[:axis])
    blocks = [math.prod(cg.net.tensors[t].shape[axis:]) * rec.elem_bytes for t, rec in zip(cg.step.inputs, cg.ins)]
    return cg.call("gf_concat", (f"cat_in_{cg.ident}", f"cat_bytes_{cg.ident}", str(len(blocks)), str(outer), cg.Y),
                   cat_blocks=tuple(blocks))


def infer_shapes(inputs, attrs, params):
    """Inputs equal except along `axis` -> the sum of their sizes along it."""
    xs = inputs_of(inputs, minimum=1)
    axis, nd = attrs["axis"], len(xs[0])
    if axis >= nd:
        raise ShapeError(f"axis {axis} of {nd}-D inputs", "attrs.axis")
    for x in xs[1:]:
        if len(x) != nd or [d for i, d in enumerate(x) if i != axis] != [d for i, d in enumerate(xs[0]) if i != axis]:
            raise ShapeError(f"concatenates shapes {xs[0]} and {x} along axis {axis}; every other axis must agree")
    out = list(xs[0])
    out[axis] = sum(x[axis] for x in xs)
    return [out]


IR_OP = IROp(
    name="concat",
    summary="Concatenate quantized tensors along one axis.",
    semantics="Pure data movement: integers are copied unchanged. Inputs with different scales are "
              "allowed when concatenating along the channel axis; the output then has per-channel scales.",
    inputs="two or more quant tensors with equal zero point, bit width and signedness",
    attrs={"axis": Attr({"type": "integer", "minimum": 1}, "concatenation axis (never the batch axis)")},
    reference="concat",
    kernels=("gf_concat",),
    run=lambda engine, step, inputs: atomic_ops.get("concat")(inputs, step.attrs["axis"]),
    call=_call,
    fc_direct=True,
    infer_shapes=infer_shapes,
)


def emit_concat(ctx, xs, axis, base):
    first = xs[0]
    nd = len(first.shape)
    axis = axis % nd
    if axis == 0:
        ctx.fail("concatenation along the batch axis is not supported")
    for t in xs:
        if t.kind != "quant":
            ctx.fail(f"concatenates {t.described}; every input must be quantized",
                     hint="put a QuantIdentity on each branch before torch.cat")
        if (t.zero_point, t.bit_width, t.signed, t.narrow_range) != (first.zero_point, first.bit_width,
                                                                     first.signed, first.narrow_range):
            ctx.fail("concatenates tensors with different zero points, bit widths or signedness",
                     hint="use one shared quantizer for all concatenated branches")
    if all(not t.per_channel for t in xs) and len({t.scale for t in xs}) == 1:
        scale, ch_axis = first.scale, None
    elif axis == 1 and all(t.channel_axis in (None, 1) for t in xs):
        scale, ch_axis = [], 1
        for t in xs:
            scale += t.scale_list(t.shape[1])
    else:
        ctx.fail("concatenates tensors with different scales along a non-channel axis")
    out_shape = list(first.shape)
    out_shape[axis] = sum(t.shape[axis] for t in xs)
    out = ctx.new_tensor(base, "quant", out_shape, scale=scale, zero_point=first.zero_point,
                         bit_width=first.bit_width, signed=first.signed, narrow_range=first.narrow_range,
                         channel_axis=ch_axis)
    ctx.emit("concat", list(xs), [out], attrs={"axis": axis})
    return out


def _lower_cat(ctx) -> None:
    seq = ctx.arg(0, "tensors")
    axis = ctx.arg(1, "dim", 0)
    if not isinstance(seq, (list, tuple)):
        ctx.fail("concatenates something that is not a list of tensors")
    if any(ctx.act_of(t) is None for t in seq):
        from gapforge.ops.add_constant import lower_cat_with_constants

        lower_cat_with_constants(ctx, seq, axis)
        return
    xs = [ctx.tensor_of_act(ctx.act_of(t)) for t in seq]
    from gapforge.ops.lincomb import cat_forms

    rotated = cat_forms(ctx, xs, axis)  # rotate_half: cat((-x2, x1), -1) of parts of one tensor
    if rotated is not None:
        ctx.bind(rotated)
        return
    ctx.bind(emit_concat(ctx, xs, axis, ctx.name))


def _lower_quant_cat(ctx) -> None:
    m = ctx.module
    seq = ctx.arg(0, "tensor_list")
    axis = ctx.arg(1, "dim", 1)
    xs = [ctx.tensor_of_act(ctx.act_of(t)) for t in seq]
    if m.input_quant.is_quant_enabled:
        xs = [quantize_to(ctx, x, m.input_quant, f"{ctx.name}.input_quant") for x in xs]
    y = emit_concat(ctx, xs, axis, ctx.name)
    if m.output_quant.is_quant_enabled:
        y = quantize_to(ctx, y, m.output_quant, f"{ctx.name}.output_quant")
    ctx.bind(y)


FRONTENDS = [
    Frontend(
        name="torch.cat / torch.concat",
        functions=("cat",),
        lowers_to=("concat", "pad", "add_constant", "lincomb"),
        doc="Concatenation of quantized activations (any axis but batch). Along channels the inputs "
            "may have different scales (the result has per-channel scales, which the next quantizer "
            "or depthwise conv consumes exactly); otherwise scales must be equal. One activation with "
            "constants (a learned class token nn.Parameter in front of the tokens) becomes the activation "
            "padded with its zero code plus the constants as per-element offsets (pad, add_constant), "
            "which must go to a QuantIdentity. Parts of one tensor along its last axis, some negated "
            "(RoPE's rotate_half: torch.cat((-x2, x1), dim=-1)), form a pending product with constants (lincomb) "
            "for the products and sum that follow.",
        lower=_lower_cat,
    ),
    Frontend(
        name="brevitas.nn.QuantCat",
        modules=(qnn.QuantCat,),
        lowers_to=("requantize", "concat", "requantize"),
        doc="Inputs go through the shared input quantizer, then concat, then the output quantizer. Brevitas "
            "0.13.4's QuantCat.forward calls QuantTensor.cat, which that release does not have, so a model using "
            "it fails in Brevitas itself (AttributeError: the refusal names the model's line); torch.cat of "
            "inputs quantized by one shared QuantIdentity is the same and deploys exactly.",
        lower=_lower_quant_cat,
    ),
]
