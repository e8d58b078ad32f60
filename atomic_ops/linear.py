"""linear: integer fully connected layer over the last axis."""

from __future__ import annotations

import numpy as np

from atomic_ops._gemm import cached, exact_float_dtype


def linear(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``acc[..., o] = bias[o] + sum_k w[o, k] * x[..., k]`` (int64 out).

    Computed as a float32 or float64 matrix product, exact for the same reason as conv2d
    (``atomic_ops._gemm``: every partial sum is an integer below 2^24 resp. 2^53).
    """
    ft = exact_float_dtype(x, w)
    wt = cached(w, ("linear", ft), lambda: np.ascontiguousarray(w.astype(ft).T))
    acc = (x.astype(ft) @ wt).astype(np.int64)
    if bias is not None:
        acc += bias.astype(np.int64)
    return acc
