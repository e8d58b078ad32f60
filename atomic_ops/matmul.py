"""matmul: integer product of two activations over their last two axes."""

from __future__ import annotations

import numpy as np


def matmul(a: np.ndarray, b: np.ndarray, za: int = 0, zb: int = 0) -> np.ndarray:
    """``acc[..., i, j] = sum_k (a[..., i, k] - za) * (b[..., k, j] - zb)`` (int64 out).

    Leading axes are batch axes of equal sizes (no broadcasting). Computed in int64: exact (the
    planner bounds every accumulator below 2^31, docs/integer_contract.md "Matrix product of
    activations").
    """
    a64 = a.astype(np.int64) - int(za)
    b64 = b.astype(np.int64) - int(zb)
    return np.matmul(a64, b64)
