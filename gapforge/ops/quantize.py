"""quantize: the network's float32 input -> integers (runs on the host, never on the device).

The float operations a model applies to its raw input before the input quantizer (``x / 255.0 - 0.5``,
``(x - mean) / std``, ``x * 2 - 1``, ``x.float()``, ``x.clamp(0, 1)``, ``x.permute(0, 3, 1, 2)``, ``x.unsqueeze(1)``) are part of
this host-side step: the lowering records them in the op's ``preprocess`` attribute (a list of steps with
their constants, float32 values) instead of refusing them, and the host replays them with the same torch
operations before quantizing (atomic_ops/quantize.py ``preprocess``), so the integers equal Brevitas'. The
device program still receives the quantized input; only the golden's quantized input (and whatever host code
prepares the device's input) applies the preprocessing. A float value of the preprocessing that reaches
anything but a quantizer is refused like the raw input.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

import atomic_ops
from atomic_ops.quantize import binarize, index_key, preprocess, scaled
from gapforge import ir
from gapforge.ops._base import Attr, Frontend, IROp
from gapforge.ops._shapes import ShapeError, inputs_of


def _preprocessed(step, x):
    """The input after the op's preprocessing; NaN (a division by zero of it) refused in one line."""
    steps = step.attrs.get("preprocess")
    if not steps:
        return x
    from gapforge.inputs import checked

    return checked(preprocess(x, steps), f"the model's preprocessing of the network input before quantizer "
                                         f"'{step.output}' (a division by zero?)")


def _run(engine, step, inputs):
    t = engine.net.tensors[step.output]
    lo, hi = t.qrange()
    x = _preprocessed(step, inputs[0])
    if t.binary:
        return binarize(x)
    return atomic_ops.get("quantize")(x, t.scale, t.zero_point, lo, hi, t.channel_axis)


def _exact(engine, step, inputs):
    t = engine.net.tensors[step.output]
    x = _preprocessed(step, inputs[0])
    if t.binary:  # no rounding: the codes themselves (never near a tie)
        return binarize(x).astype(np.float64)
    return scaled(x, t.scale, t.zero_point, t.channel_axis).astype(np.float64)


ARITH = ("add", "sub", "mul", "div")


def preprocess_shape(shape: list[int], steps: list | None) -> list[int]:
    """The shape of the float input after the preprocessing ``steps``."""
    shape = list(shape)
    for s in steps or []:
        op = s.get("op")
        if op in ARITH:
            c = s.get("operand")
            if isinstance(c, dict):
                try:
                    shape = list(np.broadcast_shapes(tuple(shape), tuple(c["shape"])))
                except (ValueError, KeyError, TypeError):
                    raise ShapeError(f"a preprocessing constant does not broadcast to {shape}",
                                     "attrs.preprocess") from None
        elif op == "permute":
            dims = s.get("dims")
            if sorted(dims or []) != list(range(len(shape))) or dims[0] != 0:
                raise ShapeError(f"permutation {dims} of a {len(shape)}-D input", "attrs.preprocess")
            shape = [shape[d] for d in dims]
        elif op == "reshape":
            new = [shape[0], *s.get("shape", [])]
            if int(np.prod(new)) != int(np.prod(shape)):
                raise ShapeError(f"reshape of {shape} to {new}", "attrs.preprocess")
            shape = new
        elif op == "index":
            try:
                shape = list(np.empty(shape, dtype=np.int8)[index_key(s.get("key"))].shape)
            except (IndexError, TypeError, ValueError):
                raise ShapeError(f"index {s.get('key')} of a {len(shape)}-D input {shape}", "attrs.preprocess") from None
        elif op not in ("neg", "clamp"):
            raise ShapeError(f"unknown preprocessing step {op!r}", "attrs.preprocess")
    return shape


def infer_shapes(inputs, attrs, params):
    """The float input's shape after the preprocessing (the same shape without it)."""
    (x,) = inputs_of(inputs, 1)
    return [preprocess_shape(x, attrs.get("preprocess"))]


_STEP = {"type": "object", "required": ["op"], "properties": {
    "op": {"enum": [*ARITH, "neg", "clamp", "index", "permute", "reshape"]},
    "key": {"type": "array", "items": {"oneOf": [{"type": "integer"}, {"type": "array", "minItems": 3, "maxItems": 3,
                                                                     "items": {"type": ["integer", "null"]}}]}},
    "min": {"type": ["number", "null"]}, "max": {"type": ["number", "null"]},
    "operand": {"oneOf": [{"type": "number"}, {"type": "object", "required": ["shape", "values"]}]},
    "reversed": {"type": "boolean"},
    "dims": {"type": "array", "items": {"type": "integer", "minimum": 0}},
    "shape": {"type": "array", "items": {"type": "integer", "minimum": 1}}}}

IR_OP = IROp(
    name="quantize",
    summary="Quantize the float32 network input (after the model's own float preprocessing of it, if any).",
    semantics="q = clamp(rne(x / s + zp)) with the division and the addition done in float32, exactly as "
              "Brevitas' input quantizer (so +-inf and huge inputs saturate to the range; NaN inputs are "
              "refused); x is the input after the preprocessing steps, replayed with the model's float32 torch "
              "operations; a binary (1-bit signed) quantizer gives q = +1 where x >= 0, else -1 (Brevitas' "
              "binary_sign); executed by the host when preparing the device's input.",
    inputs="one float tensor (a network input)",
    attrs={"preprocess": Attr({"type": "array", "items": _STEP},
                              "the model's float operations on the input before this quantizer, in order: "
                              "{op: add|sub|mul|div, operand: number or {shape, values} (float32), reversed: "
                              "constant first}, {op: neg}, {op: clamp, min, max (numbers or null: "
                              "torch.clamp)}, {op: index, key: per axis an integer or [start, stop, step] "
                              "(x[:, 0], x[:, 1:]; the batch axis whole)}, {op: permute, dims}, {op: reshape, shape (without "
                              "the batch axis)}", required=False)},
    reference="quantize",
    run=_run,
    exact=_exact,
    host=True,
    infer_shapes=infer_shapes,
)
# Emitted by the activation-quantizer frontends (see requantize.py) when their input is float.


# -- the float preprocessing of the network input (lowering) ----------------------------------------------
_IDENTITY = ("float", "contiguous", "clone", "detach", "to", "type")
_SHAPE = ("permute", "transpose", "reshape", "view", "flatten", "unsqueeze", "squeeze")
# clamps, replayed as torch.clamp (F.relu is clamp_min(0), F.hardtanh / F.relu6 clamp, in ATen): function -> the
# (argument index, keyword, default) of its lower and upper bound; None: no such bound
_CLAMPS = {
    "clamp": ((1, "min", None), (2, "max", None)), "clamp_": ((1, "min", None), (2, "max", None)),
    "clip": ((1, "min", None), (2, "max", None)), "clip_": ((1, "min", None), (2, "max", None)),
    "clamp_min": ((1, "min", None), None), "clamp_max": (None, (1, "max", None)),
    "hardtanh": ((1, "min_val", -1.0), (2, "max_val", 1.0)), "relu": ((None, None, 0.0), None),
    "relu6": ((None, None, 0.0), (None, None, 6.0)),
}
PRE_FUNCTIONS = (*ARITH, "neg", *_IDENTITY, *_SHAPE, *_CLAMPS, "getitem")


def reads_preprocessable(low, node) -> bool:
    """``node`` is a function of the float network input (or of its preprocessing) that can be folded."""
    if node.kind != "function" or node.type_name not in PRE_FUNCTIONS:
        return False
    names = [low.act_tensor.get(a) for a in node.inputs]
    return any(n is not None and low.tensors[n].kind == "float" for n in names)


def _operand(ctx, c, out_shape):
    if isinstance(c, numbers.Real) and not isinstance(c, bool):
        return c
    if isinstance(c, torch.Tensor) and ctx.act_of(c) is None:
        if c.is_floating_point() or c.dtype in (torch.int64, torch.int32):
            if c.dim() == len(out_shape) and c.dim() and c.shape[0] != 1:
                ctx.fail("a constant of the preprocessing varies along the batch axis",
                         hint="use a constant shared by the batch (leading 1)")
            v = c.detach().to(torch.float32)
            return {"shape": list(v.shape), "values": [float(e) for e in v.reshape(-1)]}
    ctx.fail(f"{ctx.node.type_name} of the float network input with a {type(c).__name__}; only numbers and "
             "constant tensors fold into the host-side input quantization")


def _bound(ctx, spec):
    i, key, default = spec
    v = default if i is None else ctx.arg(i, key, default)
    if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real)):
        ctx.fail(f"{ctx.node.type_name} of the float network input with a {type(v).__name__} bound; only number "
                 "bounds fold into the host-side input quantization", hint="clamp with numbers, e.g. x.clamp(0, 1)")
    return v


def clamp_step(ctx, lo, hi) -> dict:
    """The preprocessing step ``torch.clamp(x, lo, hi)`` (bounds: numbers or None)."""
    if lo is None and hi is None:
        ctx.fail(f"{ctx.node.type_name} of the float network input without a bound")
    return {"op": "clamp", "min": None if lo is None else float(lo), "max": None if hi is None else float(hi)}


def _index_step(ctx, nd: int) -> dict:
    """x[:, 0] / x[:, 1:] / x[..., ::2] of the float network input: integers and slices, the batch axis whole."""
    key = ctx.arg(1, "idx")
    key = key if isinstance(key, tuple) else (key,)
    if sum(k is Ellipsis for k in key) > 1:
        ctx.fail("indexes the float network input with more than one Ellipsis")
    if Ellipsis in key:
        e = key.index(Ellipsis)
        key = key[:e] + (slice(None),) * (nd - len(key) + 1) + key[e + 1:]
    out = []
    for axis, k in enumerate(key):
        if isinstance(k, slice) and all(v is None or (isinstance(v, int) and not isinstance(v, bool))
                                        for v in (k.start, k.stop, k.step)):
            if k.step is not None and k.step <= 0:
                ctx.fail(f"slice with step {k.step} of the float network input: only positive steps are supported")
            out.append([k.start, k.stop, k.step])
        elif isinstance(k, int) and not isinstance(k, bool):
            out.append(int(k))
        else:
            ctx.fail(f"indexing the float network input with {type(k).__name__} (None, tensors, lists: advanced "
                     "indexing) is not supported", hint="use integers and slices, e.g. x[:, 0] or x[:, 1:]")
        if axis == 0 and out[0] != [None, None, None]:
            ctx.fail("indexes the batch axis of the float network input (the deployed model runs on batches)",
                     hint="index the other axes only, e.g. x[:, 0]; example_input() and held_out_data() give the "
                          "batch axis first")
    return {"op": "index", "key": out}


def _step(ctx):
    node = ctx.node
    op = node.type_name
    in_shape, out_shape = ctx.in_shape(0), ctx.out_shape(0)
    if op in ARITH:
        if node.kwargs.get("alpha", 1) != 1 or node.kwargs.get("rounding_mode") is not None:
            ctx.fail(f"{op} with alpha / rounding_mode on the float network input is not supported")
        a, b = ctx.arg(0, "input"), ctx.arg(1, "other")
        rev = ctx.act_of(a) is None
        return {"op": op, "operand": _operand(ctx, a if rev else b, out_shape), "reversed": rev}
    if op == "neg":
        return {"op": "neg"}
    if op in _CLAMPS:
        lo, hi = (None if b is None else _bound(ctx, b) for b in _CLAMPS[op])
        return clamp_step(ctx, lo, hi)
    if op in _IDENTITY:
        return None
    if op == "getitem":
        return _index_step(ctx, len(in_shape))
    if op in ("permute", "transpose"):
        nd = len(in_shape)
        if op == "transpose":
            d0, d1 = (ctx.arg(1, "dim0") % nd, ctx.arg(2, "dim1") % nd)
            dims = list(range(nd))
            dims[d0], dims[d1] = d1, d0
        else:
            rest = node.args[1:] or (node.kwargs.get("dims"),)
            dims = list(rest[0]) if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else list(rest)
            dims = [int(d) % nd for d in dims]
        if dims[0] != 0:
            ctx.fail(f"the permutation {dims} of the float network input moves the batch axis",
                     hint="keep the batch axis first")
        return {"op": "permute", "dims": dims}
    dim = ctx.arg(1, "dim")
    if (op in ("unsqueeze", "squeeze") and dim is not None and int(dim) % (len(out_shape) if op == "unsqueeze"
                                                                          else len(in_shape)) == 0) \
            or (op == "squeeze" and dim is None) or out_shape[:1] != in_shape[:1] \
            or (op == "flatten" and int(ctx.arg(1, "start_dim", 0) or 0) == 0):
        ctx.fail(f"{op} of the float network input changes the batch axis", hint="keep the batch axis first")
    return {"op": "reshape", "shape": out_shape[1:]}


def view_float_input(ctx, x: ir.TensorInfo, step: dict, out_shape, base: str) -> ir.TensorInfo:
    """``x`` (the float network input or its preprocessing) reshaped or clamped by a module (nn.Flatten,
    nn.Unflatten, nn.ReLU, nn.Hardtanh: the function forms come through PREPROCESSING): one more step."""
    src, steps = ctx.low.pre_inputs[x.name]
    out = ctx.new_tensor(base, "float", list(out_shape))
    ctx.low.pre_inputs[out.name] = (src, steps + [step])
    return out


def _lower_preprocessing(ctx) -> None:
    low = ctx.low
    acts = list(ctx.node.inputs)
    if len(acts) != 1:
        ctx.fail(f"{ctx.node.type_name} combines the float network input with another activation before its "
                 "quantizer", hint="quantize each input first (a QuantIdentity), then combine them")
    x = ctx.tensor_of_act(acts[0])
    value = low.graph.activations[ctx.node.outputs[0]].value
    if value.dtype != torch.float32:
        ctx.fail(f"{ctx.node.type_name} makes the float network input {value.dtype}; the input quantizer must "
                 "read float32", hint="keep the preprocessing in float32")
    src, steps = low.pre_inputs[x.name]
    step = _step(ctx)
    out = ctx.new_tensor(ctx.name, "float", ctx.out_shape(0))
    low.pre_inputs[out.name] = (src, steps + ([step] if step else []))
    ctx.bind(out)


PREPROCESSING = Frontend(
    name="float preprocessing of the network input: x / 255.0 - 0.5, (x - mean) / std, x * 2 - 1, x.float(), "
         "x.clamp(0, 1), permute / transpose / unsqueeze / view of the raw input",
    lowers_to=("quantize",),
    doc="Element-wise arithmetic with numbers and constant tensors (+, -, *, /, neg; constants shared by the "
        "batch), indexing and slicing of the axes after the batch axis (x[:, 0], x[:, 1:], x[..., ::2]), "
        "clamps with number bounds (x.clamp(0, 1), torch.clamp / clip, clamp_ / clamp_min / clamp_max, "
        "F.relu / torch.relu, F.hardtanh, F.relu6, and the modules nn.ReLU, nn.Hardtanh, nn.ReLU6), dtype no-ops (float(), to(float32), contiguous) and shape changes that keep the batch axis first "
        "(permute, transpose, view / reshape / flatten, unsqueeze / squeeze) applied to the float network input "
        "before its first quantizer fold into the host-side quantize step (its preprocess attribute), replayed "
        "with the model's own float32 torch operations, so the quantized input equals Brevitas'. The device "
        "receives the quantized input as before. A preprocessed float value that reaches anything but a "
        "quantizer (a float layer, another input) is refused.",
    lower=_lower_preprocessing,
)

FRONTENDS = [PREPROCESSING]  # chosen by the lowering (reads_preprocessable), not by function name
