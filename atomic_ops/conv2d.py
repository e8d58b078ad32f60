"""conv2d: integer 2-D convolution, vectorised through exact float64 BLAS."""

from __future__ import annotations

import numpy as np

from atomic_ops._windows import pad_nchw, windows


def conv2d(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, stride, padding, dilation=(1, 1),
           groups: int = 1) -> np.ndarray:
    """``acc[n,o,y,x] = bias[o] + sum w[o,c,i,j] * xpad[n, g*Cg+c, y*sy + i*dy, x*sx + j*dx]`` (int64 out).

    x: (N, C, H, W) integers, w: (O, C/groups, kh, kw) integers, zero padding
    ``padding = [top, left, bottom, right]``.

    Exactness: the products and partial sums are computed in float64 (BLAS). Every term
    is an integer and the planner checks ``sum |w| * max|x| + |bias| < 2^31`` per channel, so
    every partial sum, in any order, is an integer below 2^31 < 2^53 and is represented
    exactly: the float64 result equals the integer convolution.
    """
    n, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    xp = pad_nchw(x.astype(np.float64), padding, 0.0)
    win = windows(xp, (kh, kw), stride, dilation)  # N, C, OH, OW, kh, kw
    oh, ow = win.shape[2], win.shape[3]
    og = o // groups
    wf = w.astype(np.float64)
    if groups == c and cg == 1:  # depthwise (channel multiplier og)
        wd = wf.reshape(c, og, kh, kw)
        acc = np.einsum("nchwij,cmij->ncmhw", win, wd, optimize=True).reshape(n, o, oh, ow)
    else:
        out = []
        for g in range(groups):
            cols = win[:, g * cg:(g + 1) * cg].transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, cg * kh * kw)
            wg = wf[g * og:(g + 1) * og].reshape(og, cg * kh * kw)
            out.append((cols @ wg.T).reshape(n, oh, ow, og).transpose(0, 3, 1, 2))
        acc = out[0] if groups == 1 else np.concatenate(out, axis=1)
    acc = acc.astype(np.int64)
    if bias is not None:
        acc += bias.astype(np.int64).reshape(1, o, 1, 1)
    return acc
