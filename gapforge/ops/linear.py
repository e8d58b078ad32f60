"""linear: integer fully connected layer."""

from __future__ import annotations

import brevitas.nn as qnn

import atomic_ops
from gapforge.ops._base import Frontend, IROp, Tiling
from gapforge.ops._layer import lower_weight_layer
from gapforge.ops._shapes import ShapeError, inputs_of, weight_layer
from gapforge.plan import weight_acc_bound


def _sources(engine, step, inputs):
    return [atomic_ops.get("linear")(inputs[0], engine.param(step, "weight"), engine.param(step, "bias"))]


def _call(cg):
    o, k = cg.op.params["weight"].shape
    rows = cg.net.tensors[cg.op.inputs[0]].numel // k
    if rows != 1:  # a linear over tokens: the same layer on each row
        return cg.call("gf_linear_rows", (cg.X[0], cg.T[0], cg.weights(), cg.bias(), str(rows), str(k), str(o),
                                          cg.rq_arg, cg.Y))
    return cg.call("gf_linear", (cg.X[0], cg.T[0], cg.weights(), cg.bias(), str(k), str(o), cg.rq_arg, cg.Y))


def _macs(net, step) -> int:
    op = net.op_by_name(step.main_op)
    return net.tensors[step.output].numel * op.params["weight"].shape[1]


def infer_shapes(inputs, attrs, params):
    """[..., K] with weight [O, K] -> [..., O]."""
    (x,) = inputs_of(inputs, 1)
    out_f, in_f = weight_layer(params, 2, "[out, in]")
    if len(x) < 2 or x[-1] != in_f:
        raise ShapeError(f"weight shape {params['weight']} takes {in_f} input features, the input {x} has "
                         f"{x[-1] if len(x) >= 2 else 'none'}", "params.weight.shape")
    return [list(x[:-1]) + [out_f]]


IR_OP = IROp(
    name="linear",
    summary="Fully connected layer over the last axis (one row, or each row of [batch, tokens, features]).",
    semantics="acc[..., o] = bias[o] + sum_k w[o, k] * x[..., k] in int32.",
    inputs="one quant tensor (zero point 0, per-tensor scale), or an int32 accumulator without offset "
           "(per-tensor scale: the sums of a global average pool), features on the last axis",
    params=("weight", "bias"),
    reference="linear",
    kernels=("gf_linear", "gf_linear_rows"),
    fusion="head",
    requantizes=True,
    acc_bound=weight_acc_bound,
    sources=_sources,
    call=_call,
    tiling=Tiling("linear", fc={"gf_linear": "gf_linear_simd", "gf_linear_rows": "gf_linear_rows_simd"}),
    macs=_macs,
    infer_shapes=infer_shapes,
    symmetric_input=True,
    wide_input=True,
)


def _lower_linear(ctx) -> None:
    shape = ctx.in_shape(0)
    lower_weight_layer(ctx, "linear", {}, channel_axis=len(shape) - 1)


FRONTENDS = [
    Frontend(
        name="brevitas.nn.QuantLinear",
        modules=(qnn.QuantLinear,),
        lowers_to=("requantize", "linear", "requantize"),
        doc="Same weight / bias / quantizer rules as QuantConv2d. Applies to the last axis, on 2-D inputs "
            "or on each row of a [batch, tokens, features] input (GAP9: gemm tiling, weights resident); "
            "an output without output_quant is the int32 accumulator (e.g. the logits). Without input_quant it "
            "also reads the int32 sums of a global average pool (AdaptiveAvgPool2d(1), AvgPool2d over the whole "
            "map, the spatial mean, their 1-D forms, then flatten): the 1/N stays in the scale, the planner proves "
            "the accumulator below 2^31 from the window size and the input range (else it asks for a quantizer).",
        lower=_lower_linear,
    ),
]
