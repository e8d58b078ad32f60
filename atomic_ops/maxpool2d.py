"""maxpool2d on integers."""

from __future__ import annotations

import numpy as np

from atomic_ops._windows import pad_nchw, windows


def pooled_size(size: int, k: int, s: int, p_before: int, p_after: int, ceil_mode: bool) -> int:
    """PyTorch's output size (ceil mode drops a last window that would start in the padding)."""
    span = size + p_before + p_after - k
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p_before:
        out -= 1
    return out


def maxpool2d(x: np.ndarray, kernel_size, stride, padding, ceil_mode: bool = False) -> np.ndarray:
    """``y = max over the window``; padded positions never win (PyTorch pads with -inf).

    Exact on integers: any monotone encoding commutes with max.
    """
    n, c, h, w = x.shape
    kh, kw = kernel_size
    t, left, b, r = padding
    oh = pooled_size(h, kh, stride[0], t, b, ceil_mode)
    ow = pooled_size(w, kw, stride[1], left, r, ceil_mode)
    need_b = max(b, (oh - 1) * stride[0] + kh - h - t)
    need_r = max(r, (ow - 1) * stride[1] + kw - w - left)
    low = np.iinfo(np.int64).min
    xp = pad_nchw(x.astype(np.int64), [t, left, need_b, need_r], low)
    win = windows(xp, (kh, kw), stride)[:, :, :oh, :ow]
    return win.max(axis=(4, 5))
