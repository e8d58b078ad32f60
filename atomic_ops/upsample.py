"""upsample: nearest-neighbour upsampling by integer factors; pure data movement."""

from __future__ import annotations

import numpy as np


def upsample(x: np.ndarray, factors) -> np.ndarray:
    """``y[n, c, i, j] = x[n, c, i // fh, j // fw]`` (NCHW; one factor per axis after the channel axis: one
    for (N, C, T), two for (N, C, H, W)); integers unchanged."""
    if len(factors) != x.ndim - 2:
        raise ValueError(f"{len(factors)} factors for the {x.ndim - 2} spatial axes of a {x.ndim}-D tensor")
    for axis, f in enumerate(factors, start=2):
        x = np.repeat(x, int(f), axis=axis)
    return np.ascontiguousarray(x)
