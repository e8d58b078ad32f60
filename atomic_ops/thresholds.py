"""thresholds: a step function of an int32 accumulator, by binary search in sorted thresholds."""

from __future__ import annotations

import numpy as np


def thresholds(x: np.ndarray, thr: np.ndarray, codes: np.ndarray, channel_axis: int | None = None) -> np.ndarray:
    """``y = codes[c, i]`` with ``i`` the number of thresholds ``thr[c, :]`` that are ``<= x`` (``thr`` int32
    [channels, n], sorted ascending in each row; ``codes`` [channels, n + 1]); ``c`` the index along
    ``channel_axis`` (0 with one row). Integer compares only, no arithmetic, no rounding."""
    t = thr.astype(np.int64)
    k = codes.astype(np.int64)
    x = x.astype(np.int64) if np.issubdtype(x.dtype, np.integer) else x  # (diagnostics: a real-valued accumulator)
    if t.shape[0] == 1 or channel_axis is None:
        return k[0][np.searchsorted(t[0], x, side="right")]
    xm = np.moveaxis(x, channel_axis, -1)
    idx = np.empty(xm.shape, dtype=np.int64)
    for c in range(t.shape[0]):
        idx[..., c] = np.searchsorted(t[c], xm[..., c], side="right")
    y = k[np.arange(t.shape[0]), idx]
    return np.moveaxis(y, -1, channel_axis)
