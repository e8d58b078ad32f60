"""groupnorm: integer-only GroupNorm followed by the output quantizer.

The input is viewed as rows of one group each: [N, G, (C/G) * spatial] (a group's channels are
contiguous in NCHW / NCT). Each row is normalized by the shared integer form of
atomic_ops/layernorm.py (``center = 1``, exactly LayerNorm over the row) and scaled by the affine
parameters of its channels: ``groups = G`` sets of C/G entries, each covering ``rep = spatial``
elements; row r uses set r % G (docs/integer_contract.md, "GroupNorm"). C kernel: gf_groupnorm.
"""

from __future__ import annotations

import numpy as np

from atomic_ops.layernorm import LayerNormParams, exact_norm, norm_rows, prepare_norm


def prepare(s_in: float, in_range: tuple[int, int], groups: int, spatial: int, eps: float, gamma: np.ndarray,
            beta: np.ndarray, s_out: float, zp: int, lo: int, hi: int) -> LayerNormParams:
    """GroupNorm parameters: ``gamma`` / ``beta`` per channel (C values, ones / zeros without affine),
    ``groups`` groups of C / groups channels of ``spatial`` elements each."""
    return prepare_norm(s_in, in_range, eps, gamma, beta, s_out, zp, lo, hi, groups=groups, rep=spatial)


def groupnorm(x: np.ndarray, p: LayerNormParams) -> np.ndarray:
    """Integer GroupNorm of the codes ``x`` (any shape whose C-order rows of ``p.n`` elements are the
    groups, starting with group 0): int64 codes in [lo, hi], same shape as ``x``."""
    return norm_rows(x, p)


def exact(x: np.ndarray, s_in: float, groups: int, spatial: int, eps: float, gamma: np.ndarray, beta: np.ndarray,
          s_out: float) -> np.ndarray:
    """The real value the contract rounds, in output steps (float64)."""
    n = np.asarray(gamma).size // groups * spatial
    return exact_norm(x, n, s_in, eps, gamma, beta, s_out, groups=groups, rep=spatial)
