"""upsample: upsampling by integer factors (nn.Upsample, nn.UpsamplingNearest2d / Bilinear2d, F.interpolate).

Nearest: Brevitas 0.13.4 keeps the QuantTensor through it (scale, zero point and bit width unchanged: its
F.interpolate handler treats mode 'nearest' as quant-invariant, and QuantUpsample /
QuantUpsamplingNearest2d copy the input's quantization), so the IR op is pure data movement: each
integer is repeated factor times along each axis after the channel axis.

Linear / bilinear (mode 'linear' on (N, C, T), 'bilinear' on (N, C, H, W), either align_corners): Brevitas
returns a plain float tensor, which a quantizer must follow. With integer factors every output is a sum of
<= 4 input codes with rational weights over a fixed denominator per axis (atomic_ops/upsample.py
linear_taps), so the op computes the exact int32 accumulator ``sum w (q - zp)`` of scale ``s / D`` and the
next quantizer rounds it once.

Either way the map the lowering accepts is the one torch computes for the call itself (run on index /
one-hot tensors in float64), so arguments torch would treat otherwise are refused rather than assumed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

import atomic_ops
from atomic_ops.upsample import linear_denominator, linear_weights, upsample_linear
from gapforge.ops._base import Attr, Frontend, IROp
from gapforge.ops._shapes import ShapeError, inputs_of

_MODES = ("nearest", "nearest-exact")  # equal for integer factors: floor((i + 0.5) / f) == i // f
_LINEAR = {3: "linear", 4: "bilinear"}  # the interpolating mode torch accepts for each input rank


def infer_shapes(inputs, attrs, params):
    """One input (N, C, T) or (N, C, H, W); each axis after the channel axis grows by its factor."""
    (x,) = inputs_of(inputs, 1)
    factors = list(attrs["factors"])
    if len(x) not in (3, 4) or len(factors) != len(x) - 2:
        raise ShapeError(f"{len(factors)} factors for a {len(x)}-D input {x}; one per axis after the channel axis "
                         "of a 3-D or 4-D input", "attrs.factors")
    return [list(x[:2]) + [d * f for d, f in zip(x[2:], factors)]]


def _linear(attrs) -> bool:
    return attrs.get("mode", "nearest") == "linear"


def _call(cg):
    x = cg.net.tensors[cg.step.inputs[0]]
    factors = list(cg.attrs["factors"])
    spatial = list(x.shape[2:])
    if len(spatial) == 1:  # (N, C, T): the map of height 1
        spatial, factors = [1] + spatial, [1] + factors
    outer = math.prod(x.shape[:2])
    if _linear(cg.attrs):
        return cg.call("gf_upsample_linear", (cg.X[0], str(int(bool(x.signed))), str(int(x.zero_point)), str(outer),
                                              str(spatial[0]), str(spatial[1]), str(factors[0]), str(factors[1]),
                                              str(int(bool(cg.attrs["align_corners"]))), cg.Y))
    return cg.call("gf_upsample", (cg.X[0], str(cg.ins[0].elem_bytes), str(outer), str(spatial[0]), str(spatial[1]),
                                   str(factors[0]), str(factors[1]), cg.Y))


def _run(engine, step, inputs):
    if _linear(step.attrs):
        x = engine.net.tensors[step.inputs[0]]
        return upsample_linear(inputs[0], int(x.zero_point), step.attrs["factors"], bool(step.attrs["align_corners"]))
    return atomic_ops.get("upsample")(inputs[0], step.attrs["factors"])


def _acc_bound(net, step) -> np.ndarray:
    """Worst |output code|: the input's (nearest); ``D * max |q - zp|`` (linear: the weights sum to D)."""
    from gapforge.plan import tensor_abs_max

    x = net.tensors[step.inputs[0]]
    if not _linear(step.attrs):
        return np.array([tensor_abs_max(net, x.name)], dtype=np.int64)
    lo, hi = x.qrange()
    d = linear_denominator(x.shape, step.attrs["factors"], bool(step.attrs["align_corners"]))
    return np.array([d * max(hi - int(x.zero_point), int(x.zero_point) - lo)], dtype=np.int64)


IR_OP = IROp(
    name="upsample",
    summary="Upsampling by integer factors: nearest (data movement) or linear / bilinear (exact int32 weighted "
            "sums).",
    semantics="nearest: y[n, c, i, j] = x[n, c, i // fh, j // fw] (one factor per axis after the channel axis); "
              "integers unchanged. linear: acc[n, c, i, j] = sum_{a, b} Wh[i, a] Ww[j, b] (x[n, c, a, b] - zp), "
              "integer weights over D = Dh Dw (2 f per axis, or n_in f - 1 with align_corners; factor 1: 1), "
              "scale s / D.",
    inputs="nearest: one quant or acc tensor; linear: one quant tensor; (N, C, T) or (N, C, H, W), a per-channel "
           "axis only on the channels",
    attrs={"factors": Attr({"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1,
                            "maxItems": 2},
                           "the integer factor of each axis after the channel axis"),
           "mode": Attr({"enum": ["nearest", "linear"]}, "nearest (default) or linear (torch's linear / bilinear)",
                        required=False),
           "align_corners": Attr({"type": "boolean"}, "linear: torch's align_corners", required=False)},
    reference="upsample",
    kernels=("gf_upsample", "gf_upsample_linear"),
    acc_bound=_acc_bound,
    run=_run,
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


def _linear_map_ok(shape: list[int], out_shape: list[int], factors: list[int], mode: str, kw: dict,
                   align_corners: bool) -> bool:
    """Whether torch's interpolate with these arguments computes the weights of ``linear_weights`` on every
    axis (run in float64 on one-hot inputs: channel k holds 1 on input row / column k)."""
    spatial = shape[2:]
    for axis, (n, f) in enumerate(zip(spatial, factors)):
        one_hot = torch.zeros(1, n, *spatial, dtype=torch.float64)
        for k in range(n):
            index = [0, k] + [slice(None)] * len(spatial)
            index[2 + axis] = k
            one_hot[tuple(index)] = 1.0
        try:
            got = torch.nn.functional.interpolate(one_hot, mode=mode, **kw)
        except (RuntimeError, ValueError, TypeError, NotImplementedError):
            return False
        if list(got.shape[2:]) != out_shape[2:]:
            return False
        w, d = linear_weights(n, f, align_corners)  # [n f, n]
        want = torch.from_numpy(w.T / d).reshape(1, n, *([1] * axis), n * f, *([1] * (len(spatial) - axis - 1)))
        if not torch.allclose(got, want.expand_as(got), rtol=0, atol=1e-9):
            return False
    return True


def _lower(ctx) -> None:
    x = ctx.input_tensor(0)
    mode, kw = _spec(ctx)
    what = "nn.Upsample" if ctx.node.kind == "module" else "F.interpolate"
    linear = mode in ("linear", "bilinear")
    if mode not in _MODES and not linear:
        ctx.fail(f"{what} mode='{mode}' upsampling is not supported (only mode='nearest', 'linear' and 'bilinear' "
                 "by integer scale factors)",
                 hint="use mode='nearest' or mode='bilinear' (nn.Upsample(scale_factor=2, mode='bilinear')), "
                      "followed by a QuantConv2d if the decoder needs more smoothing")
    if kw.get("antialias"):
        ctx.fail(f"{what} mode='{mode}' with antialias=True is not supported (only without antialiasing)",
                 hint="drop antialias=True (it changes nothing when upsampling in torch's float map but is refused)")
    if len(x.shape) not in (3, 4):
        ctx.fail(f"upsamples a {len(x.shape)}-D tensor {x.shape}; only (N, C, T) and (N, C, H, W) inputs are supported")
    if linear and _LINEAR[len(x.shape)] != mode:
        ctx.fail(f"{what} mode='{mode}' on a {len(x.shape)}-D tensor {x.shape}; torch takes mode="
                 f"'{_LINEAR[len(x.shape)]}' for it")
    if x.kind not in ("quant", "acc") or (linear and x.kind != "quant"):
        ctx.fail(f"{what} mode='{mode}' upsamples {x.described}",
                 hint="quantize before upsampling (a QuantIdentity / QuantReLU)")
    shape, out_shape = list(x.shape), ctx.out_shape(0)
    if out_shape[:2] != shape[:2] or len(out_shape) != len(shape):
        ctx.fail(f"upsampling {shape} to {out_shape} changes the batch or channel axis")
    if any(o % i for i, o in zip(shape[2:], out_shape[2:])):
        sizes = " x ".join(f"{o}/{i}" for i, o in zip(shape[2:], out_shape[2:]))
        ctx.fail(f"{what} from {shape[2:]} to {out_shape[2:]} is not by integer factors ({sizes}); only integer "
                 "scale factors are supported",
                 hint="use an integer scale_factor, or a size= that is an integer multiple of the input size")
    factors = [o // i for i, o in zip(shape[2:], out_shape[2:])]
    if x.channel_axis not in (None, 1):
        ctx.fail("upsamples a tensor with a per-channel scale along a spatial axis", hint="use a per-tensor quantizer")
    if linear:
        _lower_linear(ctx, x, shape, out_shape, factors, mode, kw, what)
        return
    if not _index_map_ok(shape, out_shape, factors, mode, kw):
        ctx.fail(f"{what} from {shape[2:]} to {out_shape[2:]} does not repeat each element {factors} times "
                 f"(its arguments {kw} give another index map)",
                 hint="use an integer scale_factor or size=, without recompute_scale_factor / align_corners")
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


def _lower_linear(ctx, x, shape, out_shape, factors, mode, kw, what) -> None:
    """Linear / bilinear: the exact int32 accumulator of scale s / D (offset 0: the kernel subtracts the zero
    point), for the quantizer that must follow (Brevitas returns a plain float tensor)."""
    align_corners = bool(kw.get("align_corners"))
    if not _linear_map_ok(shape, out_shape, factors, mode, kw, align_corners):
        ctx.fail(f"{what} mode='{mode}' from {shape[2:]} to {out_shape[2:]} is not torch's linear map for integer "
                 f"factors {factors} (its arguments {kw} give other weights)",
                 hint="use an integer scale_factor or size=, without recompute_scale_factor")
    d = linear_denominator(shape, factors, align_corners)
    scale = [s / d for s in x.scale] if isinstance(x.scale, list) else x.scale / d
    out = ctx.new_tensor(ctx.name, "acc", out_shape, scale=scale, channel_axis=x.channel_axis)
    ctx.emit("upsample", [x], [out], attrs={"factors": factors, "mode": "linear", "align_corners": align_corners})
    ctx.bind(out)


FRONTENDS = [
    Frontend(
        name="torch.nn.Upsample / nn.UpsamplingNearest2d / nn.UpsamplingBilinear2d / F.interpolate (nearest, "
             "linear, bilinear)",
        modules=(nn.Upsample,),
        functions=("interpolate",),
        lowers_to=("upsample",),
        doc="Nearest-neighbour upsampling of a quantized tensor or an accumulator, (N, C, T) (Conv1d models) or "
            "(N, C, H, W), by an integer factor per axis (scale_factor=2, scale_factor=(2, 3), or a size= that is "
            "an integer multiple of the input size): each integer repeated, scale unchanged (Brevitas keeps the "
            "QuantTensor through it). Also brevitas.nn.QuantUpsample / QuantUpsamplingNearest2d in mode 'nearest', "
            "and mode='nearest-exact' (the same index map for integer factors; Brevitas 0.13.4 returns a plain "
            "tensor of the same values from it: its handler tests for 'nearest_exact'). Mode 'bilinear' (4-D) / "
            "'linear' (3-D), align_corners True or False, nn.UpsamplingBilinear2d, of a quantized tensor: the "
            "exact int32 weighted sum of <= 4 (2) codes, scale s / D, for the quantizer that must follow (Brevitas "
            "returns a plain float tensor; a QuantIdentity, a QuantConv's input quantizer, an add into a "
            "quantizer). Refused: bicubic, area, antialias=True, non-integer factors, 5-D inputs.",
        lower=_lower,
    ),
]
