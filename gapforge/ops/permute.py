"""permute: reorder axes (permute / transpose)."""

from __future__ import annotations

import math

import atomic_ops
from gapforge.errors import GapforgeError
from gapforge.ops._base import Attr, Frontend, IROp
from gapforge.ops._shapes import ShapeError, inputs_of


def infer_shapes(inputs, attrs, params):
    """Output axis i is input axis perm[i]; perm keeps the batch axis first."""
    (x,) = inputs_of(inputs, 1)
    perm = list(attrs["perm"])
    if sorted(perm) != list(range(len(x))) or perm[0] != 0:
        raise ShapeError(f"perm {perm} is not a permutation of the {len(x)} axes of {x} keeping the batch "
                         "axis first", "attrs.perm")
    return [[x[p] for p in perm]]



def merged(shape: list[int], perm: list[int]) -> tuple[list[int], list[int]]:
    """The same data movement on fewer axes: input axes that stay adjacent and in order in the output
    (perm[k + 1] == perm[k] + 1) are one axis, and size-1 axes are dropped: a channel shuffle,
    x.view(1, g, C // g, H, W).transpose(1, 2), is shape (g, C // g, H * W) by (1, 0, 2)."""
    keep = [a for a in range(len(shape)) if shape[a] != 1]
    perm = [p for p in perm if p in keep]
    groups: list[list[int]] = []  # runs of input axes, in output order
    for p in perm:
        if groups and groups[-1][-1] + 1 == p:
            groups[-1].append(p)
        else:
            groups.append([p])
    order = sorted(range(len(groups)), key=lambda g: groups[g][0])  # the runs in input order
    new_shape = [math.prod(shape[a] for a in groups[g]) for g in order]
    new_perm = [order.index(g) for g in range(len(groups))]
    return new_shape or [1], new_perm or [0]


def _call(cg):
    x = cg.net.tensors[cg.step.inputs[0]]
    shape, perm = merged(list(x.shape), list(cg.attrs["perm"]))
    nd = len(shape)
    if nd > 4:
        raise GapforgeError(f"permute '{cg.step.output}' of a {len(x.shape)}-D tensor {x.shape} by {cg.attrs['perm']}: "
                            f"the device kernel moves at most 4 axes and this one needs {nd}")
    pad = 4 - nd
    shape4 = [1] * pad + shape
    perm4 = list(range(pad)) + [p + pad for p in perm]
    return cg.call("gf_permute", (cg.X[0], str(cg.out.elem_bytes), f"perm_shape_{cg.ident}", f"perm_{cg.ident}", cg.Y),
                   perm=(tuple(shape4), tuple(perm4)))


IR_OP = IROp(
    name="permute",
    summary="Reorder the axes of a tensor (data movement).",
    semantics="y[idx] = x[idx permuted]; integers unchanged.",
    inputs="one quant or acc tensor; the batch axis stays first",
    attrs={"perm": Attr({"type": "array", "items": {"type": "integer", "minimum": 0}},
                        "output axis i is input axis perm[i]")},
    reference="permute",
    kernels=("gf_permute",),
    run=lambda engine, step, inputs: atomic_ops.get("permute")(inputs[0], step.attrs["perm"]),
    call=_call,
    fc_direct=True,
    infer_shapes=infer_shapes,
)


def _lower(ctx) -> None:
    act = ctx.node.inputs[0]
    x = ctx.tensor_of_act(act, seq_first_ok=True)
    nd = len(x.shape)
    if ctx.node.type_name == "transpose":
        d0, d1 = ctx.arg(1, "dim0"), ctx.arg(2, "dim1")
        perm = list(range(nd))
        perm[d0 % nd], perm[d1 % nd] = perm[d1 % nd], perm[d0 % nd]
    else:
        dims = ctx.node.args[1:] if len(ctx.node.args) > 2 else ctx.arg(1, "dims")
        perm = [int(d) % nd for d in (dims if isinstance(dims, (list, tuple)) else [dims])]
    swap01 = nd >= 3 and perm == [1, 0] + list(range(2, nd))
    if ctx.is_seq_first(act):
        if not swap01:
            ctx.fail(f"permutation {perm} of a sequence-first tensor (x.transpose(0, 1) of a batch-first one)",
                     hint="only the transpose back, x.transpose(0, 1), is supported on it")
        ctx.bind(x)  # back to batch first: the IR tensor it always was
        return
    if swap01 and x.kind in ("quant", "acc"):
        # [B, T, ...] -> [T, B, ...] (QuantMultiheadAttention's batch_first=False layout): the IR keeps
        # the tensor batch first; only the consumers that understand the layout accept it
        ctx.bind_seq_first(x)
        return
    if sorted(perm) != list(range(nd)) or perm[0] != 0:
        if sorted(perm) == list(range(nd)):
            ctx.fail(f"permutation {perm} moves the batch axis (axis 0) of '{x.name}' to position "
                     f"{perm.index(0)}; every activation keeps the batch axis first",
                     hint="index before permuting, e.g. timm's qkv.reshape(B, N, 3, H, D).permute(2, 0, 3, 1, 4) "
                          "then qkv[0]: write q = qkv[:, :, 0].permute(0, 2, 1, 3) (likewise k, v)")
        ctx.fail(f"permutation {perm} of the {nd} axes of '{x.name}' is not a permutation")
    if perm == list(range(nd)):
        ctx.bind(x)
        return
    if x.kind not in ("quant", "acc"):
        ctx.fail(f"permutes {x.described}", hint="quantize before permuting")
    axes = len(merged(list(x.shape), perm)[0])
    if axes > 4:
        ctx.fail(f"permutation {perm} of '{x.name}' {x.shape} moves {axes} separate axes; the device kernel moves "
                 "at most 4 (axes that stay adjacent and in order count as one)",
                 hint="split it into two permutes of fewer axes, with a reshape between")
    ctx.bind(emit_permute(ctx, x, perm, ctx.name))


def emit_permute(ctx, x, perm: list[int], base: str):
    """Emit ``permute`` of ``x`` (batch axis first) by ``perm``; return its output."""
    axis = perm.index(x.channel_axis) if x.channel_axis is not None else None
    fields = dict(scale=x.scale, channel_axis=axis)
    if x.kind == "quant":
        fields.update(zero_point=x.zero_point, bit_width=x.bit_width, signed=x.signed,
                      narrow_range=x.narrow_range)
    else:
        fields.update(offset=x.offset)
    out = ctx.new_tensor(base, x.kind, [x.shape[p] for p in perm], **fields)
    ctx.emit("permute", [x], [out], attrs={"perm": list(perm)})
    ctx.derive_value(out, x, lambda v: v.permute(*perm))
    return out


FRONTENDS = [
    Frontend(
        name="Tensor.permute / Tensor.transpose / torch.permute / torch.transpose",
        functions=("permute", "transpose"),
        lowers_to=("permute",),
        doc="Axis reordering that keeps the batch axis first. x.transpose(0, 1) of a 3-D or higher tensor "
            "(the [T, B, E] layout of QuantMultiheadAttention(batch_first=False)) is a view that only such "
            "an attention and the transpose back may read.",
        lower=_lower,
    ),
]
