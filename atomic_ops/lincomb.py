"""lincomb: sums of products of one quantized tensor with constant tensors, then the output quantizer.

RoPE as users write it, ``q * cos + rotate_half(q) * sin`` with constant ``cos`` / ``sin`` buffers,
is, along each row (last axis) of the codes q with zero point z and scale s,

  t_i = sum_k s (q[g_k(i)] - z) c_k[r, i] / s_out                     (output steps)

with K terms, a gather g_k along the row (rotate-half: a rotation by d/2) and constant coefficients
c_k (the float32 constants, signs of negations included) that repeat every P rows. Integer form
(docs/integer_contract.md, "Products with constant tensors"): multipliers M_k[p, i] =
rne(s c_k[p, i] / s_out 2^h) with max |M| < 2^31, then per element one exact int64 sum and one
rounding,

  y_i = clamp(rne_shift(sum_k (q[g_k(i)] - z) M_k[(row0 + r) % P, i], h) + zp, lo, hi).

The C kernel is gf_lincomb (codegen/runtime/gf_lincomb.c).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from atomic_ops._fixedpoint import rne_shift

HEADER = 8  # int64 words before the arrays of the parameter block
MBITS = 40  # |M| < 2^40: K * 255 * 2^40 < 2^63 for K < 2^12 terms


@dataclass(frozen=True)
class LinCombParams:
    n: int  # elements per row
    period: int  # rows after which the coefficients repeat
    h: int
    zin: int
    zp: int
    lo: int
    hi: int
    gather: np.ndarray  # int64 [K, n], indices into the row
    M: np.ndarray  # int64 [K, period, n], |M| < 2^40
    bound: float  # worst |computed - exact| before the final rounding, in output steps

    def block(self) -> np.ndarray:
        """int64 words: [n, K, period, h, zin, zp, lo, hi], gather (int32, padded), M (int64)."""
        k = self.gather.shape[0]
        head = np.array([self.n, k, self.period, self.h, self.zin, self.zp, self.lo, self.hi], dtype=np.int64)

        def words(a):
            a = a.astype(np.int32).reshape(-1)
            if a.size % 2:
                a = np.concatenate([a, np.zeros(1, np.int32)])
            return a.view(np.int64)

        return np.concatenate([head, words(self.gather), self.M.astype(np.int64).reshape(-1)])


def prepare(s_in: float, in_range: tuple[int, int], zin: int, gather: np.ndarray, coef: np.ndarray, s_out: float,
            zp: int, lo: int, hi: int) -> LinCombParams:
    """``gather`` [K, n] (indices into a row of n codes), ``coef`` [K, P, n] (the real constants, float64
    values of the model's float32 ones); raises ValueError when the contract cannot hold."""
    gather = np.asarray(gather, dtype=np.int64)
    coef = np.asarray(coef, dtype=np.float64)
    k, n = gather.shape
    if coef.ndim != 3 or coef.shape[0] != k or coef.shape[2] != n:
        raise ValueError("coefficients do not match the gathers")
    if gather.min() < 0 or gather.max() >= n:
        raise ValueError("a gather index lies outside the row")
    if not (s_in > 0 and s_out > 0):
        raise ValueError("scales must be positive")
    if not np.all(np.isfinite(coef)):
        raise ValueError("a constant is not finite")
    real = coef * (s_in / s_out)
    peak = float(np.max(np.abs(real)))
    h = MBITS - math.frexp(peak)[1] if peak > 0 else MBITS - 1
    if peak > 0 and np.max(np.abs(np.rint(real * 2.0**h))) >= 2**MBITS:
        h -= 1
    h = min(h, 62)
    if h < 1:
        raise ValueError(f"the constants times the scale ratio ({peak:.3g}) exceed 2^{MBITS - 1} output steps")
    if k >= 2**12:
        raise ValueError(f"{k} terms: at most 4095 (the int64 sum)")
    M = np.rint(real * 2.0**h).astype(np.int64)
    dev = max(abs(in_range[0] - zin), abs(in_range[1] - zin))
    bound = k * dev * 2.0 ** -(h + 1) * (1 + 2.0**-40)  # each multiplier within 2^-(h+1) of s c / s_out 2^h
    return LinCombParams(n, coef.shape[1], h, int(zin), int(zp), int(lo), int(hi), gather, M, float(bound))


def lincomb(x: np.ndarray, p: LinCombParams, row0: int = 0) -> np.ndarray:
    """Integer sum of products of the codes ``x`` (rows of ``p.n``) with the constants: int64 codes in [lo, hi].

    |acc| <= K * 255 * 2^40 < 2^63 for K < 2^12."""
    x = np.asarray(x)
    rows = x.reshape(-1, p.n).astype(np.int64) - p.zin
    ph = (row0 + np.arange(rows.shape[0])) % p.period
    acc = np.zeros_like(rows)
    for g, m in zip(p.gather, p.M):
        acc += rows[:, g] * m[ph]
    return np.clip(rne_shift(acc, p.h) + p.zp, p.lo, p.hi).reshape(x.shape)


def exact(x: np.ndarray, s_in: float, zin: int, gather: np.ndarray, coef: np.ndarray, s_out: float) -> np.ndarray:
    """The real value the contract rounds, in output steps (float64)."""
    x = np.asarray(x)
    n = gather.shape[1]
    rows = (x.reshape(-1, n).astype(np.float64) - zin) * s_in
    ph = np.arange(rows.shape[0]) % coef.shape[1]
    t = sum(rows[:, g] * c[ph] for g, c in zip(np.asarray(gather), np.asarray(coef, np.float64)))
    return (t / s_out).reshape(x.shape)
