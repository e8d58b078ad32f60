"""add_constant: a constant tensor added to an activation, carried as per-element offsets."""

from __future__ import annotations

import numpy as np


def add_constant(x: np.ndarray) -> np.ndarray:
    """The accumulator integers are the input codes: ``acc = q`` (int64); the constant ``C`` and the
    input zero point are the per-element offset of the accumulator, ``real = s * acc + (C - s * zp)``,
    which the requantization that must follow adds exactly (docs/integer_contract.md, "Token ops")."""
    return x.astype(np.int64)
