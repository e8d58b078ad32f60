"""relu: max(0, x) on any integer-encoded tensor."""

from __future__ import annotations

from torch import nn

import atomic_ops
from gapforge import ir
from gapforge.ops._base import Frontend, IROp, Tiling
from gapforge.ops._shapes import same_shape

IR_OP = IROp(
    name="relu",
    summary="Rectified linear unit.",
    semantics="quant: q = max(q, zp); acc without offset: q = max(q, 0); on an acc with a per-channel "
              "offset or a real tensor the result is real and must be fused into the next requantize, "
              "where it becomes a lower clamp at zp_out (rne is monotone, so relu-then-round equals "
              "round-then-clamp).",
    inputs="one quant, acc or real tensor",
    reference="relu",
    kernels=("gf_relu",),
    fusion="activation",
    run=lambda engine, step, inputs: atomic_ops.get("relu")(inputs[0], engine.net.tensors[step.output].zero_code),
    call=lambda cg: cg.call("gf_relu", (cg.X[0], cg.T[0], str(cg.out_t.numel), str(cg.out_t.zero_code), cg.Y)),
    tiling=Tiling("eltwise"),
    infer_shapes=same_shape,
)


def emit_relu(ctx, x: ir.TensorInfo, base: str) -> ir.TensorInfo:
    if x.name in ctx.low.float_fns:  # relu of a float function of a quantized tensor: part of its table
        import torch

        from gapforge.ops.lut import apply_float_fn

        return apply_float_fn(ctx, x, torch.relu, f"ReLU '{ctx.name}'", "relu(x)", base)
    if x.kind == "float" and x.name in ctx.low.pre_inputs:  # nn.ReLU of the raw input: its preprocessing
        from gapforge.ops.quantize import clamp_step, view_float_input

        return view_float_input(ctx, x, clamp_step(ctx, 0.0, None), x.shape, base)
    if x.kind == "float":
        ctx.fail("applies ReLU to the unquantized network input", hint="quantize the input first")
    if x.kind == "quant":
        out = ctx.new_tensor(base, "quant", x.shape, scale=x.scale, zero_point=x.zero_point,
                             bit_width=x.bit_width, signed=x.signed, narrow_range=x.narrow_range,
                             channel_axis=x.channel_axis)
    elif x.kind == "acc" and not _has_offset(x):
        out = ctx.new_tensor(base, "acc", x.shape, scale=x.scale, channel_axis=x.channel_axis)
    else:
        out = ctx.new_tensor(base, "real", x.shape)
    ctx.emit("relu", [x], [out])
    if x.name in ctx.low.restore_shape:  # a row view (add_constant, groupnorm): the quantizer restores it
        ctx.low.restore_shape[out.name] = ctx.low.restore_shape[x.name]
    return out


def _has_offset(t: ir.TensorInfo) -> bool:
    if t.offset is None:
        return False
    vals = t.offset if isinstance(t.offset, list) else [t.offset]
    return any(v != 0.0 for v in vals)


def _lower_relu(ctx) -> None:
    if ctx.node.kind == "module" and getattr(ctx.module, "inplace", False):
        pass  # in-place is irrelevant: capture versions tensors
    ctx.bind(emit_relu(ctx, ctx.input_tensor(0), ctx.name))


FRONTENDS = [
    Frontend(
        name="torch.nn.ReLU / F.relu / torch.relu",
        modules=(nn.ReLU,),
        functions=("relu",),
        lowers_to=("relu",),
        doc="Float ReLU between quantizers (e.g. conv -> BatchNorm -> ReLU -> QuantIdentity) or on "
            "an integer tensor. In-place variants are fine.",
        lower=_lower_relu,
    ),
]
