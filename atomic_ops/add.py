"""add: integer sum of two equal-scale tensors."""

from __future__ import annotations

import numpy as np


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``acc = q_a + q_b`` in int64 (used when both inputs share one scale and no requantize
    follows; otherwise the sum is part of requantize's multi-source accumulation)."""
    return a.astype(np.int64) + b.astype(np.int64)
