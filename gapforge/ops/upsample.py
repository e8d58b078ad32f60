"""upsample: nearest-neighbour upsampling by integer factors (nn.Upsample, F.interpolate).

Brevitas 0.13.4 keeps the QuantTensor through it (scale, zero point and bit width unchanged: its
F.interpolate handler treats mode 'nearest' as quant-invariant, and QuantUpsample /
QuantUpsamplingNearest2d copy the input's quantization), so the IR op is pure data movement: each
integer is repeated factor times along each axis after the channel axis. The index map the lowering
accepts is the one torch computes for the call itself (run on an index tensor), so a factor torch
would round differently is refused rather than assumed.
"""

from __future__ import annotations

import math

import torch
from torch import nn

import atomic_ops
from gapforge.ops._base import Attr, Frontend, IROp
from gapforge.ops._shapes import ShapeError, inputs_of

_MODES = ("nearest", "nearest-exact")  # equal for integer factors: floor((i + 0.5) / f) == i // f


def infer_shapes(inputs, attrs, params):
    """One input (N, C, T) or (N, C, H, W); each axis after the channel axis grows by its factor."""
    (x,) = inputs_of(inputs, 1)
    factors = list(attrs["factors"])
    if len(x) not in (3, 4) or len(factors) != len(x) - 2:
        raise ShapeError(f"{len(factors)} factors for a {len(x)}-D input {x}; one per axis after the channel axis "
                         "of a 3-D or 4-D input", "attrs.factors")
    return [list(x[:2]) + [d * f for d, f in zip(x[2:], factors)]]


def _call(cg):
    x = cg.net.tensors[cg.step.inputs[0]]
    factors = list(cg.attrs["factors"])
    spatial = list(x.shape[2:])
    if len(spatial) == 1:  # (N, C, T): the map of height 1
        spatial, factors = [1] + spatial, [1] + factors
    outer = math.prod(x.shape[:2])
    return cg.call("gf_upsample", (cg.X[0], str(cg.ins[0].elem_bytes), str(outer), str(spatial[0]), str(spatial[1]),
                                   str(factors[0]), str(factors[1]), cg.Y))


IR_OP = IROp(
    name="upsample",
    summary="Nearest-neighbour upsampling by integer factors (data movement).",
    semantics="y[n, c, i, j] = x[n, c, i // fh, j // fw] (one factor per axis after the channel axis); "
              "integers unchanged.",
    inputs="one quant or acc tensor, (N, C, T) or (N, C, H, W); a per-channel axis only on the channels",
    attrs={"factors": Attr({"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1,
                            "maxItems": 2},
                           "the integer factor of each axis after the channel axis")},
    reference="upsample",
    kernels=("gf_upsample",),
    run=lambda engine, step, inputs: atomic_ops.get("upsample")(inputs[0], step.attrs["factors"]),
    call=_call,
    fc_direct=True,
    infer_shapes=infer_shapes,
)


def _spec(ctx) -> tuple[str, dict]:
    """(mode, the other arguments of F.interpolate) of the node."""
    if ctx.node.kind == "module":
        m = ctx.module
        return m.mode, dict(size=m.size, scale_factor=m.scale_factor, align_corners=m.align_corners,
                            recompute_scale_factor=getattr(m, "recompute_scale_factor", None))
    names = ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias")
    defaults = (None, None, "nearest", None, None, False)
    kw = {n: ctx.arg(i + 1, n, d) for i, (n, d) in enumerate(zip(names, defaults))}
    return kw.pop("mode"), kw


def _index_map_ok(shape: list[int], out_shape: list[int], factors: list[int], mode: str, kw: dict) -> bool:
    """Whether torch's interpolate with these arguments picks x[..., i // f, ...] on every axis (run on the
    flat index of each input position)."""
    spatial = shape[2:]
    idx = torch.arange(math.prod(spatial), dtype=torch.float64).reshape(1, 1, *spatial)
    try:
        got = torch.nn.functional.interpolate(idx, mode=mode, **kw)
    except (RuntimeError, ValueError, TypeError, NotImplementedError):
        return False
    want = idx
    for axis, f in enumerate(factors, start=2):
        want = want.repeat_interleave(f, dim=axis)
    return list(got.shape[2:]) == out_shape[2:] and torch.equal(got, want)


def _lower(ctx) -> None:
    x = ctx.input_tensor(0)
    mode, kw = _spec(ctx)
    what = "nn.Upsample" if ctx.node.kind == "module" else "F.interpolate"
    if mode not in _MODES:
        ctx.fail(f"mode='{mode}' upsampling is not supported (only mode='nearest' by integer scale factors)",
                 hint="use mode='nearest' (nn.Upsample(scale_factor=2) / F.interpolate(x, scale_factor=2)), "
                      "followed by a QuantConv2d if the decoder needs smoothing")
    if len(x.shape) not in (3, 4):
        ctx.fail(f"upsamples a {len(x.shape)}-D tensor {x.shape}; only (N, C, T) and (N, C, H, W) inputs are supported")
    if x.kind not in ("quant", "acc"):
        ctx.fail(f"upsamples {x.described}", hint="quantize before upsampling (a QuantIdentity / QuantReLU)")
    shape, out_shape = list(x.shape), ctx.out_shape(0)
    if out_shape[:2] != shape[:2] or len(out_shape) != len(shape):
        ctx.fail(f"upsampling {shape} to {out_shape} changes the batch or channel axis")
    if any(o % i for i, o in zip(shape[2:], out_shape[2:])):
        sizes = " x ".join(f"{o}/{i}" for i, o in zip(shape[2:], out_shape[2:]))
        ctx.fail(f"{what} from {shape[2:]} to {out_shape[2:]} is not by integer factors ({sizes}); only integer "
                 "scale factors are supported",
                 hint="use an integer scale_factor, or a size= that is an integer multiple of the input size")
    factors = [o // i for i, o in zip(shape[2:], out_shape[2:])]
    if not _index_map_ok(shape, out_shape, factors, mode, kw):
        ctx.fail(f"{what} from {shape[2:]} to {out_shape[2:]} does not repeat each element {factors} times "
                 f"(its arguments {kw} give another index map)",
                 hint="use an integer scale_factor or size=, without recompute_scale_factor / align_corners")
    if x.channel_axis not in (None, 1):
        ctx.fail("upsamples a tensor with a per-channel scale along a spatial axis", hint="use a per-tensor quantizer")
    if all(f == 1 for f in factors):
        ctx.bind(x)
        return
    fields = dict(scale=x.scale, channel_axis=x.channel_axis)
    if x.kind == "quant":
        fields.update(zero_point=x.zero_point, bit_width=x.bit_width, signed=x.signed, narrow_range=x.narrow_range)
    else:
        fields["offset"] = x.offset
    out = ctx.new_tensor(ctx.name, x.kind, out_shape, **fields)
    ctx.emit("upsample", [x], [out], attrs={"factors": factors})
    ctx.bind(out)


FRONTENDS = [
    Frontend(
        name="torch.nn.Upsample / nn.UpsamplingNearest2d / F.interpolate (nearest)",
        modules=(nn.Upsample,),
        functions=("interpolate",),
        lowers_to=("upsample",),
        doc="Nearest-neighbour upsampling of a quantized tensor or an accumulator, (N, C, T) (Conv1d models) or "
            "(N, C, H, W), by an integer factor per axis (scale_factor=2, scale_factor=(2, 3), or a size= that is "
            "an integer multiple of the input size): each integer repeated, scale unchanged (Brevitas keeps the "
            "QuantTensor through it). Also brevitas.nn.QuantUpsample / QuantUpsamplingNearest2d in mode 'nearest', "
            "and mode='nearest-exact' (the same index map for integer factors; Brevitas 0.13.4 returns a plain "
            "tensor of the same values from it: its handler tests for 'nearest_exact'). Refused: other modes (bilinear, bicubic, ..., "
            "nn.UpsamplingBilinear2d), non-integer factors, 5-D inputs.",
        lower=_lower,
    ),
]
