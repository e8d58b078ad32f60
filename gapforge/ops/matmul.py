"""matmul: product of two quantized activations (attention scores q @ k^T, weights @ v)."""

from __future__ import annotations

import math

import numpy as np

import atomic_ops
from gapforge.ops._base import Frontend, IROp, Tiling
from gapforge.ops._shapes import ShapeError, inputs_of


def infer_shapes(inputs, attrs, params):
    """a [..., M, K] and b [..., K, N] with equal leading axes -> [..., M, N]."""
    a, b = inputs_of(inputs, 2)
    if len(a) < 3 or len(b) != len(a):
        raise ShapeError(f"multiplies shapes {a} and {b}; both must have the same rank >= 3 (batch first)")
    if a[:-2] != b[:-2]:
        raise ShapeError(f"multiplies shapes {a} and {b}; the leading axes must be equal (no broadcasting)")
    if a[-1] != b[-2]:
        raise ShapeError(f"multiplies shapes {a} and {b}; the inner sizes {a[-1]} and {b[-2]} differ")
    return [list(a[:-1]) + [b[-1]]]


def _zero_points(net, step):
    a, b = (net.tensors[t] for t in net.op_by_name(step.main_op).inputs)
    return a.zero_code, b.zero_code


def _abs_max(t, zp: int) -> int:
    lo, hi = t.qrange()
    return max(abs(lo - zp), abs(hi - zp))


def acc_bound(net, step):
    """K * max|a - za| * max|b - zb|: the worst |acc| (one channel)."""
    a, b = (net.tensors[t] for t in net.op_by_name(step.main_op).inputs)
    return np.asarray([a.shape[-1] * _abs_max(a, a.zero_code) * _abs_max(b, b.zero_code)], dtype=np.int64)


def geometry(net, step) -> tuple[int, int, int, int]:
    """(groups, M, K, N) of a matmul step: the leading axes flattened into groups."""
    a, b = (net.tensors[t] for t in net.op_by_name(step.main_op).inputs)
    return int(math.prod(a.shape[:-2])), a.shape[-2], a.shape[-1], b.shape[-1]


def _sources(engine, step, inputs):
    za, zb = _zero_points(engine.net, step)
    return [atomic_ops.get("matmul")(inputs[0], inputs[1], za, zb)]


def _call(cg):
    g, m, k, n = geometry(cg.net, cg.step)
    za, zb = _zero_points(cg.net, cg.step)
    return cg.call("gf_matmul", (cg.X[0], cg.T[0], str(za), cg.X[1], cg.T[1], str(zb), str(g), str(m), str(k),
                                 str(n), cg.rq_arg, cg.Y))


def _macs(net, step) -> int:
    g, m, k, n = geometry(net, step)
    return g * m * k * n


IR_OP = IROp(
    name="matmul",
    summary="Matrix product of two quantized activations over their last two axes.",
    semantics="acc[..., i, j] = sum_k (q_a[..., i, k] - zp_a) * (q_b[..., k, j] - zp_b) in int32 "
              "(bound checked); scale s_a * s_b (times any folded constant factor).",
    inputs="two quant tensors (per-tensor scales, any zero points), equal leading axes, rank >= 3",
    reference="matmul",
    kernels=("gf_matmul",),
    kernels_per_input_type=False,
    fusion="head",
    requantizes=True,
    acc_bound=acc_bound,
    sources=_sources,
    call=_call,
    tiling=Tiling("gemm"),
    macs=_macs,
    infer_shapes=infer_shapes,
)


def _operand(ctx, obj, which: str):
    act = ctx.act_of(obj)
    if act is None:
        ctx.fail(f"multiplies an activation by a constant matrix ({which} operand)",
                 hint="use a QuantLinear layer for products with learned weights")
    t = ctx.tensor_of_act(act)
    if t.kind != "quant":
        ctx.fail(f"the {which} operand of the product is {t.described} without an 8-bit encoding"
                 + (" (the network input)" if t.kind == "float" else ""),
                 hint="put a QuantIdentity (or end the producing QuantLinear with an output quantizer) "
                      "before the product")
    if t.per_channel:
        ctx.fail(f"the {which} operand of the product has per-channel scales",
                 hint="use a per-tensor activation quantizer before the product")
    return t


def _lower_matmul(ctx) -> None:
    a = _operand(ctx, ctx.arg(0, "input"), "first")
    b = _operand(ctx, ctx.arg(1, "other" if ctx.node.type_name == "matmul" else "mat2"), "second")
    nd = len(a.shape)
    if nd < 3 or len(b.shape) != nd:
        ctx.fail(f"multiplies tensors of shapes {a.shape} and {b.shape}; both operands must have the same "
                 "rank, at least 3 (batch, [heads,] rows, columns)",
                 hint="reshape to (batch, tokens, features) or (batch, heads, tokens, features) first")
    if a.shape[:-2] != b.shape[:-2]:
        ctx.fail(f"multiplies tensors of shapes {a.shape} and {b.shape}; broadcasting of the leading axes is "
                 "not supported", hint="expand or reshape both operands to the same leading shape")
    acc = ctx.new_tensor(ctx.name, "acc", ctx.out_shape(0), scale=float(a.scale) * float(b.scale))
    ctx.emit("matmul", [a, b], [acc])
    ctx.bind(acc)


FRONTENDS = [
    Frontend(
        name="torch.matmul / torch.bmm / a @ b (two activations)",
        functions=("matmul", "bmm"),
        lowers_to=("matmul",),
        doc="Product of two quantized activations (e.g. q @ k.transpose(-2, -1), attn @ v) of equal "
            "rank >= 3 and equal leading axes (batch, heads); per-tensor scales, any zero points. The "
            "int32 result (scale s_a * s_b) is requantized by the quantizer that follows; a constant "
            "factor applied to it or to an operand (/ math.sqrt(d), * 0.125) folds into that scale.",
        lower=_lower_matmul,
    ),
]
