"""upsample: upsampling by integer factors. Nearest: pure data movement. Linear / bilinear: each output an
exact int32 weighted sum of <= 2 (<= 4) input codes with integer weights over a fixed denominator."""

from __future__ import annotations

import numpy as np


def upsample(x: np.ndarray, factors) -> np.ndarray:
    """``y[n, c, i, j] = x[n, c, i // fh, j // fw]`` (NCHW; one factor per axis after the channel axis: one
    for (N, C, T), two for (N, C, H, W)); integers unchanged."""
    if len(factors) != x.ndim - 2:
        raise ValueError(f"{len(factors)} factors for the {x.ndim - 2} spatial axes of a {x.ndim}-D tensor")
    for axis, f in enumerate(factors, start=2):
        x = np.repeat(x, int(f), axis=axis)
    return np.ascontiguousarray(x)


def linear_taps(n_in: int, f: int, align_corners: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Per output index i of one axis (n_in * f outputs): (i0, i1, w1, d) with ``y[i] = ((d - w1[i]) * x[i0[i]]
    + w1[i] * x[i1[i]]) / d``, torch's linear interpolation in exact integers (docs/integer_contract.md):
    factor 1: the identity (d = 1); align_corners=False: source position n / d with n = max(2 i + 1 - f, 0),
    d = 2 f; align_corners=True: n = i (n_in - 1), d = n_in f - 1; i0 = n // d, w1 = n % d,
    i1 = min(i0 + 1, n_in - 1)."""
    i = np.arange(n_in * f, dtype=np.int64)
    if f == 1:
        return i, i, np.zeros_like(i), 1
    if align_corners:
        d = n_in * f - 1
        n = i * (n_in - 1)
    else:
        d = 2 * f
        n = np.maximum(2 * i + 1 - f, 0)
    i0, w1 = n // d, n % d
    return i0, np.minimum(i0 + 1, n_in - 1), w1, int(d)


def linear_weights(n_in: int, f: int, align_corners: bool) -> tuple[np.ndarray, int]:
    """The integer weight matrix [n_in * f, n_in] of one axis and its denominator d (rows sum to d)."""
    i0, i1, w1, d = linear_taps(n_in, f, align_corners)
    w = np.zeros((n_in * f, n_in), dtype=np.int64)
    rows = np.arange(n_in * f)
    np.add.at(w, (rows, i0), d - w1)
    np.add.at(w, (rows, i1), w1)
    return w, d


def linear_denominator(shape, factors, align_corners: bool) -> int:
    """The product of the per-axis denominators: the output's scale is the input's divided by it."""
    return int(np.prod([linear_taps(n, f, align_corners)[3] for n, f in zip(shape[2:], factors)]))


def upsample_linear(x: np.ndarray, zero_point: int, factors, align_corners: bool) -> np.ndarray:
    """``acc[n, c, i, j] = sum_{a, b} Wh[i, a] Ww[j, b] (x[n, c, a, b] - zp)`` (int32; (N, C, T): one axis),
    real value ``s / (dh dw) * acc``."""
    if len(factors) != x.ndim - 2 or x.ndim not in (3, 4):
        raise ValueError(f"{len(factors)} factors for a {x.ndim}-D tensor; one per axis after the channel axis")
    y = x.astype(np.int64) - int(zero_point)
    for axis, f in enumerate(factors, start=2):
        w, _ = linear_weights(x.shape[axis], int(f), align_corners)
        y = np.moveaxis(np.tensordot(y, w, axes=([axis], [1])), -1, axis)
    return np.ascontiguousarray(y.astype(np.int32))
