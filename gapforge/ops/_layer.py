"""Shared lowering of Brevitas weight layers (QuantConv2d, QuantLinear).

A layer call becomes: [requantize: input_quant] -> conv2d|linear -> [requantize: output_quant].
The conv/linear op outputs an int32 accumulator ``acc`` with
``real = (s_in * s_w[c]) * acc + offset[c]``:

* ``Int32Bias`` (or any bias quantizer that uses the input scale): the integer bias is a
  param added into ``acc``, computed exactly as Brevitas does; no offset.
* a float bias (``bias_quant=None``) or a bias quantizer with its own scale: the bias value
  becomes the per-channel real ``offset``; the requantize that consumes the accumulator
  folds it into its 64-bit rounding offset, so no precision is lost to an int32 grid.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from gapforge import ir
from gapforge.brevitas_quant import int_bias, weight_params
from gapforge.ops.requantize import quantize_to


def lower_weight_layer(ctx, op_type: str, attrs: dict, channel_axis: int, unit_height: bool = False,
                       out_shape: list[int] | None = None, x: ir.TensorInfo | None = None) -> ir.TensorInfo:
    """Emit the layer; returns its output tensor (also bound to the node's output).

    ``unit_height``: a 1-D convolution, whose weight [O, C/g, k] is stored as the map [O, C/g, 1, k].
    ``out_shape``: the output shape when it is not the node's (a slice folded into the layer).
    ``x``: the layer's input after its input quantizer, when the caller applied it (and moved the data:
    the padding of a convolution with padding_mode 'reflect'); default the node's input, quantized here.
    """
    m = ctx.module
    acc = emit_weight_layer(ctx, m, ctx.input_tensor(0) if x is None else x, ctx.name, op_type, attrs, channel_axis,
                            out_shape or ctx.out_shape(0), unit_height=unit_height, input_quant=x is None)
    _cross_check_acc(ctx, acc)
    y = acc
    if m.output_quant.is_quant_enabled:
        y = quantize_to(ctx, acc, m.output_quant, f"{ctx.name}.output_quant")
    ctx.bind(y)
    return y


def emit_weight_layer(ctx, m, x: ir.TensorInfo, name: str, op_type: str, attrs: dict, channel_axis: int,
                      out_shape: list[int], unit_height: bool = False,
                      rows: tuple[int, int] | None = None, input_quant: bool = True,
                      stack=None) -> ir.TensorInfo:
    """Emit layer ``m`` (its input quantizer, the conv2d/linear op) on ``x``; return its accumulator.

    ``rows``: only the output channels [r0, r1) of the layer (one of the q / k / v thirds of a
    packed in-projection, gapforge/ops/mha.py); weights, bias and per-channel scales are sliced.
    ``stack``: the layer is a transposed convolution run as the conv2d of its stacked phases
    (gapforge/ops/conv_transpose.py): ``stack.channels`` output channels of the module, whose scales
    and bias are computed as Brevitas does, then ``stack.weight(w)`` and ``stack.per_channel(v)`` give
    the conv2d's weight and per-channel vectors.
    The output quantizer is the caller's; ``input_quant=False``: the caller applied the input quantizer.
    """
    if input_quant and m.input_quant.is_quant_enabled:
        x = quantize_to(ctx, x, m.input_quant, f"{name}.input_quant")
    if x.kind == "float":
        ctx.fail("receives the unquantized float input",
                 hint="pass --input-quant int8 (or uint8, for inputs >= 0) to insert an input quantizer "
                      "calibrated on the model's inputs, or set input_quant=Int8ActPerTensorFloat on this layer "
                      "or put a QuantIdentity before it")
    pending = ctx.low.float_fns.get(x.name)
    if pending is not None:
        ctx.fail(f"its input is the float result of {pending.desc} without a quantizer",
                 hint=f"put a QuantIdentity right after {pending.desc} (or set input_quant on this layer)")
    if x.kind == "acc" and not ctx.low.registry.ir_ops[op_type].wide_input:
        ctx.fail(f"its input is {x.described} (no 8-bit encoding; only a linear layer reads int32 codes, "
                 "e.g. the sums of a global average pool)",
                 hint="put a quantizer (QuantIdentity/QuantReLU) before this layer (or set its input_quant); a "
                      "QuantLinear on the flattened sums of a global average pool needs none")
    if x.kind == "acc" and (x.per_channel or any(x.offset_list(1))):
        ctx.fail(f"its input is {x.described} with " + ("per-channel scales" if x.per_channel else
                 "a float offset (bias or folded BatchNorm)") + "; a linear layer reads only int32 codes with "
                 "one scale and no offset (e.g. the sums of a global average pool of a per-tensor quantizer's output)",
                 hint="put a quantizer (QuantIdentity/QuantReLU) before this layer")
    if x.kind not in ("quant", "acc"):
        ctx.fail(f"its input is {x.described} (no integer encoding)",
                 hint="put a quantizer (QuantIdentity/QuantReLU) before this layer")
    if x.zero_code != 0:
        ctx.fail(f"its input has zero point {x.zero_point}; only symmetric (zero point 0) inputs are supported",
                 hint="use a quantizer without zero point (e.g. Int8ActPerTensorFloat or Uint8ActPerTensorFloat)")
    w, wq = weight_params(m, "weights")
    r0, r1 = rows if rows is not None else (0, w.shape[0])
    w = w[r0:r1]
    if wq.channel_axis is not None:
        wq = dataclasses.replace(wq, scale=list(wq.scale)[r0:r1])
    if unit_height:
        w = w.reshape(w.shape[:2] + (1,) + w.shape[2:])
    out_ch = w.shape[0] if stack is None else stack.channels
    s_w = np.asarray(wq.scale if wq.channel_axis is not None else [wq.scale] * out_ch, dtype=np.float64)
    if x.per_channel and stack is not None:
        ctx.fail("its input has per-channel scales, which a transposed convolution cannot consume",
                 hint="use a per-tensor activation quantizer before this layer")
    if x.per_channel:
        groups = attrs.get("groups", 1)
        in_ch = x.shape[1]
        if op_type != "conv2d" or groups != in_ch or x.channel_axis != 1:
            ctx.fail("its input has per-channel scales; only a depthwise convolution can consume those",
                     hint="use a per-tensor activation quantizer before this layer")
        s_in = np.repeat(np.asarray(x.scale, dtype=np.float64), out_ch // in_ch)
    else:
        s_in = np.full(out_ch, float(x.scale))
    sigma = s_in * s_w  # float64 product of two float32 values: exact
    per_channel = bool(x.per_channel or wq.channel_axis is not None)
    w_scale = wq.scale
    if stack is not None:
        w = stack.weight(w)
        w_scale = stack.per_channel(list(wq.scale)) if wq.channel_axis is not None else wq.scale

    params = {"weight": ctx.add_param(name, "weight", w, bit_width=wq.bit_width, signed=wq.signed,
                                      narrow_range=wq.narrow_range, scale=w_scale, zero_point=0,
                                      channel_axis=0 if wq.channel_axis is not None else None)}
    offset = None
    if m.bias is not None:
        bq = m.bias_quant
        if bq.is_quant_enabled and bq.requires_input_scale:
            acc_scale_f32 = torch.tensor(s_in, dtype=torch.float32) * torch.tensor(s_w, dtype=torch.float32)
            if rows is not None:  # Brevitas quantizes the whole bias with the whole layer's scales
                s_w_all = weight_params(m, "weights")[1]
                n_all = m.bias.shape[0]
                s_w_full = np.asarray(s_w_all.scale if s_w_all.channel_axis is not None else [s_w_all.scale] * n_all,
                                      dtype=np.float64)
                acc_scale_f32 = torch.tensor(np.full(n_all, s_in[0]), dtype=torch.float32) * \
                    torch.tensor(s_w_full, dtype=torch.float32)
            b, bw = int_bias(m, acc_scale_f32, "bias")
            b = b[r0:r1] if stack is None else np.asarray(stack.per_channel(list(b)), dtype=np.int32)
            params["bias"] = ctx.add_param(name, "bias", b, bit_width=bw, signed=True, narrow_range=False)
        else:
            with torch.no_grad():
                bval = m.quant_bias() if bq.is_quant_enabled else m.bias
                bval = getattr(bval, "value", bval)
            offset = [float(v) for v in bval.detach().to(torch.float32).reshape(-1)[r0:r1]]
            if stack is not None:
                offset = stack.per_channel(offset)
    if stack is not None:
        sigma = np.asarray(stack.per_channel(list(sigma)), dtype=np.float64)
    acc = ctx.new_tensor(
        name, "acc", out_shape,
        scale=[float(v) for v in sigma] if per_channel else float(sigma[0]),
        channel_axis=channel_axis if (per_channel or offset is not None) else None,
        offset=offset)
    op = ctx.emit(op_type, [x], [acc], attrs=attrs, params=params)
    if rows is not None:  # which rows of the module's weight (tests/test_extraction.py reads this)
        op.source = f"{type(m).__name__} rows {r0}:{r1}"
    return acc


def _cross_check_acc(ctx, acc: ir.TensorInfo, stack=None) -> None:
    """When Brevitas returned a QuantTensor for the accumulator, its scale must be ours (``stack``: the
    accumulator of a transposed convolution's stacked phases, compared on the module's channels)."""
    if ctx.module.output_quant.is_quant_enabled:
        return
    sigma = np.asarray(acc.scale if acc.per_channel else [acc.scale], dtype=np.float64)
    if stack is not None and acc.per_channel:
        sigma = np.asarray(stack.module_view(list(sigma)), dtype=np.float64)
    meta = ctx.observed(ctx.node.outputs[0])
    if meta is None:
        return
    theirs = meta.scale.double().reshape(-1).numpy()
    if theirs.size not in (1, sigma.size) or not np.allclose(theirs, sigma if theirs.size > 1 else sigma[:1],
                                                            rtol=1e-6, atol=0):
        ctx.fail(f"accumulator scale {theirs[:3]} reported by Brevitas differs from s_in*s_w {sigma[:3]}")
