"""Exact integer dot products through floating-point BLAS (shared by conv2d and linear).

A float matrix product of integer operands is exact when every partial sum, in whatever order
and blocking the BLAS library uses, is an integer the format represents exactly: |partial| <
2^24 for float32, < 2^53 for float64. Every partial sum of ``sum_k w[o, k] * x[k]`` is bounded
by ``max|x| * max_o sum_k |w[o, k]|``; the bias is added afterwards in int64. The planner bounds
the accumulator below 2^31 (docs/integer_contract.md), so float64 is always exact, and float32
is used whenever this bound is below 2^24 (half the memory traffic, about twice the speed).
"""

from __future__ import annotations

import weakref

import numpy as np

FLOAT32_EXACT = 2**24
FLOAT64_EXACT = 2**53


# Read-only weights (the engine's parameters) are used on every call: their bound and float copies
# are kept, keyed by identity, for as long as the array lives.
_PREPARED: dict[int, tuple[weakref.ref, dict]] = {}


def _prepared(w: np.ndarray) -> dict | None:
    if w.flags.writeable:
        return None
    key = id(w)
    hit = _PREPARED.get(key)
    if hit is not None and hit[0]() is w:
        return hit[1]
    entry: dict = {}
    _PREPARED[key] = (weakref.ref(w, lambda _, key=key: _PREPARED.pop(key, None)), entry)
    return entry


def cached(w: np.ndarray, key, make):
    """``make()``, kept per ``key`` for read-only ``w`` (GEMM-ready weight copies, the weight bound)."""
    memo = _prepared(w)
    if memo is None:
        return make()
    if key not in memo:
        memo[key] = make()
    return memo[key]


def row_abs_sums(w: np.ndarray) -> np.ndarray:
    """Per output (axis 0): the sum of |w| over the other axes, int64 (the planner's accumulator
    bound uses it too)."""
    return np.abs(w.astype(np.int64)).reshape(w.shape[0], -1).sum(axis=1)


def exact_float_dtype(x: np.ndarray, w: np.ndarray) -> type:
    """float32 if ``max|x| * max_o sum_k |w[o, k]|`` is below 2^24, else float64.

    ``w`` has one row per output along axis 0 (the reduction runs over its other axes); raises
    if even float64 could not be exact (the planner never lets that happen)."""
    if x.size == 0 or w.size == 0:
        return np.float32
    bound = int(np.abs(x).max()) * cached(w, "wsum", lambda: int(row_abs_sums(w).max()))
    if bound < FLOAT32_EXACT:
        return np.float32
    if bound < FLOAT64_EXACT:
        return np.float64
    raise ValueError(f"dot-product bound {bound} is not exact in float64")
