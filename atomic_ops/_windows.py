"""Sliding-window views shared by convolution and pooling (no copies until reshaped)."""

from __future__ import annotations

import numpy as np


def pad_nchw(x: np.ndarray, padding, value) -> np.ndarray:
    """Pad H and W of an NCHW array; ``padding`` = [top, left, bottom, right]."""
    t, left, b, r = padding
    if not (t or left or b or r):
        return x
    return np.pad(x, ((0, 0), (0, 0), (t, b), (left, r)), constant_values=value)


def pad_nhwc(x: np.ndarray, padding, value) -> np.ndarray:
    """Pad H and W of an NHWC array (any strides); the result is a new C-contiguous NHWC array."""
    t, left, b, r = padding
    if not (t or left or b or r):
        return np.ascontiguousarray(x)
    return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=value)


def windows(x: np.ndarray, kernel, stride, dilation=(1, 1)) -> np.ndarray:
    """View of shape (N, C, OH, OW, kh, kw) over an already padded NCHW array."""
    kh, kw = kernel
    sh, sw = stride
    dh, dw = dilation
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    v = np.lib.stride_tricks.sliding_window_view(x, (span_h, span_w), axis=(2, 3))
    return v[:, :, ::sh, ::sw, ::dh, ::dw]
