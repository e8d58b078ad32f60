"""trunc_avgpool2d: Brevitas' TruncAvgPool2d, an average whose division is a shift."""

from __future__ import annotations

import math

import brevitas.nn as qnn
import numpy as np

import atomic_ops
from gapforge.brevitas_quant import const_bit_width
from gapforge.lowering import pair
from gapforge.ops._base import PADDING4, POS_PAIR, Attr, Frontend, IROp, Tiling
from gapforge.ops._shapes import pool_shapes


def _run(engine, step, inputs):
    a = step.attrs
    lo, hi = engine.net.tensors[step.output].qrange()
    return atomic_ops.get("trunc_avgpool2d")(inputs[0], a["kernel_size"], a["stride"], a["padding"],
                                             a["shift"], a["rounding"], lo, hi)


def _exact(engine, step, inputs):
    a = step.attrs
    acc = atomic_ops.get("avgpool2d")(inputs[0], a["kernel_size"], a["stride"], a["padding"])
    return acc.astype(np.float64) / 2.0 ** a["shift"]


def _call(cg):
    a = cg.attrs
    lo, hi = cg.out_t.qrange()
    return cg.call("gf_trunc_avgpool2d", (cg.X[0], cg.T[0], f"&s_{cg.ident}", str(a["shift"]),
                                          "1" if a["rounding"] == "floor" else "0", str(lo), str(hi), cg.Y),
                   shape=cg.window_shape())


def infer_shapes(inputs, attrs, params):
    """[N, C, H, W] -> [N, C, OH, OW] (PyTorch's window formula, floor mode)."""
    return pool_shapes(inputs, attrs)


IR_OP = IROp(
    name="trunc_avgpool2d",
    summary="Average pooling by window sum and power-of-two shift (Brevitas TruncAvgPool2d).",
    semantics="sum = window sum in int32; y = clamp(rne(sum / 2^shift)) (rounding 'half_even') or "
              "clamp(floor(sum / 2^shift)) (rounding 'floor'); a negative shift multiplies. Output scale "
              "s_in * 2^shift / (kh*kw).",
    inputs="one quant tensor with zero point 0 (NCHW)",
    attrs={
        "kernel_size": Attr(POS_PAIR, "window height, width"),
        "stride": Attr(POS_PAIR, "vertical, horizontal stride"),
        "padding": Attr(PADDING4, "zero padding top, left, bottom, right"),
        "shift": Attr({"type": "integer"}, "right shift: ceil(log2((2^bw_in - 1) * kh*kw)) - bw_out"),
        "rounding": Attr({"enum": ["half_even", "floor"]}, "rounding of the shift"),
    },
    reference="trunc_avgpool2d",
    kernels=("gf_trunc_avgpool2d",),
    run=_run,
    exact=_exact,
    call=_call,
    tiling=Tiling("conv", coupled=lambda step, net: True),
    infer_shapes=infer_shapes,
    symmetric_input=True,
)


def _rounding(module, ctx) -> str:
    f2i = None
    for sub in module.trunc_quant.modules():
        if hasattr(sub, "float_to_int_impl"):
            f2i = type(sub.float_to_int_impl).__name__
            break
    if f2i == "RoundSte":
        return "half_even"
    if f2i == "FloorSte":
        return "floor"
    ctx.fail(f"rounding implementation {f2i} is not supported (only ROUND and FLOOR)")


def _lower(ctx) -> None:
    m = ctx.module
    x = ctx.input_tensor(0)
    if x.kind != "quant" or x.zero_point != 0:
        ctx.fail(f"TruncAvgPool2d input must be a quantized tensor with zero point 0, got {x.described}",
                 hint="set return_quant_tensor=True on the quantizer before it")
    if not m.trunc_quant.is_quant_enabled:
        ctx.fail("TruncAvgPool2d without trunc_quant is a float average", hint="use trunc_quant=RoundTo8bit")
    if len(x.shape) != 4:
        ctx.fail(f"expects a 4-D NCHW input, got shape {x.shape}")
    out_shape = ctx.out_shape(0)
    if isinstance(m, qnn.TruncAdaptiveAvgPool2d):
        k, s = m.compute_kernel_size_stride(x.shape[2:], out_shape[2:])
        if any(i % o for i, o in zip(x.shape[2:], out_shape[2:])):
            ctx.fail("adaptive pooling with unequal windows")
        p = [0, 0]
        k, s = list(k), list(s)
    else:
        k, s, p = pair(m.kernel_size), pair(m.stride or m.kernel_size), pair(getattr(m, "padding", 0))
        if m.divisor_override is not None:
            ctx.fail("divisor_override is not supported with TruncAvgPool2d")
        if m.ceil_mode:
            ctx.fail("ceil_mode=True is not supported with TruncAvgPool2d")
    area = k[0] * k[1]
    out_bw = const_bit_width(m.trunc_quant, "trunc_quant")
    acc_bw = math.ceil(math.log2((2 ** x.bit_width - 1) * area))
    shift = acc_bw - out_bw
    scale_mul = 2.0**shift / area
    scale = [v * scale_mul for v in x.scale] if x.per_channel else x.scale * scale_mul
    out = ctx.new_tensor(ctx.name, "quant", out_shape, scale=scale, zero_point=0, bit_width=out_bw,
                         signed=x.signed, narrow_range=False, channel_axis=x.channel_axis)
    meta = ctx.observed(ctx.node.outputs[0])
    if meta is not None:
        theirs = [float(v) for v in meta.scale.double().reshape(-1)]
        ours = out.scale_list(out_shape[1]) if len(theirs) > 1 else [out.scale_list(1)[0]]
        if int(round(meta.bit_width)) != out_bw or any(abs(a - b) > 1e-6 * abs(b) for a, b in zip(theirs, ours)):
            ctx.fail(f"derived shift {shift} does not reproduce Brevitas' output scale/bit width")
    ctx.emit("trunc_avgpool2d", [x], [out], attrs={
        "kernel_size": k, "stride": s, "padding": [p[0], p[1], p[0], p[1]], "shift": shift,
        "rounding": _rounding(m, ctx)})
    ctx.bind(out)


FRONTENDS = [
    Frontend(
        name="brevitas.nn.TruncAvgPool2d / TruncAdaptiveAvgPool2d",
        modules=(qnn.TruncAvgPool2d, qnn.TruncAdaptiveAvgPool2d),
        lowers_to=("trunc_avgpool2d",),
        doc="RoundTo8bit (round half to even) or TruncTo8bit (floor) truncation to any output bit "
            "width; the shift is derived from the input bit width exactly as Brevitas does and "
            "checked against the captured output scale. Input: quantized, zero point 0.",
        lower=_lower,
    ),
]
