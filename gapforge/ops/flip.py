"""flip: torch.flip / Tensor.flip of an activation (the backward direction of a bidirectional scan)."""

from __future__ import annotations

import atomic_ops
from gapforge.ops._base import Attr, Frontend, IROp
from gapforge.ops._shapes import ShapeError, around_axis, inputs_of


def infer_shapes(inputs, attrs, params):
    """One input; the output has its shape (the flipped axis is never the batch axis)."""
    (x,) = inputs_of(inputs, 1)
    if not 1 <= attrs["axis"] < len(x):
        raise ShapeError(f"flips axis {attrs['axis']} of a {len(x)}-D tensor (never the batch axis)", "attrs.axis")
    return [list(x)]


def _call(cg):
    outer, n, inner = around_axis(cg.net.tensors[cg.step.inputs[0]].shape, cg.attrs["axis"])
    return cg.call("gf_flip", (cg.X[0], str(cg.ins[0].elem_bytes), str(outer), str(n), str(inner), cg.Y))


IR_OP = IROp(
    name="flip",
    summary="One axis in reverse order (torch.flip).",
    semantics="y[..., i, ...] = x[..., n - 1 - i, ...] along one axis; integers unchanged.",
    inputs="one quant or acc tensor; never the batch axis",
    attrs={"axis": Attr({"type": "integer", "minimum": 1}, "the reversed axis (never the batch axis)")},
    reference="flip",
    kernels=("gf_flip",),
    run=lambda engine, step, inputs: atomic_ops.get("flip")(inputs[0], step.attrs["axis"]),
    call=_call,
    fc_direct=True,
    infer_shapes=infer_shapes,
)


def _lower_flip(ctx) -> None:
    x = ctx.input_tensor(0)
    dims = ctx.arg(1, "dims")
    dims = [dims] if isinstance(dims, int) else list(dims or [])
    if not dims:
        ctx.fail("flip without dims")
    cur = x
    for d in sorted({int(d) % len(x.shape) for d in dims}):
        if cur.kind not in ("quant", "acc"):
            ctx.fail(f"flips {cur.described}", hint="quantize before flipping")
        if d == 0:
            ctx.fail("flips the batch axis", hint="flip the other axes only, e.g. torch.flip(x, [1])")
        if cur.channel_axis == d:
            ctx.fail("flips the per-channel axis of a tensor", hint="use a per-tensor quantizer")
        fields = dict(scale=cur.scale, channel_axis=cur.channel_axis)
        if cur.kind == "quant":
            fields.update(zero_point=cur.zero_point, bit_width=cur.bit_width, signed=cur.signed,
                          narrow_range=cur.narrow_range)
        else:
            fields["offset"] = cur.offset
        out = ctx.new_tensor(ctx.name, cur.kind, cur.shape, **fields)
        ctx.emit("flip", [cur], [out], attrs={"axis": d})
        ctx.derive_value(out, cur, lambda v, d=d: v.flip(d))
        cur = out
    ctx.bind(cur)


FRONTENDS = [
    Frontend(
        name="torch.flip / Tensor.flip",
        functions=("flip",),
        lowers_to=("flip",),
        doc="Reverses axes of a quantized tensor or an accumulator (any axis but the batch axis, a "
            "per-channel axis excluded): the backward direction of a bidirectional Mamba, "
            "torch.flip(x, [1]) over the tokens and back.",
        lower=_lower_flip,
    ),
]
