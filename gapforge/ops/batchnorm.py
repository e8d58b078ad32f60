"""BatchNorm folding: a BatchNorm right after a quantized conv/linear disappears into it.

With the accumulator ``real = sigma[c] * acc + beta[c]`` and eval-mode BatchNorm
``y = a[c] * (real - mean[c]) + bias[c]``, ``a = gamma / sqrt(var + eps)``, the folded
accumulator is ``sigma'[c] = a[c] * sigma[c]`` and ``beta'[c] = a[c] * (beta[c] - mean[c]) + bias[c]``
(float64). Integer weights are untouched, so folding adds no rounding of its own; the
requantize that follows absorbs sigma' and beta' into its multiplier and 64-bit offset.
A negative ``gamma`` gives a negative accumulator scale for that channel; weights stay exactly
Brevitas' integers (the requantize multiplier carries the sign).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from gapforge.ops._base import Frontend


def _lower_batchnorm(ctx) -> None:
    m = ctx.module
    x = ctx.input_tensor(0)
    prod = ctx.producer_op(x)
    if x.kind != "acc" or prod is None or prod.type not in ("conv2d", "linear"):
        ctx.fail("BatchNorm can only be folded into the QuantConv2d/QuantLinear directly before it "
                 f"(its input here is {x.described} from {prod.type if prod else 'nothing'})",
                 hint="place BatchNorm between a quantized conv/linear (without output_quant) and its activation")
    users = ctx.low.graph.consumers(ctx.node.inputs[0])
    if len(users) != 1:
        ctx.fail("the conv/linear output feeding this BatchNorm is also used elsewhere, so it cannot be folded")
    if not m.track_running_stats or m.running_mean is None:
        ctx.fail("BatchNorm without running statistics uses batch statistics even in eval mode",
                 hint="construct it with track_running_stats=True")
    channels = x.shape[x.channel_axis if x.channel_axis is not None else 1]
    if m.num_features != channels:
        ctx.fail(f"BatchNorm has {m.num_features} features but the accumulator has {channels} channels")
    mean = m.running_mean.detach().double().numpy()
    var = m.running_var.detach().double().numpy()
    gamma = m.weight.detach().double().numpy() if m.weight is not None else np.ones_like(mean)
    beta = m.bias.detach().double().numpy() if m.bias is not None else np.zeros_like(mean)
    a = gamma / np.sqrt(var + float(m.eps))
    sigma = np.asarray(x.scale_list(channels), dtype=np.float64)
    off = np.asarray(x.offset if x.offset is not None else [0.0] * channels, dtype=np.float64)
    new_sigma = sigma * a
    new_off = a * (off - mean) + beta
    x.scale = [float(v) for v in new_sigma]
    x.offset = [float(v) for v in new_off]
    x.channel_axis = 1 if prod.type == "conv2d" else len(x.shape) - 1
    prod.folded.append(ctx.node.path)
    ctx.bind(x)


FRONTENDS = [
    Frontend(
        name="torch.nn.BatchNorm2d / BatchNorm1d",
        modules=(nn.BatchNorm2d, nn.BatchNorm1d),
        lowers_to=(),
        doc="Eval-mode BatchNorm directly after a QuantConv2d/QuantLinear (without output_quant) is "
            "folded into that layer's accumulator scale and offset (see the integer contract). "
            "Anywhere else it is refused.",
        lower=_lower_batchnorm,
    ),
]
