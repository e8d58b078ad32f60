"""scan: the selective state-space scan (Mamba) with a quantized state, then the output quantizer.

The contract is docs/integer_contract.md, "Selective scan"; the C kernel (codegen/runtime/gf_scan.c)
implements the same arithmetic. Inputs (integer codes, token-major, batch 1): delta and u [L, D],
B and C [L, N]. Per channel d, the state h[d, 0..N) starts at the state quantizer's zero point z_h
(real 0) and, for t = 0 .. L-1, in order:

  a[n]  = T[d*N + n][delta[t, d] - base]                       (table: code of A_bar minus z_a)
  p1[n] = a[n] * (h[n] - z_h)                                  (|p1| <= 2^16, exact)
  p2[n] = (delta[t, d] - z_d) * (B[t, n] - z_b) * (u[t, d] - z_u)   (|p2| <= 2^24, exact)
  h[n]  = clamp(rne_shift(m1 * p1[n] + m2 * p2[n] + o_h, sh_h) + z_h, lo_h, hi_h)
  s     = sum_n (h[n] - z_h) * (C[t, n] - z_c)                 (|s| <= N * 2^16, exact)
  y[t, d] = clamp(rne_shift(m3[d] * s + m4[d] * (u[t, d] - z_u) + o_y[d], sh_y[d]) + z_y, lo_y, hi_y)

with (m1, m2, sh_h) the fixed-point form of (s_a, s_d * s_b * s_u / s_h) and (m3[d], m4[d], sh_y[d])
of (s_h * s_c / s_y, D[d] * s_u / s_y): every product and sum is an exact integer, each of h and y is
rounded once per step, exactly like the requantization of section 3 (error below 2^-31 of an output
step, relative). The table is the model's own float32 ``exp(delta * A[d, n])`` and its A_bar
quantizer on every delta code (section "Tables").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atomic_ops._fixedpoint import INT64_LIMIT, quantize_multipliers, rne_shift

HEADER = 24  # int64 words before the per-channel words in the parameter block
MAX_STATE = 64  # largest N: the C kernel keeps one channel's state in a fixed array of this size
P2_BOUND = 255 ** 3  # |(delta - z) (B - z) (u - z)| for 8-bit codes
NEAR_TIE = 1e-4  # the fidelity check's near-tie window (gapforge/fidelity.py), for exact()


@dataclass(frozen=True)
class ScanParams:
    """Integer parameters of one scan step (the parameter block of the C kernel)."""

    D: int
    N: int
    L: int
    entries: int  # table entries per (d, n): 2^bits of delta
    base: int  # delta code of entry 0
    z_d: int
    z_u: int
    z_b: int
    z_c: int
    z_h: int
    lo_h: int
    hi_h: int
    m1: int
    m2: int
    sh_h: int
    o_h: int
    z_y: int
    lo_y: int
    hi_y: int
    y_signed: int
    m3: np.ndarray  # int64 (D,)
    m4: np.ndarray  # int64 (D,)
    sh_y: np.ndarray  # int64 (D,)
    o_y: np.ndarray  # int64 (D,)
    table: np.ndarray  # int16 (D * N, entries): code of A_bar minus its zero point
    M_h: tuple[float, float]  # the exact real multipliers, for diagnostics
    M_y: np.ndarray  # float64 (2, D)

    def block(self) -> np.ndarray:
        """int64 words: [D, N, L, entries, base, z_d, z_u, z_b, z_c, z_h, lo_h, hi_h, m1, m2, sh_h, o_h,
        z_y, lo_y, hi_y, y_signed, 0, 0, 0, 0], then per channel d [m3, m4, sh_y, o_y], then the table as
        int16 (D*N rows of ``entries``, packed 4 per word, zero-padded)."""
        head = np.array([self.D, self.N, self.L, self.entries, self.base, self.z_d, self.z_u, self.z_b, self.z_c,
                         self.z_h, self.lo_h, self.hi_h, self.m1, self.m2, self.sh_h, self.o_h, self.z_y,
                         self.lo_y, self.hi_y, self.y_signed, 0, 0, 0, 0], dtype=np.int64)
        chan = np.stack([self.m3, self.m4, self.sh_y, self.o_y], axis=1).astype(np.int64).reshape(-1)
        t = self.table.astype("<i2").reshape(-1)
        t = np.concatenate([t, np.zeros((-t.size) % 4, dtype="<i2")])
        return np.concatenate([head, chan, t.view("<i8")])


def prepare(*, D: int, N: int, L: int, table: np.ndarray, base: int, s_a: float, s_d: float, s_u: float,
            s_b: float, s_c: float, s_h: float, s_y: float, Dvec: np.ndarray | None, zps: dict[str, int],
            h_range: tuple[int, int], y_range: tuple[int, int], y_signed: bool) -> ScanParams:
    """Fixed-point multipliers of the two roundings. ``table``: (D*N, entries) A_bar codes minus z_a;
    ``zps``: zero points d, u, b, c, h, y. Raises ValueError when a multiplier is out of range."""
    if N > MAX_STATE:
        raise ValueError(f"a state of {N} elements per channel; at most {MAX_STATE} are supported")
    M_h = np.array([[s_a], [s_d * s_b * s_u / s_h]], dtype=np.float64)
    m_h, sh_h = quantize_multipliers(M_h, "state quantizer: ")
    bound_h = 255 * 255 * abs(int(m_h[0, 0])) + P2_BOUND * abs(int(m_h[1, 0]))
    if bound_h >= INT64_LIMIT:  # cannot happen with |m| < 2^31; kept as the contract's check
        raise ValueError("the 64-bit state sum can overflow")
    dv = np.zeros(D) if Dvec is None else np.asarray(Dvec, dtype=np.float64).reshape(D)
    M_y = np.stack([np.full(D, s_h * s_c / s_y), dv * s_u / s_y]).astype(np.float64)
    m_y, sh_y = quantize_multipliers(M_y, "output quantizer: ")
    return ScanParams(
        D=D, N=N, L=L, entries=int(table.shape[1]), base=int(base), z_d=zps["d"], z_u=zps["u"], z_b=zps["b"],
        z_c=zps["c"], z_h=zps["h"], lo_h=int(h_range[0]), hi_h=int(h_range[1]), m1=int(m_h[0, 0]),
        m2=int(m_h[1, 0]), sh_h=int(sh_h[0]), o_h=0, z_y=zps["y"], lo_y=int(y_range[0]), hi_y=int(y_range[1]),
        y_signed=int(bool(y_signed)), m3=m_y[0].astype(np.int64), m4=m_y[1].astype(np.int64),
        sh_y=sh_y.astype(np.int64), o_y=np.zeros(D, dtype=np.int64), table=np.asarray(table, dtype=np.int16),
        M_h=(float(M_h[0, 0]), float(M_h[1, 0])), M_y=M_y)


def _run(delta, u, B, C, p: ScanParams, exact: bool):
    delta = np.asarray(delta, dtype=np.int64)
    if delta.ndim == 3:  # [batch, L, D]: every sequence on its own
        return np.stack([_run(delta[i], u[i], B[i], C[i], p, exact) for i in range(delta.shape[0])])
    delta = delta.reshape(p.L, p.D)
    u = np.asarray(u, dtype=np.int64).reshape(p.L, p.D)
    B = np.asarray(B, dtype=np.int64).reshape(p.L, p.N)
    C = np.asarray(C, dtype=np.int64).reshape(p.L, p.N)
    tab = p.table.astype(np.int64).reshape(p.D, p.N, p.entries)
    h = np.zeros((p.D, p.N), dtype=np.int64)  # h - z_h
    y = np.zeros((p.L, p.D), dtype=np.float64 if exact else np.int64)
    dd, nn = np.meshgrid(np.arange(p.D), np.arange(p.N), indexing="ij")
    tied = np.zeros(p.D, dtype=bool)  # channels whose state has passed a near-tie rounding (exact only)
    for t in range(p.L):
        a = tab[dd, nn, (delta[t] - p.base)[:, None]]
        p1 = a * h
        p2 = ((delta[t] - p.z_d) * (u[t] - p.z_u))[:, None] * (B[t] - p.z_b)[None, :]
        hq = np.clip(rne_shift(p.m1 * p1 + p.m2 * p2 + p.o_h, p.sh_h) + p.z_h, p.lo_h, p.hi_h)
        h = hq - p.z_h
        s = h @ (C[t] - p.z_c)
        if exact:  # the real value the output quantizer rounds (in output steps), before the zero point
            v = p.M_h[0] * p1 + p.M_h[1] * p2
            tied |= (np.abs(v - np.floor(v) - 0.5) < NEAR_TIE).any(axis=1)
            y[t] = p.M_y[0] * s + p.M_y[1] * (u[t] - p.z_u)
            # an output after a state near-tie depends on how Brevitas rounded that tie: report it as one
            y[t, tied] = np.floor(y[t, tied]) + 0.5
        else:
            y[t] = np.clip(rne_shift(p.m3 * s + p.m4 * (u[t] - p.z_u) + p.o_y, p.sh_y) + p.z_y, p.lo_y, p.hi_y)
    return y


def scan(delta, u, B, C, p: ScanParams) -> np.ndarray:
    """The output codes y [L, D] (int64) of the contract above ([batch, L, D] for [batch, L, .] inputs)."""
    return _run(delta, u, B, C, p, exact=False)


def exact(delta, u, B, C, p: ScanParams) -> np.ndarray:
    """float64 value of each output before its rounding, for the fidelity check's near-tie test.

    The states are the contract's, not Brevitas': where a state of channel d was itself within
    ``NEAR_TIE`` of a rounding tie at step t (Brevitas' float32 sum may round it the other way, and the
    difference then flows through the recurrence), the outputs of channel d from step t on are given
    as ties (``floor(v) + 0.5``): their comparison with Brevitas is decided by that earlier tie."""
    return _run(delta, u, B, C, p, exact=True)
