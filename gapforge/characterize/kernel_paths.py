"""Which code path of a convolution kernel computes which MACs: features of the instruction model.

The portable convolution kernels (codegen/runtime/gf_conv_impl.h) compute most outputs in
register blocks (3x3: 3 output channels x 4 pixels; general and 1x1: 4 x 4; 1x1 with requantized
output and at most 128 input channels: 8 channels x 3 pixels, "3 in 2"), the rest one pixel at a
time with taps clipped to the input (borders the block cannot reach, pixel tails) or in narrower
channel blocks (channel tails: O not a multiple of the block). The per-pixel path costs several
times more instructions per MAC than a block, so a layer's instructions depend on how its MACs
split between the paths, not on its MACs alone: padding 2 on a 7x7 map puts most pixels on the
per-pixel path. On the GAP9 cluster every core runs the kernel on its own output channels
(gf_tiled.c compute_conv / compute_linear: a contiguous share of the tile's channels), so the
split is that of the busiest core's channel count (a core with 2 of 16 channels runs channel
tails only).

:func:`conv_paths` mirrors the kernels' dispatch rules (which pixel goes to which path) and counts
the MACs per path; it does not model instructions, which the calibration fits per path.
"""

from __future__ import annotations


def _taps(b: int, d: int, k: int, size: int) -> tuple[int, int]:
    """gf_tap_range: the taps [i0, i1) of a window starting at ``b`` (dilation d) inside [0, size)."""
    i0 = 0
    while i0 < k and b + i0 * d < 0:
        i0 += 1
    i1 = k
    while i1 > i0 and b + (i1 - 1) * d > size - 1:
        i1 -= 1
    return i0, i1


def _interior(ow: int, w: int, sx: int, pl: int, span: int) -> tuple[int, int]:
    """gf_interior: the output columns [xl, xr) whose whole window (``span`` columns) is inside."""
    cols = [ox for ox in range(ow) if ox * sx - pl >= 0 and ox * sx - pl + span <= w]
    return (cols[0], cols[-1] + 1) if cols else (0, 0)


def conv_paths(kernel: str, g: dict, oc: int | None = None) -> dict[str, float]:
    """MACs per path of one call of ``kernel`` on geometry ``g`` (c, h, w, oh, ow, kh, kw, sy, sx, pt,
    pl, dy, dx, groups, o, rq) computing ``oc`` output channels (default all): {"slow_macs": per-pixel
    path, "ctail_macs": channel-tail blocks, "pix_iters": tap iterations of gf_conv_pix}. Multiply-adds
    on padding inside a block count as MACs. gf_conv_pix (the per-pixel path of the general, 3x3 and
    1x1 kernels) loops over (input channel, tap) and does R multiply-adds per iteration for its block
    of R output channels, so its cost per MAC falls with R: a GAP9 core with 1 of 8 channels pays the
    loop for every MAC (pix_iters = slow MACs of gf_conv_pix / R)."""
    oc = g["o"] if oc is None else max(0, min(oc, g["o"]))
    out = {"slow_macs": 0.0, "ctail_macs": 0.0, "pix_iters": 0.0}
    if not oc or kernel not in ("gf_conv2d", "gf_conv2d_3x3", "gf_conv2d_1x1", "gf_dwconv2d"):
        return out
    c, h, w, oh, ow = g["c"], g["h"], g["w"], g["oh"], g["ow"]
    kh, kw, sy, sx, pt, pl, dy, dx = g["kh"], g["kw"], g["sy"], g["sx"], g["pt"], g["pl"], g["dy"], g["dx"]
    groups = max(1, g["groups"])
    cg = c // groups
    if kernel == "gf_conv2d_3x3":
        full, tail = 3 * (oc // 3), oc % 3
        for oy in range(oh):
            i0, i1 = _taps(oy - pt, 1, 3, h)
            nrows = i1 - i0
            ox = 0
            while ox < ow:
                bx = ox - pl
                if ox + 4 <= ow and nrows > 0 and bx >= -1 and bx + 5 <= w:
                    out["ctail_macs"] += 4 * nrows * 3 * c * tail
                    ox += 4
                else:
                    j0, j1 = _taps(bx, 1, 3, w)
                    out["slow_macs"] += max(0, nrows) * max(0, j1 - j0) * c * (full + tail)
                    out["pix_iters"] += max(0, nrows) * max(0, j1 - j0) * c * (full // 3 + (1 if tail else 0))
                    ox += 1
        return out
    if kernel == "gf_conv2d_1x1":
        n_pix = oh * ow
        runs = [n_pix] if (sy == 1 and sx == 1 and oh == h and ow == w) else [ow] * oh
        p3 = 8 * (oc // 8) if g.get("rq", True) and 1 <= c <= 128 else 0
        rest = oc - p3
        b44, pix = 4 * (rest // 4), rest % 4
        tails = sum(n % (3 if p3 else 4) for n in runs)
        out["slow_macs"] = float(pix * n_pix * c + tails * c * (p3 or b44))
        out["ctail_macs"] = float(b44 * n_pix * c) if p3 else 0.0
        out["pix_iters"] = float(n_pix * c) if pix else 0.0  # the channel tail; pixel tails take other blocks
        return out
    if kernel == "gf_dwconv2d":
        return _depthwise(g, oc)
    # the general kernel
    og = oc if groups == 1 else max(1, g["o"] // groups)  # channels per group of this call
    groups_c = max(1, -(-oc // og))
    xl, xr = _interior(ow, w, sx, pl, (kw - 1) * dx + 1)
    blk = 0
    slow = 0
    for oy in range(oh):
        i0, i1 = _taps(oy * sy - pt, dy, kh, h)
        nrows = max(0, i1 - i0)
        nb = (xr - xl) // 4 if nrows else 0
        blk += 4 * nb * nrows * kw
        for ox in list(range(0, xl)) + list(range(xl + 4 * nb, ow)):
            j0, j1 = _taps(ox * sx - pl, dx, kw, w)
            slow += nrows * max(0, j1 - j0)
    per_group_tail = og % 4 if og >= 4 else og
    out["slow_macs"] = float(slow * cg * min(oc, og * groups_c))
    out["ctail_macs"] = float(blk * cg * per_group_tail * groups_c)
    out["pix_iters"] = float(slow * cg * -(-min(oc, og) // 4) * groups_c)
    return out


def _depthwise(g: dict, oc: int) -> dict[str, float]:
    """gf_dwconv: 3x3 stride 1 / 2 with requantized output streams rows (gf_dws; outputs with two or
    more padded columns per pixel); anything else runs gf_dw_generic, 4-pixel blocks with kernel loops
    (counted as ctail_macs: the slower blocked path) and clipped per-pixel borders (slow_macs)."""
    h, w, oh, ow, kh, kw = g["h"], g["w"], g["oh"], g["ow"], g["kh"], g["kw"]
    sy, sx, pt, pl = g["sy"], g["sx"], g["pt"], g["pl"]
    out = {"slow_macs": 0.0, "ctail_macs": 0.0, "pix_iters": 0.0}
    if g.get("rq", True) and kh == 3 and kw == 3 and sx in (1, 2) and sy == sx:
        xs = 0
        while xs < ow and xs * sx - pl < -1:
            xs += 1
        xe = xs
        while xe < ow and xe * sx - pl + 2 <= w:
            xe += 1
        if xe - xs >= 2:
            edge = 0
            for oy in range(oh):
                i0, i1 = _taps(oy * sy - pt, 1, 3, h)
                for ox in list(range(0, xs)) + list(range(xe, ow)):
                    j0, j1 = _taps(ox * sx - pl, 1, 3, w)
                    edge += max(0, i1 - i0) * max(0, j1 - j0)
            out["slow_macs"] = float(edge * oc)
            return out
    xl, xr = _interior(ow, w, sx, pl, kw)
    blk = slow = 0
    for oy in range(oh):
        i0, i1 = _taps(oy * sy - pt, 1, kh, h)
        nrows = max(0, i1 - i0)
        ox = 0
        while ox < ow:
            if ox >= xl and ox + 4 <= xr and nrows:
                blk += 4 * nrows * kw
                ox += 4
            else:
                j0, j1 = _taps(ox * sx - pl, 1, kw, w)
                slow += nrows * max(0, j1 - j0)
                ox += 1
    out["slow_macs"], out["ctail_macs"] = float(slow * oc), float(blk * oc)
    return out
