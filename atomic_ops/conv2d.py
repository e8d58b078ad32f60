"""conv2d: integer 2-D convolution, vectorised through exact float BLAS (atomic_ops._gemm)."""

from __future__ import annotations

import numpy as np

from atomic_ops._gemm import cached, exact_float_dtype
from atomic_ops._windows import pad_nhwc, windows


def conv2d(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, stride, padding, dilation=(1, 1),
           groups: int = 1) -> np.ndarray:
    """``acc[n,o,y,x] = bias[o] + sum w[o,c,i,j] * xpad[n, g*Cg+c, y*sy + i*dy, x*sx + j*dx]`` (int64 out).

    x: (N, C, H, W) integers, w: (O, C/groups, kh, kw) integers, zero padding
    ``padding = [top, left, bottom, right]``.

    Exactness: products and partial sums are computed in float32 or float64 (BLAS), chosen by
    ``exact_float_dtype`` so that every partial sum, in any order, is an integer the format
    represents exactly (|partial| <= max|x| * max_o sum|w[o]| < 2^24 resp. 2^53; the planner
    bounds it below 2^31): the float result equals the integer convolution.

    Layout: the padded input is made channel-last once, so each im2col row is a run of
    contiguous channel values per kernel tap (columns ordered kh, kw, C).
    """
    n, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    ft = exact_float_dtype(x, w)
    xp = pad_nhwc(x.astype(ft).transpose(0, 2, 3, 1), padding, 0.0).transpose(0, 3, 1, 2)
    win = windows(xp, (kh, kw), stride, dilation)  # N, C, OH, OW, kh, kw
    oh, ow = win.shape[2], win.shape[3]
    og = o // groups
    if groups == c and cg == 1:  # depthwise (channel multiplier og)
        wd = cached(w, ("dw", ft), lambda: w.astype(ft).reshape(c, og, kh, kw))
        acc = np.einsum("nchwij,cmij->ncmhw", win, wd, optimize=True).reshape(n, o, oh, ow)
    else:
        # per group: (kh*kw*Cg, og) matrices, columns ordered like the im2col rows
        mats = cached(w, ("conv", ft, groups), lambda: [
            np.ascontiguousarray(w[g * og:(g + 1) * og].astype(ft).transpose(2, 3, 1, 0).reshape(kh * kw * cg, og))
            for g in range(groups)])
        out = []
        for g in range(groups):
            cols = win[:, g * cg:(g + 1) * cg].transpose(0, 2, 3, 4, 5, 1).reshape(n * oh * ow, kh * kw * cg)
            out.append((cols @ mats[g]).reshape(n, oh, ow, og).transpose(0, 3, 1, 2))
        acc = out[0] if groups == 1 else np.concatenate(out, axis=1)
    acc = acc.astype(np.int64)
    if bias is not None:
        acc += bias.astype(np.int64).reshape(1, o, 1, 1)
    return acc
