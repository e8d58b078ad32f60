"""reshape: row-major reshape; integers and their order unchanged."""

from __future__ import annotations

import numpy as np


def reshape(x: np.ndarray, shape) -> np.ndarray:
    """``shape`` has batch 1 first (as in network_info.json); the batch of ``x`` replaces it."""
    return x.reshape((x.shape[0],) + tuple(shape[1:]))
