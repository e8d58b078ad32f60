"""rescale: multiplication by a constant folded into the scale; the integers are unchanged."""

from __future__ import annotations

import numpy as np


def rescale(x: np.ndarray) -> np.ndarray:
    """``q_out = q_in``: only the scale changes (``s_out = s_in * factor``)."""
    return x
