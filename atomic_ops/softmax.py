"""softmax: integer-only softmax over the last axis followed by the output quantizer.

The algorithm and its error bound are docs/integer_contract.md, "Softmax"; the C kernel
(codegen/runtime/gf_softmax.c) implements the same arithmetic. Summary, per row of n integers x:

  d_i   = max(x) - x_i                                   (exact, 0 <= d_i < 2^32)
  e62_i = prod_j T[j][digit_j(d_i)]  (Q62, rne after each product), 0 if d_i >= 2^(r*J)
  e_i   = rne_shift(e62_i, 26)                           (Q36, e of the maximum = 2^36 exactly)
  S     = sum_i e_i                                      (uint64, exact)
  y_i   = clamp(rne(e_i * R / (S * 2^g)) + zp, lo, hi)   (one exact division, one rounding)

with the digit tables ``T[j][v] = rne(2^62 exp(-s_in v 2^(r j)))`` and ``R = rne(2^g / s_out)``,
2^27 <= R < 2^28, computed once by ``prepare``. Everything but ``prepare`` is integer arithmetic.

A constant attention mask (``mask``: bool [P, n], True = the key is allowed; row r of the input uses
mask row r mod P) excludes the masked positions from the max and from the sum, and gives them e = 0,
so their output is the code of 0.0 (zp, clamped): the softmax of the allowed positions, exactly as
PyTorch's softmax of scores filled with -inf at the masked ones. Every mask row allows some key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Q = 62  # fraction bits of the tables and of the products
F = 36  # fraction bits of the summed values e_i
R_BITS = 28  # the output reciprocal R lies in [2^(R_BITS-1), 2^R_BITS)
CUTOFF = 45  # digit tables stop where exp(-s d) <= 2^-CUTOFF
DIGIT_BITS = 4  # digit width (16-entry tables; fewer bits for inputs of fewer than 4 bits)
HEADER = 8  # int64 words before the tables in the parameter block

_U64 = np.uint64
_M32 = np.uint64(0xFFFFFFFF)


@dataclass(frozen=True)
class SoftmaxParams:
    """Integer parameters of one softmax step (the parameter block of the C kernel)."""

    r: int  # digit bits
    J: int  # digits (tables)
    g: int  # output shift: y = rne(e * R / (S * 2^g))
    R: int  # rne(2^g / s_out)
    zp: int
    lo: int
    hi: int
    tables: np.ndarray  # uint64 (J, 2^r), Q62
    bound: float  # worst-case |computed - exact| before the final rounding, in output steps
    mask: np.ndarray | None = None  # bool [P, n]: allowed keys of input row r in row r mod P (None: all)

    def block(self) -> np.ndarray:
        """int64 words: [r, J, g, R, zp, lo, hi, P, T[0][0..2^r), ..., T[J-1][...], M] (little-endian):
        P mask rows (0: no mask), M their bits, W = ceil(n / 64) words per row, bit i % 64 of word i // 64
        set when key i is allowed."""
        P = 0 if self.mask is None else int(self.mask.shape[0])
        head = np.array([self.r, self.J, self.g, self.R, self.zp, self.lo, self.hi, P], dtype=np.int64)
        parts = [head, self.tables.reshape(-1).view(np.int64)]
        if self.mask is not None:
            parts.append(mask_bits(self.mask).reshape(-1).view(np.int64))
        return np.concatenate(parts)


def mask_bits(mask: np.ndarray) -> np.ndarray:
    """uint64 [P, ceil(n / 64)]: bit i % 64 of word i // 64 of row p is mask[p, i]."""
    P, n = mask.shape
    W = -(-n // 64)
    padded = np.zeros((P, W * 64), dtype=np.uint64)
    padded[:, :n] = mask.astype(np.uint64)
    weights = np.left_shift(np.uint64(1), np.arange(64, dtype=np.uint64))
    return (padded.reshape(P, W, 64) * weights).sum(axis=-1, dtype=np.uint64)


def row_mask(mask: np.ndarray | None, shape) -> np.ndarray | None:
    """The mask of every element of an input of ``shape`` (rows of its last axis), or None."""
    if mask is None:
        return None
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    return mask[np.arange(rows) % mask.shape[0]].reshape(shape)


def prepare(s_in: float, in_range: tuple[int, int] | None, s_out: float, zp: int, lo: int, hi: int,
            n: int, mask: np.ndarray | None = None) -> SoftmaxParams:
    """Tables and reciprocal for input scale ``s_in`` (``in_range``: the quant input's integer range,
    None for an int32 accumulator), output scale ``s_out``, zero point and range, rows of ``n``.

    ``mask``: bool [P, n], the allowed keys (see the module docstring), or None.
    Raises ValueError (with the reason) when the bound of the integer contract does not hold.
    """
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2 or mask.shape[1] != n or mask.shape[0] < 1:
            raise ValueError(f"the mask must be [P, {n}], got {list(mask.shape)}")
        if not mask.any(axis=1).all():
            raise ValueError(f"mask row {int(np.argmin(mask.any(axis=1)))} masks every key")
    if not (s_in > 0 and math.isfinite(s_in)):
        raise ValueError(f"input scale {s_in} must be positive")
    if not (s_out > 0 and math.isfinite(s_out)):
        raise ValueError(f"output scale {s_out} must be positive")
    if in_range is not None:  # d <= span: digits of at most 4 bits cover it (two 16-entry tables for 8 bits)
        bits = max(1, (in_range[1] - in_range[0]).bit_length())
        r = min(DIGIT_BITS, bits)
        J = -(-bits // r)
    else:
        r = DIGIT_BITS
        J = 1
        while J < 32 // r and s_in * 2.0 ** (r * J) < CUTOFF * math.log(2.0):
            J += 1
    v = np.arange(2**r, dtype=np.float64)
    tables = np.zeros((J, 2**r), dtype=np.uint64)
    for j in range(J):
        vals = np.rint(np.ldexp(np.exp(-s_in * v * 2.0 ** (r * j)), Q))
        tables[j] = np.minimum(vals, 2.0**Q).astype(np.uint64)
        tables[j, 0] = np.uint64(2**Q)
    g = R_BITS - 1 - math.frexp(1.0 / s_out)[1] + 1  # 2^(R_BITS-1) <= 2^g / s_out < 2^R_BITS
    R = int(round(math.ldexp(1.0 / s_out, g)))
    if R >= 2**R_BITS:
        g -= 1
        R = int(round(math.ldexp(1.0 / s_out, g)))
    if not 1 <= g <= 62:
        raise ValueError(f"output scale {s_out:.6g} is out of range for the softmax kernel")
    top = hi - zp + 1  # largest output (in steps) that does not saturate
    delta = 1.004 * 2.0**-(F + 1)  # per element: Q36 rounding, table and product errors, cutoff
    # the element's own error (absolute) plus the sum's and R's (relative to the value, at most t_top)
    t_top = min(top, 1.0 / s_out)
    bound = (delta / s_out + t_top * (n * delta + 2.0**-(R_BITS - 1) + 2.0**-42)) * (1 + 2.0**-20) / \
        (1 - n * delta - 2.0**-43)
    if n >= 2**(64 - F - 1):
        raise ValueError(f"rows of {n} elements are too long for the 64-bit sum")
    return SoftmaxParams(r, J, g, R, int(zp), int(lo), int(hi), tables, float(bound), mask)


def mul_q62(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """rne(a * b / 2^62) for uint64 a, b <= 2^62, from 32-bit halves (as the C kernel does)."""
    a = a.astype(_U64)
    b = b.astype(_U64)
    a0, a1 = a & _M32, a >> _U64(32)
    b0, b1 = b & _M32, b >> _U64(32)
    lo = a0 * b0
    mid = a1 * b0 + a0 * b1  # < 2^63
    hi = a1 * b1
    low = lo + (mid << _U64(32))  # mod 2^64
    carry = (low < lo).astype(_U64)
    high = hi + (mid >> _U64(32)) + carry
    res = (high << _U64(2)) | (low >> _U64(62))
    rem = low & _U64((1 << 62) - 1)
    half = _U64(1 << 61)
    up = (rem > half) | ((rem == half) & ((res & _U64(1)) == _U64(1)))
    return res + up.astype(_U64)


def rne_shift_u(v: np.ndarray, sh: int) -> np.ndarray:
    """Round half to even of uint64 ``v / 2^sh`` (sh >= 1)."""
    f = v >> _U64(sh)
    rem = v & _U64((1 << sh) - 1)
    half = _U64(1 << (sh - 1))
    return f + ((rem > half) | ((rem == half) & ((f & _U64(1)) == _U64(1)))).astype(_U64)


def exp_q36(d: np.ndarray, p: SoftmaxParams) -> np.ndarray:
    """e = rne_shift(prod_j T[j][digit_j(d)], 26) for uint64 d >= 0 (0 beyond the tables)."""
    mask = _U64(2**p.r - 1)
    e = p.tables[0][(d & mask).astype(np.int64)]
    for j in range(1, p.J):
        digit = ((d >> _U64(p.r * j)) & mask).astype(np.int64)
        nz = digit != 0
        if np.any(nz):
            e = np.where(nz, mul_q62(e, p.tables[j][digit]), e)
    if p.r * p.J < 64:
        e = np.where((d >> _U64(p.r * p.J)) != 0, _U64(0), e)
    return rne_shift_u(e, Q - F)


def softmax(x: np.ndarray, p: SoftmaxParams) -> np.ndarray:
    """Integer softmax of ``x`` (int8/uint8 codes or int32 accumulators) over the last axis,
    quantized: int64 codes in [lo, hi]. See the module docstring for the arithmetic."""
    x = np.asarray(x).astype(np.int64)
    allowed = row_mask(p.mask, x.shape)
    if allowed is None:
        d = (x.max(axis=-1, keepdims=True) - x).astype(_U64)
        e = exp_q36(d, p)
    else:  # masked keys: out of the max, e = 0
        mx = np.where(allowed, x, np.iinfo(np.int64).min).max(axis=-1, keepdims=True)
        d = np.where(allowed, mx - x, 0).astype(_U64)
        e = np.where(allowed, exp_q36(d, p), _U64(0))
    S = e.sum(axis=-1, keepdims=True, dtype=_U64)
    num = e * _U64(p.R)  # < 2^64: e <= 2^36, R < 2^28
    q = num // S
    rem = num - q * S
    g = _U64(p.g)
    f = q >> g
    low = q & _U64((1 << p.g) - 1)
    half = _U64(1 << (p.g - 1))
    up = (low > half) | ((low == half) & ((rem != _U64(0)) | ((f & _U64(1)) == _U64(1))))
    y = f.astype(np.int64) + up.astype(np.int64) + p.zp
    return np.clip(y, p.lo, p.hi)


def exact(x: np.ndarray, s_in: float, s_out: float, mask: np.ndarray | None = None) -> np.ndarray:
    """The real value the contract rounds, in output steps (float64): softmax(s_in x) / s_out (over the
    allowed keys of ``mask``, 0 at the others)."""
    x = np.asarray(x).astype(np.float64)
    allowed = row_mask(mask, x.shape)
    if allowed is not None:
        x = np.where(allowed, x, -np.inf)
    z = np.exp(-s_in * (x.max(axis=-1, keepdims=True) - x))
    return z / z.sum(axis=-1, keepdims=True) / s_out
