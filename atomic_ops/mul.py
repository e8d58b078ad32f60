"""mul: exact integer product of two quantized tensors."""

from __future__ import annotations

import numpy as np


def mul(a: np.ndarray, za: int, b: np.ndarray, zb: int) -> np.ndarray:
    """``acc = (q_a - z_a) * (q_b - z_b)`` in int64 with numpy broadcasting (both operands have the
    batch axis). For inputs of at most 8 bits |acc| <= 255 * 255 < 2^17: exact in int32. The real
    value is ``s_a * s_b * acc``; the following requantize rounds it once."""
    return (a.astype(np.int64) - int(za)) * (b.astype(np.int64) - int(zb))
