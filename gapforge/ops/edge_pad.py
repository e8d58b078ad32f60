"""edge_pad: padding with the tensor's own values (reflect, replicate, circular); pure data movement.

nn.ReflectionPad1d/2d, nn.ReplicationPad1d/2d, nn.CircularPad1d/2d, F.pad(x, pads, mode=...) with those
modes (gapforge/ops/zeropad.py hands them over) and QuantConv1d / QuantConv2d with padding_mode
'reflect' / 'replicate' / 'circular' (gapforge/ops/conv2d.py) pad a quantized tensor (or an accumulator)
with copies of its own elements: the integers move, nothing is rounded, so the result is exact for any
scale and zero point. A padding of several axes is one edge_pad per axis, the last axis first (each mode's
index map acts on each axis separately, so the corners are those of PyTorch). Refused, with a hint: the
batch and channel axes, negative pads, pads wider than the axis allows (reflect < size, circular <= size:
PyTorch's own limits) and float (unquantized) inputs.
"""

from __future__ import annotations

import torch
from torch import nn

import atomic_ops
from atomic_ops.edge_pad import MODES, max_pad, source_indices
from gapforge.ops._base import Attr, Frontend, IROp
from gapforge.ops._shapes import ShapeError, around_axis, inputs_of, padded_axis


def infer_shapes(inputs, attrs, params):
    """Axis `axis` grows by before + after (reflect: each < its size; circular: each <= its size)."""
    (x,) = inputs_of(inputs, 1)
    out = padded_axis(x, attrs)
    axis, before, after, mode = attrs["axis"], attrs["before"], attrs["after"], attrs["mode"]
    if max(before, after) > max_pad(x[axis], mode):
        raise ShapeError(f"{mode} padding ({before}, {after}) of axis {axis} of {x} is wider than the axis allows",
                         "attrs.before")
    return [out]


def _call(cg):
    a = cg.attrs
    outer, n, inner = around_axis(cg.net.tensors[cg.step.inputs[0]].shape, a["axis"])
    return cg.call("gf_edge_pad", (cg.X[0], str(cg.ins[0].elem_bytes), str(outer), str(n), str(a["before"]),
                                   str(a["after"]), str(inner), str(MODES.index(a["mode"])), cg.Y))


IR_OP = IROp(
    name="edge_pad",
    summary="Pad one axis with the tensor's own slices (PyTorch's reflect, replicate and circular modes).",
    semantics="y[..., i, ...] = x[..., src(i - before), ...] along one axis, src(j) = |j| mirrored at both ends "
              "(reflect), j clamped to the axis (replicate) or j mod n (circular); integers unchanged.",
    inputs="one quant or acc tensor; never the batch axis",
    attrs={"axis": Attr({"type": "integer", "minimum": 1}, "padded axis (never the batch axis)"),
           "before": Attr({"type": "integer", "minimum": 0}, "slices inserted before"),
           "after": Attr({"type": "integer", "minimum": 0}, "slices inserted after"),
           "mode": Attr({"enum": list(MODES)}, "reflect, replicate or circular (torch.nn.functional.pad's modes)")},
    reference="edge_pad",
    kernels=("gf_edge_pad",),
    run=lambda engine, step, inputs: atomic_ops.get("edge_pad")(inputs[0], step.attrs["axis"], step.attrs["before"],
                                                                step.attrs["after"], step.attrs["mode"]),
    call=_call,
    fc_direct=True,
    infer_shapes=infer_shapes,
)

_WHAT = {"reflect": "reflection", "replicate": "replication", "circular": "circular"}


def emit_edge_pad(ctx, x, axis: int, before: int, after: int, mode: str, base: str):
    """``x`` padded along ``axis`` with its own slices in ``mode``."""
    if x.kind not in ("quant", "acc"):
        ctx.fail(f"{_WHAT[mode]} padding of {x.described}",
                 hint="quantize before padding (a QuantIdentity before the padding, or the layer's input_quant)")
    if x.channel_axis == axis:
        ctx.fail(f"{_WHAT[mode]} padding of the per-channel axis of a tensor", hint="use a per-tensor quantizer")
    n = x.shape[axis]
    if max(before, after) > max_pad(n, mode):
        limit = "smaller than" if mode == "reflect" else "at most"
        ctx.fail(f"{mode} padding ({before}, {after}) of an axis of size {n}: each side must be {limit} the size",
                 hint="pad less, or pad with zeros (the convolution's padding)")
    fields = dict(scale=x.scale, channel_axis=x.channel_axis)
    if x.kind == "quant":
        fields.update(zero_point=x.zero_point, bit_width=x.bit_width, signed=x.signed, narrow_range=x.narrow_range)
    else:
        fields["offset"] = x.offset
    shape = list(x.shape)
    shape[axis] += before + after
    out = ctx.new_tensor(base, x.kind, shape, **fields)
    ctx.emit("edge_pad", [x], [out], attrs={"axis": axis, "before": before, "after": after, "mode": mode})
    idx = torch.tensor(source_indices(n, before, after, mode))
    ctx.derive_value(out, x, lambda v: v.index_select(axis, idx.to(v.device)))
    return out


def emit_edge_pads(ctx, x, pads: list[int], mode: str, base: str):
    """``x`` padded by ``pads`` in F.pad's order ((left, right) of the last axis, then of the one before, ...)."""
    if mode not in MODES:
        ctx.fail(f"mode='{mode}' padding is not supported", hint=f"use one of {', '.join(MODES)} or zero padding")
    if any(p < 0 for p in pads):
        ctx.fail(f"negative padding {pads} (cropping) is not supported", hint="slice the input in the data instead")
    nd = len(x.shape)
    if len(pads) % 2 or nd - len(pads) // 2 < 2:
        ctx.fail(f"{_WHAT[mode]} padding {pads} of a {nd}-D tensor pads its batch or channel axis",
                 hint="pad only the time axis (1-D) or the height and width (2-D)")
    cur = x
    for k in range(len(pads) // 2):
        before, after = pads[2 * k], pads[2 * k + 1]
        if before or after:
            cur = emit_edge_pad(ctx, cur, nd - 1 - k, before, after, mode, base)
    return cur


def lower_mode_pad(ctx, pads: list[int], mode: str) -> None:
    """The node pads its input by ``pads`` (F.pad's order) in ``mode``; binds the padded tensor."""
    if any(ctx.low.pending_pad.get(ctx.node.inputs[0], [0])):
        ctx.fail(f"{_WHAT.get(mode, mode)} padding of a zero-padded tensor is not supported",
                 hint="pad with one mode only, or zero padding after the other")
    ctx.bind(emit_edge_pads(ctx, ctx.input_tensor(0), pads, mode, ctx.name))


_MODULES = {nn.ReflectionPad1d: "reflect", nn.ReflectionPad2d: "reflect", nn.ReplicationPad1d: "replicate",
            nn.ReplicationPad2d: "replicate", nn.CircularPad1d: "circular", nn.CircularPad2d: "circular"}


def _lower_module(ctx) -> None:
    m = ctx.module
    lower_mode_pad(ctx, [int(p) for p in m.padding], next(v for c, v in _MODULES.items() if isinstance(m, c)))


FRONTENDS = [
    Frontend(
        name="nn.ReflectionPad1d, ReflectionPad2d, ReplicationPad1d, ReplicationPad2d, CircularPad1d, CircularPad2d",
        modules=tuple(_MODULES),
        lowers_to=("edge_pad",),
        doc="Padding of the time axis (1-D) or the height and width (2-D) of a quantized tensor or an accumulator "
            "with its own values: one edge_pad per padded axis, exact for any scale and zero point. Pads wider "
            "than PyTorch allows (reflect: each side smaller than the axis, circular: at most the axis), negative "
            "pads and float inputs are refused.",
        lower=_lower_module,
    ),
]
