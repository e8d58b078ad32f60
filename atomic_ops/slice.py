"""slice: a strided range of one axis (token slicing); pure data movement."""

from __future__ import annotations

import numpy as np


def slice(x: np.ndarray, axis: int, start: int, stop: int, step: int = 1) -> np.ndarray:  # noqa: A001
    """``y = x[..., start:stop:step, ...]`` along ``axis`` (0 <= start < stop, step >= 1)."""
    idx = [np.s_[:]] * x.ndim
    idx[axis] = np.s_[start:stop:step]
    return np.ascontiguousarray(x[tuple(idx)])
