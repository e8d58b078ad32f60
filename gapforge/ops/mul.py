"""mul: element-wise product of two quantized activations (gating), and products that are a
float function of one tensor.

``x * y`` of two quantized tensors is ``s_x s_y (q_x - z_x)(q_y - z_y)``: an exact int32 product
(zero points handled exactly), then the requantization of the following quantizer (one rounding).
Broadcasting of the shapes users write for gates (``[N, C, H, W] * [N, C, 1, 1]``,
``[N, T, F] * [N, T, 1]``) is supported up to 4-D. ``x * f(x)`` (SiLU written by hand, ``x * x``)
and ``x * constant`` are float functions of one tensor: they become a table (gapforge/ops/lut.py).
"""

from __future__ import annotations

import numpy as np
import torch

import atomic_ops
from gapforge import ir
from gapforge.ops._base import Frontend, IROp, Tiling
from gapforge.ops._shapes import ShapeError, inputs_of
from gapforge.ops.lincomb import form_of, mul_constant
from gapforge.ops.lut import apply_float_fn, combine_float_fns, float_fn_of
from gapforge.ops.rescale import lower_constant_scaling

MAX_RANK = 4


def broadcast_shape(a: list[int], b: list[int]) -> list[int]:
    try:
        return list(np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        raise ShapeError(f"shapes {a} and {b} do not broadcast") from None


def infer_shapes(inputs, attrs, params):
    """Two inputs whose shapes broadcast (numpy rules, at most 4-D) -> the broadcast shape."""
    a, b = inputs_of(inputs, 2)
    out = broadcast_shape(a, b)
    if len(out) > MAX_RANK:
        raise ShapeError(f"products of {len(out)}-D tensors: at most {MAX_RANK}-D")
    return [out]


def _strides(shape: list[int], out: list[int]) -> list[int]:
    """Element strides of an input of ``shape`` read at each of the 4 (padded) output axes (0: broadcast)."""
    shape = [1] * (len(out) - len(shape)) + list(shape)
    st, acc = [0] * len(out), 1
    for d in range(len(out) - 1, -1, -1):
        st[d] = acc if shape[d] != 1 else 0
        acc *= shape[d]
    return [0] * (MAX_RANK - len(out)) + st


def mul_shape(net: ir.Network, op: ir.OpInfo) -> tuple:
    """The kernel's gf_mul_shape_t: (output shape padded to 4-D, strides of a, strides of b, z_a, z_b)."""
    a, b = (net.tensors[t] for t in op.inputs)
    out = net.tensors[op.outputs[0]].shape
    shape4 = tuple([1] * (MAX_RANK - len(out)) + list(out))
    return (shape4, tuple(_strides(a.shape, out)), tuple(_strides(b.shape, out)), int(a.zero_code), int(b.zero_code))


def _acc_bound(net, step):
    op = net.op_by_name(step.main_op)
    bound = 1
    for t in (net.tensors[n] for n in op.inputs):
        lo, hi = t.qrange()
        bound *= max(abs(lo - t.zero_code), abs(hi - t.zero_code))
    return np.array([bound], dtype=np.int64)


def _sources(engine, step, inputs):
    op = engine.net.op_by_name(step.main_op)
    za, zb = (engine.net.tensors[t].zero_code for t in op.inputs)
    return [atomic_ops.get("mul")(inputs[0], za, inputs[1], zb)]


def _call(cg):
    mp = mul_shape(cg.net, cg.op)
    shape4, sa, sb = (", ".join(map(str, v)) for v in mp[:3])
    lit = f"&(const gf_mul_shape_t){{{{{shape4}}}, {{{sa}}}, {{{sb}}}, {mp[3]}, {mp[4]}}}"  # a C99 compound literal
    n, inner = cg.eltwise_extent()
    return cg.call("gf_mul", (cg.X[0], cg.T[0], cg.X[1], cg.T[1], lit, "0", n, "0", "0", inner, cg.rq_arg, cg.Y),
                   mul_shape=mp)


def _macs(net, step) -> int:
    return net.tensors[step.output].numel


IR_OP = IROp(
    name="mul",
    summary="Element-wise product of two quantized tensors (broadcasting up to 4-D).",
    semantics="acc = (q_a - z_a) * (q_b - z_b) exactly in int32 (|acc| <= 255^2), real = s_a * s_b * acc; "
              "the following requantize rounds it once (per channel when either scale is per channel).",
    inputs="two quant tensors of at most 8 bits (any zero points) whose shapes broadcast",
    reference="mul",
    kernels=("gf_mul",),
    fusion="head",
    requantizes=True,
    acc_bound=_acc_bound,
    sources=_sources,
    call=_call,
    tiling=Tiling("eltwise"),
    macs=_macs,
    infer_shapes=infer_shapes,
)


def emit_mul(ctx, a: ir.TensorInfo, b: ir.TensorInfo, base: str) -> ir.TensorInfo:
    for t in (a, b):
        pending = float_fn_of(ctx, t)
        if pending is not None:
            ctx.fail(f"multiplies the float result of {pending.desc} by another activation",
                     hint=f"put a QuantIdentity right after {pending.desc}")
        if t.kind == "float":
            ctx.fail("multiplies the unquantized network input", hint="quantize the input first")
        if t.kind != "quant":
            ctx.fail(f"multiplies '{t.name}', {t.described} (no 8-bit encoding)",
                     hint=f"put a QuantIdentity after '{t.name}'")
    try:
        shape = broadcast_shape(a.shape, b.shape)
    except ShapeError as exc:
        ctx.fail(str(exc))
    if len(shape) > MAX_RANK:
        ctx.fail(f"multiplies {len(shape)}-D tensors; at most {MAX_RANK}-D are supported")
    per_channel = False
    chans = shape[1] if len(shape) > 1 else 1
    scales = []
    for t in (a, b):
        if t.per_channel:
            if t.channel_axis != 1 or len(t.shape) != len(shape):
                ctx.fail(f"'{t.name}' has per-channel scales along axis {t.channel_axis}; products support "
                         "per-channel scales along axis 1 of a full-rank operand only")
            per_channel = True
            vals = t.scale_list(t.shape[1])
            scales.append(vals * chans if len(vals) == 1 else vals)
        else:
            scales.append([float(t.scale)] * chans)
    sigma = [sa * sb for sa, sb in zip(*scales)]  # float64 product of two float32 values: exact
    acc = ctx.new_tensor(base, "acc", shape, scale=sigma if per_channel else sigma[0],
                         channel_axis=1 if per_channel else None)
    ctx.emit("mul", [a, b], [acc])
    return acc


def _lower_mul(ctx) -> None:
    args = [ctx.arg(0, "input"), ctx.arg(1, "other")]
    acts = [ctx.act_of(v) for v in args]
    if acts[0] is None and acts[1] is None:
        ctx.fail("multiplies no activation")
    if None in acts:  # activation * constant: a float function of one tensor
        k = 0 if acts[0] is not None else 1
        c = args[1 - k]
        x = ctx.tensor_of_act(acts[k])
        if (isinstance(c, torch.Tensor) and c.numel() != 1) or form_of(ctx, x) is not None:
            ctx.bind(mul_constant(ctx, x, c))  # a product with a constant tensor (gapforge/ops/lincomb.py)
            return
        if isinstance(c, torch.Tensor):
            c = c.detach().clone()
        if float_fn_of(ctx, x) is None and lower_constant_scaling(ctx):
            return  # scaling by a positive constant folds into the scale (gapforge/ops/rescale.py)
        ctx.bind(apply_float_fn(ctx, x, lambda v, c=c: torch.mul(v, c), f"product with a constant '{ctx.name}'",
                                f"mul(x, {c if not isinstance(c, torch.Tensor) else float(c)})", ctx.name))
        return
    a, b = (ctx.tensor_of_act(x) for x in acts)
    same = combine_float_fns(ctx, a, b, torch.mul, f"product '{ctx.name}'", "mul(a, b)", ctx.name)
    if same is not None:
        ctx.bind(same)
        return
    ctx.bind(emit_mul(ctx, a, b, ctx.name))


FRONTENDS = [
    Frontend(
        name="x * y / torch.mul / Tensor.mul (two activations)",
        functions=("mul",),
        lowers_to=("mul", "lut", "lincomb"),
        doc="Product of two quantized activations (tensors out of quantizers with any zero points; "
            "QuantTensors with zero point 0, as Brevitas allows) with broadcasting up to 4-D (gates such as [N, C, H, W] * [N, C, 1, 1]): an exact "
            "int32 product requantized once by the next quantizer. x * f(x), x * x and f(x) * scalar are float "
            "functions of one tensor and become a table (lut); x * c of a quantized tensor or an accumulator "
            "by a positive constant folds into its scale (rescale); x * C with a constant tensor C (RoPE's cos / "
            "sin buffers), and sums of such products, go to lincomb. The float result of a function times another "
            "activation is refused with a hint (quantize it first).",
        lower=_lower_mul,
    ),
]
