"""thresholds: a float function of an int32 accumulator followed by a quantizer, as a step function.

A QuantConv2d / QuantConv1d / QuantLinear without an output quantizer gives an int32 accumulator
``acc`` whose real value is ``s[c] * acc + offset[c]`` (gapforge/ops/_layer.py). A float function of it
(sigmoid, tanh, GELU, ReLU6, QuantSigmoid with input_quant None, ...) followed by a quantizer is, as a
function of the integer ``acc``, a step function: the output code changes only at a few hundred
accumulator values. The golden output of the layer is defined as

    code(acc) = quantizer(f(fl32(s[c] * acc + offset[c])))

(the exact real value of the accumulator rounded once to float32, the model's own float32 function
and the model's own quantizer module), which is what Brevitas computes except where its float32
accumulation puts the value on the other side of a code boundary (a near-tie). At extraction the
code is evaluated over the reachable accumulator range of each channel (bounded by the integer weights,
the bias and the input's integer range) and every accumulator value where it changes is found
(``find_steps``); the device searches each element's accumulator in its channel's sorted thresholds
(int32 compares only) and writes the code between them.

Finding the steps exactly: the range is evaluated on up to ``SAMPLES`` evenly spaced accumulators
(every accumulator when the range is smaller: then the result is exact by construction). Between two
consecutive samples the function is monotone unless the samples' float values (before the quantizer's
rounding) change direction there; around every such change the accumulators are all evaluated
(the extremum of GELU, SiLU, hardswish, Mish; any float32 wobble). Elsewhere an interval whose end codes
differ is bisected down to single accumulator steps, so every step of a monotone stretch is found.
"""

from __future__ import annotations

import numpy as np
import torch

from gapforge import ir
from gapforge.errors import GapforgeError
from gapforge.ops._base import Attr, IROp, Tiling
from gapforge.ops._shapes import ShapeError, inputs_of

SAMPLES = 1 << 16  # evenly spaced accumulators per channel before refinement
MAX_WINDOW_POINTS = 1 << 24  # accumulators evaluated exhaustively around direction changes, all channels
INT32_MAX = 2**31 - 1


# -- device layout --------------------------------------------------------------------------
def table_bytes(n: int) -> int:
    """Bytes of one channel's table: n int32 thresholds, then n + 1 code bytes (n + 1 is a multiple of 4, so
    the tables stay 4-byte aligned and the GAP9 tile kernel reads n back as (bytes - 1) / 5)."""
    if (n + 1) % 4:
        raise ValueError(f"{n} thresholds per channel: n + 1 must be a multiple of 4")
    return 5 * n + 1


def pack_tables(thr: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """[channels, table_bytes(n)] uint8: each channel's thresholds (int32, little endian) then its code bytes."""
    c, n = thr.shape
    out = np.zeros((c, table_bytes(n)), dtype=np.uint8)
    out[:, :4 * n] = np.ascontiguousarray(thr.astype("<i4")).view(np.uint8).reshape(c, 4 * n)
    out[:, 4 * n:] = codes.astype(np.int64).astype(np.uint8 if codes.dtype == np.uint8 else np.int8) \
        .view(np.uint8)
    return out


def _run(engine, step, inputs):
    op = engine.net.op_by_name(step.main_op)
    return atomic_ops_thresholds()(inputs[0], engine.param(step, "thresholds"), engine.param(step, "codes"),
                                   op.attrs.get("channel_axis"))


def atomic_ops_thresholds():
    import atomic_ops

    return atomic_ops.get("thresholds")


def _call(cg):
    thr = cg.net.param(cg.op, "thresholds")
    codes = cg.net.param(cg.op, "codes")
    channels, n = thr.shape
    ptr = cg.param("thresholds", "t", pack_tables(thr, codes), "const uint8_t")
    axis = cg.op.attrs.get("channel_axis")
    inner = cg.out_t.numel if axis is None else int(np.prod(cg.out_t.shape[axis + 1:], dtype=np.int64))
    return cg.call("gf_thresholds", (cg.X[0], ptr, str(n), str(table_bytes(n)), str(channels),
                                     str(cg.out_t.numel), str(max(inner, 1)), cg.Y))


def _tables(step, net):
    """GAP9 tiling: (channels, bytes per table, table per channel) of the step's packed tables."""
    t = net.op_by_name(step.main_op).params["thresholds"]
    return int(t.shape[0]), table_bytes(int(t.shape[1])), int(t.shape[0]) > 1


def infer_shapes(inputs, attrs, params):
    """One int32 accumulator; the output has its shape. thresholds [channels, n], codes [channels, n + 1]."""
    (x,) = inputs_of(inputs, 1)
    t, k = params.get("thresholds"), params.get("codes")
    if t is None or len(t) != 2 or t[1] < 3 or (t[1] + 1) % 4:
        raise ShapeError("needs a 2-D param 'thresholds' [channels, n] with n + 1 a multiple of 4",
                         "params.thresholds.shape")
    if k is None or list(k) != [t[0], t[1] + 1]:
        raise ShapeError(f"param 'codes' must be [{t[0]}, {t[1] + 1}] (one more than the thresholds)",
                         "params.codes.shape")
    axis = attrs.get("channel_axis")
    if t[0] != 1 and (axis is None or axis >= len(x) or x[axis] != t[0]):
        raise ShapeError(f"{t[0]} threshold rows do not match the input {x} along channel_axis {axis}",
                         "params.thresholds.shape")
    return [list(x)]


IR_OP = IROp(
    name="thresholds",
    summary="Step function of an int32 accumulator: a float function of a conv/linear output followed by its "
            "quantizer.",
    semantics="y = codes[c][i] with i the number of thresholds[c][:] (sorted int32) that are <= acc and c the "
              "channel (0 with one row); found at extraction as every accumulator value where the model's "
              "quantizer(f(fl32(s[c] * acc + offset[c]))) changes over the reachable range.",
    inputs="one int32 accumulator (a conv2d / linear output without its requantization)",
    attrs={
        "function": Attr({"type": "string"}, "the float function, for reading (e.g. sigmoid(x))"),
        "channel_axis": Attr({"type": ["integer", "null"], "minimum": 0},
                             "axis of the per-channel rows; null: one row", required=False),
    },
    params=("thresholds", "codes"),
    reference="thresholds",
    kernels=("gf_thresholds",),
    run=_run,
    runs_on_real_accumulator=True,
    call=_call,
    tiling=Tiling("eltwise", tables=_tables),
    infer_shapes=infer_shapes,
)


# -- extraction -------------------------------------------------------------------------------
def reachable_range(ctx, acc: ir.TensorInfo) -> tuple[np.ndarray, np.ndarray] | None:
    """Per output channel (lo, hi) of the accumulator of a conv2d / linear op (or of a max pooling / ReLU of
    one): the bias plus the extreme sums of weight x input code over the input's integer range (zero padding
    lies inside it); None for other accumulators (sums, products of activations)."""
    op = ctx.producer_op(acc)
    if op is not None and op.type in ("maxpool2d", "relu"):  # the maximum of accumulators, max(acc, 0): same bounds
        rng = reachable_range(ctx, ctx.low.tensors[op.inputs[0]])
        if rng is None or op.type == "maxpool2d":
            return rng
        return np.maximum(rng[0], 0), np.maximum(rng[1], 0)
    if op is None or op.type not in ("conv2d", "linear") or "weight" not in op.params:
        return None
    w = ctx.low.arrays[op.params["weight"].file].astype(np.int64)
    w = w.reshape(w.shape[0], -1)
    x = ctx.low.tensors[op.inputs[0]]
    xlo, xhi = x.qrange()
    pos = np.maximum(w, 0).sum(axis=1)
    neg = np.minimum(w, 0).sum(axis=1)
    lo = pos * xlo + neg * xhi
    hi = pos * xhi + neg * xlo
    if "bias" in op.params:
        b = ctx.low.arrays[op.params["bias"].file].astype(np.int64).reshape(-1)
        lo, hi = lo + b, hi + b
    return lo, hi


class _Evaluator:
    """The golden code of accumulator values, per channel: quantizer(f(fl32(s[c] * acc + offset[c])))."""

    def __init__(self, fn, proxy, out_qp, sigma: np.ndarray, offset: np.ndarray, ndim: int, axis: int, where: str):
        self.fn, self.proxy, self.qp, self.where = fn, proxy, out_qp, where
        self.sigma, self.offset = sigma, offset
        self.chans = sigma.size
        self.shape = [1] * ndim
        self.shape[axis] = self.chans
        fused = getattr(proxy, "fused_activation_quant_proxy", None)
        self.impl = getattr(fused, "activation_impl", None)  # the function the quantizer applies itself
        s_out = np.asarray(out_qp.scale if out_qp.channel_axis is not None else [out_qp.scale], dtype=np.float64)
        self.s_out = np.broadcast_to(s_out, (self.chans,)) if s_out.size == 1 else s_out
        self.lo_o, self.hi_o = out_qp.qrange()

    def __call__(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(codes, float values entering the quantizer's rounding) of the accumulators ``a`` [M, channels]."""
        v = torch.from_numpy((a.astype(np.float64) * self.sigma + self.offset).astype(np.float32))
        v = v.reshape([a.shape[0]] + self.shape[1:])
        with torch.no_grad():
            y = self.fn(v)
            out = self.proxy(y)
            pre = self.impl(y) if self.impl is not None else y
        value = getattr(out, "value", out).detach().double().reshape(a.shape).numpy()
        q = value / self.s_out + self.qp.zero_point
        ints = np.rint(q)
        if not np.all(np.isfinite(q)) or not np.all(np.abs(q - ints) < 1e-3):
            raise GapforgeError(f"{self.where}: the quantizer's output is not on its integer grid")
        if ints.size and (ints.min() < self.lo_o or ints.max() > self.hi_o):
            raise GapforgeError(f"{self.where}: codes outside the quantizer range [{self.lo_o}, {self.hi_o}]")
        return ints.astype(np.int64), getattr(pre, "value", pre).detach().double().reshape(a.shape).numpy()

    def at(self, chan: np.ndarray, acc: np.ndarray, fill: np.ndarray) -> np.ndarray:
        """Codes of the (channel, accumulator) pairs: one [M, channels] evaluation with each channel's queries
        in its column (the rest ``fill``, a valid accumulator of that channel)."""
        if chan.size == 0:
            return np.zeros(0, dtype=np.int64)
        order = np.argsort(chan, kind="stable")
        cs = chan[order]
        first = np.searchsorted(cs, np.arange(self.chans))
        rank = np.arange(cs.size) - first[cs]
        grid = np.broadcast_to(fill, (int(rank.max()) + 1, self.chans)).copy()
        grid[rank, cs] = acc[order]
        codes = self(grid)[0]
        out = np.empty(chan.size, dtype=np.int64)
        out[order] = codes[rank, cs]
        return out


def find_steps(ev: _Evaluator, lo: np.ndarray, hi: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """Per channel: the accumulators t in (lo, hi] where code(t) != code(t - 1), sorted, and the codes
    [code(lo), code(t_0), code(t_1), ...]. Also figures: samples, exhaustive window points, bisections."""
    chans = lo.size
    span = int((hi - lo).max())
    s = min(span + 1, SAMPLES + 1)
    j = np.arange(s, dtype=np.int64)[:, None]
    pts = lo[None, :] + (j * (hi - lo)[None, :]) // max(s - 1, 1)  # [s, chans], lo ... hi
    codes, vals = ev(pts)
    found: list[dict[int, int]] = [{} for _ in range(chans)]
    stats = {"samples": int(s), "window_points": 0, "bisections": 0}

    # direction changes of the sampled float values (flat runs skipped): evaluate every accumulator around them,
    # unless the window's samples share one code and lie farther from its rounding boundaries than the sum of
    # their differences (an extremum hidden between samples of a locally quadratic function lies within an
    # eighth of the second difference of the nearest sample: float32 wobble in a flat tail is skipped)
    d = np.sign(np.diff(vals, axis=0))
    u = vals / ev.s_out[None, :]  # output steps
    room = 0.5 - np.abs(u - np.rint(u))  # distance to the nearest rounding boundary
    windows = []
    stats["skipped_turns"] = 0
    for c in range(chans):
        nz = np.flatnonzero(d[:, c])
        if nz.size < 2:
            continue
        sg = d[nz, c]
        turn = np.flatnonzero(sg[1:] != sg[:-1])  # the direction changes between diff nz[i] and nz[i + 1]
        for i in turn:
            j0, j1 = int(nz[i]), int(nz[i + 1]) + 1
            k = codes[j0:j1 + 1, c]
            spread = float(np.abs(np.diff(u[j0:j1 + 1, c])).sum())
            if np.all(k == k[0]) and float(room[j0:j1 + 1, c].min()) > spread + 1e-6:
                stats["skipped_turns"] += 1
                continue
            windows.append((c, int(pts[j0, c]), int(pts[j1, c])))
    covered: list[list[tuple[int, int]]] = [[] for _ in range(chans)]
    total = sum(b - a + 1 for _, a, b in windows)
    if total > MAX_WINDOW_POINTS:
        raise GapforgeError(f"{ev.where}: the function changes direction {len(windows)} times over the "
                            f"accumulator range ({total} accumulators to evaluate exhaustively)")
    stats["window_points"] = int(total)
    if windows:  # one evaluation of every window's accumulators
        wc = np.concatenate([np.full(b - a + 1, c, dtype=np.int64) for c, a, b in windows])
        wa = np.concatenate([np.arange(a, b + 1, dtype=np.int64) for _, a, b in windows])
        wk = ev.at(wc, wa, pts[0])
        seg = np.concatenate([np.full(b - a + 1, i) for i, (_, a, b) in enumerate(windows)])
        ch = np.flatnonzero((wk[1:] != wk[:-1]) & (seg[1:] == seg[:-1])) + 1
        for i in ch.tolist():
            found[int(wc[i])][int(wa[i])] = int(wk[i])
        for c, a, b in windows:
            covered[c].append((a, b))

    starts = [np.asarray(sorted(w), dtype=np.int64).reshape(-1, 2) for w in covered]

    def inside(c, a, b):  # [a, b] within one window of channel c (windows run from sample to sample)
        w = starts[c]
        i = int(np.searchsorted(w[:, 0], a, side="right")) - 1
        return i >= 0 and b <= w[i, 1]

    # monotone stretches: bisect every sample interval whose end codes differ
    ci, ji = np.nonzero(codes[1:].T != codes[:-1].T)
    pend = [(c, int(pts[jj, c]), int(pts[jj + 1, c]), int(codes[jj, c]), int(codes[jj + 1, c]))
            for c, jj in zip(ci, ji) if not inside(c, int(pts[jj, c]), int(pts[jj + 1, c]))]
    while pend:
        done = [p for p in pend if p[2] - p[1] == 1]
        for c, _, b, _, kb in done:
            found[c][b] = kb
        pend = [p for p in pend if p[2] - p[1] > 1]
        if not pend:
            break
        arr = np.asarray([(c, a, b) for c, a, b, _, _ in pend], dtype=np.int64)
        mid = (arr[:, 1] + arr[:, 2]) // 2
        km = ev.at(arr[:, 0], mid, pts[0])
        stats["bisections"] += len(pend)
        nxt = []
        for (c, a, b, ka, kb), m, k in zip(pend, mid.tolist(), km.tolist()):
            if ka != k:
                nxt.append((c, a, m, ka, k))
            if k != kb:
                nxt.append((c, m, b, k, kb))
        pend = nxt
    thr, cod = [], []
    for c in range(chans):
        ts = sorted(found[c])
        thr.append(np.asarray(ts, dtype=np.int64))
        cod.append(np.asarray([int(codes[0, c])] + [found[c][t] for t in ts], dtype=np.int64))
    return thr, cod, stats


def emit_thresholds(ctx, pend, proxy, qp, base: str, shape: list[int], observed) -> ir.TensorInfo:
    """The quantizer ``proxy`` (parameters ``qp``) applied to ``pend.fn`` of the accumulator ``pend.source``."""
    acc = pend.source
    where = f"quantizer '{base}'"
    rng = reachable_range(ctx, acc)
    if rng is None:
        ctx.fail(f"{pend.desc} is applied to the int32 accumulator '{acc.name}', which is not a conv/linear output",
                 hint=f"put a QuantIdentity before the {pend.desc}")
    lo, hi = rng
    ndim = len(shape)
    a_axis = acc.channel_axis
    if a_axis is not None and qp.channel_axis is not None and a_axis % ndim != qp.channel_axis:
        ctx.fail(f"per-channel output scales along axis {qp.channel_axis} of the accumulator '{acc.name}' whose "
                 f"channels are along axis {a_axis}", hint="use a per-tensor output quantizer")
    axis = a_axis % ndim if a_axis is not None else qp.channel_axis
    if axis is None and pend.channelwise:  # one step function per channel of axis 1 (nn.PReLU's slopes)
        axis = 1
    chans = int(shape[axis]) if axis is not None else 1
    sigma = np.asarray(acc.scale_list(chans), dtype=np.float64)
    offset = np.asarray(acc.offset_list(chans), dtype=np.float64)
    if chans == 1:
        lo, hi = lo.min(keepdims=True), hi.max(keepdims=True)
    elif lo.size != chans:
        ctx.fail(f"{lo.size} weight rows for {chans} accumulator channels")
    ev = _Evaluator(pend.fn, proxy, qp, sigma, offset, ndim, axis if axis is not None else 1, where)
    thr, cod, _ = find_steps(ev, lo, hi)
    n = (max(t.size for t in thr) + 4) // 4 * 4 - 1  # n + 1 a multiple of 4 (table_bytes); padded with INT32_MAX
    thresholds = np.full((chans, n), INT32_MAX, dtype=np.int32)
    codes = np.zeros((chans, n + 1), dtype=ir.container_dtype(qp.bit_width, qp.signed))
    for c in range(chans):
        thresholds[c, :thr[c].size] = thr[c]
        codes[c, :cod[c].size] = cod[c]
        codes[c, cod[c].size:] = cod[c][-1]  # padded thresholds (INT32_MAX) are above every reachable acc
    out = ctx.quant_tensor(base, shape, qp)
    params = {"thresholds": ctx.add_param(out.name, "thresholds", thresholds, bit_width=32, signed=True,
                                          narrow_range=False),
              "codes": ctx.add_param(out.name, "codes", codes, bit_width=qp.bit_width, signed=qp.signed,
                                     narrow_range=qp.narrow_range, zero_point=qp.zero_point)}
    ctx.emit("thresholds", [acc], [out], attrs={"function": pend.expr, "channel_axis": axis if chans > 1 else None},
             params=params)
    ctx.record_value(out, observed.value if observed is not None else None)
    return out
