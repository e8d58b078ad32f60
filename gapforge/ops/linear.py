"""linear: integer fully connected layer."""

from __future__ import annotations

import brevitas.nn as qnn

from gapforge.ops._base import Frontend, IROp
from gapforge.ops._layer import lower_weight_layer

IR_OP = IROp(
    name="linear",
    summary="Fully connected layer over the last axis.",
    semantics="acc[..., o] = bias[o] + sum_k w[o, k] * x[..., k] in int32.",
    inputs="one quant tensor (zero point 0, per-tensor scale), features on the last axis",
    params=("weight", "bias"),
    reference="linear",
)


def _lower_linear(ctx) -> None:
    shape = ctx.in_shape(0)
    lower_weight_layer(ctx, "linear", {}, channel_axis=len(shape) - 1)


FRONTENDS = [
    Frontend(
        name="brevitas.nn.QuantLinear",
        modules=(qnn.QuantLinear,),
        lowers_to=("requantize", "linear", "requantize"),
        doc="Same weight / bias / quantizer rules as QuantConv2d. Applies to the last axis; "
            "an output without output_quant is the int32 accumulator (e.g. the logits).",
        lower=_lower_linear,
    ),
]
