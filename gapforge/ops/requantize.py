"""requantize: any integer-encoded tensor -> a new integer encoding (activation quantizers)."""

from __future__ import annotations

import brevitas.nn as qnn

from gapforge import ir
from gapforge.brevitas_quant import act_quant_params, is_binary_quant
from gapforge.ops._base import Frontend, IROp, Tiling
from gapforge.ops._shapes import same_shape
from gapforge.ops.relu import emit_relu

IR_OP = IROp(
    name="requantize",
    summary="Map a tensor to a new scale / zero point / bit width with saturation.",
    semantics="q = clamp(rne(real(x) / s_out) + zp_out, qmin, qmax), computed in integers as "
              "(x * m[c] + o[c]) >> sh[c] with a 64-bit product and round-half-even; the fusion "
              "planner folds the ops feeding it (conv, relu, add, pooling) into the same kernel.",
    inputs="one quant, acc or real tensor",
    reference="requantize",
    kernels=("gf_requantize",),
    requantizes=True,
    sources=lambda engine, step, inputs: list(inputs),
    call=lambda cg: cg.call("gf_requantize", (cg.X[0], cg.T[0], *cg.eltwise_extent(), cg.rq_arg, cg.Y)),
    tiling=Tiling("eltwise"),
    infer_shapes=same_shape,
)


def quantize_to(ctx, x: ir.TensorInfo, proxy, base: str) -> ir.TensorInfo:
    """Emit the op that applies activation quantizer ``proxy`` to ``x``; return its output.

    When ``x`` is a float function of a quantized tensor (gapforge/ops/lut.py), the quantizer and the
    function become one table (lut)."""
    pending = ctx.low.float_fns.get(x.name)
    if pending is not None:
        from gapforge.ops.lut import emit_lut

        return emit_lut(ctx, pending, proxy, base, x.shape)
    if x.name in ctx.low.lin_forms:
        from gapforge.ops.lincomb import emit_lincomb

        emit_lincomb(ctx, x)
    if x.kind != "float" and is_binary_quant(proxy):
        return _binarize(ctx, x, proxy, base)
    where = f"quantizer '{base}'"
    observed = ctx.observed_proxy(proxy)
    qp = act_quant_params(proxy, len(x.shape), where, observed=observed)
    if qp.channel_axis is not None and qp.channel_axis != 1:
        ctx.fail(f"per-channel activation scale along axis {qp.channel_axis} is not supported (only axis 1)")
    out = ctx.quant_tensor(base, x.shape, qp)
    if x.kind == "float":  # the network input, after the model's float preprocessing (gapforge/ops/quantize.py)
        src, steps = ctx.low.pre_inputs[x.name]
        ctx.emit("quantize", [ctx.low.tensors[src]], [out], attrs={"preprocess": steps} if steps else None)
    else:
        ctx.emit("requantize", [x], [out])
    shape = ctx.low.restore_shape.get(x.name)
    value = observed.value if observed is not None else None
    if shape is not None and shape != out.shape:  # a flat constant sum (add_constant) regains its shape
        from gapforge.ops.reshape import emit_reshape

        ctx.record_value(out, value.reshape(out.shape) if value is not None else None)
        out = emit_reshape(ctx, out, shape, f"{base}.view")
    ctx.record_value(out, value)
    return out


def _binarize(ctx, x: ir.TensorInfo, proxy, base: str) -> ir.TensorInfo:
    """A binary quantizer (code +1 where the value is >= 0, else -1) of an integer tensor is no rounding, so no
    requantize: of a conv/linear accumulator it is a step function with one step per channel (thresholds), of a
    quantized tensor a table of its codes (lut); the same ops as a float function followed by a quantizer, with the
    identity for the function (the model's own quantizer decides every code)."""
    from gapforge.ops.lut import FloatFn, check_tabulable, emit_lut

    what = f"binary quantizer '{base}'"
    check_tabulable(ctx, x, what)
    return emit_lut(ctx, FloatFn(x, lambda v: v, what, "x"), proxy, base, x.shape)


def _lower_quant_identity(ctx) -> None:
    x = ctx.input_tensor(0)
    proxy = ctx.module.act_quant
    if not proxy.is_quant_enabled:
        ctx.bind_all(x)
        return
    ctx.bind(quantize_to(ctx, x, proxy, ctx.name))


def _lower_quant_relu(ctx) -> None:
    x = ctx.input_tensor(0)
    proxy = ctx.module.act_quant
    if x.kind == "float":
        ctx.fail("applies ReLU to the unquantized network input",
                 hint="quantize the input first with a QuantIdentity")
    y = emit_relu(ctx, x, f"{ctx.name}.relu")
    if not proxy.is_quant_enabled:
        ctx.bind(y)
        return
    ctx.bind(quantize_to(ctx, y, proxy, ctx.name))


FRONTENDS = [
    Frontend(
        name="brevitas.nn.QuantIdentity",
        modules=(qnn.QuantIdentity,),
        lowers_to=("quantize", "requantize", "thresholds", "lut"),
        doc="Quantizer of the float input (quantize) or of an integer tensor (requantize). "
            "Scale per tensor or per channel (axis 1), any zero point, 1 to 8 bits, narrow range. "
            "Binary quantizers (SignedBinaryActPerTensorConst, bnn_pynq's 1-bit CommonActQuant: codes -1 / +1) "
            "are a sign, not a rounding: of a conv/linear output a one-step thresholds op per channel, of a "
            "quantized tensor a lut. "
            "Must be calibrated; dynamic scales are refused. Without a quantizer it is an identity.",
        lower=_lower_quant_identity,
    ),
    Frontend(
        name="brevitas.nn.QuantReLU",
        modules=(qnn.QuantReLU,),
        lowers_to=("relu", "requantize"),
        doc="ReLU followed by its activation quantizer (unsigned by default; signed quantizers get "
            "max(0, x) first, as in Brevitas). Same quantizer rules as QuantIdentity. A module "
            "instance called several times (shared quantizer) gives one op per call.",
        lower=_lower_quant_relu,
    ),
]
