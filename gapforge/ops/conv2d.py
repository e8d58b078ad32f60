"""conv2d: integer 2-D convolution (incl. stride, padding, dilation, groups / depthwise)."""

from __future__ import annotations

import brevitas.nn as qnn

from gapforge.lowering import pair
from gapforge.ops._base import PADDING4, POS_PAIR, Attr, Frontend, IROp
from gapforge.ops._layer import lower_weight_layer
from gapforge.ops._shapes import ShapeError, inputs_of, rank, weight_layer, window_hw


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
    infer_shapes=infer_shapes,
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
