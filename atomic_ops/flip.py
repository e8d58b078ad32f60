"""flip: the order of one axis reversed (torch.flip); pure data movement."""

from __future__ import annotations

import numpy as np


def flip(x: np.ndarray, axis: int) -> np.ndarray:
    """``y[..., i, ...] = x[..., n - 1 - i, ...]`` along ``axis``; integers unchanged."""
    return np.ascontiguousarray(np.flip(x, axis))
