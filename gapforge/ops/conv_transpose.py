"""QuantConvTranspose1d / QuantConvTranspose2d, lowered to one conv2d of their stacked phases.

No IR op of its own. A stride-s transposed convolution is, per output phase r (the output positions
y = s*u + r), an ordinary stride-1 convolution of the input with the taps of that phase (docs/
integer_contract.md, "How transposed convolution lowers"). Along one axis, with kernel k, stride s and
padding p, output y of phase r = y mod s, u = y div s, sums the taps i = r + p + s*d over the inputs
m = u - d (0 <= i < k, 0 <= m < L). As a correlation with left zero padding PL, z[u] = sum_j x[u + j - PL]
* K_r[j], tap j of phase r is K_r[j] = w[r + p + s*(D - j)] with D = floor((k - 1 - p) / s), PL = D
(when D < 0: PL = 0 and -D leading zero taps). The s^2 phases (s for 1-D) are the output channels of ONE
conv2d (channel order (group, phase_h, phase_w, channel of the group); the module's per-channel scales,
bias and requantization replicated per phase), and its output is interleaved by depth_to_space (views
and one permute, gapforge/ops/pixel_shuffle.py; two for a 2-D one with groups > 1),
then cut to the output (a slice) when the phases' length times s exceeds it. The phases may also start
e < s positions before the output (padding p - e, the first e positions cut): of the s alignments the
lowering takes the one with the fewest taps (k=4 s=2 p=1: 2 taps a phase from e=1, not 3 from e=0).

Each output element's accumulator is the same integer sum as Brevitas' (the added terms are products
with zero taps or with the zero padding), so the layer is exact as any convolution is. The output
length is the captured one, so output_padding and forward(x, output_size=...) need no special case.
The weight of a transposed convolution is [C_in, C_out / groups, kh, kw]; Brevitas' per-channel weight
scale is along its axis 1 (the output channels; groups = 1 only: Brevitas 0.13.4 cannot build a
per-channel scale of a grouped transposed convolution).
"""

from __future__ import annotations

from dataclasses import dataclass

import brevitas.nn as qnn
import numpy as np

from gapforge.lowering import pair
from gapforge.ops._base import Frontend
from gapforge.ops._layer import _cross_check_acc, emit_weight_layer
from gapforge.ops.pixel_shuffle import depth_to_space
from gapforge.ops.requantize import quantize_to
from gapforge.ops.slice import emit_slice


@dataclass(frozen=True)
class AxisPhases:
    """One spatial axis of a transposed convolution as the correlation of its phases."""

    stride: int
    taps: list[list[int]]  # taps[r][j]: the kernel index of tap j of phase r, or -1 (a zero tap)
    pad_lo: int
    pad_hi: int
    length: int  # the conv output length (per phase)
    start: int  # the first interleaved position kept (0 <= start < stride)
    out: int  # the transposed convolution's output length (start + out <= stride * length)


def _phases(k: int, s: int, p: int, length: int, out: int, start: int) -> AxisPhases:
    """The phases of positions start, start + 1, ... of the axis (padding p - start, output out + start)."""
    p, full = p - start, out + start
    d_max = (k - 1 - p) // s
    lead = max(0, -d_max)
    placed = {}  # (phase, j) -> tap index
    for r in range(s):
        for i in range(k):
            if (i - r - p) % s == 0:
                placed[(r, d_max - (i - r - p) // s + lead)] = i
    width = max(j for _, j in placed) + 1
    taps = [[placed.get((r, j), -1) for j in range(width)] for r in range(s)]
    pad_lo = max(d_max, 0)
    pad_hi = max(0, -(-full // s) + width - 1 - length - pad_lo)
    return AxisPhases(s, taps, pad_lo, pad_hi, length + pad_lo + pad_hi - width + 1, start, out)


def axis_phases(k: int, s: int, p: int, length: int, out: int) -> AxisPhases:
    """The phases of kernel ``k``, stride ``s``, padding ``p`` over an input of ``length``, giving ``out``:
    of the alignments of the phases on the output (the first ``start`` interleaved positions then cut),
    the one with the fewest taps, and among those the one without a cut (k=4 s=2 p=1: 2 taps a phase,
    from position 1, rather than 3 taps, half of them zero)."""
    return min((_phases(k, s, p, length, out, e) for e in range(s)), key=lambda a: (len(a.taps[0]), a.start))


@dataclass(frozen=True)
class Polyphase:
    """The stacked phases of a transposed convolution as the channels of one conv2d (the ``stack`` of
    gapforge/ops/_layer.emit_weight_layer)."""

    channels: int  # the module's output channels
    groups: int
    h: AxisPhases
    w: AxisPhases

    @property
    def phases(self) -> int:
        return self.h.stride * self.w.stride

    def weight(self, w: np.ndarray) -> np.ndarray:
        """[C_in, O/g, kh, kw] -> [g * phases * O/g, C_in/g, Th, Tw]; output channel ((g, rh, rw), o)."""
        cin, og = w.shape[:2]
        g, cg = self.groups, cin // self.groups
        th, tw = len(self.h.taps[0]), len(self.w.taps[0])
        out = np.zeros((g, self.h.stride, self.w.stride, og, cg, th, tw), dtype=w.dtype)
        wg = w.reshape(g, cg, og, *w.shape[2:])
        for rh, row_h in enumerate(self.h.taps):
            for rw, row_w in enumerate(self.w.taps):
                for jh, ih in enumerate(row_h):
                    for jw, iw in enumerate(row_w):
                        if ih >= 0 and iw >= 0:
                            out[:, rh, rw, :, :, jh, jw] = wg[:, :, :, ih, iw].transpose(0, 2, 1)
        return out.reshape(g * self.phases * og, cg, th, tw)

    def per_channel(self, values: list) -> list:
        """A vector over the module's channels -> over the conv2d's (replicated per phase)."""
        og = self.channels // self.groups
        return [values[gi * og + o] for gi in range(self.groups) for _ in range(self.phases) for o in range(og)]

    def module_view(self, values: list) -> list:
        """A vector over the conv2d's channels -> over the module's (phase 0)."""
        og = self.channels // self.groups
        return [values[gi * self.phases * og + o] for gi in range(self.groups) for o in range(og)]


def plan(m, in_shape: list[int], out_shape: list[int]) -> tuple[Polyphase, dict, list[int]]:
    """(the stack, the conv2d's attrs, its output shape) of transposed convolution ``m`` on ``in_shape``."""
    nd = len(in_shape) - 2
    ks, ss, ps = pair(m.kernel_size, nd), pair(m.stride, nd), pair(m.padding, nd)
    axes = [axis_phases(k, s, p, n, o) for k, s, p, n, o in zip(ks, ss, ps, in_shape[2:], out_shape[2:])]
    h, w = (axis_phases(1, 1, 0, 1, 1), axes[0]) if nd == 1 else axes
    stack = Polyphase(int(m.out_channels), int(m.groups), h, w)
    attrs = {"kernel_size": [len(h.taps[0]), len(w.taps[0])], "stride": [1, 1],
             "padding": [h.pad_lo, w.pad_lo, h.pad_hi, w.pad_hi], "dilation": [1, 1], "groups": int(m.groups)}
    conv_shape = [in_shape[0], stack.phases * stack.channels] + [a.length for a in axes]
    return stack, attrs, conv_shape


def interleave(ctx, y, stack: Polyphase, nd: int, base: str):
    """The conv2d's output [N, g * phases * O/g, *Z] -> the transposed convolution's [N, O, *out]."""
    strides = [stack.h.stride, stack.w.stride][2 - nd:]
    y = depth_to_space(ctx, y, strides, base, outer=stack.groups)  # channels (g, phases, O/g)
    for axis, a in zip(range(2, 2 + nd), [stack.h, stack.w][2 - nd:]):
        if (a.start, a.out) != (0, y.shape[axis]):
            y = emit_slice(ctx, y, axis, a.start, a.start + a.out, 1, f"{base}.crop")
    return y


def _lower(ctx) -> None:
    m = ctx.module
    nd = 1 if isinstance(m, qnn.QuantConvTranspose1d) else 2
    shape = ctx.in_shape(0)
    if len(shape) != nd + 2:
        ctx.fail(f"expects a {nd + 2}-D input, got shape {shape}")
    if any(d != 1 for d in pair(m.dilation, nd)):
        ctx.fail(f"dilation={tuple(pair(m.dilation, nd))} is not supported (only 1)", hint="use dilation=1")
    if m.padding_mode != "zeros":  # PyTorch / Brevitas refuse other modes when the layer is built; kept as a guard
        ctx.fail(f"padding_mode='{m.padding_mode}' is not supported (only zeros, as in PyTorch)",
                 hint="use padding_mode='zeros'")
    stack, attrs, conv_shape = plan(m, shape, ctx.out_shape(0))
    acc = emit_weight_layer(ctx, m, ctx.input_tensor(0), ctx.name, "conv2d", attrs, 1, conv_shape,
                            unit_height=nd == 1, stack=stack)
    _cross_check_acc(ctx, acc, stack)
    y = acc
    if m.output_quant.is_quant_enabled:  # requantized in the conv2d's step, then moved as 8-bit codes
        y = quantize_to(ctx, acc, m.output_quant, f"{ctx.name}.output_quant")
        ctx.low.values.pop(y.name, None)  # Brevitas' value is that of the interleaved tensor
        if y.channel_axis is not None:
            ctx.fail("a per-channel output quantizer on a transposed convolution is not supported",
                     hint="use a per-tensor output quantizer (the default Int8ActPerTensorFloat)")
    ctx.bind(interleave(ctx, y, stack, nd, ctx.name))


FRONTENDS = [
    Frontend(
        name="brevitas.nn.QuantConvTranspose2d / QuantConvTranspose1d",
        modules=(qnn.QuantConvTranspose2d, qnn.QuantConvTranspose1d),
        lowers_to=("requantize", "conv2d", "requantize", "reshape", "permute", "slice"),
        doc="Lowered to one stride-1 conv2d whose output channels are the stride^2 (stride, 1-D) output phases, "
            "then interleaved (views and a permute; two for a 2-D one with groups > 1) and cut to the output length "
            "(a slice when needed): exact, with the weight, bias and quantizer rules of QuantConv2d (per-channel "
            "weight scales along the output channels). Any kernel, stride, zero padding, output_padding and "
            "output_size; groups any (per-tensor weights when groups > 1); dilation 1 only; a per-tensor output "
            "quantizer.",
        lower=_lower,
    ),
]
