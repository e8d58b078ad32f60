"""rmsnorm: integer-only RMSNorm over the last axes followed by the output quantizer.

The shared row normalization of atomic_ops/layernorm.py with ``center = 0``: per row of N codes q
with input zero point z, K = N z, V = N sum (q - z)^2 (= N^2 mean of the squared codes), D_i = N (q_i - z),
then exactly the LayerNorm integer form (docs/integer_contract.md, "RMSNorm"). ``prepare`` derives
the parameters once (``layernorm.prepare_norm``); the C kernel is gf_rmsnorm (gf_layernorm.c).
"""

from __future__ import annotations

import numpy as np

from atomic_ops.layernorm import LayerNormParams, exact_norm, norm_rows, prepare_norm


def prepare(s_in: float, in_range: tuple[int, int], zin: int, eps: float, gamma: np.ndarray, s_out: float,
            zp: int, lo: int, hi: int) -> LayerNormParams:
    """RMSNorm parameters for rows of ``gamma.size`` codes in ``in_range`` (zero point ``zin``, scale
    ``s_in``); ``gamma``: the weight (ones without one). Raises ValueError when the contract cannot hold."""
    gamma = np.asarray(gamma, dtype=np.float64).reshape(-1)
    return prepare_norm(s_in, in_range, eps, gamma, np.zeros_like(gamma), s_out, zp, lo, hi, center=False,
                        zin=zin)


def rmsnorm(x: np.ndarray, p: LayerNormParams) -> np.ndarray:
    """Integer RMSNorm of the codes ``x`` over rows of the last ``p.n`` elements: int64 codes in [lo, hi]."""
    return norm_rows(x, p)


def exact(x: np.ndarray, n: int, s_in: float, zin: int, eps: float, gamma: np.ndarray, s_out: float) -> np.ndarray:
    """The real value the contract rounds, in output steps (float64)."""
    gamma = np.asarray(gamma, dtype=np.float64).reshape(-1)
    return exact_norm(x, n, s_in, eps, gamma, np.zeros_like(gamma), s_out, center=False, zin=zin)
