"""slice: a strided range of one axis (x[:, 0], x[:, 1:], x[:, ::2]); pure data movement."""

from __future__ import annotations

import atomic_ops
from gapforge.ops._base import Attr, Frontend, IROp
from gapforge.ops._shapes import ShapeError, around_axis, inputs_of
from gapforge.ops.reshape import emit_reshape


def infer_shapes(inputs, attrs, params):
    """The sliced axis gets len(range(start, stop, step)) elements (stop <= its size); others unchanged."""
    (x,) = inputs_of(inputs, 1)
    axis, start, stop, step = attrs["axis"], attrs["start"], attrs["stop"], attrs["step"]
    if axis >= len(x):
        raise ShapeError(f"axis {axis} of a {len(x)}-D input {x}", "attrs.axis")
    if not 0 <= start < stop <= x[axis]:
        raise ShapeError(f"range [{start}, {stop}) is empty or outside axis {axis} of {x}", "attrs.stop")
    out = list(x)
    out[axis] = len(range(start, stop, step))
    return [out]


def _call(cg):
    a = cg.attrs
    outer, n, inner = around_axis(cg.net.tensors[cg.step.inputs[0]].shape, a["axis"])
    count = len(range(a["start"], a["stop"], a["step"]))
    return cg.call("gf_slice", (cg.X[0], str(cg.ins[0].elem_bytes), str(outer), str(n), str(a["start"]),
                                str(a["step"]), str(count), str(inner), cg.Y))


IR_OP = IROp(
    name="slice",
    summary="A strided range of one axis (token slicing).",
    semantics="y = x[..., start:stop:step, ...] along one axis; integers unchanged.",
    inputs="one quant or acc tensor; never the batch axis",
    attrs={"axis": Attr({"type": "integer", "minimum": 1}, "sliced axis (never the batch axis)"),
           "start": Attr({"type": "integer", "minimum": 0}, "first index"),
           "stop": Attr({"type": "integer", "minimum": 1}, "end index (exclusive)"),
           "step": Attr({"type": "integer", "minimum": 1}, "stride")},
    reference="slice",
    kernels=("gf_slice",),
    run=lambda engine, step, inputs: atomic_ops.get("slice")(inputs[0], step.attrs["axis"], step.attrs["start"],
                                                             step.attrs["stop"], step.attrs["step"]),
    call=_call,
    fc_direct=True,
    infer_shapes=infer_shapes,
)


def _sliced(values, start, stop, step):
    return [values[i] for i in range(start, stop, step)]


def emit_slice(ctx, x, axis: int, start: int, stop: int, step: int, base: str):
    if x.kind not in ("quant", "acc"):
        ctx.fail(f"slices {x.described}", hint="quantize before slicing")
    fields = dict(scale=x.scale, channel_axis=x.channel_axis)
    if x.channel_axis == axis:
        fields["scale"] = _sliced(x.scale_list(x.shape[axis]), start, stop, step)
    if x.kind == "quant":
        fields.update(zero_point=x.zero_point, bit_width=x.bit_width, signed=x.signed, narrow_range=x.narrow_range)
    else:
        off = x.offset
        if x.channel_axis == axis and off is not None:
            off = _sliced(x.offset_list(x.shape[axis]), start, stop, step)
        fields["offset"] = off
    shape = list(x.shape)
    shape[axis] = len(range(start, stop, step))
    out = ctx.new_tensor(base, x.kind, shape, **fields)
    ctx.emit("slice", [x], [out], attrs={"axis": axis, "start": start, "stop": stop, "step": step})
    idx = [slice(None)] * len(shape)
    idx[axis] = slice(start, stop, step)
    ctx.derive_value(out, x, lambda v: v[tuple(idx)])
    return out


def _lower_getitem(ctx) -> None:
    x = ctx.input_tensor(0)
    nd = len(x.shape)
    idx = ctx.arg(1, "idx")
    idx = idx if isinstance(idx, tuple) else (idx,)
    if sum(i is Ellipsis for i in idx) > 1:
        ctx.fail("indexes with more than one Ellipsis")
    if Ellipsis in idx:
        k = idx.index(Ellipsis)
        idx = idx[:k] + (slice(None),) * (nd - len(idx) + 1) + idx[k + 1:]
    if len(idx) > nd:
        ctx.fail(f"indexes {len(idx)} axes of a {nd}-D tensor")
    cur, dropped = x, []
    for axis, i in enumerate(idx):
        size = cur.shape[axis]
        if isinstance(i, bool) or not isinstance(i, (int, slice)):
            ctx.fail(f"indexing with {type(i).__name__} (None, tensors, lists: advanced indexing) is not supported",
                     hint="use integers and slices, e.g. x[:, 0] or x[:, 1:]")
        if isinstance(i, int):
            if not -size <= i < size:
                ctx.fail(f"index {i} is outside axis {axis} of size {size}")
            start, stop, step = i % size, i % size + 1, 1
            dropped.append(axis)
        else:
            start, stop, step = i.indices(size)
            if step <= 0:
                ctx.fail(f"slice with step {step}: only positive steps are supported")
            if len(range(start, stop, step)) == 0:
                ctx.fail(f"slice {i} of axis {axis} is empty")
            if (start, stop, step) == (0, size, 1):
                continue
        if axis == 0:
            ctx.fail("indexes the batch axis", hint="index the other axes only, e.g. x[:, 0]")
        if cur.channel_axis == axis and axis in dropped:
            ctx.fail("removes the per-channel axis of a tensor by indexing", hint="use a per-tensor quantizer")
        cur = emit_slice(ctx, cur, axis, start, stop, step, ctx.name)
    out_shape = ctx.out_shape(0)
    if cur.shape != out_shape:
        cur = emit_reshape(ctx, cur, out_shape, ctx.name)
    ctx.bind(cur)


def _pieces(ctx, size: int) -> list[tuple[int, int]]:
    """The [start, stop) ranges of torch.chunk / split / tensor_split / unbind / select along an axis of ``size``."""
    name = ctx.node.type_name
    if name == "select":
        index = ctx.arg(2, "index")
        if not isinstance(index, int) or not -size <= index < size:
            ctx.fail(f"select of index {index!r} on an axis of size {size}")
        return [(index % size, index % size + 1)]
    if name == "unbind":
        return [(i, i + 1) for i in range(size)]
    if name == "chunk":
        n = ctx.arg(1, "chunks")
        k = -(-size // n)  # torch: pieces of ceil(size / chunks), the last one shorter, as many as that makes
        return [(s, min(s + k, size)) for s in range(0, size, k)]
    if name == "split":
        spec = ctx.arg(1, "split_size_or_sections", ctx.arg(1, "split_size"))
        if isinstance(spec, int):
            return [(s, min(s + spec, size)) for s in range(0, size, spec)]
        cuts = [0]
        for n in spec:
            cuts.append(cuts[-1] + int(n))
    else:  # tensor_split: n near-equal pieces (the first size % n one longer), or cut indices
        spec = ctx.arg(1, "indices_or_sections", ctx.arg(1, "sections", ctx.arg(1, "indices")))
        if isinstance(spec, int):
            q, r = divmod(size, spec)
            cuts = [0]
            for i in range(spec):
                cuts.append(cuts[-1] + q + (1 if i < r else 0))
        else:
            cuts = [0] + [min(max(int(i), 0), size) for i in spec] + [size]
    return list(zip(cuts[:-1], cuts[1:]))


def _lower_split(ctx) -> None:
    """Each piece of torch.chunk / split / tensor_split / unbind / select is a slice of the input (unbind's
    and select's also drop their axis)."""
    x = ctx.input_tensor(0)
    name = ctx.node.type_name
    dim = ctx.arg({"unbind": 1, "select": 1}.get(name, 2), "dim", 0)
    if not isinstance(dim, int) or not -len(x.shape) <= dim < len(x.shape):
        ctx.fail(f"{name} along dim {dim!r} of a {len(x.shape)}-D tensor")
    axis = dim % len(x.shape)
    if axis == 0:
        ctx.fail(f"{name} along the batch axis", hint="split another axis, e.g. dim=1 (channels)")
    pieces = _pieces(ctx, x.shape[axis])
    if len(pieces) != len(ctx.node.outputs):
        ctx.fail(f"{name} gives {len(pieces)} pieces here but the model used {len(ctx.node.outputs)}")
    if name in ("unbind", "select") and x.channel_axis == axis:
        ctx.fail(f"{name} removes the per-channel axis of a tensor", hint="use a per-tensor quantizer")
    for i, (start, stop) in enumerate(pieces):
        if stop <= start:  # an empty piece (tensor_split past the end): nothing reads it
            ctx.fail(f"{name} gives an empty piece {i}", hint="split into non-empty pieces")
        piece = x if (start, stop) == (0, x.shape[axis]) else emit_slice(ctx, x, axis, start, stop, 1,
                                                                        f"{ctx.name}_{i}")
        if piece.shape != ctx.out_shape(i):
            piece = emit_reshape(ctx, piece, ctx.out_shape(i), f"{ctx.name}_{i}")
        ctx.bind(piece, i)


FRONTENDS = [
    Frontend(
        name="torch.chunk / torch.split / torch.tensor_split / torch.unbind / torch.select",
        functions=("chunk", "split", "tensor_split", "unbind", "select"),
        lowers_to=("slice", "reshape"),
        doc="Each piece is a slice of the input along `dim` (any axis but the batch axis; unbind and select also drop it); "
            "integers unchanged. Brevitas returns plain tensors for these (a QuantTensor has no .chunk / .split "
            "method), whose values are the input's codes times its scale, so a layer after a piece sees the same "
            "numbers.",
        lower=_lower_split,
    ),
    Frontend(
        name="x[...] (indexing and slicing of activations)",
        functions=("getitem",),
        lowers_to=("slice", "reshape"),
        doc="Integers and slices with positive steps on any axis but the batch axis (x[:, 0], x[:, 1:], "
            "x[:, ::2], x[..., :4]); an integer index removes its axis. None, tensors and lists "
            "(advanced indexing) are refused.",
        lower=_lower_getitem,
    ),
]
