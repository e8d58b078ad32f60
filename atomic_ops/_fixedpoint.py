"""Fixed-point helpers shared by the atomic ops (and mirrored by codegen/runtime/gf_fixedpoint.h).

All functions take and return numpy integer arrays; no float is involved except in
``quantize_multiplier``, which runs once at planning time, never per element.
"""

from __future__ import annotations

import math

import numpy as np

MANTISSA_BITS = 31  # |m| < 2^31: the multiplier fits an int32 register on the device
MAX_SHIFT = 62
INT64_LIMIT = 2**63


def rne_shift(v: np.ndarray, sh) -> np.ndarray:
    """Round-half-to-even of ``v / 2^sh`` for int64 ``v`` and ``sh >= 1`` (scalar or broadcastable).

    floor = v >> sh (arithmetic), r = v & (2^sh - 1) = v - floor * 2^sh in [0, 2^sh);
    round up iff r > half or (r == half and floor is odd), i.e. iff r + (floor & 1) > half
    (integers). No intermediate exceeds the range of v, so this never overflows.
    """
    v = np.asarray(v, dtype=np.int64)
    sh = np.asarray(sh, dtype=np.int64)
    one = np.int64(1)
    f = v >> sh
    r = (v & ((one << sh) - one)) + (f & one)
    return f + (r > (one << (sh - one)))


def floor_shift(v: np.ndarray, sh) -> np.ndarray:
    """floor(v / 2^sh) (arithmetic shift)."""
    return np.asarray(v, dtype=np.int64) >> np.asarray(sh, dtype=np.int64)


def rne(x: np.ndarray) -> np.ndarray:
    """Round half to even of a float array (numpy's rint is half-even, as torch.round)."""
    return np.rint(x)


def saturate(v: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.clip(v, lo, hi)


def quantize_multipliers(M: np.ndarray, where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point form of real multipliers ``M`` of shape (sources, channels).

    Returns int64 mantissas ``m`` (same shape) and one shift per channel ``sh`` (int64,
    shape (channels,)) with ``m[s, c] / 2^sh[c] ~= M[s, c]``. Per channel, ``sh`` is the largest
    shift (at most MAX_SHIFT) keeping every |m| below 2^31, so the largest multiplier of the
    channel keeps 31 significant bits (relative error <= 2^-31). A channel whose multipliers are
    all 0 gets m = 0, sh = 31.

    Raises ValueError for a multiplier >= 2^30 (it would need a shift below 1) or a channel whose
    largest multiplier is below 2^-31 (it would need a shift above MAX_SHIFT).
    """
    M = np.atleast_2d(np.asarray(M, dtype=np.float64))
    if not np.all(np.isfinite(M)):
        raise ValueError(f"{where}non-finite requantization multiplier")
    sources, channels = M.shape
    m = np.zeros((sources, channels), dtype=np.int64)
    sh = np.full(channels, MANTISSA_BITS, dtype=np.int64)
    for c in range(channels):
        peak = float(np.max(np.abs(M[:, c])))
        if peak == 0.0:
            continue
        _, e = math.frexp(peak)  # peak = f * 2^e, f in [0.5, 1)
        s = MANTISSA_BITS - e
        col = np.rint(M[:, c] * 2.0**s)
        if np.max(np.abs(col)) >= 2**MANTISSA_BITS:  # f rounded up to 1.0
            s -= 1
            col = np.rint(M[:, c] * 2.0**s)
        if s < 1:
            raise ValueError(f"{where}requantization multiplier {peak:.6g} is too large (>= 2^30)")
        if s > MAX_SHIFT:
            raise ValueError(f"{where}requantization multiplier {peak:.6g} is too small (< 2^-31)")
        m[:, c] = col.astype(np.int64)
        sh[c] = s
    return m, sh


def quantize_offset(values: np.ndarray, sh: np.ndarray) -> np.ndarray:
    """Offsets ``B`` (in output LSBs) on the ``2^-sh`` grid: ``rne(B * 2^sh)`` as int64 (per channel)."""
    scaled = np.asarray(values, dtype=np.float64) * np.exp2(np.asarray(sh, dtype=np.float64))
    if np.any(np.abs(scaled) >= 2.0**62):
        raise ValueError("requantization offset does not fit 62 bits")
    return np.rint(scaled).astype(np.int64)
