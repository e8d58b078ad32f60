"""rmsnorm: RMSNorm over the last axes of a quantized tensor, then a quantizer.

Frontends: torch.nn.RMSNorm / F.rms_norm, and the hand-written form users copy from Llama code,
``x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) [* w]`` (also ``x / torch.sqrt(...)``,
``x ** 2``, ``torch.mean(..., dim=(-2, -1))``): the frontend of ``pow`` recognises the whole chain
in the captured graph and folds its nodes into one op. The integer form is LayerNorm's
(atomic_ops/layernorm.py, shared) about the input zero point instead of the row mean.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch import nn

from atomic_ops import rmsnorm as ref
from gapforge.ops._base import Attr, Frontend, checked_bound, output_range
from gapforge.ops.layernorm import FLOATS, _floats, check_norm_input, infer_shapes, norm_op, row_length


def _gamma(step, n: int) -> np.ndarray:
    w = step.attrs.get("weight")
    return np.asarray(w, dtype=np.float64) if w is not None else np.ones(n)


def prepare(net, step) -> ref.LayerNormParams:
    x = net.tensors[step.inputs[0]]
    y = net.tensors[step.output]
    lo, hi = output_range(net, step)
    n = row_length(x.shape, int(step.attrs["axes"]))
    return checked_bound(ref.prepare(float(x.scale), x.qrange(), int(x.zero_code), float(step.attrs["eps"]),
                                     _gamma(step, n), float(y.scale), int(y.zero_point), lo, hi))


def _exact(engine, step, inputs):
    x = engine.net.tensors[step.inputs[0]]
    y = engine.net.tensors[step.output]
    n = row_length(x.shape, int(step.attrs["axes"]))
    return ref.exact(inputs[0], n, float(x.scale), int(x.zero_code), float(step.attrs["eps"]), _gamma(step, n),
                     float(y.scale))


def _call(cg):
    rows, n = cg.rows_extent()
    return cg.call("gf_rmsnorm", (cg.X[0], cg.T[0], rows, n, cg.param_block(), cg.Y))


IR_OP = norm_op(
    "rmsnorm",
    summary="RMSNorm over the last axes (optional elementwise weight), quantized by the following quantizer.",
    semantics="Per row of N codes q with input zero point z: exact V = N sum (q - z)^2, D = N (q - z); then "
              "LayerNorm's integer form (exact 64-bit integer square root, multipliers folding weight and "
              "output scale, one round-half-even); error below 1e-5 output steps (docs/integer_contract.md, "
              "RMSNorm).",
    inputs="one quant tensor (per-tensor scale, any zero point, 1-8 bits)",
    attrs={
        "axes": Attr({"type": "integer", "minimum": 1}, "number of trailing axes normalized (normalized_shape)"),
        "eps": Attr({"type": "number", "minimum": 0}, "epsilon added to the mean of squares"),
        "weight": Attr(FLOATS, "elementwise weight (float32 values, C order of the normalized shape)",
                       required=False),
    },
    prepare=prepare, exact=_exact, call=_call, infer_shapes=infer_shapes,
)


def emit_rmsnorm(ctx, x, axes: int, eps: float, weight) -> object:
    check_norm_input(ctx, x, "RMSNorm")
    nd = len(x.shape)
    if axes >= nd:
        ctx.fail(f"RMSNorm over the last {axes} axes normalizes the batch axis of the input {x.shape}",
                 hint="normalize the feature axes only (the trailing axes without batch)")
    if eps is None or not (eps >= 0 and np.isfinite(eps)):
        ctx.fail(f"RMSNorm eps {eps} must be a finite number >= 0")
    attrs = {"axes": int(axes), "eps": float(eps)}
    if weight is not None:
        w = _floats(weight)
        n = row_length(x.shape, axes)
        if len(w) != n:
            ctx.fail(f"the RMSNorm weight has {len(w)} values, the normalized shape {x.shape[nd - axes:]} has {n}")
        attrs["weight"] = w
    out = ctx.new_tensor(ctx.name, "real", x.shape)
    ctx.emit("rmsnorm", [x], [out], attrs=attrs)
    return out


def _default_eps(eps) -> float:
    return float(torch.finfo(torch.float32).eps) if eps is None else float(eps)


def _lower(ctx) -> None:
    x = ctx.input_tensor(0)
    if ctx.node.kind == "module":
        m = ctx.module
        shape = list(m.normalized_shape)
        eps = _default_eps(m.eps)
        weight = m.weight if m.elementwise_affine else None
    else:
        shape = ctx.arg(1, "normalized_shape")
        shape = [int(shape)] if isinstance(shape, int) else [int(v) for v in shape]
        weight = ctx.arg(2, "weight")
        eps = _default_eps(ctx.arg(3, "eps"))
        if ctx.act_of(weight) is not None:
            ctx.fail("rms_norm with a weight computed from activations is not supported",
                     hint="use a parameter (nn.RMSNorm) for the weight")
    nd = len(x.shape)
    if len(shape) >= nd:
        ctx.fail(f"RMSNorm over {shape} normalizes the batch axis of the input {x.shape}",
                 hint="normalize the feature axes only (normalized_shape = the trailing axes without batch)")
    if list(x.shape[nd - len(shape):]) != shape:
        ctx.fail(f"normalized_shape {shape} does not match the trailing axes of the input {x.shape}")
    ctx.bind(emit_rmsnorm(ctx, x, len(shape), eps, weight))


# -- the hand-written form: x * rsqrt(mean(x^2) + eps) [* w] -----------------------------------------
class _NoMatch(Exception):
    pass


def _only_consumer(ctx, node, type_names: tuple[str, ...]):
    acts = node.outputs
    if len(acts) != 1 or acts[0] in ctx.low.graph.outputs:
        raise _NoMatch
    cons = ctx.low.graph.consumers(acts[0])
    if len(cons) != 1 or cons[0].type_name not in type_names:
        raise _NoMatch
    return cons[0]


def _arg(node, i, name, default=None):
    if i < len(node.args):
        return node.args[i]
    return node.kwargs.get(name, default)


def _number(ctx, v) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, numbers.Real):
        return float(np.float32(v))
    if isinstance(v, torch.Tensor) and ctx.act_of(v) is None and v.numel() == 1:
        return float(v.detach().to(torch.float32).reshape(()))
    return None


def _match(ctx, x):
    """The nodes of x * rsqrt(mean(x^2, trailing axes, keepdim) + eps) [* w] starting at this pow node:
    (axes, eps, weight or None, absorbed nodes, the last node)."""
    node, x_act = ctx.node, ctx.node.inputs[0]
    exponent = _arg(node, 1, "exponent")
    if ctx.act_of(_arg(node, 0, "input")) != x_act or _number(ctx, exponent) != 2.0:
        raise _NoMatch
    nd = len(x.shape)
    mean = _only_consumer(ctx, node, ("mean",))
    dims = _arg(mean, 1, "dim")
    keep = _arg(mean, 2, "keepdim", False)
    if dims is None or not keep:
        raise _NoMatch
    dims = sorted(int(d) % nd for d in (dims if isinstance(dims, (list, tuple)) else [dims]))
    axes = len(dims)
    if dims != list(range(nd - axes, nd)):
        raise _NoMatch
    add = _only_consumer(ctx, mean, ("add",))
    a, b = _arg(add, 0, "input"), _arg(add, 1, "other")
    eps = _number(ctx, b if ctx.act_of(a) == mean.outputs[0] else a)
    if eps is None or add.kwargs.get("alpha", 1) != 1:
        raise _NoMatch
    root = _only_consumer(ctx, add, ("rsqrt", "sqrt"))
    last = _only_consumer(ctx, root, ("mul",) if root.type_name == "rsqrt" else ("div",))
    a, b = _arg(last, 0, "input"), _arg(last, 1, "other")
    if root.type_name == "rsqrt":
        if sorted([ctx.act_of(a), ctx.act_of(b)], key=str) != sorted([x_act, root.outputs[0]], key=str):
            raise _NoMatch
    elif (ctx.act_of(a), ctx.act_of(b)) != (x_act, root.outputs[0]) or last.kwargs.get("rounding_mode"):
        raise _NoMatch
    nodes = [mean, add, root, last]
    weight = None
    try:
        wmul = _only_consumer(ctx, last, ("mul",))
    except _NoMatch:
        wmul = None
    if wmul is not None:
        a, b = _arg(wmul, 0, "input"), _arg(wmul, 1, "other")
        w = b if ctx.act_of(a) == last.outputs[0] else a
        shape = list(x.shape[nd - axes:])
        if (isinstance(w, torch.Tensor) and ctx.act_of(w) is None and w.numel() == int(np.prod(shape))
                and list(w.shape)[-axes:] == shape and all(s == 1 for s in list(w.shape)[:-axes])):
            weight = w
            nodes.append(wmul)
    return axes, eps, weight, nodes


def _lower_pow(ctx) -> None:
    x = ctx.input_tensor(0)
    try:
        axes, eps, weight, nodes = _match(ctx, x)
    except _NoMatch:
        ctx.fail("pow of an activation is supported only as the mean of squares of an RMSNorm written by hand, "
                 "x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) (* weight)",
                 hint="use torch.nn.RMSNorm, or x * x (a table) for a square followed by a quantizer")
    out = emit_rmsnorm(ctx, x, axes, eps, weight)
    ctx.bind(out)
    for n in nodes:
        ctx.absorb(n, out)
    ctx.low.values[out.name] = ctx.low.graph.activations[nodes[-1].outputs[0]].value


FRONTENDS = [
    Frontend(
        name="torch.nn.RMSNorm / F.rms_norm",
        modules=(nn.RMSNorm,),
        functions=("rms_norm",),
        lowers_to=("rmsnorm",),
        doc="RMSNorm over the last axis or the last few axes (not the batch axis) of a quantized tensor "
            "(per-tensor scale, any zero point), with or without weight, any eps (None: float32 eps, as "
            "PyTorch), followed by a quantizer. An int32 accumulator input needs a QuantIdentity first.",
        lower=_lower,
    ),
    Frontend(
        name="x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w (RMSNorm by hand)",
        functions=("pow",),
        lowers_to=("rmsnorm",),
        doc="The hand-written RMSNorm of Llama code: x.pow(2) / x ** 2, .mean over the trailing axes with "
            "keepdim=True, + eps (a number), torch.rsqrt and a product with x (or x / torch.sqrt(...)), "
            "optionally times a constant weight of the normalized shape; the chain becomes one rmsnorm op "
            "(same conditions as nn.RMSNorm). Any other use of pow is refused.",
        lower=_lower_pow,
    ),
]
