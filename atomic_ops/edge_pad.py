"""edge_pad: one axis padded with the tensor's own values (torch's reflect, replicate and circular
padding modes); pure data movement."""

from __future__ import annotations

import numpy as np

MODES = ("reflect", "replicate", "circular")  # the C kernel's mode argument is the index (gf_edge_pad)


def max_pad(n: int, mode: str) -> int:
    """The widest padding of one side that ``mode`` allows on an axis of ``n`` elements (PyTorch's limits:
    reflect mirrors without repeating the edge, so < n; circular wraps around at most once)."""
    return {"reflect": n - 1, "replicate": 1 << 30, "circular": n}[mode]


def source_indices(n: int, before: int, after: int, mode: str) -> list[int]:
    """For each of the ``before + n + after`` output positions along the axis, the input position it copies."""
    if mode not in MODES:
        raise ValueError(f"unknown padding mode {mode!r}")
    if n < 1 or before < 0 or after < 0 or max(before, after) > max_pad(n, mode):
        raise ValueError(f"{mode} padding ({before}, {after}) of an axis of {n}")
    out = []
    for i in range(-before, n + after):
        if mode == "reflect":
            j = -i if i < 0 else (2 * (n - 1) - i if i >= n else i)
        elif mode == "replicate":
            j = min(max(i, 0), n - 1)
        else:
            j = i % n
        out.append(j)
    return out


def edge_pad(x: np.ndarray, axis: int, before: int, after: int, mode: str) -> np.ndarray:
    """``y[..., i, ...] = x[..., src(i - before), ...]`` along ``axis`` with ``src`` the ``mode``'s index map
    (reflect: ``|j|`` mirrored at both ends without repeating the edge; replicate: ``j`` clamped to the
    axis; circular: ``j mod n``); integers unchanged."""
    return np.ascontiguousarray(np.take(x, source_indices(x.shape[axis], before, after, mode), axis=axis))
