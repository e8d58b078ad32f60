"""layernorm: integer-only LayerNorm over the last axes followed by the output quantizer.

The algorithm and its error bound are docs/integer_contract.md, "LayerNorm"; the C kernel
(codegen/runtime/gf_layernorm.c) implements the same arithmetic. Per row of N input codes q:

  A = sum q,  V = N * sum q^2 - A^2                  (exact: V = N^2 * variance of the codes)
  D_i = N * q_i - A                                  (exact: N * (q_i - mean))
  V == 0:  y_i = clamp(rne_shift(b_i, h) + zp, lo, hi)
  else:    W  = V * 2^Fc + C                         (C = rne(N^2 eps / s_in^2 * 2^Fc), uint64)
           e2 = the even shift with 2^62 <= W * 2^e2 < 2^64
           u  = floor(2^63 / isqrt(W * 2^e2))        (2^31 < u <= 2^32)
           c_i = rne_shift(m_i * u, 32 - kc)         (m_i = rne(2^h gamma_i / s_out))
           SH = h + kc + 31 - (Fc + e2) / 2
           y_i = clamp(rne_shift(c_i * D_i + b_i * 2^(SH - h), SH) + zp, lo, hi)
                                                     (b_i = rne(2^h beta_i / s_out))

``prepare`` derives h, kc, Fc, C, m, b once; everything else is integer arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from atomic_ops._fixedpoint import rne_shift

HEADER = 8  # int64 words before the per-element arrays in the parameter block


@dataclass(frozen=True)
class LayerNormParams:
    """Integer parameters of one LayerNorm step (the parameter block of the C kernel)."""

    n: int  # elements per row (normalized)
    Fc: int  # fraction bits of W (even)
    C: int  # rne(n^2 eps / s_in^2 * 2^Fc)
    h: int  # shift of m and b
    kc: int  # extra fraction bits kept in c_i = rne_shift(m_i * u, 32 - kc)
    zp: int
    lo: int
    hi: int
    m: np.ndarray  # int64 (n,), |m| < 2^31: rne(gamma / s_out * 2^h)
    b: np.ndarray  # int64 (n,): rne(beta / s_out * 2^h)
    bound: float  # worst-case |computed - exact| before the final rounding, in output steps

    def block(self) -> np.ndarray:
        """int64 words: [n, Fc, C, h, zp, lo, hi, kc, b[0..n), m[0..n) as int32 pairs (padded)]."""
        head = np.array([self.n, self.Fc, self.C, self.h, self.zp, self.lo, self.hi, self.kc], dtype=np.int64)
        m32 = self.m.astype(np.int32)
        if m32.size % 2:
            m32 = np.concatenate([m32, np.zeros(1, np.int32)])
        return np.concatenate([head, self.b.astype(np.int64), m32.view(np.int64)])


def prepare(s_in: float, in_range: tuple[int, int], eps: float, gamma: np.ndarray, beta: np.ndarray,
            s_out: float, zp: int, lo: int, hi: int) -> LayerNormParams:
    """Integer parameters for rows of ``gamma.size`` codes in ``in_range`` with input scale ``s_in``.

    ``gamma`` / ``beta`` are the affine parameters (ones / zeros without affine), float32 values;
    raises ValueError (with the reason) when the contract's ranges or bound do not hold.
    """
    gamma = np.asarray(gamma, dtype=np.float64).reshape(-1)
    beta = np.asarray(beta, dtype=np.float64).reshape(-1)
    n = gamma.size
    if not (s_in > 0 and s_out > 0):
        raise ValueError("scales must be positive")
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps {eps} must be finite and >= 0")
    if n < 1 or n >= 2**22:
        raise ValueError(f"{n} normalized elements: the kernel handles 1 .. 2^22 - 1")
    span = in_range[1] - in_range[0]
    vmax = (n * n * span * span) // 4  # N^2 * (largest variance of values in the range)
    c = n * n * eps / (s_in * s_in)
    Fc = 62
    while Fc > 0 and (vmax * 2**Fc + round(c * 2.0**Fc) >= 2**63):
        Fc -= 2
    if Fc < 2:
        raise ValueError("the variance range does not fit the 64-bit fixed point")
    C = int(round(c * 2.0**Fc))
    M = gamma / s_out
    B = beta / s_out
    peak = float(np.max(np.abs(M)))
    h = 31 - math.frexp(peak)[1] if peak > 0 else 30  # max |m| < 2^31
    if peak > 0 and np.max(np.abs(np.rint(M * 2.0**h))) >= 2**31:
        h -= 1
    zmax = math.sqrt(max(n - 1, 1))
    big = peak * zmax * (1 + 2.0**-20) + float(np.max(np.abs(B))) + 2.0  # bound on |t| before clamping
    kc = -1
    while h >= 1:  # the largest kc <= 24 with |c D + b 2^(SH-h)| < big * 2^SH < 2^61 and SH <= 62
        sh_max = h + 31 - Fc // 2
        kc = min(24, 62 - sh_max, math.floor(61 - math.log2(big) - sh_max) - 1)
        if kc >= 0:
            break
        h -= 1
    if h < 1 or kc < 0:
        raise ValueError("the affine parameters and the output scale do not fit the 64-bit fixed point")
    m = np.rint(M * 2.0**h).astype(np.int64)
    b = np.rint(B * 2.0**h).astype(np.int64)
    # relative error of 1/sqrt(W): 2^-31 (isqrt, division) + 2^-(Fc+2) (C and the fixed point of W)
    eps_u = 2.0**-31 + 2.0**-(Fc + 2)
    bound = (zmax * (2.0**-(h + 1) + 2.0**-(h + kc) + peak * eps_u) + 2.0**-(h + 1)) * (1 + 2.0**-20)
    return LayerNormParams(n, Fc, C, h, kc, int(zp), int(lo), int(hi), m, b, float(bound))


def layernorm(x: np.ndarray, p: LayerNormParams) -> np.ndarray:
    """Integer LayerNorm of the codes ``x`` (int8/uint8) over rows of the last ``p.n`` elements
    (the normalized axes, flattened), quantized: int64 codes in [lo, hi], same shape as ``x``.

    Every product fits int64 (|m * u| < 2^63, |c * D| < 2^61, the planner bounds b * 2^(SH - h));
    the square root of the 64-bit W * 2^e2 is taken exactly (Python integers, one per row).
    """
    x = np.asarray(x)
    shape = x.shape
    rows = x.reshape(-1, p.n).astype(np.int64)
    A = rows.sum(axis=1)
    V = p.n * (rows * rows).sum(axis=1) - A * A
    D = p.n * rows - A[:, None]
    u = np.zeros(rows.shape[0], dtype=np.int64)
    SH = np.full(rows.shape[0], p.h, dtype=np.int64)
    for i, v in enumerate(V.tolist()):
        if v == 0:
            continue  # constant row: D = 0, y = rne_shift(b, h)
        W = v * 2**p.Fc + p.C
        e2 = (64 - W.bit_length()) & ~1  # 2^62 <= W * 2^e2 < 2^64
        u[i] = (1 << 63) // math.isqrt(W << e2)
        SH[i] = p.h + p.kc + 31 - (p.Fc + e2) // 2
    c = rne_shift(p.m[None, :] * u[:, None], 32 - p.kc)
    acc = c * D + (p.b[None, :] << (SH - p.h)[:, None])
    y = rne_shift(acc, SH[:, None]) + p.zp
    return np.clip(y, p.lo, p.hi).reshape(shape)


def exact(x: np.ndarray, n: int, s_in: float, eps: float, gamma: np.ndarray, beta: np.ndarray,
          s_out: float) -> np.ndarray:
    """The real value the contract rounds, in output steps (float64)."""
    x = np.asarray(x)
    rows = x.reshape(-1, n).astype(np.float64) * s_in
    mu = rows.mean(axis=1, keepdims=True)
    var = ((rows - mu) ** 2).mean(axis=1, keepdims=True)
    z = (rows - mu) / np.sqrt(var + eps)
    y = (z * np.asarray(gamma, np.float64).reshape(1, -1) + np.asarray(beta, np.float64).reshape(1, -1)) / s_out
    return y.reshape(x.shape)
