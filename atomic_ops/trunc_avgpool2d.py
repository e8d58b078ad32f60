"""trunc_avgpool2d: Brevitas TruncAvgPool2d, window sum then a power-of-two shift."""

from __future__ import annotations

import numpy as np

from atomic_ops._fixedpoint import floor_shift, rne_shift
from atomic_ops.avgpool2d import avgpool2d


def trunc_avgpool2d(x: np.ndarray, kernel_size, stride, padding, shift: int, rounding: str,
                    lo: int, hi: int) -> np.ndarray:
    """``y = clamp(rne(sum / 2^shift), lo, hi)`` ('half_even') or ``clamp(floor(...))`` ('floor').

    ``sum`` is the integer window sum (see avgpool2d). A shift <= 0 multiplies by 2^-shift
    (exact). This equals Brevitas' float computation exactly: its sum is an exact float and
    division by a power of two is exact.
    """
    acc = avgpool2d(x, kernel_size, stride, padding)
    if shift <= 0:
        y = acc << -shift
    elif rounding == "half_even":
        y = rne_shift(acc, shift)
    else:
        y = floor_shift(acc, shift)
    return np.clip(y, lo, hi)
