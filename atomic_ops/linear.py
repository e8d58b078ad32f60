"""linear: integer fully connected layer over the last axis."""

from __future__ import annotations

import numpy as np


def linear(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``acc[..., o] = bias[o] + sum_k w[o, k] * x[..., k]`` (int64 out).

    Computed as a float64 matrix product; exact for the same reason as conv2d (the planner
    bounds every accumulator below 2^31 < 2^53).
    """
    acc = (x.astype(np.float64) @ w.astype(np.float64).T).astype(np.int64)
    if bias is not None:
        acc += bias.astype(np.int64)
    return acc
