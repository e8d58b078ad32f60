"""reshape: flatten / view / reshape; a no-op on contiguous data."""

from __future__ import annotations

from torch import nn

import atomic_ops
from gapforge.lowering import prod
from gapforge.ops._base import Attr, Frontend, IROp
from gapforge.ops._shapes import ShapeError, inputs_of, numel


def infer_shapes(inputs, attrs, params):
    """The `shape` attribute, which must keep the element count and the batch axis."""
    (x,) = inputs_of(inputs, 1)
    shape = list(attrs["shape"])
    if numel(shape) != numel(x):
        raise ShapeError(f"reshape of {x} ({numel(x)} elements) to {shape} ({numel(shape)} elements)",
                         "attrs.shape")
    if not shape or shape[0] != x[0]:
        raise ShapeError(f"reshape of {x} to {shape} does not keep the batch axis first", "attrs.shape")
    return [shape]


IR_OP = IROp(
    name="reshape",
    summary="Change the shape of a tensor (flatten, view, reshape, squeeze, unsqueeze).",
    semantics="Integers unchanged, row-major (C order) element order unchanged.",
    inputs="one quant or acc tensor; the batch axis stays first",
    attrs={"shape": Attr({"type": "array", "items": {"type": "integer", "minimum": 1}},
                         "output shape with batch 1 first")},
    reference="reshape",
    run=lambda engine, step, inputs: atomic_ops.get("reshape")(inputs[0], step.attrs["shape"]),
    view=True,
    infer_shapes=infer_shapes,
)


def _channel_axis_after(in_shape, out_shape, axis):
    """Axis of the output where the per-channel axis ``axis`` of the input lands, or None."""
    before = prod(in_shape[:axis])
    for k in range(len(out_shape)):
        if prod(out_shape[:k]) == before and out_shape[k] == in_shape[axis]:
            return k
    return None


def _periodic_split(x, out_shape) -> tuple[int, list, list | None] | None:
    """(axis, scales, offsets) of the output when the reshape splits the per-channel axis of ``x`` into
    outer parts and an innermost output axis k whose index alone determines the scale: the input's
    per-channel scale (and offset) repeats with the period out_shape[k] (the phases of a transposed
    convolution stacked as channels, gapforge/ops/conv_transpose.py). None otherwise."""
    axis, c = x.channel_axis, x.shape[x.channel_axis]
    end = prod(x.shape[:axis + 1])
    for k in range(len(out_shape)):
        if prod(out_shape[:k + 1]) == end and c % out_shape[k] == 0:
            n = out_shape[k]
            scale, off = x.scale_list(c), x.offset_list(c) if isinstance(x.offset, list) else None
            if all(scale[i] == scale[i % n] for i in range(c)) and (
                    off is None or all(off[i] == off[i % n] for i in range(c))):
                return k, scale[:n] if x.per_channel else x.scale, off[:n] if off is not None else x.offset
    return None


def emit_reshape(ctx, x, out_shape, base):
    if not out_shape or out_shape[0] != x.shape[0]:
        ctx.fail(f"reshape from {x.shape} to {out_shape} does not keep the batch axis first",
                 hint="use x.view(x.size(0), -1) or torch.flatten(x, 1)")
    if x.kind == "float" and x.name in ctx.low.pre_inputs:  # e.g. nn.Flatten of the raw input (quantize.py)
        from gapforge.ops.quantize import view_float_input

        return view_float_input(ctx, x, {"op": "reshape", "shape": list(out_shape[1:])}, out_shape, base)
    if x.kind not in ("quant", "acc"):
        ctx.fail(f"reshapes {x.described}", hint="quantize before reshaping")
    axis, scale, offset = x.channel_axis, x.scale, x.offset
    if axis is not None:
        axis = _channel_axis_after(x.shape, out_shape, axis)
        periodic = _periodic_split(x, out_shape) if axis is None else None
        if periodic is not None:
            axis, scale, offset = periodic
        elif axis is None:
            what = ("scale" if isinstance(x.scale, list) else "") + (
                " and offset" if isinstance(x.scale, list) and isinstance(x.offset, list) else
                "offset" if isinstance(x.offset, list) else "")
            why = (" (a float bias: bias_quant=None)" if x.kind == "acc" and isinstance(x.offset, list) else "")
            ctx.fail(f"reshape from {x.shape} to {out_shape} splits axis {x.channel_axis} of '{x.name}', "
                     f"{x.described} with a per-channel {what}{why}; only a reshape that keeps that axis whole "
                     "is exact",
                     hint=f"quantize '{x.name}' per tensor before the reshape (a QuantIdentity, or output_quant "
                          "on the layer that produces it)"
                          + (", or give that layer bias_quant=Int32Bias" if why else ""))
    fields = dict(scale=scale, channel_axis=axis)
    if x.kind == "quant":
        fields.update(zero_point=x.zero_point, bit_width=x.bit_width, signed=x.signed,
                      narrow_range=x.narrow_range)
    else:
        fields.update(offset=offset)
    out = ctx.new_tensor(base, x.kind, out_shape, **fields)
    ctx.emit("reshape", [x], [out], attrs={"shape": list(out_shape)})
    ctx.derive_value(out, x, lambda v: v.reshape(out_shape))
    return out


def _lower(ctx) -> None:
    x = ctx.input_tensor(0)
    out_shape = ctx.out_shape(0)
    if out_shape == x.shape:
        ctx.bind(x)
        return
    ctx.bind(emit_reshape(ctx, x, out_shape, ctx.name))


FRONTENDS = [
    Frontend(
        name="flatten / view / reshape / squeeze / unsqueeze / torch.nn.Flatten",
        modules=(nn.Flatten, nn.Unflatten),
        functions=("flatten", "view", "reshape", "squeeze", "unsqueeze"),
        lowers_to=("reshape",),
        doc="Any reshape that keeps the batch axis first (the shape is taken from the captured run, so "
            "x.view(x.size(0), -1) is fine). A per-channel tensor may be reshaped only if its channel "
            "axis survives intact. The float network input may be reshaped before its quantizer (x.unsqueeze(1) of a (1, T) "
            "input, nn.Flatten / nn.Unflatten): part of the host-side input quantization (its preprocessing).",
        lower=_lower,
    ),
]
