"""permute: axis reordering."""

from __future__ import annotations

import numpy as np


def permute(x: np.ndarray, perm) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, perm))
