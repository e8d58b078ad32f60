"""relu on integers."""

from __future__ import annotations

import numpy as np


def relu(x: np.ndarray, zero_point: int = 0) -> np.ndarray:
    """``y = max(q, zp)``: zp is the integer that encodes real 0."""
    return np.maximum(x, zero_point)
