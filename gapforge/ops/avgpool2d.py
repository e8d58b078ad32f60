"""avgpool2d: window sums of integers; the division becomes part of the scale."""

from __future__ import annotations

import numpy as np
from brevitas.nn import QuantIdentity
from torch import nn

import atomic_ops
from gapforge.lowering import pair
from gapforge.ops._base import PADDING4, POS_PAIR, Attr, Frontend, IROp, Tiling
from gapforge.ops._shapes import on_map, pool_shapes
from gapforge.ops.maxpool2d import adaptive_window, expect_rank
from gapforge.plan import input_abs_max


def _sources(engine, step, inputs):
    a = step.attrs  # 1-D pooling: over the map of height 1 (on_map)
    return [on_map(atomic_ops.get("avgpool2d"), inputs[0], a["kernel_size"], a["stride"], a["padding"])]


def _acc_bound(net, step):
    kh, kw = step.attrs["kernel_size"]
    return np.asarray([kh * kw * input_abs_max(net, step)], dtype=np.int64)


def _call(cg):
    return cg.call("gf_avgpool2d", (cg.X[0], cg.T[0], f"&s_{cg.ident}", cg.rq_arg, cg.Y), shape=cg.window_shape())


def infer_shapes(inputs, attrs, params):
    """[N, C, H, W] -> [N, C, OH, OW] (PyTorch's window formula, floor mode); [N, C, T] -> [N, C, OT]."""
    return pool_shapes(inputs, attrs)


IR_OP = IROp(
    name="avgpool2d",
    summary="2-D average pooling (also adaptive and global average pooling, spatial mean).",
    semantics="acc = sum over the window of q (zero padding counted), in int32; the output scale is "
              "s_in / divisor, so the division is exact inside the following requantize (or in the scale of a "
              "linear layer reading the sums).",
    inputs="one quant tensor with zero point 0 (NCHW, or NCT for 1-D pooling: the map NC1T)",
    attrs={
        "kernel_size": Attr(POS_PAIR, "window height, width"),
        "stride": Attr(POS_PAIR, "vertical, horizontal stride"),
        "padding": Attr(PADDING4, "zero padding top, left, bottom, right"),
        "divisor": Attr({"type": "integer", "minimum": 1}, "divisor folded into the output scale"),
    },
    reference="avgpool2d",
    kernels=("gf_avgpool2d",),
    fusion="head",
    requantizes=True,
    acc_bound=_acc_bound,
    sources=_sources,
    call=_call,
    tiling=Tiling("conv", coupled=lambda step, net: True),
    infer_shapes=infer_shapes,
    symmetric_input=True,
)


def emit_avgpool(ctx, x, kernel, stride, padding, divisor, out_shape, base):
    """avgpool2d of ``x`` (NCHW, or (N, C, T) with a window [1, k]: the map of height 1); ``padding``
    [vertical, horizontal] on both sides."""
    if x.kind != "quant" or x.zero_point != 0:
        ctx.fail(f"average pooling of {x.described}" + (f" with zero point {x.zero_point}" if x.kind == "quant" else ""),
                 hint="quantize (zero point 0) before pooling, e.g. put the QuantReLU before the pool")
    if len(x.shape) != 4 and not (len(x.shape) == 3 and kernel[0] == stride[0] == 1 and padding[0] == 0):
        ctx.fail(f"expects a 4-D NCHW input, got shape {x.shape}")
    scale = [v / divisor for v in x.scale] if x.per_channel else x.scale / divisor
    out = ctx.new_tensor(base, "acc", out_shape, scale=scale, channel_axis=x.channel_axis)
    ph, pw = padding
    ctx.emit("avgpool2d", [x], [out], attrs={"kernel_size": list(kernel), "stride": list(stride),
                                              "padding": [ph, pw, ph, pw], "divisor": int(divisor)})
    return out


def _args(ctx) -> tuple:
    """(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override) of an AvgPool module or
    call (F.avg_pool1d / nn.AvgPool1d have no divisor_override)."""
    if ctx.node.kind == "module":
        m = ctx.module
        return (m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
                getattr(m, "divisor_override", None))
    k = ctx.arg(1, "kernel_size")
    return (k, ctx.arg(2, "stride") or k, ctx.arg(3, "padding", 0), bool(ctx.arg(4, "ceil_mode", False)),
            bool(ctx.arg(5, "count_include_pad", True)), ctx.arg(6, "divisor_override", None))


def _pool(ctx, k: list[int], s: list[int], p: list[int], ceil: bool, cip: bool, div) -> None:
    """Average pooling with window ``k``, stride ``s``, padding ``p`` (both sides) over the last two axes of
    the input (NCHW, or the map of height 1 of (N, C, T): ``k``, ``s``, ``p`` = [1, k], [1, s], [0, p])."""
    x = ctx.input_tensor(0)
    out_shape = ctx.out_shape(0)
    if (p != [0, 0]) and not cip and div is None:
        ctx.fail("count_include_pad=False with padding gives a different divisor per position",
                 hint="use count_include_pad=True (the default) or no padding")
    hw = ([1] if len(x.shape) == 3 else []) + list(x.shape[2:])
    floor_hw = [(n + 2 * pi - ki) // si + 1 for n, ki, si, pi in zip(hw, k, s, p)]
    if ceil and out_shape[2:] != floor_hw[-len(out_shape[2:]):]:
        ctx.fail("ceil_mode=True creates partial windows with a different divisor")
    ctx.bind(emit_avgpool(ctx, x, k, s, p, div or k[0] * k[1], out_shape, ctx.name))


def _lower_avgpool(ctx) -> None:
    k, s, p, ceil, cip, div = _args(ctx)
    expect_rank(ctx, 4)
    _pool(ctx, pair(k), pair(s if s is not None else k), pair(p), ceil, cip, div)


def _lower_avgpool1d(ctx) -> None:
    k, s, p, ceil, cip, _ = _args(ctx)
    expect_rank(ctx, 3)
    (k,), (s,), (p,) = (pair(v, 1) for v in (k, s if s is not None else k, p))
    _pool(ctx, [1, k], [1, s], [0, p], ceil, cip, None)


def _adaptive(ctx, rank: int) -> None:
    k = adaptive_window(ctx, rank)
    ctx.bind(emit_avgpool(ctx, ctx.input_tensor(0), k, k, [0, 0], k[0] * k[1], ctx.out_shape(0), ctx.name))


def _lower_adaptive(ctx) -> None:
    _adaptive(ctx, 4)


def _lower_adaptive1d(ctx) -> None:
    _adaptive(ctx, 3)


def _mean_over_axis(ctx, x, axis: int):
    """Mean over one axis: x viewed as [B, before, L, after], an L x 1 window sum (avgpool2d), the
    division in the scale; then the output shape (the requantize that follows divides exactly)."""
    from gapforge.ops.reshape import emit_reshape

    if x.per_channel:
        ctx.fail("mean over an axis of a tensor with per-channel scales", hint="use a per-tensor quantizer")
    shape = x.shape
    before, size, after = int(np.prod(shape[1:axis])), shape[axis], int(np.prod(shape[axis + 1:]))
    x4 = x if list(shape) == [shape[0], before, size, after] else emit_reshape(
        ctx, x, [shape[0], before, size, after], f"{ctx.name}.view")
    acc = emit_avgpool(ctx, x4, [size, 1], [size, 1], [0, 0], size, [shape[0], before, 1, after],
                       f"{ctx.name}.pool")
    mean = ctx.low.graph.activations[ctx.node.outputs[0]].value  # Brevitas' (float) mean
    ctx.record_value(acc, mean.reshape(acc.shape))
    out_shape = ctx.out_shape(0)
    if acc.shape == out_shape:
        return acc
    if ctx.consumers(0) and all(n.kind == "module" and isinstance(n.module, QuantIdentity) for n in ctx.consumers(0)):
        ctx.low.restore_shape[acc.name] = out_shape  # the quantizer fuses with the sum, then takes the shape
        return acc
    out = ctx.new_tensor(ctx.name, "acc", out_shape, scale=acc.scale, channel_axis=None)
    ctx.emit("reshape", [acc], [out], attrs={"shape": out_shape})
    return out


def _lower_mean(ctx) -> None:
    x = ctx.input_tensor(0)
    dims = ctx.arg(1, "dim")
    keep = bool(ctx.arg(2, "keepdim", False))
    nd = len(x.shape)
    dims = sorted(d % nd for d in (dims if isinstance(dims, (list, tuple)) else [dims])) if dims is not None else None
    if dims is not None and len(dims) == 1 and dims[0] != 0 and not (nd == 4 and dims == [2, 3]):
        ctx.bind(_mean_over_axis(ctx, x, dims[0]))  # e.g. the mean over tokens of [B, T, D]
        return
    if nd != 4 or dims != [2, 3]:
        ctx.fail(f"mean over dims {dims} of a {nd}-D tensor; only the spatial mean of NCHW (dims 2, 3) or the "
                 "mean over one axis (other than the batch axis) is supported")
    h, w = x.shape[2:]
    pooled_shape = x.shape[:2] + [1, 1]
    acc = emit_avgpool(ctx, x, [h, w], [h, w], [0, 0], h * w, pooled_shape,
                       ctx.name if keep else f"{ctx.name}.pool")
    if not keep:
        ctx.record_value(acc, ctx.low.graph.activations[ctx.node.outputs[0]].value.reshape(pooled_shape))
        out = ctx.new_tensor(ctx.name, "acc", ctx.out_shape(0), scale=acc.scale, channel_axis=acc.channel_axis)
        ctx.emit("reshape", [acc], [out], attrs={"shape": ctx.out_shape(0)})
        acc = out
    ctx.bind(acc)


FRONTENDS = [
    Frontend(
        name="torch.nn.AvgPool2d / F.avg_pool2d",
        modules=(nn.AvgPool2d,),
        functions=("avg_pool2d",),
        lowers_to=("avgpool2d",),
        doc="Integer window sum; the 1/(kh*kw) (or divisor_override) goes into the scale, so the "
            "requantize that must follow divides exactly (or a QuantLinear without input quantizer reads the "
            "flattened sums: the global average pool of a classifier head). Padding only with count_include_pad=True; "
            "ceil_mode only when it creates no partial window.",
        lower=_lower_avgpool,
    ),
    Frontend(
        name="torch.nn.AdaptiveAvgPool2d / F.adaptive_avg_pool2d",
        modules=(nn.AdaptiveAvgPool2d,),
        functions=("adaptive_avg_pool2d",),
        lowers_to=("avgpool2d",),
        doc="Lowered to avgpool2d when the output size divides the input size (output 1 = global "
            "average pooling).",
        lower=_lower_adaptive,
    ),
    Frontend(
        name="torch.nn.AvgPool1d / F.avg_pool1d",
        modules=(nn.AvgPool1d,),
        functions=("avg_pool1d",),
        lowers_to=("avgpool2d",),
        doc="1-D average pooling over (batch, channels, time) is avgpool2d over the map of height 1 (window "
            "[1, k]), as QuantConv1d is conv2d: the same conditions as AvgPool2d (the 1/k goes into the scale, the "
            "quantizer that follows divides exactly; padding only with count_include_pad=True; ceil_mode only "
            "when it creates no partial window).",
        lower=_lower_avgpool1d,
    ),
    Frontend(
        name="torch.nn.AdaptiveAvgPool1d / F.adaptive_avg_pool1d",
        modules=(nn.AdaptiveAvgPool1d,),
        functions=("adaptive_avg_pool1d",),
        lowers_to=("avgpool2d",),
        doc="Lowered to avgpool2d over the map of height 1 when the output size divides the input length "
            "(output 1 = the global average over time), the divisor in the scale as for AvgPool1d.",
        lower=_lower_adaptive1d,
    ),
    Frontend(
        name="Tensor.mean / torch.mean over (2, 3) or one axis",
        functions=("mean",),
        lowers_to=("avgpool2d", "reshape"),
        doc="Spatial mean of an NCHW tensor (global average pooling), or the mean over one axis other "
            "than batch (x.mean(dim=1) over the tokens of [B, T, D]: an L x 1 window sum of the tensor "
            "viewed as [B, before, L, after]); keepdim or not; per-tensor scales.",
        lower=_lower_mean,
    ),
]

