"""requantize: integer sources -> a new integer encoding, with one 64-bit accumulation."""

from __future__ import annotations

import numpy as np

from atomic_ops._fixedpoint import rne_shift


def _along(v: np.ndarray, axis: int | None, ndim: int) -> np.ndarray:
    if axis is None or v.size == 1:
        return v.reshape(())
    shape = [1] * ndim
    shape[axis] = v.size
    return v.reshape(shape)


def requantize(sources: list[np.ndarray], m: np.ndarray, sh: np.ndarray, o: np.ndarray,
               zp: int, lo: int, hi: int, channel_axis: int | None) -> np.ndarray:
    """``y = clamp(rne_shift(sum_s q_s * m[s, c] + o[c], sh[c]) + zp, lo, hi)``.

    ``q_s`` are integer arrays of the output's shape (int8/uint8 activations or int32
    accumulators), ``m`` int64 mantissas (|m| < 2^31), ``sh`` shifts in [1, 62], ``o`` int64
    offsets; per-channel values vary along ``channel_axis``. The planner guarantees
    ``sum_s |q_s * m_s| + |o| < 2^63``, so the int64 sum never overflows. Rounding is half to
    even, exactly as Brevitas' ``torch.round``. A fused ReLU is ``lo = max(lo, zp)``.
    """
    ndim = sources[0].ndim
    acc = _along(o, channel_axis, ndim).astype(np.int64)
    for s, q in enumerate(sources):
        acc = acc + q.astype(np.int64) * _along(m[s], channel_axis, ndim)
    y = rne_shift(acc, _along(sh, channel_axis, ndim)) + zp
    return np.clip(y, lo, hi)
