"""groupnorm: GroupNorm of a quantized (N, C, *spatial) tensor, then a quantizer.

In NCHW (and NCT) order the C / G channels of a group are contiguous, so the frontend views the
input as rows of one group each, [N, G, (C/G) * spatial] (a reshape, no copy), the op normalizes each
row with the shared integer form of LayerNorm (atomic_ops/layernorm.py) and the per-channel affine
of the row's group, and the quantizer's output regains the input shape. GAP9: the ``rows`` tiling
(whole groups per tile); the kernel selects each row's affine set from the row index.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from atomic_ops import groupnorm as ref
from gapforge.ops._base import Attr, Frontend, checked_bound, output_range
from gapforge.ops._shapes import ShapeError, inputs_of
from gapforge.ops.layernorm import FLOATS, _floats, check_norm_input, norm_op


def _affine(step) -> tuple[np.ndarray, np.ndarray]:
    a = step.attrs
    c = int(a["channels"])
    gamma = np.asarray(a["weight"], dtype=np.float64) if a.get("weight") is not None else np.ones(c)
    beta = np.asarray(a["bias"], dtype=np.float64) if a.get("bias") is not None else np.zeros(c)
    return gamma, beta


def _layout(x_shape, attrs) -> tuple[int, int]:
    """(groups, elements per channel) of the [N, G, (C/G) * spatial] input."""
    g, c = int(attrs["groups"]), int(attrs["channels"])
    return g, int(x_shape[2]) // (c // g)


def prepare(net, step) -> ref.LayerNormParams:
    x = net.tensors[step.inputs[0]]
    y = net.tensors[step.output]
    lo, hi = output_range(net, step)
    g, spatial = _layout(x.shape, step.attrs)
    gamma, beta = _affine(step)
    return checked_bound(ref.prepare(float(x.scale), x.qrange(), g, spatial, float(step.attrs["eps"]), gamma, beta,
                                     float(y.scale), int(y.zero_point), lo, hi))


def _exact(engine, step, inputs):
    x = engine.net.tensors[step.inputs[0]]
    y = engine.net.tensors[step.output]
    g, spatial = _layout(x.shape, step.attrs)
    gamma, beta = _affine(step)
    return ref.exact(inputs[0], float(x.scale), g, spatial, float(step.attrs["eps"]), gamma, beta, float(y.scale))


def _call(cg):
    rows, n = cg.rows_extent()
    return cg.call("gf_groupnorm", (cg.X[0], cg.T[0], "0", rows, n, cg.param_block(), cg.Y))


def infer_shapes(inputs, attrs, params):
    """One [N, G, (C/G) * spatial] input (the groups as rows); output of the same shape."""
    (x,) = inputs_of(inputs, 1)
    g, c = int(attrs["groups"]), int(attrs["channels"])
    if len(x) != 3 or x[1] != g or c % g or x[2] % (c // g):
        raise ShapeError(f"input {x} is not [N, {g}, (C/G) * spatial] for {c} channels in {g} groups", "inputs")
    for key in ("weight", "bias"):
        if attrs.get(key) is not None and len(attrs[key]) != c:
            raise ShapeError(f"{key} has {len(attrs[key])} values for {c} channels", f"attrs.{key}")
    return [list(x)]


IR_OP = norm_op(
    "groupnorm",
    summary="GroupNorm (optional per-channel affine) over rows of one group each, quantized by the following "
            "quantizer.",
    semantics="The input viewed as [N, G, (C/G) * spatial]: each row normalized by LayerNorm's integer form "
              "(exact mean and variance, exact 64-bit integer square root, one round-half-even), with the "
              "affine of its group's channels; error below 1e-5 output steps (docs/integer_contract.md, "
              "GroupNorm).",
    inputs="one quant tensor (per-tensor scale, any zero point, 1-8 bits), [N, G, (C/G) * spatial]",
    attrs={
        "groups": Attr({"type": "integer", "minimum": 1}, "number of groups G"),
        "channels": Attr({"type": "integer", "minimum": 1}, "number of channels C (a multiple of G)"),
        "eps": Attr({"type": "number", "minimum": 0}, "epsilon added to the variance"),
        "weight": Attr(FLOATS, "per-channel affine weight (C float32 values)", required=False),
        "bias": Attr(FLOATS, "per-channel affine bias (C float32 values)", required=False),
    },
    prepare=prepare, exact=_exact, call=_call, infer_shapes=infer_shapes,
)


def _lower(ctx) -> None:
    from gapforge.ops.reshape import emit_reshape

    x = ctx.input_tensor(0)
    if ctx.node.kind == "module":
        m = ctx.module
        groups, eps = int(m.num_groups), float(m.eps)
        weight = m.weight if m.affine else None
        bias = m.bias if m.affine else None
    else:
        groups = int(ctx.arg(1, "num_groups"))
        weight, bias = ctx.arg(2, "weight"), ctx.arg(3, "bias")
        eps = float(ctx.arg(4, "eps", 1e-5))
        if any(ctx.act_of(a) is not None for a in (weight, bias)):
            ctx.fail("group_norm with a weight or bias computed from activations is not supported",
                     hint="use parameters (nn.GroupNorm) for the affine transform")
    if len(x.shape) < 3:
        ctx.fail(f"GroupNorm of the {len(x.shape)}-D input {x.shape}: (N, C, H, W) or (N, C, T) are supported",
                 hint="apply GroupNorm to a feature map (N, C, ...) or use LayerNorm / RMSNorm over features")
    check_norm_input(ctx, x, "GroupNorm")
    c = int(x.shape[1])
    if groups < 1 or c % groups:
        ctx.fail(f"{c} channels do not split into {groups} groups")
    n = int(np.prod(x.shape[1:])) // groups
    attrs = {"groups": groups, "channels": c, "eps": eps}
    try:
        if weight is not None:
            attrs["weight"] = _floats(weight)
        if bias is not None:
            attrs["bias"] = _floats(bias)
    except TypeError:
        ctx.fail("group_norm weight and bias must be tensors")
    rows = emit_reshape(ctx, x, [x.shape[0], groups, n], f"{ctx.name}.groups")
    out = ctx.new_tensor(ctx.name, "real", rows.shape)
    ctx.emit("groupnorm", [rows], [out], attrs=attrs)
    ctx.low.restore_shape[out.name] = list(x.shape)  # the quantizer's output regains (N, C, ...)
    ctx.bind(out)
    value = ctx.low.values.get(out.name)
    if value is not None:
        ctx.low.values[out.name] = value.reshape(rows.shape)


FRONTENDS = [
    Frontend(
        name="torch.nn.GroupNorm / F.group_norm",
        modules=(nn.GroupNorm,),
        functions=("group_norm",),
        lowers_to=("reshape", "groupnorm"),
        doc="GroupNorm of a quantized (N, C, H, W) or (N, C, T) tensor (per-tensor scale, any zero point), any "
            "number of groups dividing C (1: LayerNorm over C x spatial; C: per-channel normalization), with "
            "or without affine, any eps, followed by a quantizer. An int32 accumulator input needs a "
            "QuantIdentity first.",
        lower=_lower,
    ),
]
