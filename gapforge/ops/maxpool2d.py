"""maxpool2d: max over windows, directly on the integers."""

from __future__ import annotations

import numpy as np
from torch import nn

import atomic_ops
from gapforge.lowering import pair
from gapforge.ops._base import PADDING4, POS_PAIR, Attr, Frontend, IROp, Tiling
from gapforge.ops._shapes import on_map, pool_shapes


def _run(engine, step, inputs):
    a = step.attrs  # 1-D pooling: over the map of height 1 (on_map)
    return on_map(atomic_ops.get("maxpool2d"), inputs[0], a["kernel_size"], a["stride"], a["padding"], a["ceil_mode"])



def _call(cg):
    return cg.call("gf_maxpool2d", (cg.X[0], cg.T[0], f"&s_{cg.ident}", cg.Y), shape=cg.window_shape())


def infer_shapes(inputs, attrs, params):
    """[N, C, H, W] -> [N, C, OH, OW] (PyTorch's window formula, ceil_mode as given); [N, C, T] -> [N, C, OT]."""
    return pool_shapes(inputs, attrs, attrs["ceil_mode"])


IR_OP = IROp(
    name="maxpool2d",
    summary="2-D max pooling.",
    semantics="y = max over the window of q (padded positions are ignored, as PyTorch's -inf padding); "
              "exact on integers because the encoding is monotone (accumulator scales must be positive).",
    inputs="one quant tensor, or an acc tensor with positive scales (NCHW, or NCT for 1-D pooling: the map NC1T)",
    attrs={
        "kernel_size": Attr(POS_PAIR, "window height, width"),
        "stride": Attr(POS_PAIR, "vertical, horizontal stride"),
        "padding": Attr(PADDING4, "implicit -inf padding top, left, bottom, right"),
        "ceil_mode": Attr({"type": "boolean"}, "output size rounds up; partial windows at the end"),
    },
    reference="maxpool2d",
    kernels=("gf_maxpool2d",),
    run=_run,
    call=_call,
    tiling=Tiling("conv", coupled=lambda step, net: True),
    infer_shapes=infer_shapes,
)


def _args(ctx) -> tuple:
    """(kernel_size, stride, padding, dilation, ceil_mode, return_indices) of a MaxPool module or call."""
    if ctx.node.kind == "module":
        m = ctx.module
        return m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, m.return_indices
    k = ctx.arg(1, "kernel_size")
    return (k, ctx.arg(2, "stride") or k, ctx.arg(3, "padding", 0), ctx.arg(4, "dilation", 1),
            bool(ctx.arg(5, "ceil_mode", False)), bool(ctx.arg(6, "return_indices", False)))


def expect_rank(ctx, rank: int) -> None:
    """The pooling's input is NCHW (``rank`` 4) or, for 1-D pooling, (batch, channels, time) (``rank`` 3)."""
    shape = ctx.in_shape(0)
    if len(shape) != rank:
        ctx.fail(f"expects a 4-D NCHW input, got shape {shape}" if rank == 4 else
                 f"expects a 3-D (batch, channels, time) input, got shape {shape}")


def emit_maxpool(ctx, kernel: list[int], stride: list[int], padding: list[int], ceil: bool, rank: int) -> None:
    """maxpool2d of the node's input (``rank`` 4: NCHW; 3: (N, C, T), the map of height 1, the window
    [1, k]); ``padding`` top, left, bottom, right."""
    x = ctx.input_tensor(0)
    expect_rank(ctx, rank)
    attrs = {"kernel_size": kernel, "stride": stride, "padding": padding, "ceil_mode": bool(ceil)}
    relu_of = _relu_of_accumulator(ctx, x)
    if relu_of is not None:  # max(relu(a)) = relu(max(a)): pool the accumulator, then the ReLU (a real result)
        from gapforge.ops.relu import emit_relu

        pooled = _pool(ctx, relu_of, ctx.low.unique(f"{ctx.name}.acc"), attrs)
        ctx.bind(emit_relu(ctx, pooled, ctx.name))
    else:
        ctx.bind(_pool(ctx, x, ctx.name, attrs))


def _pool(ctx, x, name: str, attrs: dict, shape: list[int] | None = None):
    """Emit maxpool2d of ``x`` into a new tensor ``name`` of x's encoding (of the node's output shape unless
    ``shape``); refuse what pooling cannot keep exact."""
    shape = ctx.out_shape(0) if shape is None else shape
    if x.kind == "quant":
        out = ctx.new_tensor(name, "quant", shape, scale=x.scale, zero_point=x.zero_point,
                             bit_width=x.bit_width, signed=x.signed, narrow_range=x.narrow_range,
                             channel_axis=x.channel_axis)
    elif _positive_accumulator(x):
        out = ctx.new_tensor(name, "acc", shape, scale=x.scale, channel_axis=x.channel_axis,
                             offset=x.offset)
    else:
        ctx.fail(f"max pooling of {x.described}" + (" with negative scales (BatchNorm with negative gamma)"
                                                        if x.kind == "acc" else ""),
                 hint="quantize before pooling (put the QuantReLU/QuantIdentity before the MaxPool)")
    ctx.emit("maxpool2d", [x], [out], attrs=attrs)
    return out


def _positive_accumulator(t) -> bool:
    """An accumulator whose scales are all positive: its integers order as its real values, so max is exact."""
    return t.kind == "acc" and min(t.scale_list(t.shape[1])) > 0


def _relu_of_accumulator(ctx, x):
    """The accumulator (positive scales) whose ReLU is ``x``, when ``x`` is the real result of such a ReLU (a
    float bias or BatchNorm left an offset: F.max_pool2d(F.relu(conv(x)))); else None."""
    if x.kind != "real":
        return None
    op = ctx.producer_op(x)
    if op is None or op.type != "relu":
        return None
    a = ctx.low.tensors[op.inputs[0]]
    return a if _positive_accumulator(a) else None


def _lower_maxpool(ctx) -> None:
    k, s, p, d, ceil, ri = _args(ctx)
    if ri:
        ctx.fail("return_indices=True is not supported")
    if pair(d) != [1, 1]:
        ctx.fail(f"dilation {d} is not supported for max pooling")
    ph, pw = pair(p)
    emit_maxpool(ctx, pair(k), pair(s), [ph, pw, ph, pw], ceil, rank=4)


def _lower_maxpool1d(ctx) -> None:
    k, s, p, d, ceil, ri = _args(ctx)
    if ri:
        ctx.fail("return_indices=True is not supported")
    (k,), (s,), (p,), (d,) = (pair(v, 1) for v in (k, s, p, d))
    if d != 1:
        ctx.fail(f"dilation {d} is not supported for max pooling")
    emit_maxpool(ctx, [1, k], [1, s], [0, p, 0, p], ceil, rank=3)


def adaptive_window(ctx, rank: int) -> list[int]:
    """The window (= stride) of an adaptive pooling whose output sizes divide its input sizes (``rank`` 4: NCHW;
    3: (N, C, T), the window [1, k]); unequal windows are refused."""
    expect_rank(ctx, rank)
    if rank == 3:
        t, o = ctx.in_shape(0)[2], ctx.out_shape(0)[2]
        if t % o:
            ctx.fail(f"adaptive pooling from {t} to {o} steps has unequal windows",
                     hint="choose an output size that divides the input length")
        return [1, t // o]
    (h, w), (oh, ow) = ctx.in_shape(0)[2:], ctx.out_shape(0)[2:]
    if h % oh or w % ow:
        ctx.fail(f"adaptive pooling from {h}x{w} to {oh}x{ow} has unequal windows",
                 hint="choose an output size that divides the input size")
    return [h // oh, w // ow]


def _adaptive_max(ctx, rank: int) -> None:
    if (ctx.module.return_indices if ctx.node.kind == "module" else ctx.arg(2, "return_indices", False)):
        ctx.fail("return_indices=True is not supported")
    k = adaptive_window(ctx, rank)
    emit_maxpool(ctx, k, k, [0, 0, 0, 0], False, rank=rank)


def _lower_adaptive_max1d(ctx) -> None:
    _adaptive_max(ctx, 3)


def _lower_adaptive_max2d(ctx) -> None:
    _adaptive_max(ctx, 4)


def _reduced_dims(ctx) -> tuple[list[int], bool]:
    """(the reduced axes, keepdim) of torch.max(x, dim) / x.max(dim) (its values) or torch.amax(x, dim)."""
    nd = len(ctx.in_shape(0))
    dim = ctx.arg(1, "dim", None if ctx.node.type_name == "max" else ())
    if ctx.node.type_name == "max" and (dim is None or ctx.act_of(dim) is not None):
        ctx.fail("torch.max of a whole tensor or of two tensors (element-wise) is not supported; only the max "
                 "over an axis", hint="use torch.max(x, dim=2) / x.amax(dim=(2, 3)) or F.adaptive_max_pool2d(x, 1)")
    dims = list(dim) if isinstance(dim, (list, tuple)) else [dim]
    if not dims:
        ctx.fail("amax over all axes is not supported", hint="give the axes: x.amax(dim=(2, 3))")
    return sorted(int(d) % nd for d in dims), bool(ctx.arg(2, "keepdim", False))


def _lower_max_over_axes(ctx) -> None:
    """Max over contiguous axes: x viewed as [B, before, L, after], an L x 1 window maxpool2d, then the output's
    shape (what torch.max(x, dim)'s values and torch.amax give; the indices output is refused if used)."""
    from gapforge.ops.reshape import emit_reshape

    x = ctx.input_tensor(0)
    dims, _keep = _reduced_dims(ctx)
    if ctx.node.type_name == "max" and len(ctx.node.outputs) > 1 and (
            ctx.consumers(1) or ctx.node.outputs[1] in ctx.low.graph.outputs):
        ctx.fail("the indices of torch.max are used; only its values are supported",
                 hint="argmax is not deployable: return the values or the logits")
    shape = list(x.shape)
    if dims[0] == 0 or dims != list(range(dims[0], dims[-1] + 1)):
        ctx.fail(f"max over axes {dims} of shape {shape}: only contiguous axes after the batch axis",
                 hint="take the max over the axes of one sample (e.g. dim=(2, 3)), or permute them next to each other")
    if x.channel_axis in dims and (x.per_channel or isinstance(x.offset, list)):
        ctx.fail(f"max over axis {x.channel_axis} of {x.described} with per-channel scales is not exact",
                 hint="quantize per tensor before the max (a QuantIdentity)")
    if len(shape) == 4 and dims == [2, 3]:  # the global max pool of NCHW
        x4, window, pooled_shape = x, shape[2:], shape[:2] + [1, 1]
    elif len(shape) == 3 and dims == [2]:  # over time: the map of height 1, as MaxPool1d
        x4, window, pooled_shape = x, [1, shape[2]], shape[:2] + [1]
    else:
        before = int(np.prod(shape[1:dims[0]]))
        size = int(np.prod(shape[dims[0]:dims[-1] + 1]))
        view = [shape[0], before, size, int(np.prod(shape[dims[-1] + 1:]))]
        x4 = x if shape == view else emit_reshape(ctx, x, view, f"{ctx.name}.view")
        window, pooled_shape = [size, 1], [shape[0], before, 1, view[3]]
    out_shape = ctx.out_shape(0)
    name = ctx.name if pooled_shape == out_shape else f"{ctx.name}.pool"
    pooled = _pool(ctx, x4, name, {"kernel_size": window, "stride": window, "padding": [0, 0, 0, 0],
                                   "ceil_mode": False}, pooled_shape)
    if pooled_shape != out_shape:
        ctx.record_value(pooled, ctx.low.graph.activations[ctx.node.outputs[0]].value.reshape(pooled_shape))
        pooled = emit_reshape(ctx, pooled, out_shape, ctx.name)
    ctx.bind(pooled)
    for act in ctx.node.outputs[1:]:  # torch.max's unused indices
        ctx.low.act_tensor[act] = None
        ctx.low.failed_by[act] = ctx.name


FRONTENDS = [
    Frontend(
        name="torch.max(x, dim) / Tensor.max(dim) / torch.amax / Tensor.amax",
        functions=("max", "amax"),
        lowers_to=("maxpool2d",),
        doc="The max over one axis or contiguous axes after the batch axis (x.max(dim=2)[0] or .values: the "
            "global max over time of (batch, channels, time); x.amax(dim=(2, 3)): the global max pool of NCHW), "
            "keepdim or not: maxpool2d of the tensor viewed as [batch, before, L, after] with an L x 1 window, as "
            "MaxPool2d (a quantized tensor or a positive-scale accumulator). Refused: the max of a whole tensor or "
            "of two tensors, a used indices output (argmax), the channel axis of a per-channel tensor.",
        lower=_lower_max_over_axes,
    ),
    Frontend(
        name="torch.nn.MaxPool2d / F.max_pool2d",
        modules=(nn.MaxPool2d,),
        functions=("max_pool2d",),
        lowers_to=("maxpool2d",),
        doc="Any kernel, stride, padding and ceil_mode; dilation 1; no return_indices. Works on a "
            "quantized tensor (scale unchanged) or on an accumulator before its quantizer; on the ReLU of an "
            "accumulator with a float bias or BatchNorm offset (F.max_pool2d(F.relu(conv(x)))) it pools the "
            "accumulator and the ReLU follows (max commutes with ReLU).",
        lower=_lower_maxpool,
    ),
    Frontend(
        name="torch.nn.MaxPool1d / F.max_pool1d",
        modules=(nn.MaxPool1d,),
        functions=("max_pool1d",),
        lowers_to=("maxpool2d",),
        doc="1-D max pooling over (batch, channels, time) is maxpool2d over the map of height 1 (window "
            "[1, k]), as QuantConv1d is conv2d: any kernel, stride, padding (-inf, as PyTorch) and "
            "ceil_mode; dilation 1; no return_indices. On a quantized tensor or an accumulator, as MaxPool2d.",
        lower=_lower_maxpool1d,
    ),
    Frontend(
        name="torch.nn.AdaptiveMaxPool1d / F.adaptive_max_pool1d",
        modules=(nn.AdaptiveMaxPool1d,),
        functions=("adaptive_max_pool1d",),
        lowers_to=("maxpool2d",),
        doc="Lowered to maxpool2d over the map of height 1 when the output size divides the input length "
            "(output 1 = the global max over time); no return_indices.",
        lower=_lower_adaptive_max1d,
    ),
    Frontend(
        name="torch.nn.AdaptiveMaxPool2d / F.adaptive_max_pool2d",
        modules=(nn.AdaptiveMaxPool2d,),
        functions=("adaptive_max_pool2d",),
        lowers_to=("maxpool2d",),
        doc="Lowered to maxpool2d (kernel = stride = input size / output size per axis) when each output "
            "size divides the input size (output 1 = the global max); no return_indices.",
        lower=_lower_adaptive_max2d,
    ),
]
