"""softmax: softmax over the last axis of a quantized tensor or an int32 accumulator, then a quantizer."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

import atomic_ops
from atomic_ops import softmax as ref
from gapforge.ops._base import Attr, Frontend, IROp, Tiling, checked_bound, output_range, per_tensor_scale
from gapforge.ops._shapes import ShapeError, same_shape

HINT_AXIS = ("move the axis last (x.transpose(d, -1)) before the softmax and back after its quantizer, "
             "or apply the softmax over the last axis")


HINT_MASK = ("apply a constant mask (a registered buffer, or torch.tril / torch.ones of the static size) with "
             "scores.masked_fill(mask, float('-inf')) right before F.softmax(scores, dim=-1)")


# -- the constant attention mask: attr "mask", one list of allowed [begin, end) key runs per pattern row;
# row r of the softmax's input (its rows: the last axis) uses pattern row r mod P
def mask_runs(allowed: np.ndarray) -> list[list[list[int]]]:
    """The attr of a bool [P, n] mask (True: the key takes part)."""
    out = []
    for row in np.asarray(allowed, dtype=bool):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
        out.append([[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2])])
    return out


def mask_array(runs, n: int) -> np.ndarray:
    """The bool [P, n] mask of the attr."""
    m = np.zeros((len(runs), n), dtype=bool)
    for p, row in enumerate(runs):
        for a, b in row:
            m[p, a:b] = True
    return m


def step_mask(step, n: int) -> np.ndarray | None:
    runs = step.attrs.get("mask")
    return None if runs is None else mask_array(runs, n)


def mask_pattern(allowed: np.ndarray) -> np.ndarray:
    """The shortest period P (a divisor of the rows) of a bool [rows, n] mask: its first P rows."""
    rows = allowed.shape[0]
    for p in range(1, rows + 1):
        if rows % p == 0 and (allowed.reshape(rows // p, p, -1) == allowed[:p]).all():
            return allowed[:p]
    return allowed


def prepare(net, step) -> ref.SoftmaxParams:
    x = net.tensors[step.inputs[0]]
    y = net.tensors[step.output]
    lo, hi = output_range(net, step)
    n = x.shape[-1]
    return checked_bound(ref.prepare(per_tensor_scale(x), x.qrange() if x.kind == "quant" else None,
                                     float(y.scale), int(y.zero_point), lo, hi, n, step_mask(step, n)),
                         f" (rows of {n} elements)")


def _exact(engine, step, inputs):
    x = engine.net.tensors[step.inputs[0]]
    y = engine.net.tensors[step.output]
    return ref.exact(inputs[0], per_tensor_scale(x), float(y.scale), step_mask(step, x.shape[-1]))


def _call(cg):
    rows, n = cg.rows_extent()
    return cg.call("gf_softmax", (cg.X[0], cg.T[0], "0", rows, n, cg.param_block(), cg.Y))


def infer_shapes(inputs, attrs, params):
    """The input's shape; a mask's pattern rows divide the input's rows, its runs lie within the last axis."""
    out = same_shape(inputs, attrs, params)
    runs = attrs.get("mask")
    if runs is not None:
        shape = inputs[0]
        n, rows = shape[-1], math.prod(shape[:-1])
        if not runs or rows % len(runs):
            raise ShapeError(f"a mask of {len(runs)} rows does not divide the {rows} rows of {shape}")
        for row in runs:
            if not row or any(not 0 <= a < b <= n for a, b in row):
                raise ShapeError(f"mask runs {row} are not non-empty ranges of the {n} keys")
    return out


IR_OP = IROp(
    name="softmax",
    summary="Softmax over the last axis, quantized by the following quantizer.",
    semantics="Per row: d = max - x; exp(-s d) from per-digit tables in Q62 (rounded products), summed "
              "in Q36 (exact integer sum), one exact integer division and one round-half-even to the "
              "output code; error below 1e-5 output steps (docs/integer_contract.md, Softmax). With a "
              "constant mask the masked keys are out of the max and the sum, their output is the code of 0.",
    inputs="one quant tensor (per-tensor scale, any zero point) or int32 acc (per-tensor scale and offset)",
    attrs={"mask": Attr({"type": "array", "minItems": 1,
                         "items": {"type": "array", "minItems": 1,
                                   "items": {"type": "array", "minItems": 2, "maxItems": 2,
                                             "items": {"type": "integer", "minimum": 0}}}},
                        "constant attention mask: per pattern row the [begin, end) runs of allowed keys; row r of "
                        "the input uses pattern row r mod (number of pattern rows); masked keys take no part in "
                        "the max and the sum, their output is the code of 0.0", required=False)},
    reference="softmax",
    kernels=("gf_softmax",),
    fusion="head",
    prepare=prepare,
    run=lambda engine, step, inputs: atomic_ops.get("softmax")(inputs[0], step.params),
    exact=_exact,
    call=_call,
    tiling=Tiling("rows"),
    macs=lambda net, step: net.tensors[step.output].numel,  # the product e * R of every element
    infer_shapes=infer_shapes,
)


def _is_softmax(node) -> bool:
    if node.kind == "module":
        return isinstance(node.module, nn.Softmax)
    return node.type_name == "softmax"


def _score_bound(x) -> float:
    """A bound on |real value| of the scores ``x`` (quant or int32 acc)."""
    if x.kind == "quant":
        lo, hi = x.qrange()
        return per_tensor_scale(x) * max(abs(lo - x.zero_code), abs(hi - x.zero_code))
    off = x.offset if x.offset is not None else 0.0
    off = max(abs(float(o)) for o in off) if isinstance(off, list) else abs(float(off))
    return abs(per_tensor_scale(x)) * 2.0**31 + off


def _masks_out(ctx, x, value: float) -> bool:
    """``value`` filled in the scores ``x`` gives exp 0 in PyTorch's float32 softmax whatever the row."""
    return value == -math.inf or value + _score_bound(x) <= -128.0


def _softmax_readers_only(ctx, what: str) -> None:
    if ctx.node.outputs[0] in ctx.low.graph.outputs or not ctx.consumers(0):
        ctx.fail(f"the {what} scores are a network output; a mask is deployable only right before a softmax over "
                 "the last axis", hint=HINT_MASK)
    for node in ctx.consumers(0):
        if not _is_softmax(node):
            ctx.fail(f"the {what} scores go to {node.describe()}; a mask is deployable only right before a "
                     "softmax over the last axis", hint=HINT_MASK)


def dead_rows_problem(masked: np.ndarray) -> str | None:
    """The message for a bool mask (True: excluded) with a row of only masked keys, or None."""
    full = masked.reshape(-1, masked.shape[-1])
    dead = np.flatnonzero(full.all(axis=1))
    if not dead.size:
        return None
    q = int(dead[0]) % masked.shape[-2] if masked.ndim >= 2 else int(dead[0])
    return f"masks every key of query row {q}: PyTorch's softmax gives NaN there"


HINT_DEAD = "leave at least one key unmasked per query row (e.g. the diagonal of a causal mask)"


def mask_into_softmax(ctx, act: int, masked: np.ndarray, what: str) -> None:
    """Bind this node's output to the scores ``act`` with the bool ``masked`` (True: excluded, the
    output's shape) pending for the softmax that must read it."""
    _softmax_readers_only(ctx, what)
    prev = ctx.low.softmax_masks.get(act)
    if prev is not None:
        masked = masked | prev
    problem = dead_rows_problem(masked)
    if problem:
        ctx.fail(f"the {what} {problem}", hint=HINT_DEAD)
    out = ctx.node.outputs[0]
    ctx.low.act_tensor[out] = ctx.low.act_tensor[act]  # the unmasked scores (their value stays Brevitas')
    ctx.low.softmax_masks[out] = masked


def constant_mask(ctx, mask, shape, what: str) -> np.ndarray:
    """A captured constant bool mask broadcast to ``shape`` (numpy bool)."""
    if ctx.act_of(mask) is not None:
        ctx.fail(f"the {what} is computed from the activations; only constant masks are supported", hint=HINT_MASK)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        ctx.fail(f"the {what} is a {getattr(mask, 'dtype', type(mask).__name__)}, not a bool tensor",
                 hint="use a bool mask (True where the key is masked)")
    try:
        return np.broadcast_to(mask.detach().cpu().numpy(), shape).copy()
    except ValueError:
        ctx.fail(f"the {what} of shape {list(mask.shape)} does not broadcast to the scores' {list(shape)}")


def _lower_masked_fill(ctx) -> None:
    act = ctx.node.inputs[0] if ctx.node.inputs else None
    if act is None or ctx.act_of(ctx.arg(0, "input")) is None:
        ctx.fail("masked_fill of a constant tensor is not supported", hint=HINT_MASK)
    x = ctx.tensor_of_act(act)
    shape = ctx.out_shape(0)
    if list(ctx.in_shape(0)) != shape:
        ctx.fail(f"the mask broadcasts the scores from {ctx.in_shape(0)} to {shape}",
                 hint="give the mask the scores' shape or one that broadcasts to it")
    _softmax_readers_only(ctx, "masked_fill")
    masked = constant_mask(ctx, ctx.arg(1, "mask"), shape, "masked_fill mask")
    value = ctx.arg(2, "value")
    if ctx.act_of(value) is not None:
        ctx.fail("masked_fill with a value computed from the activations", hint=HINT_MASK)
    value = float(value.item() if isinstance(value, torch.Tensor) else value)
    if x.kind not in ("quant", "acc"):
        ctx.fail(f"applies masked_fill to {x.described}", hint=HINT_MASK)
    if not _masks_out(ctx, x, value):
        ctx.fail(f"masked_fill with value {value:g}: only -inf (or a value far below every score, e.g. -1e9 or "
                 "torch.finfo(torch.float32).min) masks exactly", hint="fill with float('-inf')")
    mask_into_softmax(ctx, act, masked, "masked_fill")


def additive_mask(ctx, x, const: np.ndarray, what: str) -> np.ndarray:
    """The bool mask of a constant float mask of 0 and -inf (or far-negative values) added to the scores."""
    const = np.asarray(const, dtype=np.float64)
    masked = np.isneginf(const) | (const + _score_bound(x) <= -128.0)
    if (const[~masked] != 0).any():
        ctx.fail(f"the {what} added before the softmax has values other than 0 and -inf (e.g. "
                 f"{float(const[~masked][const[~masked] != 0][0]):g}): a bias on the scores is not supported",
                 hint="add a mask of 0 (keep) and float('-inf') (mask) only, or use a bool mask with masked_fill")
    return masked


def lower_additive_mask(ctx, act: int, const) -> bool:
    """``scores + mask`` (a constant) whose every reader is a softmax: a mask; False if not that form."""
    if not ctx.consumers(0) or not all(_is_softmax(nd) for nd in ctx.consumers(0)):
        return False
    if not isinstance(const, torch.Tensor) or not const.is_floating_point():
        return False
    x = ctx.tensor_of_act(act)
    shape = ctx.out_shape(0)
    if list(ctx.low.graph.activations[act].shape) != shape:
        ctx.fail("the additive mask broadcasts the scores to a larger shape",
                 hint="give the mask the scores' shape or one that broadcasts to it")
    if x.kind not in ("quant", "acc"):
        ctx.fail(f"adds a mask to {x.described}", hint=HINT_MASK)
    c = np.broadcast_to(const.detach().to(torch.float64).cpu().numpy(), shape)
    mask_into_softmax(ctx, act, additive_mask(ctx, x, c, "additive mask"), "additive mask")
    return True


def _lower(ctx) -> None:
    x = ctx.input_tensor(0)
    nd = len(x.shape)
    if ctx.node.kind == "module":
        dim = ctx.module.dim
    else:
        dim = ctx.arg(1, "dim")
        if ctx.node.kwargs.get("dtype") is not None or any(isinstance(a, torch.dtype) for a in ctx.node.args):
            ctx.fail("softmax with a dtype argument is not supported", hint="drop the dtype argument")
    if dim is None:
        ctx.fail("softmax without dim (PyTorch's implicit dimension) is not supported",
                 hint="pass dim=-1 (the last axis)")
    if int(dim) % nd != nd - 1:
        ctx.fail(f"softmax over axis {dim} of a {nd}-D tensor; only the last axis is supported", hint=HINT_AXIS)
    if x.kind == "float":
        ctx.fail("applies softmax to the unquantized network input", hint="put a QuantIdentity before it")
    if x.kind not in ("quant", "acc"):
        ctx.fail(f"applies softmax to {x.described} (no integer encoding)",
                 hint="put a QuantIdentity before the softmax")
    if x.per_channel:
        ctx.fail("applies softmax to a tensor with per-channel scales",
                 hint="use a per-tensor quantizer (QuantIdentity) before the softmax")
    if x.kind == "acc" and isinstance(x.offset, list) and len(set(x.offset)) > 1:
        ctx.fail("applies softmax to an accumulator with a float per-feature bias (not an integer)",
                 hint="use bias_quant=Int32Bias on the layer, or put a QuantIdentity before the softmax")
    masked = ctx.low.softmax_masks.get(ctx.node.inputs[0])
    out = ctx.new_tensor(ctx.name, "real", x.shape)
    emit_softmax(ctx, x, out, masked)
    ctx.bind(out)


def emit_softmax(ctx, x, out, masked: np.ndarray | None = None) -> None:
    """The softmax op of ``x`` into ``out``; ``masked``: bool of x's shape, True at the excluded keys."""
    attrs = {}
    if masked is not None:
        allowed = ~np.asarray(masked, dtype=bool).reshape(-1, x.shape[-1])
        attrs["mask"] = mask_runs(mask_pattern(allowed))
    ctx.emit("softmax", [x], [out], attrs=attrs)


FRONTENDS = [
    Frontend(
        name="torch.nn.Softmax / F.softmax / torch.softmax / Tensor.softmax",
        modules=(nn.Softmax,),
        functions=("softmax",),
        lowers_to=("softmax",),
        doc="Softmax over the last axis of a quantized tensor (per-tensor scale) or of an int32 "
            "accumulator (e.g. logits of a QuantLinear with Int32Bias, or a product of activations), "
            "followed by a quantizer (QuantIdentity, e.g. Uint8ActPerTensorFloat). Other axes, "
            "log_softmax and a dtype argument are refused with a hint.",
        lower=_lower,
    ),
    Frontend(
        name="Tensor.masked_fill / torch.masked_fill / masked_fill_ (an attention mask)",
        functions=("masked_fill", "masked_fill_"),
        lowers_to=("softmax",),
        doc="scores.masked_fill(mask, float('-inf')) (or -1e9, torch.finfo(torch.float32).min: any value far "
            "below every score) with a constant bool mask (a registered buffer such as torch.triu(torch.ones(T, T, "
            "dtype=torch.bool), 1), or built in forward from constants), broadcast over batch and heads, right "
            "before a softmax over the last axis: the softmax's constant mask (masked keys out of the max and the "
            "sum, their output the code of 0.0). The additive form scores + mask (a constant float mask of 0 and "
            "-inf) before a softmax is the same. Refused with a hint: a mask computed from the activations, a "
            "row with every key masked (PyTorch gives NaN), a masked result read by anything but a softmax, "
            "other fill values.",
        lower=_lower_masked_fill,
    ),
]
