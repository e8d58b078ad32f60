"""quantize: float32 network input -> integers (host side only)."""

from __future__ import annotations

import numpy as np


def scaled(x: np.ndarray, scale, zero_point: int, channel_axis: int | None = None) -> np.ndarray:
    """``fl32(fl32(x) / fl32(scale)) + fl32(zp)``: the float32 value Brevitas' quantizer rounds.

    Brevitas (IntQuant.to_int) computes ``round(x / s + zp)`` in float32, so the division and the
    addition of the zero point are both float32 operations here too (``x * (1/s)``, a float64
    division or adding zp after rounding would differ on rare inputs). ``+-inf`` and finite values
    beyond float32 overflow to ``+-inf`` exactly as in torch.
    """
    x = np.asarray(x, dtype=np.float32)
    s = np.asarray(scale, dtype=np.float32)
    if s.ndim and channel_axis is not None:
        shape = [1] * x.ndim
        shape[channel_axis] = s.size
        s = s.reshape(shape)
    with np.errstate(over="ignore"):
        return x / s + np.float32(zero_point)


def quantize(x: np.ndarray, scale, zero_point: int, lo: int, hi: int, channel_axis: int | None = None) -> np.ndarray:
    """``q = clamp(rne(fl32(x) / fl32(scale) + zp), lo, hi)``, as Brevitas' activation quantizer.

    rne is round half to even (numpy rint, torch.round). The clamp is applied to the float value
    before the conversion to integers, so ``+inf``, ``-inf`` and any huge finite input saturate to
    ``hi`` / ``lo`` (measured with Brevitas 0.13: a QuantIdentity maps inf and 1e30 to 127, -inf and
    -1e30 to -128). NaN has no integer: ValueError (the tools refuse NaN inputs before this). Returns int64.
    """
    y = scaled(x, scale, zero_point, channel_axis)
    if np.isnan(y).any():
        raise ValueError("quantize: NaN input has no integer value")
    return np.clip(np.rint(y), lo, hi).astype(np.int64)
