"""add_constant: a constant tensor (learned position embedding, class token) added to an activation.

The sum ``s * (q - zp) + C`` has no integer encoding of its own: it is an accumulator whose integers
are the input codes and whose per-element offset is ``C - s * zp``, so the quantizer that must follow
rounds it exactly (one 64-bit requantization with a per-element offset). The accumulator is laid out
flat ([1, N], one "channel" per element); the quantizer's output gets the activation's shape back.
"""

from __future__ import annotations

import numpy as np
import torch
from brevitas.nn import QuantIdentity

import atomic_ops
from gapforge.ops._base import IROp, Tiling
from gapforge.ops._shapes import ShapeError, inputs_of
from gapforge.ops.pad import emit_pad
from gapforge.ops.reshape import emit_reshape
from gapforge.plan import PlanError, input_abs_max


def infer_shapes(inputs, attrs, params):
    """One flat input [1, N] -> [1, N]."""
    (x,) = inputs_of(inputs, 1)
    if len(x) != 2:
        raise ShapeError(f"input must be flat [1, N], got {x}")
    return [list(x)]


def _check(net, step):
    if net.tensors[step.output].kind != "quant":
        op = net.op_by_name(step.main_op)
        raise PlanError(f"the constant added by '{op.module or op.source or op.name}' is not followed by a quantizer",
                        hint="put a QuantIdentity right after the addition of the constant")


IR_OP = IROp(
    name="add_constant",
    summary="Add a constant tensor (per element) to an activation, or subtract it from one (x - C, C - x); "
            "the quantizer after it rounds the sum.",
    semantics="acc = q (the input codes) with real = s' * acc + offset[e], s' = s (C - x: -s), offset = C - s' * zp "
              "per element (x - C: -C); the following requantize adds the offset in its 64-bit sum (one rounding).",
    inputs="one quant tensor, flat [1, N] (the lowering flattens it); its output must be requantized",
    reference="add_constant",
    kernels=("gf_requantize",),
    fusion="head",
    requantizes=True,
    acc_bound=lambda net, step: np.asarray([input_abs_max(net, step)], dtype=np.int64),
    check=_check,
    sources=lambda engine, step, inputs: [atomic_ops.get("add_constant")(inputs[0])],
    call=lambda cg: cg.call("gf_requantize", (cg.X[0], cg.T[0], *cg.eltwise_extent(), cg.rq_arg, cg.Y)),
    tiling=Tiling("eltwise"),
    infer_shapes=infer_shapes,
)


def _quantizer_consumers_only(ctx) -> None:
    for node in ctx.consumers(0):
        if node.kind == "module" and isinstance(node.module, QuantIdentity):
            continue
        if node.kind == "function" and node.type_name in ("add", "sub"):
            continue  # a further constant (folded) or a quantizer check of its own
        ctx.fail(f"the sum with a constant is used by {node.describe()}; it must go to a quantizer first",
                 hint="put a QuantIdentity right after the addition (or concatenation) of the constant")


def _constant_of(ctx, obj, shape) -> np.ndarray:
    """A captured constant (parameter, buffer, Python number) as float64, broadcast to ``shape``."""
    if not isinstance(obj, torch.Tensor):  # a Python number: PyTorch applies it to a float32 tensor in float32
        return np.broadcast_to(np.float64(np.float32(obj)), shape)
    t = obj.detach().to(torch.float32).numpy().astype(np.float64)
    try:
        return np.broadcast_to(t, shape)
    except ValueError:
        ctx.fail(f"a constant of shape {list(t.shape)} does not broadcast to the activation's {shape}")


def _fresh_constant_acc(ctx, x) -> bool:
    """``x`` is the sum of an activation and a constant that nothing has read yet (constants fold)."""
    p = ctx.producer_op(x)
    return p is not None and p.type == "add_constant" and not any(x.name in op.inputs for op in ctx.low.ops)


def _fold_into_layer_acc(ctx, act: int, x, c: np.ndarray, sign: float) -> bool:
    """``sign * x + c`` of a conv / linear / matmul accumulator that nothing else reads, with ``c`` one value or one
    per channel of the accumulator's channel axis: folded into its scale and offset, as a BatchNorm is
    (brevitas_examples' TensorNorm, ``(x - mean) / std * w + b`` of a classifier's logits). True when folded."""
    from gapforge.ops.rescale import fresh_sole_use

    prod = ctx.producer_op(x)
    if prod is None or prod.type not in ("conv2d", "linear", "matmul") or not fresh_sole_use(ctx, act, x):
        return False
    axis = x.channel_axis if x.channel_axis is not None else (1 if prod.type == "conv2d" else len(x.shape) - 1)
    varies = [a for a in range(1, c.ndim) if not np.all(c == c.take([0], axis=a))]
    if any(a != axis for a in varies):
        return False
    chans = int(x.shape[axis])
    idx = [0] * c.ndim
    idx[axis] = slice(None)
    cvec = np.broadcast_to(np.asarray(c[tuple(idx)], dtype=np.float64).reshape(-1), (chans,))
    scale = [sign * v for v in x.scale_list(chans)]
    offset = [sign * o + float(v) for o, v in zip(x.offset_list(chans), cvec)]
    if not varies and not x.per_channel and not isinstance(x.offset, list):  # per tensor stays per tensor
        x.scale, x.offset = scale[0], offset[0]
    else:
        x.scale, x.offset, x.channel_axis = scale, offset, axis
    ctx.bind(x)
    return True


def emit_add_constant(ctx, x, const: np.ndarray, base: str, sign: int = 1):
    """``sign * x + const`` (``const`` float64 of ``x``'s shape): the accumulator of scale ``sign * s``."""
    if x.kind != "quant":
        ctx.fail(f"adds a constant to {x.described}" + (" (the network input)" if x.kind == "float"
                                                            else ""),
                 hint="quantize the activation first (QuantIdentity)")
    if x.per_channel:
        ctx.fail("adds a constant to a tensor with per-channel scales", hint="use a per-tensor quantizer")
    shape = list(x.shape)
    n = int(np.prod(shape[1:]))
    flat = x if len(shape) == 2 else emit_reshape(ctx, x, [shape[0], n], f"{base}.flat")
    scale = sign * float(x.scale)
    offset = (np.asarray(const, dtype=np.float64).reshape(-1) - scale * x.zero_code).tolist()
    acc = ctx.new_tensor(base, "acc", [shape[0], n], scale=scale, channel_axis=1, offset=offset)
    ctx.emit("add_constant", [flat], [acc])
    ctx.low.restore_shape[acc.name] = shape
    return acc


def lower_add_constant(ctx, act: int, const, negate_constant: bool = False, negate_activation: bool = False) -> None:
    """``activation + constant`` (either order; ``x - c`` and ``c - x`` with the negations): fold into a fresh
    constant sum or start one."""
    x = ctx.tensor_of_act(act)
    shape = ctx.out_shape(0)
    if list(ctx.low.graph.activations[act].shape) != shape:
        ctx.fail(f"adding the constant broadcasts the activation from {list(ctx.low.graph.activations[act].shape)} "
                 f"to {shape}", hint="give the constant the activation's shape (or a broadcastable one)")
    c = _constant_of(ctx, const, shape) * (-1.0 if negate_constant else 1.0)
    if x.kind == "acc" and _fold_into_layer_acc(ctx, act, x, c, -1.0 if negate_activation else 1.0):
        return
    _quantizer_consumers_only(ctx)
    if x.kind == "acc" and _fresh_constant_acc(ctx, x):
        sign = -1.0 if negate_activation else 1.0
        x.scale = sign * float(x.scale)
        x.offset = (sign * np.asarray(x.offset, dtype=np.float64) + c.reshape(-1)).tolist()
        ctx.bind(x)
        return
    ctx.bind(emit_add_constant(ctx, x, c, ctx.name, sign=-1 if negate_activation else 1))


def lower_cat_with_constants(ctx, seq, axis: int) -> None:
    """``torch.cat`` of one activation with constants (a class token in front): the activation padded
    with its zero code, plus the constants as per-element offsets."""
    acts = [i for i, t in enumerate(seq) if ctx.act_of(t) is not None]
    if len(acts) != 1:
        ctx.fail("concatenates constants with several activations",
                 hint="concatenate the constants with one activation, then the result with the others")
    x = ctx.tensor_of_act(ctx.act_of(seq[acts[0]]))
    out_shape = ctx.out_shape(0)
    nd = len(out_shape)
    axis = axis % nd
    if axis == 0:
        ctx.fail("concatenation along the batch axis is not supported")
    if x.kind != "quant":
        ctx.fail(f"concatenates a constant with {x.described}", hint="quantize the activation first")
    for t in seq:
        if ctx.act_of(t) is None and not isinstance(t, torch.Tensor):
            ctx.fail(f"concatenates a {type(t).__name__}; only tensors are supported")
        if ctx.act_of(t) is None and (t.dim() != nd or axis >= t.dim()):
            ctx.fail(f"concatenates a constant of shape {list(t.shape)} with a {nd}-D activation")
    sizes = [int(t.shape[axis]) if ctx.act_of(t) is None else x.shape[axis] for t in seq]
    before, after = sum(sizes[:acts[0]]), sum(sizes[acts[0] + 1:])
    _quantizer_consumers_only(ctx)
    padded = emit_pad(ctx, x, axis, before, after, f"{ctx.name}.pad")
    const = np.zeros(out_shape, dtype=np.float64)
    pos = 0
    for t, size in zip(seq, sizes):
        if ctx.act_of(t) is None:
            idx = [slice(None)] * nd
            idx[axis] = slice(pos, pos + size)
            part_shape = list(out_shape)
            part_shape[axis] = size
            const[tuple(idx)] = _constant_of(ctx, t, part_shape)
        pos += size
    ctx.bind(emit_add_constant(ctx, padded, const, ctx.name))
