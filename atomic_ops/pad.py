"""pad: rows of one constant code inserted before / after along one axis; pure data movement."""

from __future__ import annotations

import numpy as np


def pad(x: np.ndarray, axis: int, before: int, after: int, value: int) -> np.ndarray:
    """``y`` = ``before`` slices of ``value``, then ``x``, then ``after`` slices of ``value`` along ``axis``."""
    widths = [(0, 0)] * x.ndim
    widths[axis] = (before, after)
    return np.pad(x, widths, mode="constant", constant_values=value)
