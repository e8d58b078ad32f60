"""Zero padding before a convolution (F.pad, nn.ZeroPad1d/2d, nn.ConstantPad1d/2d with value 0).

No IR op of its own: padding with real zero right before a QuantConv1d / QuantConv2d is that
convolution with more zero padding (asymmetric allowed, as conv2d's padding is [top, left, bottom,
right]). It is exact because the convolution's input has zero point 0 (the convolution requires it,
after its own input quantizer if it has one), so the real zero the user pads with is the integer code
0 the kernels pad with. The padded activation is bound to the unpadded tensor and the pads wait in
``Lowering.pending_pad`` for the convolutions that consume it (gapforge/ops/conv2d.py).

F.pad with mode 'reflect', 'replicate' or 'circular' pads with the tensor's own values: that is the
edge_pad op (gapforge/ops/edge_pad.py), which goes anywhere.

Refused, with a hint: non-zero values, negative pads (cropping), padding of the batch or channel axes,
and zero padding whose result goes anywhere but into convolutions.
"""

from __future__ import annotations

import brevitas.nn as qnn
from torch import nn

from gapforge.ops._base import Frontend
from gapforge.ops.edge_pad import lower_mode_pad

_CONVS = (qnn.QuantConv1d, qnn.QuantConv2d)
_HINT = "pad with zeros right before a QuantConv1d/QuantConv2d, or use the layer's padding argument"


def _spec(ctx) -> tuple[list[int], str, float]:
    if ctx.node.kind == "module":
        m = ctx.module
        return [int(p) for p in m.padding], "constant", float(m.value)
    pad = ctx.arg(1, "pad")
    mode = ctx.arg(2, "mode", "constant")
    value = ctx.arg(3, "value", None)
    return [int(p) for p in pad], mode, 0.0 if value is None else float(value)


def _is_pad(node) -> bool:
    """A zero padding (whose pads add up with the ones before it); F.pad in another mode is an edge_pad."""
    if isinstance(node.module, (nn.ConstantPad1d, nn.ConstantPad2d)):
        return True
    if node.kind != "function" or node.type_name != "pad":
        return False
    mode = node.args[2] if len(node.args) > 2 else node.kwargs.get("mode", "constant")
    return mode == "constant"


def _not_into_convs(graph, users) -> list:
    """The users that are neither a convolution nor a pad whose own users all are (pads of pads add up)."""
    bad = []
    for u in users:
        if isinstance(u.module, _CONVS):
            continue
        nxt = graph.consumers(u.outputs[0]) if _is_pad(u) and u.outputs else []
        if not nxt:
            bad.append(u)
        else:
            bad.extend(_not_into_convs(graph, nxt))
    return bad


def _lower_pad(ctx) -> None:
    pad, mode, value = _spec(ctx)
    if mode != "constant":
        lower_mode_pad(ctx, pad, mode)
        return
    if value != 0.0:
        ctx.fail(f"padding with the value {value:g} is not supported (only zeros, which a convolution pads with)",
                 hint=_HINT)
    if any(p < 0 for p in pad):
        ctx.fail(f"negative padding {pad} (cropping) is not supported", hint="slice the input in the data instead")
    shape = ctx.in_shape(0)
    if len(pad) % 2 or len(pad) > 4 or len(shape) - len(pad) // 2 < 2:
        ctx.fail(f"padding {pad} of a {len(shape)}-D tensor pads more than its spatial axes",
                 hint="pad only the time axis (1-D) or the height and width (2-D)")
    if len(pad) == 4 and len(shape) != 4:
        ctx.fail(f"2-D padding {pad} of a {len(shape)}-D tensor is not supported", hint=_HINT)
    left, right = pad[0], pad[1]
    top, bottom = (pad[2], pad[3]) if len(pad) == 4 else (0, 0)
    users = ctx.consumers(0)
    bad = _not_into_convs(ctx.low.graph, users)
    if bad or not users:
        what = bad[0].describe() if bad else "nothing"
        ctx.fail(f"zero padding is supported only as the input of a convolution; its result goes to {what}",
                 hint=_HINT)
    x = ctx.input_tensor(0)
    before = ctx.low.pending_pad.get(ctx.node.inputs[0], [0, 0, 0, 0])
    ctx.low.pending_pad[ctx.node.outputs[0]] = [a + b for a, b in zip(before, [top, left, bottom, right])]
    ctx.bind_all(x)


FRONTENDS = [
    Frontend(
        name="torch.nn.functional.pad / nn.ZeroPad1d, ZeroPad2d, ConstantPad1d, ConstantPad2d",
        modules=(nn.ConstantPad1d, nn.ConstantPad2d),  # ZeroPad1d/2d are their subclasses
        functions=("pad",),
        lowers_to=("edge_pad",),
        doc="Zero padding (mode 'constant', value 0; asymmetric, e.g. causal (k-1, 0)) whose result goes only "
            "into QuantConv1d/QuantConv2d layers: it becomes their zero padding, exact because their input has "
            "zero point 0. Modes 'reflect', 'replicate' and 'circular' pad with the tensor's own values: one "
            "edge_pad per padded axis (as nn.ReflectionPad2d), wherever the result goes. Non-zero values and "
            "cropping are refused.",
        lower=_lower_pad,
    ),
]
