"""pad: slices of one code inserted along an axis (the room a concatenated constant fills)."""

from __future__ import annotations

import torch

import atomic_ops
from gapforge.ops._base import Attr, IROp
from gapforge.ops._shapes import around_axis, inputs_of, padded_axis


def infer_shapes(inputs, attrs, params):
    """Axis `axis` grows by before + after; the others are unchanged."""
    (x,) = inputs_of(inputs, 1)
    return [padded_axis(x, attrs)]


def _call(cg):
    a = cg.attrs
    outer, n, inner = around_axis(cg.net.tensors[cg.step.inputs[0]].shape, a["axis"])
    return cg.call("gf_pad", (cg.X[0], str(outer), str(n), str(a["before"]), str(a["after"]), str(inner),
                              str(a["value"]), cg.Y))


IR_OP = IROp(
    name="pad",
    summary="Insert slices of one integer code before / after along an axis.",
    semantics="y = [value] * before ++ x ++ [value] * after along one axis; integers unchanged.",
    inputs="one quant tensor (8-bit container); never the batch axis",
    attrs={"axis": Attr({"type": "integer", "minimum": 1}, "padded axis (never the batch axis)"),
           "before": Attr({"type": "integer", "minimum": 0}, "slices inserted before"),
           "after": Attr({"type": "integer", "minimum": 0}, "slices inserted after"),
           "value": Attr({"type": "integer", "minimum": -128, "maximum": 255}, "the code filled in")},
    reference="pad",
    kernels=("gf_pad",),
    run=lambda engine, step, inputs: atomic_ops.get("pad")(inputs[0], step.attrs["axis"], step.attrs["before"],
                                                           step.attrs["after"], step.attrs["value"]),
    call=_call,
    fc_direct=True,
    infer_shapes=infer_shapes,
)


def emit_pad(ctx, x, axis: int, before: int, after: int, base: str):
    """``x`` padded with its zero code (real 0) along ``axis``."""
    if x.kind != "quant":
        ctx.fail(f"pads {x.described}", hint="quantize before concatenating constants")
    if x.channel_axis == axis:
        ctx.fail("pads the per-channel axis of a tensor", hint="use a per-tensor quantizer")
    shape = list(x.shape)
    shape[axis] += before + after
    out = ctx.new_tensor(base, "quant", shape, scale=x.scale, zero_point=x.zero_point, bit_width=x.bit_width,
                         signed=x.signed, narrow_range=x.narrow_range, channel_axis=x.channel_axis)
    ctx.emit("pad", [x], [out], attrs={"axis": axis, "before": before, "after": after, "value": x.zero_code})
    widths = [0, 0] * (len(shape) - 1 - axis) + [before, after]  # torch's F.pad order: last axis first
    ctx.derive_value(out, x, lambda v: torch.nn.functional.pad(v, widths))  # the padded codes are real 0
    return out
