"""Depth-to-space and space-to-depth as data movement: nn.PixelShuffle / nn.PixelUnshuffle, and the
interleaving of the phases of a transposed convolution (gapforge/ops/conv_transpose.py).

No IR op of its own: each is views (reshape) around one or two ``permute`` steps, so every backend
runs them with its permute kernel. The device permute moves at most 4 separate axes, which is why
the channel order matters: channels ordered (phase_h, phase_w, C) interleave with one permute
([N, sh, sw, C, H, W] -> [N, C, H, sh, W, sw] moves 4 runs of axes), while PyTorch's pixel shuffle
order (C, r, r) first swaps the two channel blocks (a 3-axis permute).
"""

from __future__ import annotations

import math

from torch import nn

from gapforge.ops._base import Frontend
from gapforge.ops.permute import emit_permute, merged
from gapforge.ops.reshape import emit_reshape


def swap_channel_blocks(ctx, x, a: int, b: int, base: str):
    """Channels ordered (a, b, inner) -> ordered (b, a, inner), the shape unchanged: [N, a, b, rest]
    -> [N, b, a, rest] (rest: the inner channels and the spatial axes)."""
    if a == 1 or b == 1:
        return x
    n = x.shape[0]
    rest = math.prod(x.shape[1:]) // (a * b)
    y = emit_reshape(ctx, x, [n, a, b, rest], f"{base}.blocks")
    y = emit_permute(ctx, y, [0, 2, 1, 3], f"{base}.swap")
    return emit_reshape(ctx, y, list(x.shape), f"{base}.swapped")


def depth_to_space(ctx, x, strides: list[int], base: str, outer: int = 1):
    """[N, outer * prod(strides) * C, *Q] with channels ordered (outer, phase_0, ..., C) -> [N, outer * C,
    Q_0 * s_0, ...]: output position q_i * s_i + r_i of channel (o, c) is input channel (o, r..., c) at q.

    One permute when the device kernel can move it (at most 4 separate axes: outer == 1, or 1-D); else the
    channel blocks (outer, phases) are swapped first."""
    d = len(strides)
    phases = math.prod(strides)
    if phases == 1:
        return x
    n, q = x.shape[0], list(x.shape[2:])
    c = x.shape[1] // (phases * outer)
    if outer == 1:
        shape = [n] + list(strides) + [c] + q
        perm = [0, d + 1] + [a for i in range(d) for a in (d + 2 + i, 1 + i)]
    else:
        shape = [n, outer] + list(strides) + [c] + q
        perm = [0, 1, d + 2] + [a for i in range(d) for a in (d + 3 + i, 2 + i)]
        if len(merged(shape, perm)[0]) > 4:
            x = swap_channel_blocks(ctx, x, outer, phases, base)
            return depth_to_space(ctx, x, strides, base)
    y = emit_reshape(ctx, x, shape, f"{base}.phases")
    y = emit_permute(ctx, y, perm, f"{base}.interleave")
    return emit_reshape(ctx, y, [n, outer * c] + [qi * si for qi, si in zip(q, strides)], f"{base}.interleaved")


def space_to_depth(ctx, x, strides: list[int], base: str):
    """The inverse of depth_to_space: [N, C, Q_0 * s_0, ...] -> [N, prod(strides) * C, *Q], channels
    ordered (phase_0, ..., C)."""
    d = len(strides)
    phases = math.prod(strides)
    if phases == 1:
        return x
    n, c = x.shape[0], x.shape[1]
    q = [size // s for size, s in zip(x.shape[2:], strides)]
    y = emit_reshape(ctx, x, [n, c] + [a for qi, si in zip(q, strides) for a in (qi, si)], f"{base}.phases")
    perm = [0] + [3 + 2 * i for i in range(d)] + [1] + [2 + 2 * i for i in range(d)]
    y = emit_permute(ctx, y, perm, f"{base}.deinterleave")
    return emit_reshape(ctx, y, [n, phases * c] + q, f"{base}.stacked")


def _factor(ctx, upscale: bool) -> int:
    if ctx.node.kind == "module":
        return int(ctx.module.upscale_factor if upscale else ctx.module.downscale_factor)
    return int(ctx.arg(1, "upscale_factor" if upscale else "downscale_factor"))


def _lower_pixel_shuffle(ctx) -> None:
    x = ctx.input_tensor(0)
    if len(x.shape) != 4:
        ctx.fail(f"expects a 4-D NCHW input, got shape {x.shape}")
    r = _factor(ctx, True)
    ctx.bind(depth_to_space(ctx, x, [r, r], ctx.name, outer=x.shape[1] // (r * r)))  # PyTorch's order (C, r, r)


def _lower_pixel_unshuffle(ctx) -> None:
    x = ctx.input_tensor(0)
    if len(x.shape) != 4:
        ctx.fail(f"expects a 4-D NCHW input, got shape {x.shape}")
    r = _factor(ctx, False)
    y = space_to_depth(ctx, x, [r, r], ctx.name)  # channels (r, r, C) -> PyTorch's (C, r, r)
    ctx.bind(swap_channel_blocks(ctx, y, r * r, x.shape[1], ctx.name))


FRONTENDS = [
    Frontend(
        name="torch.nn.PixelShuffle / F.pixel_shuffle",
        modules=(nn.PixelShuffle,),
        functions=("pixel_shuffle",),
        lowers_to=("reshape", "permute"),
        doc="Depth to space of a 4-D quantized tensor: views and two permutes (the channel blocks (C, r*r) "
            "swapped, then the phases interleaved; one permute when C = 1). A per-channel tensor is refused (its channel axis "
            "is split); quantize it per tensor first.",
        lower=_lower_pixel_shuffle,
    ),
    Frontend(
        name="torch.nn.PixelUnshuffle / F.pixel_unshuffle",
        modules=(nn.PixelUnshuffle,),
        functions=("pixel_unshuffle",),
        lowers_to=("reshape", "permute"),
        doc="Space to depth of a 4-D quantized tensor, the inverse of PixelShuffle: views and two permutes; "
            "per-tensor scales only.",
        lower=_lower_pixel_unshuffle,
    ),
]
