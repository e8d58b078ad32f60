"""add: element-wise sum of two activations (residual connections)."""

from __future__ import annotations

import brevitas.nn as qnn
import torch

from gapforge.lowering import same_scale
from gapforge.ops._base import Attr, Frontend, IROp, Tiling
from gapforge.ops._shapes import ShapeError, inputs_of
from gapforge.ops.requantize import quantize_to


def infer_shapes(inputs, attrs, params):
    """Two inputs of equal shape (no broadcasting) -> that shape."""
    a, b = inputs_of(inputs, 2)
    if list(a) != list(b):
        raise ShapeError(f"adds tensors of shapes {a} and {b}; they must be equal (no broadcasting)")
    return [list(a)]


def _signs(net, step):
    return [1, -1] if step.attrs.get("subtract") else [1, 1]


IR_OP = IROp(
    name="add",
    summary="Element-wise sum (or difference, a - b) of two tensors of the same shape.",
    semantics="Same scales: acc = q_a + q_b exactly (int32), offsets add up. Different scales: the sum "
              "is real and the following requantize computes rne(q_a*M_a + q_b*M_b + O) with one "
              "64-bit accumulator and a shared shift. subtract: a - b, always real, requantized with "
              "M_b = -s_b / s_out (one rounding, the same kernel).",
    inputs="two quant/acc/real tensors of equal shape (quant inputs: zero point 0)",
    attrs={"subtract": Attr({"type": "boolean"}, "a - b instead of a + b (the output must be requantized)",
                            required=False)},
    reference="add",
    kernels=("gf_add",),
    fusion="head",
    requantizes=True,
    source_signs=_signs,
    sources=lambda engine, step, inputs: list(inputs),
    call=lambda cg: cg.call("gf_add", (cg.X[0], cg.T[0], cg.X[1], cg.T[1], *cg.eltwise_extent(), cg.rq_arg, cg.Y)),
    tiling=Tiling("eltwise"),
    infer_shapes=infer_shapes,
)


def emit_add(ctx, a, b, base, subtract: bool = False):
    """``a + b`` (``a - b`` with ``subtract``: a real difference that the next quantizer rounds)."""
    verb = "subtracts" if subtract else "adds"
    for t in (a, b):
        if t.kind == "float":
            ctx.fail(f"{verb} the unquantized network input", hint="quantize the input first")
        if t.kind == "quant" and t.zero_point != 0:
            ctx.fail(f"{verb} a tensor with zero point {t.zero_point}; only zero point 0 is supported")
    if a.shape != b.shape:
        ctx.fail(f"{verb} tensors of shapes {a.shape} and {b.shape}; broadcasting is not supported")
    if subtract:
        out = ctx.new_tensor(base, "real", a.shape)
        ctx.emit("add", [a, b], [out], attrs={"subtract": True})
        return out
    if a.kind in ("quant", "acc") and b.kind in ("quant", "acc") and same_scale(a, b):
        offset = None
        if any(t.kind == "acc" and t.offset is not None for t in (a, b)):
            n = a.shape[a.channel_axis]
            offset = [x + y for x, y in zip(a.offset_list(n), b.offset_list(n))]
        out = ctx.new_tensor(base, "acc", a.shape, scale=a.scale, channel_axis=a.channel_axis, offset=offset)
    else:
        out = ctx.new_tensor(base, "real", a.shape)
    ctx.emit("add", [a, b], [out])
    return out


def _lower_add_function(ctx) -> None:
    args = [a for a in (ctx.arg(0, "input"), ctx.arg(1, "other"))]
    alpha = ctx.node.kwargs.get("alpha", 1)
    if alpha != 1:
        ctx.fail(f"torch.add with alpha={alpha} is not supported")
    acts = [ctx.act_of(a) for a in args]
    if acts.count(None) == 1 and _is_constant(args[acts.index(None)]):
        from gapforge.ops.add_constant import lower_add_constant
        from gapforge.ops.softmax import lower_additive_mask

        if lower_additive_mask(ctx, acts[1 - acts.index(None)], args[acts.index(None)]):
            return  # scores + a constant mask of 0 / -inf, read by a softmax

        lower_add_constant(ctx, acts[1 - acts.index(None)], args[acts.index(None)])
        return
    if None in acts:
        ctx.fail("adds no activation" if acts == [None, None] else
                 f"adds a {type(args[acts.index(None)]).__name__} to an activation; only sums of two activations "
                 "or of an activation and a number or constant tensor are supported")
    a, b = (ctx.tensor_of_act(x) for x in acts)
    from gapforge.ops.lincomb import add_forms, form_of

    if form_of(ctx, a) is not None or form_of(ctx, b) is not None:
        ctx.bind(add_forms(ctx, a, b))  # a sum of products with constants (RoPE): gapforge/ops/lincomb.py
        return
    ctx.bind(emit_add(ctx, a, b, ctx.name))


def _is_constant(obj) -> bool:
    return isinstance(obj, torch.Tensor) or (isinstance(obj, (int, float)) and not isinstance(obj, bool))


def _lower_sub_function(ctx) -> None:
    """``a - b``: of two activations an add with the subtrahend's multiplier negated; with a constant an
    add_constant of ``-c`` (x - c) or of the negated activation (c - x); of float functions of one tensor a
    table; of products with constants (RoPE) a lincomb."""
    args = [ctx.arg(0, "input"), ctx.arg(1, "other")]
    alpha = ctx.node.kwargs.get("alpha", 1)
    if alpha != 1:
        ctx.fail(f"torch.sub with alpha={alpha} is not supported", hint="write a - b * alpha with a quantizer after")
    acts = [ctx.act_of(a) for a in args]
    if acts == [None, None]:
        ctx.fail("subtracts no activation")
    if None in acts:
        k = 0 if acts[0] is not None else 1
        c = args[1 - k]
        if not _is_constant(c):
            ctx.fail(f"subtracts a {type(c).__name__}; only activations, numbers and constant tensors are supported")
        x = ctx.tensor_of_act(acts[k])
        from gapforge.ops.lut import apply_float_fn, float_fn_of

        if float_fn_of(ctx, x) is not None:  # f(x) - c: still a function of one tensor (a table)
            cc = c.detach().clone() if isinstance(c, torch.Tensor) else c
            fn = (lambda v, cc=cc: torch.sub(v, cc)) if k == 0 else (lambda v, cc=cc: cc - v)
            ctx.bind(apply_float_fn(ctx, x, fn, f"difference with a constant '{ctx.name}'",
                                    "sub(x, c)" if k == 0 else "sub(c, x)", ctx.name))
            return
        from gapforge.ops.add_constant import lower_add_constant

        lower_add_constant(ctx, acts[k], c, negate_constant=k == 0, negate_activation=k == 1)
        return
    a, b = (ctx.tensor_of_act(x) for x in acts)
    from gapforge.ops.lincomb import form_of, sub_forms
    from gapforge.ops.lut import combine_float_fns

    if form_of(ctx, a) is not None or form_of(ctx, b) is not None:
        ctx.bind(sub_forms(ctx, a, b))
        return
    same = combine_float_fns(ctx, a, b, torch.sub, f"difference '{ctx.name}'", "sub(a, b)", ctx.name)
    if same is not None:
        ctx.bind(same)
        return
    ctx.bind(emit_add(ctx, a, b, ctx.name, subtract=True))


def _lower_eltwise_add(ctx) -> None:
    m = ctx.module
    a, b = ctx.input_tensor(0), ctx.input_tensor(1)
    if m.input_quant.is_quant_enabled:
        a = quantize_to(ctx, a, m.input_quant, f"{ctx.name}.input_quant")
        b = quantize_to(ctx, b, m.input_quant, f"{ctx.name}.input_quant")
    y = emit_add(ctx, a, b, ctx.name)
    if m.output_quant.is_quant_enabled:
        y = quantize_to(ctx, y, m.output_quant, f"{ctx.name}.output_quant")
    ctx.bind(y)


FRONTENDS = [
    Frontend(
        name="x + y / torch.add / Tensor.add (two activations)",
        functions=("add",),
        lowers_to=("add", "add_constant", "lincomb"),
        doc="Sum of two activations of equal shape, QuantTensors (Brevitas requires equal scales in "
            "eval mode: the sum is an exact integer) or float tensors of any scales (the next "
            "quantizer requantizes the real sum). An activation plus a constant tensor (a learned position "
            "embedding nn.Parameter, broadcastable to it) or a Python number lowers to add_constant and must go "
            "to a QuantIdentity; added to the fresh accumulator of a QuantConv / QuantLinear / matmul that nothing "
            "else reads, a constant that is one number or one per channel folds into its offset instead (as a "
            "BatchNorm; brevitas_examples' TensorNorm on the logits). Broadcasting of two activations is refused. "
            "A sum of products "
            "of one quantized tensor with constant tensors (RoPE) goes to lincomb.",
        lower=_lower_add_function,
    ),
    Frontend(
        name="x - y / torch.sub / Tensor.sub",
        functions=("sub",),
        lowers_to=("add", "add_constant", "lut", "lincomb"),
        doc="Difference of two activations of equal shape (QuantTensors: Brevitas requires equal scales in eval "
            "mode; tensors out of quantizers or float layer outputs: any scales) lowered to add with the "
            "subtrahend's multiplier negated, so a quantizer must follow (one rounding of the exact difference). "
            "x - c and c - x with a constant (a Python number or a constant tensor broadcastable to x) on a "
            "quantized activation lower to add_constant and must go to a QuantIdentity (of a fresh conv / linear "
            "accumulator, one number or one per channel: folded into its offset); f(x) - c of a float "
            "function of one tensor is part of its table, differences of products with constants (RoPE) go to "
            "lincomb. torch.sub with alpha != 1 is refused.",
        lower=_lower_sub_function,
    ),
    Frontend(
        name="brevitas.nn.QuantEltwiseAdd",
        modules=(qnn.QuantEltwiseAdd,),
        lowers_to=("requantize", "add", "requantize"),
        doc="Both inputs go through the shared input quantizer, then add, then the output quantizer.",
        lower=_lower_eltwise_add,
    ),
]
