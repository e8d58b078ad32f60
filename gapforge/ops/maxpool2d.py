"""maxpool2d: max over windows, directly on the integers."""

from __future__ import annotations

from torch import nn

import atomic_ops
from gapforge.lowering import pair
from gapforge.ops._base import PADDING4, POS_PAIR, Attr, Frontend, IROp, Tiling
from gapforge.ops._shapes import pool_shapes


def _run(engine, step, inputs):
    a = step.attrs
    return atomic_ops.get("maxpool2d")(inputs[0], a["kernel_size"], a["stride"], a["padding"], a["ceil_mode"])



def _call(cg):
    return cg.call("gf_maxpool2d", (cg.X[0], cg.T[0], f"&s_{cg.ident}", cg.Y), shape=cg.window_shape())


def infer_shapes(inputs, attrs, params):
    """[N, C, H, W] -> [N, C, OH, OW] (PyTorch's window formula, ceil_mode as given)."""
    return pool_shapes(inputs, attrs, attrs["ceil_mode"])


IR_OP = IROp(
    name="maxpool2d",
    summary="2-D max pooling.",
    semantics="y = max over the window of q (padded positions are ignored, as PyTorch's -inf padding); "
              "exact on integers because the encoding is monotone (accumulator scales must be positive).",
    inputs="one quant tensor, or an acc tensor with positive scales (NCHW)",
    attrs={
        "kernel_size": Attr(POS_PAIR, "window height, width"),
        "stride": Attr(POS_PAIR, "vertical, horizontal stride"),
        "padding": Attr(PADDING4, "implicit -inf padding top, left, bottom, right"),
        "ceil_mode": Attr({"type": "boolean"}, "output size rounds up; partial windows at the end"),
    },
    reference="maxpool2d",
    kernels=("gf_maxpool2d",),
    run=_run,
    call=_call,
    tiling=Tiling("conv", coupled=lambda step, net: True),
    infer_shapes=infer_shapes,
)


def _lower_maxpool(ctx) -> None:
    if ctx.node.kind == "module":
        m = ctx.module
        k, s, p, d, ceil, ri = m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, m.return_indices
    else:
        k = ctx.arg(1, "kernel_size")
        s = ctx.arg(2, "stride") or k
        p = ctx.arg(3, "padding", 0)
        d = ctx.arg(4, "dilation", 1)
        ceil = bool(ctx.arg(5, "ceil_mode", False))
        ri = bool(ctx.arg(6, "return_indices", False))
    if ri:
        ctx.fail("return_indices=True is not supported")
    if pair(d) != [1, 1]:
        ctx.fail(f"dilation {d} is not supported for max pooling")
    x = ctx.input_tensor(0)
    if len(x.shape) != 4:
        ctx.fail(f"expects a 4-D NCHW input, got shape {x.shape}")
    if x.kind == "quant":
        out = ctx.new_tensor(ctx.name, "quant", ctx.out_shape(0), scale=x.scale, zero_point=x.zero_point,
                             bit_width=x.bit_width, signed=x.signed, narrow_range=x.narrow_range,
                             channel_axis=x.channel_axis)
    elif x.kind == "acc" and min(x.scale_list(x.shape[1])) > 0:
        out = ctx.new_tensor(ctx.name, "acc", ctx.out_shape(0), scale=x.scale, channel_axis=x.channel_axis,
                             offset=x.offset)
    else:
        ctx.fail(f"max pooling of {x.described}" + (" with negative scales (BatchNorm with negative gamma)"
                                                        if x.kind == "acc" else ""),
                 hint="quantize before pooling (put the QuantReLU/QuantIdentity before the MaxPool)")
    ph, pw = pair(p)
    attrs = {"kernel_size": pair(k), "stride": pair(s), "padding": [ph, pw, ph, pw], "ceil_mode": ceil}
    ctx.emit("maxpool2d", [x], [out], attrs=attrs)
    ctx.bind(out)


FRONTENDS = [
    Frontend(
        name="torch.nn.MaxPool2d / F.max_pool2d",
        modules=(nn.MaxPool2d,),
        functions=("max_pool2d",),
        lowers_to=("maxpool2d",),
        doc="Any kernel, stride, padding and ceil_mode; dilation 1; no return_indices. Works on a "
            "quantized tensor (scale unchanged) or on an accumulator before its quantizer.",
        lower=_lower_maxpool,
    ),
]
