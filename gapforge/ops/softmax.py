"""softmax: softmax over the last axis of a quantized tensor or an int32 accumulator, then a quantizer."""

from __future__ import annotations

import torch
from torch import nn

import atomic_ops
from atomic_ops import softmax as ref
from gapforge.ops._base import Frontend, IROp, Tiling, checked_bound, output_range, per_tensor_scale
from gapforge.ops._shapes import same_shape

HINT_AXIS = ("move the axis last (x.transpose(d, -1)) before the softmax and back after its quantizer, "
             "or apply the softmax over the last axis")


def prepare(net, step) -> ref.SoftmaxParams:
    x = net.tensors[step.inputs[0]]
    y = net.tensors[step.output]
    lo, hi = output_range(net, step)
    n = x.shape[-1]
    return checked_bound(ref.prepare(per_tensor_scale(x), x.qrange() if x.kind == "quant" else None,
                                     float(y.scale), int(y.zero_point), lo, hi, n), f" (rows of {n} elements)")


def _exact(engine, step, inputs):
    x = engine.net.tensors[step.inputs[0]]
    y = engine.net.tensors[step.output]
    return ref.exact(inputs[0], per_tensor_scale(x), float(y.scale))


def _call(cg):
    rows, n = cg.rows_extent()
    return cg.call("gf_softmax", (cg.X[0], cg.T[0], rows, n, cg.param_block(), cg.Y))


IR_OP = IROp(
    name="softmax",
    summary="Softmax over the last axis, quantized by the following quantizer.",
    semantics="Per row: d = max - x; exp(-s d) from per-digit tables in Q62 (rounded products), summed "
              "in Q36 (exact integer sum), one exact integer division and one round-half-even to the "
              "output code; error below 1e-5 output steps (docs/integer_contract.md, Softmax).",
    inputs="one quant tensor (per-tensor scale, any zero point) or int32 acc (per-tensor scale and offset)",
    reference="softmax",
    kernels=("gf_softmax",),
    fusion="head",
    prepare=prepare,
    run=lambda engine, step, inputs: atomic_ops.get("softmax")(inputs[0], step.params),
    exact=_exact,
    call=_call,
    tiling=Tiling("rows"),
    macs=lambda net, step: net.tensors[step.output].numel,  # the product e * R of every element
    infer_shapes=same_shape,
)


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
    out = ctx.new_tensor(ctx.name, "real", x.shape)
    ctx.emit("softmax", [x], [out])
    ctx.bind(out)


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
]
