"""conv2d: integer 2-D convolution (incl. stride, padding, dilation, groups / depthwise)."""

from __future__ import annotations

import math

import brevitas.nn as qnn

import atomic_ops
from gapforge.lowering import pair
from gapforge.ops._base import PADDING4, POS_PAIR, Attr, Frontend, IROp, Tiling
from gapforge.ops._layer import lower_weight_layer
from gapforge.ops._shapes import ShapeError, inputs_of, rank, weight_layer, window_hw
from gapforge.plan import weight_acc_bound


def _sources(engine, step, inputs):
    a = step.attrs
    return [atomic_ops.get("conv2d")(inputs[0], engine.param(step, "weight"), engine.param(step, "bias"),
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
    """[N, C, H, W] with weight [O, C/groups, kh, kw] -> [N, O, OH, OW] (PyTorch's window formula)."""
    (x,) = inputs_of(inputs, 1)
    rank(x, 4, "input (NCHW)")
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
    inputs="one quant tensor (NCHW, zero point 0); per-channel input scales only for depthwise",
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


def _lower_conv(ctx) -> None:
    m = ctx.module
    if m.padding_mode != "zeros":
        ctx.fail(f"padding_mode='{m.padding_mode}' is not supported (only zeros)")
    kh, kw = pair(m.kernel_size)
    dh, dw = pair(m.dilation)
    if isinstance(m.padding, str):
        if m.padding == "valid":
            pads = [0, 0, 0, 0]
        else:  # 'same' (stride 1): PyTorch puts the extra padding at the bottom/right
            th, tw = dh * (kh - 1), dw * (kw - 1)
            pads = [th // 2, tw // 2, th - th // 2, tw - tw // 2]
    else:
        ph, pw = pair(m.padding)
        pads = [ph, pw, ph, pw]
    attrs = {"kernel_size": [kh, kw], "stride": pair(m.stride), "padding": pads,
             "dilation": [dh, dw], "groups": int(m.groups)}
    if len(ctx.in_shape(0)) != 4:
        ctx.fail(f"expects a 4-D NCHW input, got shape {ctx.in_shape(0)}")
    lower_weight_layer(ctx, "conv2d", attrs, channel_axis=1)


FRONTENDS = [
    Frontend(
        name="brevitas.nn.QuantConv2d",
        modules=(qnn.QuantConv2d,),
        lowers_to=("requantize", "conv2d", "requantize"),
        doc="Weights 1-8 bit, per-tensor or per-channel scale, zero point 0 (narrow range or not). "
            "Int32Bias gives an exact integer bias; a float bias (bias_quant=None) is kept as a "
            "per-channel real offset folded into the next requantize. Optional input_quant / "
            "output_quant become requantize ops. Any stride, zero padding (incl. 'same'), dilation, "
            "groups; the input must be quantized with zero point 0.",
        lower=_lower_conv,
    ),
]
