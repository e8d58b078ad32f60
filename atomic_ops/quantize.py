"""quantize: float32 network input -> integers (host side only)."""

from __future__ import annotations

import numpy as np


def quantize(x: np.ndarray, scale, zero_point: int, lo: int, hi: int, channel_axis: int | None = None) -> np.ndarray:
    """``q = clamp(rne(fl32(x) / fl32(scale)) + zp, lo, hi)``.

    The division is done in float32, exactly as Brevitas' quantizer does (``x * (1/s)`` or a
    float64 division would differ on rare inputs); rne is round half to even (numpy rint,
    torch.round). Returns int64.
    """
    x = np.asarray(x, dtype=np.float32)
    s = np.asarray(scale, dtype=np.float32)
    if s.ndim and channel_axis is not None:
        shape = [1] * x.ndim
        shape[channel_axis] = s.size
        s = s.reshape(shape)
    q = np.rint(x / s).astype(np.int64) + int(zero_point)
    return np.clip(q, lo, hi)
