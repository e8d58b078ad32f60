"""lut: table lookup on integers."""

from __future__ import annotations

import numpy as np


def lut(x: np.ndarray, table: np.ndarray, base: int, channel_axis: int | None = None) -> np.ndarray:
    """``y = table[c, q - base]``: ``table`` is [channels, entries] (entries = 2^bits of the input),
    ``base`` the input code of entry 0, ``c`` the index along ``channel_axis`` (0 with one table).
    Every input code must lie in [base, base + entries); no arithmetic, no rounding."""
    idx = x.astype(np.int64) - int(base)
    if idx.size and (idx.min() < 0 or idx.max() >= table.shape[1]):
        raise ValueError(f"lut: input codes outside [{base}, {base + table.shape[1]})")
    t = table.astype(np.int64)
    if t.shape[0] == 1 or channel_axis is None:
        return t[0][idx]
    shape = [1] * x.ndim
    shape[channel_axis] = t.shape[0]
    c = np.arange(t.shape[0]).reshape(shape)
    return t[c, idx]
