"""avgpool2d: integer window sums (the division lives in the scale)."""

from __future__ import annotations

import numpy as np

from atomic_ops._windows import pad_nchw, windows


def avgpool2d(x: np.ndarray, kernel_size, stride, padding) -> np.ndarray:
    """``acc = sum over the window of q`` (zero padding counted), int64.

    The divisor is not applied here: it is part of the output scale ``s_in / divisor``, so the
    requantize that follows divides exactly. |acc| <= kh*kw*max|q| is far below 2^31.
    """
    xp = pad_nchw(x.astype(np.int64), padding, 0)
    return windows(xp, kernel_size, stride).sum(axis=(4, 5))
