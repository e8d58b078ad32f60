"""lincomb: sums of products of one quantized tensor with constant tensors, then a quantizer (RoPE).

Users write rotary position embeddings as ``q * cos + rotate_half(q) * sin`` with constant ``cos`` /
``sin`` buffers (register_buffer) and ``rotate_half(x) = torch.cat((-x[..., d/2:], x[..., :d/2]), -1)``.
Between the quantizer of q and the next one this is float math of one quantized tensor: along each
row (last axis), ``t_i = sum_k s (q[g_k(i)] - z) c_k[i]`` with gathers g_k (slices and cat along the
row), signs (negation) and constants c_k folded into the coefficients. The frontends of slicing,
negation, cat, products with constant tensors and sums build that form (``LinForm``, pending on a
real tensor); the quantizer that follows emits one ``lincomb`` op: exact integer products, one
rounding (atomic_ops/lincomb.py, docs/integer_contract.md "Products with constant tensors").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import atomic_ops
from atomic_ops import lincomb as ref
from gapforge import ir
from gapforge.ops._base import Attr, Frontend, IROp, Tiling, checked_bound, output_range  # noqa: F401  (Frontend: none of its own)
from gapforge.ops._shapes import ShapeError, inputs_of


# -- the IR op ---------------------------------------------------------------------------------
def _arrays(step):
    a = step.attrs
    gather = np.asarray(a["gather"], dtype=np.int64)
    coef = np.asarray(a["coef"], dtype=np.float64).reshape(gather.shape[0], int(a["period"]), gather.shape[1])
    return gather, coef


def prepare(net, step) -> ref.LinCombParams:
    x = net.tensors[step.inputs[0]]
    y = net.tensors[step.output]
    lo, hi = output_range(net, step)
    gather, coef = _arrays(step)
    return checked_bound(ref.prepare(float(x.scale), x.qrange(), int(x.zero_code), gather, coef, float(y.scale),
                                     int(y.zero_point), lo, hi))


def _exact(engine, step, inputs):
    x = engine.net.tensors[step.inputs[0]]
    y = engine.net.tensors[step.output]
    gather, coef = _arrays(step)
    return ref.exact(inputs[0], float(x.scale), int(x.zero_code), gather, coef, float(y.scale))


def _call(cg):
    rows, n = cg.rows_extent()
    return cg.call("gf_lincomb", (cg.X[0], cg.T[0], "0", rows, n, cg.param_block(), cg.Y))


def infer_shapes(inputs, attrs, params):
    """One input; gathers of its last axis; coefficients repeating every ``period`` rows; same output shape."""
    (x,) = inputs_of(inputs, 1)
    if len(x) < 2:
        raise ShapeError(f"input {x} has no rows", "inputs")
    d = x[-1]
    rows = int(np.prod(x[1:-1])) if len(x) > 2 else 1
    gather, period = attrs["gather"], int(attrs["period"])
    if any(len(g) != d or min(g) < 0 or max(g) >= d for g in gather):
        raise ShapeError(f"a gather does not index rows of {d} elements", "attrs.gather")
    if rows % period or len(attrs["coef"]) != len(gather) or any(len(c) != period * d for c in attrs["coef"]):
        raise ShapeError(f"coefficients are not {len(gather)} x {period} rows of {d}", "attrs.coef")
    return [list(x)]


IR_OP = IROp(
    name="lincomb",
    summary="Sum of products of one quantized tensor (gathered along its last axis) with constant tensors "
            "(RoPE: q * cos + rotate_half(q) * sin), quantized by the following quantizer.",
    semantics="Per element: exact int64 sum of (q[g_k(i)] - z) * M_k[i] with M_k = rne(s c_k / s_out 2^h) (|M| < 2^40), one "
              "round-half-even; error below 1e-5 output steps (docs/integer_contract.md, Products with "
              "constant tensors).",
    inputs="one quant tensor (per-tensor scale, any zero point, 1-8 bits)",
    attrs={
        "gather": Attr({"type": "array", "items": {"type": "array", "items": {"type": "integer", "minimum": 0}}},
                       "per term, the index into the row read by each output element"),
        "coef": Attr({"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                     "per term, the constant coefficients of `period` rows (float64 values, signs included)"),
        "period": Attr({"type": "integer", "minimum": 1}, "rows after which the coefficients repeat (within a sample)"),
    },
    reference="lincomb",
    kernels=("gf_lincomb",),
    fusion="head",
    prepare=prepare,
    run=lambda engine, step, inputs: atomic_ops.get("lincomb")(inputs[0], step.params),
    exact=_exact,
    call=_call,
    tiling=Tiling("rows"),
    macs=lambda net, step: len(step.attrs["gather"]) * net.tensors[step.output].numel,
    infer_shapes=infer_shapes,
)


# -- the pending form and the frontends' helpers -------------------------------------------------
@dataclass
class LinForm:
    """A real tensor ``sum_k coef_k * dequant(source)[..., gather_k]``, waiting for its quantizer."""

    source: ir.TensorInfo
    terms: list[tuple[np.ndarray, np.ndarray]]  # (gather [d] int64, coef float64 broadcastable to the shape)
    desc: str


def form_of(ctx, t: ir.TensorInfo) -> LinForm | None:
    return ctx.low.lin_forms.get(t.name)


def _pending(ctx, form: LinForm, base: str) -> ir.TensorInfo:
    out = ctx.new_tensor(base, "real", form.source.shape)
    ctx.low.lin_forms[out.name] = form
    return out


def _resolve(ctx, t: ir.TensorInfo) -> tuple[ir.TensorInfo, np.ndarray]:
    """``t`` as (base tensor, indices into its last axis), looking through slices along the last axis."""
    idx = np.arange(t.shape[-1])
    while True:
        op = ctx.producer_op(t)
        if op is None or op.type != "slice":
            return t, idx
        src = ctx.low.tensors[op.inputs[0]]
        if int(op.attrs["axis"]) != len(src.shape) - 1:
            return t, idx
        full = np.arange(src.shape[-1])[int(op.attrs["start"]):int(op.attrs["stop"]):int(op.attrs["step"])]
        t, idx = src, full[idx]


def _check_source(ctx, x: ir.TensorInfo, what: str) -> None:
    if x.kind == "float":
        ctx.fail(f"{what} of the unquantized network input", hint="quantize the input first")
    if x.kind != "quant" or x.per_channel:
        ctx.fail(f"{what} of '{x.name}', {'a per-channel quantized tensor' if x.kind == 'quant' else x.described}: products with "
                 "constant tensors need a per-tensor quantized input", hint=f"put a QuantIdentity after '{x.name}'")


def as_form(ctx, x: ir.TensorInfo, what: str) -> LinForm:
    form = form_of(ctx, x)
    if form is not None:
        return form
    from gapforge.ops.lut import float_fn_of

    pend = float_fn_of(ctx, x)
    if pend is not None and pend.expr == "neg(x)":
        form = as_form(ctx, pend.source, what)
        return LinForm(form.source, [(g, -c) for g, c in form.terms], form.desc)
    if pend is not None:
        ctx.fail(f"{what} of the float result of {pend.desc}", hint=f"put a QuantIdentity right after {pend.desc}")
    base, idx = _resolve(ctx, x)
    _check_source(ctx, base, what)
    if base.shape[:-1] != x.shape[:-1] or len(idx) != base.shape[-1]:
        ctx.fail(f"{what} of '{x.name}', a part of '{base.name}' (only whole rows or their rotations are supported)",
                 hint=f"put a QuantIdentity after '{x.name}'")
    return LinForm(base, [(idx, np.ones(1))], f"'{ctx.name}'")


def mul_constant(ctx, x: ir.TensorInfo, c) -> ir.TensorInfo:
    """``x * c`` with a constant tensor (or number) ``c``: a pending form."""
    form = as_form(ctx, x, "a product with a constant tensor")
    shape = form.source.shape
    cv = c.detach().to(torch.float32).double().numpy() if isinstance(c, torch.Tensor) else np.float64(np.float32(c))
    cv = np.asarray(cv)
    try:
        out = list(np.broadcast_shapes(tuple(shape), cv.shape))
    except ValueError:
        ctx.fail(f"the constant of shape {list(cv.shape)} does not broadcast to the activation {shape}")
    if out != list(shape):
        ctx.fail(f"the constant of shape {list(cv.shape)} broadcasts the activation {shape} to {out}",
                 hint="the constant must not add axes to the activation (e.g. cos of shape [T, d] for q [B, H, T, d])")
    if cv.ndim == len(shape) and cv.shape[0] != 1:
        ctx.fail("the constant varies along the batch axis", hint="use a constant shared by the batch (leading 1)")
    terms = [(g, np.asarray(k) * cv) for g, k in form.terms]
    return _pending(ctx, LinForm(form.source, terms, form.desc), ctx.name)


def neg_form(ctx, x: ir.TensorInfo) -> ir.TensorInfo:
    form = form_of(ctx, x)
    return _pending(ctx, LinForm(form.source, [(g, -c) for g, c in form.terms], form.desc), ctx.name)


def add_forms(ctx, a: ir.TensorInfo, b: ir.TensorInfo) -> ir.TensorInfo:
    fa, fb = as_form(ctx, a, "a sum"), as_form(ctx, b, "a sum")
    if fa.source.name != fb.source.name:
        ctx.fail(f"adds products with constants of two different tensors ('{fa.source.name}', '{fb.source.name}')",
                 hint="quantize each product (a QuantIdentity) before adding them")
    return _pending(ctx, LinForm(fa.source, fa.terms + fb.terms, fa.desc), ctx.name)


def sub_forms(ctx, a: ir.TensorInfo, b: ir.TensorInfo) -> ir.TensorInfo:
    fa, fb = as_form(ctx, a, "a difference"), as_form(ctx, b, "a difference")
    if fa.source.name != fb.source.name:
        ctx.fail(f"subtracts products with constants of two different tensors ('{fa.source.name}', "
                 f"'{fb.source.name}')", hint="quantize each product (a QuantIdentity) before subtracting them")
    return _pending(ctx, LinForm(fa.source, fa.terms + [(g, -c) for g, c in fb.terms], fa.desc), ctx.name)


def cat_forms(ctx, xs: list[ir.TensorInfo], axis: int) -> ir.TensorInfo | None:
    """cat along the last axis of parts of one tensor, some negated (rotate_half): a pending form, or
    None when this is not such a cat (the ordinary concat applies)."""
    from gapforge.ops.lut import float_fn_of

    if not any(form_of(ctx, x) is not None or float_fn_of(ctx, x) is not None for x in xs):
        return None
    nd = len(xs[0].shape)
    if axis % nd != nd - 1:
        return None
    parts = []
    for x in xs:
        sign, t = 1.0, x
        pend = float_fn_of(ctx, x)
        if pend is not None:
            if pend.expr != "neg(x)":
                return None
            sign, t = -1.0, pend.source
        if t.kind != "quant" or form_of(ctx, t) is not None:
            return None
        base, idx = _resolve(ctx, t)
        parts.append((base, idx, sign))
    base = parts[0][0]
    idx = np.concatenate([p[1] for p in parts])
    if any(p[0].name != base.name for p in parts) or len(idx) != base.shape[-1] or base.shape[:-1] != xs[0].shape[:-1]:
        return None
    coef = np.concatenate([np.full(len(p[1]), p[2]) for p in parts])
    return _pending(ctx, LinForm(base, [(idx, coef)], f"'{ctx.name}'"), ctx.name)


def _period(blocks: list[np.ndarray]) -> int:
    rows = blocks[0].shape[0]
    for p in range(1, rows + 1):
        if rows % p == 0 and all(np.array_equal(b, np.tile(b[:p], (rows // p, 1))) for b in blocks):
            return p
    return rows


def emit_lincomb(ctx, x: ir.TensorInfo) -> None:
    """Emit the op computing the pending real tensor ``x`` (its quantizer is being lowered)."""
    form = ctx.low.lin_forms.pop(x.name)
    shape = form.source.shape
    d = shape[-1]
    blocks = [np.broadcast_to(c, shape)[0].reshape(-1, d).astype(np.float64) for _, c in form.terms]
    p = _period(blocks)
    attrs = {"gather": [[int(v) for v in g] for g, _ in form.terms],
             "coef": [[float(v) for v in b[:p].reshape(-1)] for b in blocks], "period": p}
    ctx.emit("lincomb", [form.source], [x], attrs=attrs)


FRONTENDS: list = []  # built by the frontends of mul, add, sub, neg and cat (gapforge/ops/mul.py, add.py, lut.py, concat.py)
