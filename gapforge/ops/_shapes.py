"""Helpers of the shape rules (``IROp.infer_shapes``) of the operator declarations, and the one view of a
1-D (N, C, T) activation as the 2-D map (N, C, 1, T) that conv1d and 1-D pooling use (``unit_height_map``
for shapes, ``on_map`` for the integer references).

A shape rule receives the shapes of an op's inputs (batch first), its attributes and the shapes
of its params, and returns the shapes of its outputs; it raises ``ShapeError`` (a one-line reason)
when the inputs cannot be the op's (wrong count, wrong rank, a weight that does not fit). The
validation of network_info.json (gapforge/ir.py) compares every declared output shape with it.
"""

from __future__ import annotations

import math

from atomic_ops.maxpool2d import pooled_size


class ShapeError(ValueError):
    """The op's inputs, attributes or params are inconsistent; the message says how.

    ``field`` names the part of the op at fault, relative to the op (``inputs``, ``attrs.shape``,
    ``params.weight.shape``); the validator prefixes it with ``ops[i]``.
    """

    def __init__(self, message: str, field: str = "inputs"):
        super().__init__(message)
        self.field = field


def inputs_of(shapes: list[list[int]], count: int | None = None, minimum: int | None = None) -> list[list[int]]:
    """``shapes`` after checking the number of inputs (exactly ``count`` or at least ``minimum``)."""
    if count is not None and len(shapes) != count:
        raise ShapeError(f"takes {count} input{'s' if count > 1 else ''}, got {len(shapes)}")
    if minimum is not None and len(shapes) < minimum:
        raise ShapeError(f"takes at least {minimum} inputs, got {len(shapes)}")
    return shapes


def rank(shape: list[int], n: int, what: str = "input") -> list[int]:
    if len(shape) != n:
        raise ShapeError(f"{what} must be {n}-D, got shape {shape}")
    return shape


def same_shape(inputs: list[list[int]], attrs: dict, params: dict) -> list[list[int]]:
    """One input; the output has its shape."""
    (x,) = inputs_of(inputs, 1)
    return [list(x)]


def window_hw(x: list[int], kernel: list[int], stride: list[int], padding: list[int],
              dilation: list[int] = (1, 1), ceil_mode: bool = False) -> list[int]:
    """Output height and width of a sliding window over NCHW ``x`` (PyTorch's formula)."""
    out = []
    for size, k, s, lo, hi, d in zip(x[2:], kernel, stride, padding[:2], padding[2:], dilation):
        n = pooled_size(size, d * (k - 1) + 1, s, lo, hi, ceil_mode)
        if n < 1:
            raise ShapeError(f"window {list(kernel)} (dilation {list(dilation)}) is larger than the padded "
                             f"input {x[2:]} (padding {list(padding)})")
        out.append(n)
    return out


def unit_height_map(x: list[int], attrs: dict) -> list[int]:
    """The map [N, C, 1, T] of a 1-D input [N, C, T] (conv1d, 1-D pooling), after checking that the window
    does not slide along the unit height: kernel, stride and dilation 1 there, no padding at top and bottom."""
    for k in ("kernel_size", "stride", "dilation", "padding"):
        v = attrs.get(k)
        if v is not None and (max(v[0], v[2]) != 0 if k == "padding" else v[0] != 1):
            raise ShapeError(f"a 1-D input {x} needs {k} {'0 at top and bottom' if k == 'padding' else '1'} "
                             f"along the unit height, got {v}", f"attrs.{k}")
    return x[:2] + [1] + x[2:]


def as_nchw(x):
    """A 1-D (N, C, T) array seen as the 2-D map (N, C, 1, T); an NCHW array unchanged."""
    return x.reshape(x.shape[:2] + (1,) + x.shape[2:]) if x.ndim == 3 else x


def on_map(fn, x, *args):
    """``fn(x, *args)`` of an NCHW reference (atomic_ops); a 1-D input (N, C, T) runs as the map (N, C, 1, T)
    and its result is returned as (N, C', T')."""
    y = fn(as_nchw(x), *args)
    return y.reshape(y.shape[:2] + y.shape[3:]) if x.ndim == 3 else y


def pool_shapes(shapes: list[list[int]], attrs: dict, ceil_mode: bool = False) -> list[list[int]]:
    """[N, C, H, W] -> [N, C, OH, OW]; a 1-D input [N, C, T] is the map [N, C, 1, T] and gives [N, C, OT]."""
    (x,) = inputs_of(shapes, 1)
    if len(x) == 3:
        (y,) = pool_shapes([unit_height_map(x, attrs)], attrs, ceil_mode)
        return [y[:2] + y[3:]]
    rank(x, 4, "input (NCHW, or NCT for 1-D pooling)")
    return [x[:2] + window_hw(x, attrs["kernel_size"], attrs["stride"], attrs["padding"], ceil_mode=ceil_mode)]


def weight_layer(params: dict[str, list[int]], ndim: int, layout: str) -> list[int]:
    """The weight shape (``ndim``-D, ``layout`` for messages), after checking the bias is ``[out]``."""
    w = params.get("weight")
    if w is None:
        raise ShapeError("has no 'weight' param", "params")
    if len(w) != ndim:
        raise ShapeError(f"weight must be {ndim}-D {layout}, got shape {w}", "params.weight.shape")
    b = params.get("bias")
    if b is not None and list(b) != [w[0]]:
        raise ShapeError(f"bias shape {b} does not match the {w[0]} output channels of the weight {w}",
                         "params.bias.shape")
    return w


def numel(shape: list[int]) -> int:
    return int(math.prod(shape))


def around_axis(shape: list[int], axis: int) -> tuple[int, int, int]:
    """(outer, size, inner) of ``shape`` around ``axis``: the three extents the axis kernels take (gf_pad, gf_slice, ...)."""
    return int(math.prod(shape[:axis])), shape[axis], int(math.prod(shape[axis + 1:]))


def padded_axis(x: list[int], attrs: dict) -> list[int]:
    """The shape of ``x`` with axis ``attrs['axis']`` grown by before + after (the padding ops)."""
    axis = attrs["axis"]
    if not 1 <= axis < len(x):
        raise ShapeError(f"pads axis {axis} of a {len(x)}-D input {x} (never the batch axis)", "attrs.axis")
    out = list(x)
    out[axis] += attrs["before"] + attrs["after"]
    return out


def chw(shape: list[int]) -> tuple[int, int, int]:
    """(channels, height, width) of an NCHW activation, or of an NCT one seen as the map NC1T (conv1d)."""
    if len(shape) == 3:
        return shape[1], 1, shape[2]
    c, h, w = shape[1:4]
    return c, h, w
