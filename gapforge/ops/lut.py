"""lut: a float function of ONE quantized tensor followed by a quantizer, as a table.

The input takes at most 2^b values (b <= 8), so ``quantizer(f(dequant(q)))`` is a function from
input code to output code. The table is built at extraction by running the model's own torch
function in float32 on every input code, dequantized as Brevitas does (``(q - zp) * scale`` in
float32), then the model's own output quantizer module on the result: it equals Brevitas by
construction. One table per tensor, or one per channel (axis 1) when the input or the output has
per-channel scales.

Lowering: an element-wise float function (GELU, SiLU, sigmoid, ...) of a quantized tensor gives a
"real" tensor recorded in ``Lowering.float_fns`` (a ``FloatFn``: the quantized source and the
composed float function); functions of it compose. The quantizer that consumes it
(``requantize.quantize_to``) emits the ``lut`` op instead of a requantize. Any other consumer is
refused with a hint (``NodeContext.emit``). When the source is a conv/linear int32 accumulator, the
quantizer emits a ``thresholds`` op instead (gapforge/ops/thresholds.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import brevitas.nn as qnn
import numpy as np
import torch
from torch import nn

import atomic_ops
from gapforge import ir
from gapforge.brevitas_quant import act_quant_params
from gapforge.errors import GapforgeError
from gapforge.ops._base import Attr, Frontend, IROp, Tiling
from gapforge.ops._shapes import ShapeError, inputs_of

MAX_INPUT_BITS = 8


def table_bits(t: ir.TensorInfo) -> int:
    """log2 of a table's entries for input ``t``: its bit width; 2 for a binary input (codes -1, +1 within the
    2-bit codes -2 .. 1, whose entries -2 and 0 no input reaches)."""
    return 2 if t.binary else int(t.bit_width)


def input_base(t: ir.TensorInfo) -> int:
    """Input code of table entry 0: the lowest code of the input's bit width (narrow range or not)."""
    return -(1 << (table_bits(t) - 1)) if t.signed else 0


def _run(engine, step, inputs):
    op = engine.net.op_by_name(step.main_op)
    x = engine.net.tensors[op.inputs[0]]
    return atomic_ops.get("lut")(inputs[0], engine.param(step, "table"), input_base(x), op.attrs.get("channel_axis"))


def _call(cg):
    x = cg.net.tensors[cg.op.inputs[0]]
    table = cg.net.param(cg.op, "table")
    channels, entries = table.shape
    ptr = cg.param("table", "t", table.astype(np.uint8 if table.dtype == np.uint8 else np.int8), "const uint8_t")
    axis = cg.op.attrs.get("channel_axis")
    inner = cg.out_t.numel if axis is None else int(np.prod(cg.out_t.shape[axis + 1:], dtype=np.int64))
    return cg.call("gf_lut", (cg.X[0], cg.T[0], ptr, str(entries), str(input_base(x)), str(channels),
                              str(cg.out_t.numel), str(max(inner, 1)), cg.Y))


def _tables(step, net):
    """GAP9 tiling: (channels, bytes per table, table per channel) of the step's tables."""
    t = net.op_by_name(step.main_op).params["table"]
    return int(t.shape[0]), int(t.shape[1]), int(t.shape[0]) > 1


def infer_shapes(inputs, attrs, params):
    """One quantized input; the output has its shape. Table [channels, 2^bits]."""
    (x,) = inputs_of(inputs, 1)
    t = params.get("table")
    if t is None or len(t) != 2:
        raise ShapeError("needs a 2-D param 'table' [channels, entries]", "params.table.shape")
    axis = attrs.get("channel_axis")
    if t[0] != 1 and (axis is None or axis >= len(x) or x[axis] != t[0]):
        raise ShapeError(f"{t[0]} tables do not match the input {x} along channel_axis {axis}", "params.table.shape")
    if t[1] not in [2 ** b for b in range(1, MAX_INPUT_BITS + 1)]:
        raise ShapeError(f"tables of {t[1]} entries: expected 2^bits of the input (2..256)", "params.table.shape")
    return [list(x)]


IR_OP = IROp(
    name="lut",
    summary="Table lookup: a float function of one quantized tensor followed by its quantizer.",
    semantics="y = table[c][q - base] with base the lowest code of the input bit width (-2^(b-1) signed, "
              "0 unsigned) and c the channel (0 with one table); the table is the model's quantizer applied "
              "to its float32 function of every dequantized input code.",
    inputs="one quant tensor of at most 8 bits (any zero point, per-tensor or per-channel scale)",
    attrs={
        "function": Attr({"type": "string"}, "the float function the table holds, for reading (e.g. gelu)"),
        "channel_axis": Attr({"type": ["integer", "null"], "minimum": 0},
                             "axis of the per-channel tables; null: one table", required=False),
    },
    params=("table",),
    reference="lut",
    kernels=("gf_lut",),
    run=_run,
    call=_call,
    tiling=Tiling("eltwise", tables=_tables),
    infer_shapes=infer_shapes,
)


# -- lowering -----------------------------------------------------------------------------
@dataclass
class FloatFn:
    """A real tensor that is ``fn(dequant(source))`` elementwise, waiting for its quantizer."""

    source: ir.TensorInfo  # the quantized tensor
    fn: Callable[[torch.Tensor], torch.Tensor]  # float32 -> float32, element-wise
    desc: str  # what produced it, for messages: "GELU 'act1'"
    expr: str  # the composed function, for the IR: "sigmoid(gelu(x))"
    channelwise: bool = False  # the function differs per channel (axis 1): nn.PReLU's per-channel slopes


def _subst(expr: str, **names: str) -> str:
    """``expr`` with its placeholder names (x, a, b: whole words) replaced, in one pass."""
    return re.sub(r"\b(" + "|".join(names) + r")\b", lambda m: names[m.group(1)], expr)


def float_fn_of(ctx, t: ir.TensorInfo) -> FloatFn | None:
    return ctx.low.float_fns.get(t.name)


def check_tabulable(ctx, x: ir.TensorInfo, what: str) -> None:
    """A float function can be tabulated only on a quantized tensor of <= 8 bits."""
    if x.kind == "float":
        ctx.fail(f"applies {what} to the unquantized network input",
                 hint="quantize the input first (a QuantIdentity, or --input-quant int8)")
    if x.kind == "acc":  # a conv/linear output: a step function of the accumulator (gapforge/ops/thresholds.py)
        from gapforge.ops.thresholds import reachable_range

        if reachable_range(ctx, x) is None:
            ctx.fail(f"applies {what} to the int32 accumulator '{x.name}', which is not a conv/linear output; a float "
                     "function of it has no exact integer form", hint=f"put a QuantIdentity before the {what}")
        return
    if x.kind == "real":
        ctx.fail(f"applies {what} to '{x.name}', which has no integer encoding",
                 hint=f"put a QuantIdentity before the {what}")
    if x.bit_width > MAX_INPUT_BITS:
        ctx.fail(f"applies {what} to a {x.bit_width}-bit tensor; tables take inputs of at most {MAX_INPUT_BITS} bits",
                 hint=f"quantize to 8 bits before the {what}")


def apply_float_fn(ctx, x: ir.TensorInfo, fn: Callable, what: str, expr: str, base: str,
                   channelwise: bool = False) -> ir.TensorInfo:
    """``fn(x)``: a pending real tensor, composed with ``x``'s own function when ``x`` is pending
    (``channelwise``: ``fn`` differs per channel of axis 1)."""
    prev = float_fn_of(ctx, x)
    if prev is not None:
        inner = prev.fn
        pend = FloatFn(prev.source, lambda v: fn(inner(v)), what, _subst(expr, x=prev.expr),
                       prev.channelwise or channelwise)
    else:
        check_tabulable(ctx, x, what)
        pend = FloatFn(x, fn, what, expr, channelwise)
    out = ctx.new_tensor(base, "real", x.shape)
    ctx.low.float_fns[out.name] = pend
    return out


def combine_float_fns(ctx, a: ir.TensorInfo, b: ir.TensorInfo, fn2: Callable, what: str, expr: str,
                      base: str) -> ir.TensorInfo | None:
    """``fn2(f_a(x), f_b(x))`` when ``a`` and ``b`` are (functions of) the same quantized tensor x, else None."""
    fa, fb = float_fn_of(ctx, a), float_fn_of(ctx, b)
    if fa is None and fb is None:
        return None
    src_a = fa.source if fa is not None else a
    src_b = fb.source if fb is not None else b
    if src_a.name != src_b.name or a.shape != b.shape:
        return None
    ga = fa.fn if fa is not None else (lambda v: v)
    gb = fb.fn if fb is not None else (lambda v: v)
    ea = fa.expr if fa is not None else "x"
    eb = fb.expr if fb is not None else "x"
    out = ctx.new_tensor(base, "real", a.shape)
    ctx.low.float_fns[out.name] = FloatFn(src_a, lambda v: fn2(ga(v), gb(v)), what, _subst(expr, a=ea, b=eb),
                                          any(f is not None and f.channelwise for f in (fa, fb)))
    return out


def build_table(src: ir.TensorInfo, fn: Callable, proxy, out_qp, ndim: int, where: str,
                channelwise: bool = False) -> np.ndarray:
    """``quantizer(fn((q - zp) * scale))`` for every code q of ``src``: [channels, 2^bits] integers.

    The codes run along the batch axis of a tensor shaped like the activation ([2^b, C, 1, ...]), so
    per-channel scales (input or output, axis 1) broadcast as in the model.
    """
    bits = table_bits(src)
    per_channel = src.per_channel or out_qp.channel_axis is not None or channelwise
    chans = int(src.shape[1]) if per_channel else 1
    lo = input_base(src)
    rest = [1] * max(ndim - 2, 0)
    codes = torch.arange(lo, lo + (1 << bits), dtype=torch.float32).reshape(-1, 1, *rest)
    codes = codes.expand(1 << bits, chans, *rest).contiguous()
    scale = torch.tensor(src.scale_list(chans) if src.per_channel else [float(src.scale)],
                         dtype=torch.float32).reshape(1, -1, *rest)
    zp = torch.tensor(float(src.zero_point), dtype=torch.float32)
    with torch.no_grad():
        x = (codes - zp) * scale  # Brevitas' dequantization: (q_int - zero_point) * scale, float32
        y = fn(x)
        out = proxy(y)
    value = getattr(out, "value", out).detach()
    s_out = torch.tensor(out_qp.scale if out_qp.channel_axis is not None else [out_qp.scale],
                         dtype=torch.float64).reshape(1, -1, *rest)
    q = value.double() / s_out + out_qp.zero_point
    ints = torch.round(q)
    if not torch.all((q - ints).abs() < 1e-3) or not torch.all(torch.isfinite(q)):
        raise GapforgeError(f"{where}: the quantizer's output is not on its integer grid")
    lo_o, hi_o = out_qp.qrange()
    table = ints.reshape(1 << bits, chans).T.numpy()
    if table.min() < lo_o or table.max() > hi_o:
        raise GapforgeError(f"{where}: table values outside the quantizer range [{lo_o}, {hi_o}]")
    return np.ascontiguousarray(table.astype(ir.container_dtype(out_qp.bit_width, out_qp.signed)))


def emit_lut(ctx, pend: FloatFn, proxy, base: str, shape: list[int]) -> ir.TensorInfo:
    """The quantizer ``proxy`` applied to the pending function ``pend``: one lut op."""
    where = f"quantizer '{base}'"
    observed = ctx.observed_proxy(proxy)
    qp = act_quant_params(proxy, len(shape), where, observed=observed)
    if qp.channel_axis is not None and qp.channel_axis != 1:
        ctx.fail(f"per-channel activation scale along axis {qp.channel_axis} is not supported (only axis 1)")
    if pend.source.kind == "acc":  # a function of a conv/linear accumulator: its step function
        from gapforge.ops.thresholds import emit_thresholds

        return emit_thresholds(ctx, pend, proxy, qp, base, shape, observed)
    if pend.source.per_channel and pend.source.channel_axis != 1:
        ctx.fail(f"per-channel input scale along axis {pend.source.channel_axis} is not supported (only axis 1)")
    table = build_table(pend.source, pend.fn, proxy, qp, len(shape), where, pend.channelwise)
    out = ctx.quant_tensor(base, shape, qp)
    per_channel = table.shape[0] > 1
    params = {"table": ctx.add_param(out.name, "table", table, bit_width=qp.bit_width, signed=qp.signed,
                                     narrow_range=qp.narrow_range, zero_point=qp.zero_point,
                                     channel_axis=0 if per_channel else None)}
    ctx.emit("lut", [pend.source], [out], attrs={"function": pend.expr, "channel_axis": 1 if per_channel else None},
             params=params)
    ctx.record_value(out, observed.value if observed is not None else None)
    return out


# -- frontends ----------------------------------------------------------------------------
# element-wise float functions of one tensor: module classes and canonical function names
_MODULES = (nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.LeakyReLU, nn.ELU, nn.CELU,
            nn.SELU, nn.Softplus, nn.Mish, nn.Softsign, nn.LogSigmoid, nn.Hardtanh, nn.PReLU)  # nn.ReLU6 is a Hardtanh
_FUNCTIONS = ("gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid", "leaky_relu", "elu", "celu", "selu",
              "softplus", "mish", "softsign", "logsigmoid", "hardtanh", "relu6", "exp", "abs", "neg", "prelu")


def _replace_act(obj, act: int, value):
    from gapforge.capture import Ref

    if isinstance(obj, Ref):
        return value if obj.index == act else obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(_replace_act(o, act, value) for o in obj)
    if isinstance(obj, dict):
        return {k: _replace_act(v, act, value) for k, v in obj.items()}
    return obj


def _lower_function(ctx) -> None:
    node = ctx.node
    what = node.type_name
    x = ctx.input_tensor(0)
    if what == "neg" and x.name in ctx.low.lin_forms:  # -(q * cos): gapforge/ops/lincomb.py
        from gapforge.ops.lincomb import neg_form

        ctx.bind(neg_form(ctx, x))
        return
    if node.kind == "module" and isinstance(node.module, nn.Hardtanh) and x.kind == "float" \
            and x.name in ctx.low.pre_inputs:  # nn.Hardtanh / nn.ReLU6 of the raw input: its preprocessing
        from gapforge.ops.quantize import clamp_step, view_float_input

        ctx.bind(view_float_input(ctx, x, clamp_step(ctx, node.module.min_val, node.module.max_val), x.shape,
                                  ctx.name))
        return
    channelwise = False
    if node.kind == "module":
        module = node.module
        fn, expr = (lambda v: module(v)), f"{type(module).__name__.lower()}(x)"
        if isinstance(module, nn.PReLU) and module.num_parameters > 1:
            if len(x.shape) < 2 or x.shape[1] != module.num_parameters:
                ctx.fail(f"PReLU with {module.num_parameters} slopes on a tensor of shape {x.shape} (channels on "
                         "axis 1)", hint="give nn.PReLU num_parameters = the channel count, or 1")
            channelwise = True
    else:
        if len(node.inputs) != 1:
            ctx.fail(f"{node.type_name} of {len(node.inputs)} activations; only a function of one tensor "
                     "can be tabulated", hint="quantize each operand and combine them with supported ops")
        act, args, kwargs, func = node.inputs[0], node.args, node.kwargs, node.func
        if isinstance(func, str):  # a QuantTensor method (capture wraps them): the Tensor method
            func = getattr(torch.Tensor, func)

        def fn(v, act=act, args=args, kwargs=kwargs, func=func):
            return func(*_replace_act(args, act, v), **_replace_act(kwargs, act, v))

        expr = f"{node.type_name}(x)"
        slopes = ctx.arg(1, "weight") if what == "prelu" else None
        channelwise = isinstance(slopes, torch.Tensor) and slopes.numel() > 1
    ctx.bind(apply_float_fn(ctx, x, fn, f"{what} '{ctx.name}'", expr, ctx.name, channelwise))


def _lower_quant_nonlinear(ctx) -> None:
    """QuantSigmoid / QuantTanh / QuantHardSwish: [input_quant] -> act_quant (whose proxy applies the function itself)."""
    from gapforge.ops.requantize import quantize_to

    m = ctx.module
    x = ctx.input_tensor(0)
    if m.input_quant.is_quant_enabled:
        x = quantize_to(ctx, x, m.input_quant, f"{ctx.name}.input_quant")
    proxy = m.act_quant
    impl = proxy.fused_activation_quant_proxy.activation_impl
    what = f"{type(m).__name__} '{ctx.name}'"
    expr = f"{type(impl).__name__.lower()}(x)"
    if not proxy.is_quant_enabled:
        ctx.bind(apply_float_fn(ctx, x, impl, what, expr, ctx.name))
        return
    prev = float_fn_of(ctx, x)
    if prev is not None:
        pend = FloatFn(prev.source, prev.fn, what, _subst(expr, x=prev.expr), prev.channelwise)
    else:
        check_tabulable(ctx, x, what)
        pend = FloatFn(x, lambda v: v, what, expr)
    ctx.bind(emit_lut(ctx, pend, proxy, ctx.name, x.shape))


def _lower_quant_hardtanh(ctx) -> None:
    """QuantHardTanh: its proxy only quantizes (the clamp is the quantizer's range): as QuantIdentity."""
    from gapforge.ops.requantize import _lower_quant_identity

    if not ctx.module.input_quant.is_quant_enabled:
        _lower_quant_identity(ctx)
        return
    ctx.fail("QuantHardTanh with an input quantizer is not supported", hint="use QuantIdentity")


FRONTENDS = [
    Frontend(
        name="element-wise float functions: torch.nn.GELU / SiLU / Sigmoid / Tanh / Hardswish / Hardsigmoid / "
             "LeakyReLU / PReLU / ELU / CELU / SELU / Softplus / Mish / Softsign / LogSigmoid / Hardtanh / ReLU6, their "
             "F.* / torch.* / Tensor-method forms, torch.exp, abs, neg",
        modules=_MODULES,
        functions=_FUNCTIONS,
        lowers_to=("lut", "thresholds"),
        doc="A float function of one quantized tensor (at most 8 bits, any zero point, per-tensor or per-channel "
            "scale) followed by a quantizer: a table from input code to output code, built with the model's own "
            "float32 function on every dequantized code and the model's own quantizer (one table per channel "
            "when the input or output scale is per channel, or the function is: nn.PReLU / F.prelu with one slope "
            "per channel), so it equals Brevitas by construction. Any "
            "arguments (GELU approximate='tanh', LeakyReLU slope, PReLU's learned slopes, Softplus beta, Hardtanh bounds). Functions of "
            "it (and ReLU, x * f(x), x * scalar) compose into one table. Applied straight to a QuantConv2d / QuantConv1d / "
            "QuantLinear output without output quantizer (the int32 accumulator, e.g. nn.ReLU6 or F.gelu then a "
            "QuantIdentity): a per-channel step function of the accumulator (thresholds), equal to Brevitas "
            "outside near-ties. On the network input, another accumulator (a sum or product of activations) or a "
            "result that reaches anything but a quantizer, the checker names the fix.",
        lower=_lower_function,
    ),
    Frontend(
        name="brevitas.nn.QuantSigmoid / QuantTanh / QuantHardSwish",
        modules=(qnn.QuantSigmoid, qnn.QuantTanh, qnn.QuantHardSwish),
        lowers_to=("requantize", "lut", "thresholds"),
        doc="[input quantizer] then the function and its output quantizer as one table (as for torch.sigmoid "
            "/ torch.tanh / F.hardswish followed by a quantizer; QuantHardSwish's default unsigned quantizer "
            "clamps its negative part to 0, as in Brevitas). With the default input_quant=None after a "
            "QuantLinear / QuantConv2d without output quantizer: a step function of its accumulator "
            "(thresholds).",
        lower=_lower_quant_nonlinear,
    ),
    Frontend(
        name="brevitas.nn.QuantHardTanh",
        modules=(qnn.QuantHardTanh,),
        lowers_to=("quantize", "requantize"),
        doc="A quantizer whose range is [min_val, max_val] (its clamp is the quantizer's saturation): lowered "
            "as QuantIdentity.",
        lower=_lower_quant_hardtanh,
    ),
]
