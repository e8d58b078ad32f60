"""The polyphase lowering of a transposed convolution (gapforge/ops/conv_transpose.py) on integers: the
stride-1 conv2d of the stacked phases (atomic_ops.conv2d, the reference every backend matches), interleaved
and cut as the lowering's reshape / permute / slice ops do, equals torch's conv_transpose on the same
integer tensors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import atomic_ops
from gapforge.ops.conv_transpose import axis_phases, plan


def _lowered(x: np.ndarray, w: np.ndarray, m, out_shape: list[int]) -> np.ndarray:
    """The lowered layer in numpy: conv2d of the phases, depth to space (channels (g, phases, O/g)), crop."""
    nd = x.ndim - 2
    stack, attrs, conv_shape = plan(m, list(x.shape), out_shape)
    x4 = x.reshape(x.shape[:2] + (1,) + x.shape[2:]) if nd == 1 else x
    w4 = w.reshape(w.shape[:2] + (1,) + w.shape[2:]) if nd == 1 else w
    z = atomic_ops.get("conv2d")(x4, stack.weight(w4), None, attrs["stride"], attrs["padding"], attrs["dilation"],
                                 attrs["groups"])
    z = z.reshape(conv_shape)
    strides = [stack.h.stride, stack.w.stride][2 - nd:]
    n, g, q = z.shape[0], stack.groups, list(z.shape[2:])
    og = stack.channels // g
    y = z.reshape([n, g] + strides + [og] + q)
    y = y.transpose([0, 1, nd + 2] + [a for i in range(nd) for a in (nd + 3 + i, 2 + i)])
    y = y.reshape([n, g * og] + [a * s for a, s in zip(q, strides)])
    axes = [stack.h, stack.w][2 - nd:]
    return y[(slice(None), slice(None)) + tuple(slice(a.start, a.start + a.out) for a in axes)]


CASES_2D = [  # (c_in, c_out, kernel, stride, padding, output_padding, groups)
    (3, 4, 2, 2, 0, 0, 1),
    (3, 4, 3, 2, 1, 1, 1),
    (3, 4, 4, 2, 1, 0, 1),
    (2, 3, 3, 3, 0, 2, 1),
    (2, 3, 5, 2, 2, 1, 1),
    (2, 2, 1, 2, 0, 1, 1),  # kernel smaller than the stride: a phase of zero taps
    (2, 3, 2, 3, 0, 0, 1),
    (2, 3, 3, 1, 1, 0, 1),  # stride 1: one phase, no interleave
    (2, 3, 3, 2, 3, 0, 1),  # padding >= kernel: leading zero taps instead of a negative padding
    (2, 3, (3, 2), (2, 1), (1, 0), (1, 0), 1),
    (4, 6, 4, 2, 1, 0, 2),
    (4, 4, 3, 2, 1, 1, 4),  # depthwise
]


@pytest.mark.parametrize("ci,co,k,s,p,op,g", CASES_2D)
def test_lowered_conv_transpose2d_equals_torch_on_integers(ci, co, k, s, p, op, g):
    m = nn.ConvTranspose2d(ci, co, k, stride=s, padding=p, output_padding=op, groups=g, bias=False)
    rng = np.random.default_rng(ci * 100 + co)
    x = rng.integers(-128, 128, size=(2, ci, 5, 4)).astype(np.int8)
    w = rng.integers(-127, 128, size=tuple(m.weight.shape)).astype(np.int8)
    ref = F.conv_transpose2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(), stride=s, padding=p,
                             output_padding=op, groups=g).numpy()
    ours = _lowered(x, w, m, list(ref.shape))
    assert ours.shape == ref.shape and np.array_equal(ours, ref.astype(np.int64))


@pytest.mark.parametrize("k,s,p,op,g", [(2, 2, 0, 0, 1), (5, 3, 2, 1, 1), (4, 2, 1, 0, 4), (3, 2, 1, 1, 2),
                                        (1, 3, 0, 2, 1)])
def test_lowered_conv_transpose1d_equals_torch_on_integers(k, s, p, op, g):
    m = nn.ConvTranspose1d(4, 6 if g != 4 else 4, k, stride=s, padding=p, output_padding=op, groups=g, bias=False)
    rng = np.random.default_rng(k * 10 + s)
    x = rng.integers(0, 256, size=(2, 4, 7)).astype(np.uint8)
    w = rng.integers(-127, 128, size=tuple(m.weight.shape)).astype(np.int8)
    ref = F.conv_transpose1d(torch.from_numpy(x).double(), torch.from_numpy(w).double(), stride=s, padding=p,
                             output_padding=op, groups=g).numpy()
    ours = _lowered(x, w, m, list(ref.shape))
    assert ours.shape == ref.shape and np.array_equal(ours, ref.astype(np.int64))


def test_phases_of_the_common_upsamplers():
    """k=2 s=2: a 1x1 convolution; k=3 s=2 p=1 output_padding=1: 2x2 taps with one padding row at the end;
    k=4 s=2 p=1: 2x2 taps from position 1 (then cut), rather than 3x3 taps of which 5 are zero."""
    a = axis_phases(2, 2, 0, 5, 10)
    assert (a.taps, a.pad_lo, a.pad_hi, a.length, a.start) == ([[0], [1]], 0, 0, 5, 0)
    a = axis_phases(3, 2, 1, 5, 10)
    assert (a.taps, a.pad_lo, a.pad_hi, a.length, a.start) == ([[1, -1], [2, 0]], 0, 1, 5, 0)
    a = axis_phases(4, 2, 1, 5, 10)
    assert (a.taps, a.pad_lo, a.pad_hi, a.length, a.start) == ([[2, 0], [3, 1]], 1, 1, 6, 1)
