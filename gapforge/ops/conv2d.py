"""conv2d: integer 2-D convolution (incl. stride, padding, dilation, groups / depthwise)."""

from __future__ import annotations

import math

import brevitas.nn as qnn

import atomic_ops
from atomic_ops.maxpool2d import pooled_size
from gapforge.lowering import pair
from gapforge.ops._base import PADDING4, POS_PAIR, Attr, Frontend, IROp, Tiling
from gapforge.ops._layer import lower_weight_layer
from gapforge.ops._shapes import ShapeError, inputs_of, on_map, rank, unit_height_map, weight_layer, window_hw
from gapforge.ops.edge_pad import emit_edge_pads
from gapforge.ops.requantize import quantize_to
from gapforge.plan import weight_acc_bound


def _sources(engine, step, inputs):
    a = step.attrs  # conv1d: conv2d over the map of height 1 (on_map)
    return [on_map(atomic_ops.get("conv2d"), inputs[0], engine.param(step, "weight"), engine.param(step, "bias"),
                   a["stride"], a["padding"], a["dilation"], a["groups"])]


def choose_kernel(a: dict, c: int, o: int) -> str:
    """Fast path by geometry; falls back to the general blocked kernel."""
    kh, kw = a["kernel_size"]
    if a["dilation"] == [1, 1] and a["groups"] == c == o:
        return "gf_dwconv2d"
    if a["groups"] != 1 or a["dilation"] != [1, 1]:
        return "gf_conv2d"
    if (kh, kw) == (3, 3) and a["stride"] == [1, 1]:
        return "gf_conv2d_3x3"
    if (kh, kw) == (1, 1) and a["padding"] == [0, 0, 0, 0]:
        return "gf_conv2d_1x1"
    return "gf_conv2d"


def _call(cg):
    shape = cg.window_shape()
    return cg.call(choose_kernel(cg.attrs, shape[0], shape[3]),
                   (cg.X[0], cg.T[0], cg.weights(), cg.bias(), f"&s_{cg.ident}", cg.rq_arg, cg.Y), shape=shape)


def _macs(net, step) -> int:
    op = net.op_by_name(step.main_op)
    return net.tensors[step.output].numel * math.prod(op.params["weight"].shape[1:])


def _depthwise(step, net) -> bool:
    c = net.tensors[step.inputs[0]].shape[1]
    return step.attrs["groups"] == c == net.tensors[step.output].shape[1]


def infer_shapes(inputs, attrs, params):
    """[N, C, H, W] with weight [O, C/groups, kh, kw] -> [N, O, OH, OW] (PyTorch's window formula).

    A 1-D input [N, C, T] is the map [N, C, 1, T] (kernel_size [1, k], no vertical stride, dilation or
    padding) and gives [N, O, OT]."""
    (x,) = inputs_of(inputs, 1)
    if len(x) == 3:
        (y,) = infer_shapes([unit_height_map(x, attrs)], attrs, params)
        return [y[:2] + y[3:]]
    rank(x, 4, "input (NCHW, or NCT for a 1-D convolution)")
    out_ch, cg, kh, kw = weight_layer(params, 4, "[out, in/groups, kh, kw]")
    groups = attrs["groups"]
    if [kh, kw] != list(attrs["kernel_size"]):
        raise ShapeError(f"weight shape {params['weight']} does not match kernel_size {attrs['kernel_size']}",
                         "params.weight.shape")
    if cg * groups != x[1]:
        raise ShapeError(f"weight shape {params['weight']} with groups {groups} takes {cg * groups} input "
                         f"channels, the input {x} has {x[1]}", "params.weight.shape")
    if out_ch % groups:
        raise ShapeError(f"{out_ch} output channels cannot be split into {groups} groups", "attrs.groups")
    return [[x[0], out_ch] + window_hw(x, [kh, kw], attrs["stride"], attrs["padding"], attrs["dilation"])]


IR_OP = IROp(
    name="conv2d",
    summary="2-D convolution of int8/uint8 (1-8 bit) activations with int8 (1-8 bit) weights.",
    semantics="acc[n,o,y,x] = bias[o] + sum_{c,i,j} w[o,c,i,j] * x[n, g(o)*Cg + c, y*sy - pt + i*dy, "
              "x*sx - pl + j*dx] with zero padding, in int32 (the extractor checks the worst-case bound).",
    inputs="one quant tensor (NCHW, or NCT for conv1d: the map NC1T; zero point 0); per-channel input scales "
           "only for depthwise",
    attrs={
        "kernel_size": Attr(POS_PAIR, "kernel height, width"),
        "stride": Attr(POS_PAIR, "vertical, horizontal stride"),
        "padding": Attr(PADDING4, "zero padding top, left, bottom, right"),
        "dilation": Attr(POS_PAIR, "vertical, horizontal dilation"),
        "groups": Attr({"type": "integer", "minimum": 1}, "channel groups (groups == C_in: depthwise)"),
    },
    params=("weight", "bias"),
    reference="conv2d",
    kernels=("gf_conv2d", "gf_conv2d_3x3", "gf_conv2d_1x1", "gf_dwconv2d"),
    kernels_per_input_type=True,
    fusion="head",
    requantizes=True,
    acc_bound=weight_acc_bound,
    sources=_sources,
    call=_call,
    tiling=Tiling("conv", coupled=_depthwise),
    macs=_macs,
    infer_shapes=infer_shapes,
    symmetric_input=True,
)


def _same_pads(kernel: int, dilation: int) -> tuple[int, int]:
    """padding='same' (stride 1): PyTorch puts the extra padding at the bottom/right."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def _folded_pads(ctx) -> list[int]:
    """Zero padding of an F.pad / ZeroPad / ConstantPad(0) right before this layer (gapforge/ops/zeropad.py)."""
    return ctx.low.pending_pad.get(ctx.node.inputs[0], [0, 0, 0, 0])


def _mode_padded_input(ctx):
    """padding_mode 'reflect' / 'replicate' / 'circular': PyTorch pads the layer's quantized input with
    F.pad(mode) by ``_reversed_padding_repeated_twice`` and convolves without padding; so here: the input
    quantizer, edge_pad ops (gapforge/ops/edge_pad.py), then the convolution with padding 0. None for zeros."""
    m = ctx.module
    if m.padding_mode == "zeros":
        return None
    if any(_folded_pads(ctx)):
        ctx.fail(f"zero padding before a convolution with padding_mode='{m.padding_mode}' is not supported",
                 hint="fold it into the layer: one padding mode per layer")
    x = ctx.input_tensor(0)
    if m.input_quant.is_quant_enabled:
        x = quantize_to(ctx, x, m.input_quant, f"{ctx.name}.input_quant")
    if x.kind not in ("quant", "acc"):
        return x  # refused by emit_weight_layer, with the hint for an unquantized input
    return emit_edge_pads(ctx, x, [int(p) for p in m._reversed_padding_repeated_twice], m.padding_mode,
                          f"{ctx.name}.pad")


def _lower_conv(ctx) -> None:
    m = ctx.module
    if len(ctx.in_shape(0)) != 4:
        ctx.fail(f"expects a 4-D NCHW input, got shape {ctx.in_shape(0)}")
    padded = _mode_padded_input(ctx)
    kh, kw = pair(m.kernel_size)
    dh, dw = pair(m.dilation)
    if isinstance(m.padding, str):
        if m.padding == "valid":
            pads = [0, 0, 0, 0]
        else:
            (pt, pb), (pl, pr) = _same_pads(kh, dh), _same_pads(kw, dw)
            pads = [pt, pl, pb, pr]
    else:
        ph, pw = pair(m.padding)
        pads = [ph, pw, ph, pw]
    pads = [p + q for p, q in zip(pads, _folded_pads(ctx))] if padded is None else [0, 0, 0, 0]
    attrs = {"kernel_size": [kh, kw], "stride": pair(m.stride), "padding": pads,
             "dilation": [dh, dw], "groups": int(m.groups)}
    lower_weight_layer(ctx, "conv2d", attrs, channel_axis=1, x=padded)


def _last_axis_slice(index, ndim: int) -> tuple[int | None, int | None] | None:
    """(start, stop) when ``index`` slices only the last of ``ndim`` axes with step 1, else None."""
    items = list(index) if isinstance(index, tuple) else [index]
    if items and items[0] is Ellipsis:
        items = [slice(None)] * (ndim - len(items) + 1) + items[1:]
    if len(items) != ndim or any(not isinstance(i, slice) for i in items):
        return None
    if any(i != slice(None) for i in items[:-1]) or items[-1].step not in (None, 1):
        return None
    last = items[-1]
    if not all(v is None or isinstance(v, int) for v in (last.start, last.stop)):
        return None
    return last.start, last.stop


def _slice_fold(ctx, width: int, span: int, stride: int, pl: int, pr: int):
    """Mamba's causal convolution, conv1d(padding=k-1)(x)[..., :T]: the slice becomes the padding.

    Keeping outputs [a, b) of a convolution with left padding pl is the convolution with left padding
    pl - a*stride and the right padding that gives b - a outputs. Returns (getitem node, pl, pr, length)
    or None when the output is not sliced that way (or the slice is not expressible as padding).
    """
    users = ctx.consumers(0)
    if len(users) != 1 or users[0].type_name != "getitem" or len(users[0].args) != 2:
        return None
    node = users[0]
    full = pooled_size(width, span, stride, pl, pr, False)
    bounds = _last_axis_slice(node.args[1], 3)
    if bounds is None:
        return None
    a, b, _ = slice(*bounds).indices(full)
    if b <= a:
        return None
    pl2 = pl - a * stride
    pr2 = (b - a - 1) * stride + span - width - pl2
    if pl2 < 0 or pr2 < 0 or pooled_size(width, span, stride, pl2, pr2, False) != b - a:
        return None
    return node, pl2, pr2, b - a


def _lower_conv1d(ctx) -> None:
    m = ctx.module
    shape = ctx.in_shape(0)
    if len(shape) != 3:
        ctx.fail(f"expects a 3-D (batch, channels, time) input, got shape {shape}")
    padded = _mode_padded_input(ctx)
    (k,), (s,), (d,) = pair(m.kernel_size, 1), pair(m.stride, 1), pair(m.dilation, 1)
    if padded is not None:
        pl = pr = 0
    elif isinstance(m.padding, str):
        pl, pr = (0, 0) if m.padding == "valid" else _same_pads(k, d)
    else:
        pl = pr = pair(m.padding, 1)[0]
    extra = _folded_pads(ctx)
    pl, pr = pl + extra[1], pr + extra[3]
    out_shape = ctx.out_shape(0)
    # a slice of the output becomes zero padding; with padding_mode 'reflect' (explicit padding) it stays a slice
    folded = _slice_fold(ctx, shape[2], d * (k - 1) + 1, s, pl, pr) if padded is None else None
    if folded is not None:
        node, pl, pr, length = folded
        out_shape = out_shape[:2] + [length]
    attrs = {"kernel_size": [1, k], "stride": [1, s], "padding": [0, pl, 0, pr], "dilation": [1, d],
             "groups": int(m.groups)}
    y = lower_weight_layer(ctx, "conv2d", attrs, channel_axis=1, unit_height=True, out_shape=out_shape, x=padded)
    if folded is not None:
        ctx.absorb(folded[0], y)


FRONTENDS = [
    Frontend(
        name="brevitas.nn.QuantConv2d",
        modules=(qnn.QuantConv2d,),
        lowers_to=("requantize", "edge_pad", "conv2d", "requantize"),
        doc="Weights 1-8 bit, per-tensor or per-channel scale, zero point 0 (narrow range or not). "
            "Int32Bias gives an exact integer bias; a float bias (bias_quant=None) is kept as a "
            "per-channel real offset folded into the next requantize. Optional input_quant / "
            "output_quant become requantize ops. Any stride, zero padding (incl. 'same'), dilation, "
            "groups; the input must be quantized with zero point 0. padding_mode 'reflect', 'replicate' or "
            "'circular' pads the quantized input as PyTorch does (F.pad by _reversed_padding_repeated_twice): "
            "edge_pad ops, then the conv2d with padding 0.",
        lower=_lower_conv,
    ),
    Frontend(
        name="brevitas.nn.QuantConv1d",
        modules=(qnn.QuantConv1d,),
        lowers_to=("requantize", "edge_pad", "conv2d", "requantize"),
        doc="A 1-D convolution over (batch, channels, time) is conv2d over the map of height 1: the same "
            "weights, bias and quantization as QuantConv2d; any kernel, stride, dilation, groups (incl. "
            "depthwise), zero padding (int or 'same'/'valid'), padding_mode 'reflect' / 'replicate' / 'circular' "
            "(an edge_pad of the quantized input, then padding 0). Causal padding as users write it is exact: "
            "F.pad(x, (k-1, 0)) / nn.ConstantPad1d((k-1, 0), 0.0) before the layer, or Mamba's "
            "conv1d(padding=k-1)(x)[..., :T] (the slice becomes the padding).",
        lower=_lower_conv1d,
    ),
]
