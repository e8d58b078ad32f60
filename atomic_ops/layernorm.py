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

HEADER = 12  # int64 words before the per-element arrays in the parameter block


@dataclass(frozen=True)
class LayerNormParams:
    """Integer parameters of one row normalization step (the parameter block of the C kernels).

    Shared by LayerNorm, RMSNorm (atomic_ops/rmsnorm.py) and GroupNorm (atomic_ops/groupnorm.py):
    ``center`` 1 subtracts the row mean (LayerNorm, GroupNorm), 0 normalizes the root mean square about
    the input zero point ``zin`` (RMSNorm); the affine arrays hold ``groups`` sets of ``n / rep``
    entries, row r using set ``r % groups`` and each entry covering ``rep`` consecutive elements
    (GroupNorm: one set per group, one entry per channel of H*W elements; else 1 set, 1 element).
    """

    n: int  # elements per row (normalized)
    Fc: int  # fraction bits of W (even)
    C: int  # rne(n^2 eps / s_in^2 * 2^Fc)
    h: int  # shift of m and b
    kc: int  # extra fraction bits kept in c_i = rne_shift(m_i * u, 32 - kc)
    zp: int
    lo: int
    hi: int
    m: np.ndarray  # int64 (groups * n / rep,), |m| < 2^31: rne(gamma / s_out * 2^h)
    b: np.ndarray  # int64 (groups * n / rep,): rne(beta / s_out * 2^h)
    bound: float  # worst-case |computed - exact| before the final rounding, in output steps
    center: int = 1  # 1: K = sum q (mean removed); 0: K = n * zin (root mean square about zin)
    zin: int = 0  # input zero point (center == 0)
    groups: int = 1  # affine sets, cycling over the rows
    rep: int = 1  # consecutive elements of a row sharing one affine entry

    def block(self) -> np.ndarray:
        """int64 words: [n, Fc, C, h, zp, lo, hi, kc, center, zin, groups, rep, b[0..E), m[0..E) as
        int32 pairs (padded)] with E = groups * n / rep affine entries."""
        head = np.array([self.n, self.Fc, self.C, self.h, self.zp, self.lo, self.hi, self.kc, self.center,
                         self.zin, self.groups, self.rep], dtype=np.int64)
        m32 = self.m.astype(np.int32)
        if m32.size % 2:
            m32 = np.concatenate([m32, np.zeros(1, np.int32)])
        return np.concatenate([head, self.b.astype(np.int64), m32.view(np.int64)])


def prepare_norm(s_in: float, in_range: tuple[int, int], eps: float, gamma: np.ndarray, beta: np.ndarray,
                 s_out: float, zp: int, lo: int, hi: int, *, center: bool = True, zin: int = 0,
                 groups: int = 1, rep: int = 1) -> LayerNormParams:
    """Integer parameters of a row normalization (the shared machinery of LayerNorm, RMSNorm, GroupNorm).

    ``gamma`` / ``beta``: ``groups`` sets of affine entries (float32 values, ones / zeros without
    affine), each entry covering ``rep`` consecutive elements, so a row has ``gamma.size / groups * rep``
    elements; raises ValueError (with the reason) when the contract's ranges or bound do not hold.
    """
    gamma = np.asarray(gamma, dtype=np.float64).reshape(-1)
    beta = np.asarray(beta, dtype=np.float64).reshape(-1)
    if groups < 1 or rep < 1 or gamma.size % groups or beta.size != gamma.size:
        raise ValueError("the affine parameters do not match the groups")
    n = gamma.size // groups * rep
    if not (s_in > 0 and s_out > 0):
        raise ValueError("scales must be positive")
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps {eps} must be finite and >= 0")
    if n < 1 or n >= 2**22:
        raise ValueError(f"{n} normalized elements: the kernel handles 1 .. 2^22 - 1")
    if center:
        span = in_range[1] - in_range[0]
        vmax = (n * n * span * span) // 4  # N^2 * (largest variance of values in the range)
        zmax = math.sqrt(max(n - 1, 1))  # |q - mean| / std <= sqrt(N - 1)
    else:
        dev = max(abs(in_range[0] - zin), abs(in_range[1] - zin))
        vmax = n * n * dev * dev  # N * sum (q - zin)^2
        zmax = math.sqrt(n)  # |q - zin| / rms <= sqrt(N)
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
    return LayerNormParams(n, Fc, C, h, kc, int(zp), int(lo), int(hi), m, b, float(bound), int(bool(center)),
                           int(zin), int(groups), int(rep))


def prepare(s_in: float, in_range: tuple[int, int], eps: float, gamma: np.ndarray, beta: np.ndarray,
            s_out: float, zp: int, lo: int, hi: int) -> LayerNormParams:
    """LayerNorm parameters for rows of ``gamma.size`` codes in ``in_range`` with input scale ``s_in``
    (``gamma`` / ``beta``: the affine parameters, ones / zeros without affine, float32 values)."""
    return prepare_norm(s_in, in_range, eps, gamma, beta, s_out, zp, lo, hi)


def norm_rows(x: np.ndarray, p: LayerNormParams, row0: int = 0) -> np.ndarray:
    """The shared integer normalization of the codes ``x`` over rows of the last ``p.n`` elements
    (flattened), quantized: int64 codes in [lo, hi], same shape as ``x``. ``row0``: index of the first
    row (it selects the affine set of each row, ``(row0 + r) % groups``).

    K = sum q (center) or n * zin; V = n sum q^2 - 2 A K + K^2, D = n q - K (exact). Every product fits
    int64 (|m * u| < 2^63, |c * D| < 2^61, the planner bounds b * 2^(SH - h)); the square root of the
    64-bit W * 2^e2 is taken exactly (Python integers, one per row).
    """
    x = np.asarray(x)
    shape = x.shape
    rows = x.reshape(-1, p.n).astype(np.int64)
    A = rows.sum(axis=1)
    K = A if p.center else np.full_like(A, p.n * p.zin)
    V = p.n * (rows * rows).sum(axis=1) - 2 * A * K + K * K
    D = p.n * rows - K[:, None]
    u = np.zeros(rows.shape[0], dtype=np.int64)
    SH = np.full(rows.shape[0], p.h, dtype=np.int64)
    for i, v in enumerate(V.tolist()):
        if v == 0:
            continue  # constant row: D = 0, y = rne_shift(b, h)
        W = v * 2**p.Fc + p.C
        e2 = (64 - W.bit_length()) & ~1  # 2^62 <= W * 2^e2 < 2^64
        u[i] = (1 << 63) // math.isqrt(W << e2)
        SH[i] = p.h + p.kc + 31 - (p.Fc + e2) // 2
    sets = (row0 + np.arange(rows.shape[0])) % p.groups
    m = np.repeat(p.m.reshape(p.groups, -1), p.rep, axis=1)[sets]
    b = np.repeat(p.b.reshape(p.groups, -1), p.rep, axis=1)[sets]
    c = rne_shift(m * u[:, None], 32 - p.kc)
    acc = c * D + (b << (SH - p.h)[:, None])
    y = rne_shift(acc, SH[:, None]) + p.zp
    return np.clip(y, p.lo, p.hi).reshape(shape)


def layernorm(x: np.ndarray, p: LayerNormParams) -> np.ndarray:
    """Integer LayerNorm of the codes ``x`` (int8/uint8) over rows of the last ``p.n`` elements
    (the normalized axes, flattened), quantized: int64 codes in [lo, hi], same shape as ``x``."""
    return norm_rows(x, p)


def exact_norm(x: np.ndarray, n: int, s_in: float, eps: float, gamma: np.ndarray, beta: np.ndarray,
               s_out: float, *, center: bool = True, zin: int = 0, groups: int = 1, rep: int = 1) -> np.ndarray:
    """The real value the shared contract rounds, in output steps (float64); arguments as ``prepare_norm``."""
    x = np.asarray(x)
    rows = (x.reshape(-1, n).astype(np.float64) - (0 if center else zin)) * s_in
    if center:
        rows = rows - rows.mean(axis=1, keepdims=True)
    z = rows / np.sqrt((rows**2).mean(axis=1, keepdims=True) + eps)
    sets = np.arange(rows.shape[0]) % groups
    g = np.repeat(np.asarray(gamma, np.float64).reshape(groups, -1), rep, axis=1)[sets]
    bb = np.repeat(np.asarray(beta, np.float64).reshape(groups, -1), rep, axis=1)[sets]
    return ((z * g + bb) / s_out).reshape(x.shape)


def exact(x: np.ndarray, n: int, s_in: float, eps: float, gamma: np.ndarray, beta: np.ndarray,
          s_out: float) -> np.ndarray:
    """The real value the LayerNorm contract rounds, in output steps (float64)."""
    return exact_norm(x, n, s_in, eps, gamma, beta, s_out)
