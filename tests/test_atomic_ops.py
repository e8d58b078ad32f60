"""atomic_ops implement the integer contract: checked against exact rational arithmetic and torch."""

from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import atomic_ops
from atomic_ops._fixedpoint import quantize_multipliers, quantize_offset, rne_shift

I64 = st.integers(min_value=-(2**62), max_value=2**62)


def _rne_fraction(fr: Fraction) -> int:
    f = fr.numerator // fr.denominator
    rem = fr - f
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and f % 2 == 1):
        return f + 1
    return f


@given(v=I64, sh=st.integers(min_value=1, max_value=62))
@settings(max_examples=2000, deadline=None)
def test_rne_shift_is_round_half_even(v, sh):
    assert int(rne_shift(np.int64(v), sh)) == _rne_fraction(Fraction(v, 2**sh))


def test_rne_shift_ties():
    v = np.array([5, 7, -5, -7, 6, -6, 3, -3], dtype=np.int64)  # x / 2
    assert rne_shift(v, 1).tolist() == [2, 4, -2, -4, 3, -3, 2, -2]


@given(st.lists(st.floats(min_value=2**-30, max_value=2**29, allow_nan=False), min_size=1, max_size=4),
       st.lists(st.booleans(), min_size=4, max_size=4))
@settings(max_examples=500, deadline=None)
def test_quantize_multipliers_keeps_31_bits(vals, signs):
    M = np.array([[v * (-1 if s else 1) for v, s in zip(vals, signs)]]).T  # (sources, 1)
    m, sh = quantize_multipliers(M)
    assert 1 <= sh[0] <= 62 and np.all(np.abs(m) < 2**31)
    peak = np.abs(M).max()
    assert np.abs(m).max() >= 2**30  # the largest multiplier uses the full mantissa
    assert np.all(np.abs(m / 2.0 ** sh[0] - M) <= 2.0 ** -(int(sh[0]) + 1) * (1 + 1e-12))
    assert abs(np.abs(m).max() / 2.0 ** sh[0] - peak) <= peak * 2**-31


def test_quantize_multipliers_range_errors():
    with pytest.raises(ValueError, match="too large"):
        quantize_multipliers(np.array([[2.0**31]]))
    with pytest.raises(ValueError, match="too small"):
        quantize_multipliers(np.array([[2.0**-40]]))
    m, sh = quantize_multipliers(np.zeros((1, 2)))
    assert m.tolist() == [[0, 0]] and sh.tolist() == [31, 31]


@given(st.integers(min_value=0, max_value=2**32))
@settings(max_examples=50, deadline=None)
def test_requantize_equals_exact_rounding(seed):
    """Integer requantization equals clamp(rne(sum M q + B) + zp) except within 1e-6 of a tie."""
    rng = np.random.default_rng(seed)
    ch = int(rng.integers(1, 5))
    M = rng.uniform(2**-20, 2**-4, size=(2, ch)) * rng.choice([-1, 1], size=(2, ch))
    B = rng.uniform(-300, 300, size=ch)
    m, sh = quantize_multipliers(M)
    o = quantize_offset(B, sh)
    qa = rng.integers(-(2**24), 2**24, size=(3, ch, 5))
    qb = rng.integers(-128, 128, size=(3, ch, 5))
    zp, lo, hi = int(rng.integers(-3, 4)), -128, 127
    y = atomic_ops.get("requantize")([qa, qb], m, sh, o, zp, lo, hi, 1)
    for idx in np.ndindex(*qa.shape):
        c = idx[1]
        exact = (Fraction(float(M[0, c])) * int(qa[idx]) + Fraction(float(M[1, c])) * int(qb[idx])
                 + Fraction(float(B[c])))
        frac = exact - (exact.numerator // exact.denominator)
        if abs(frac - Fraction(1, 2)) < Fraction(1, 10**6):
            continue
        ref = min(max(_rne_fraction(exact) + zp, lo), hi)
        assert int(y[idx]) == ref, (idx, float(exact))


def _torch_conv(x, w, b, stride, padding, dilation, groups):
    t, left, bot, r = padding
    xt = F.pad(torch.from_numpy(x).double(), (left, r, t, bot))
    y = F.conv2d(xt, torch.from_numpy(w).double(), None if b is None else torch.from_numpy(b).double(),
                 stride=stride, dilation=dilation, groups=groups)
    return y.numpy()


@pytest.mark.parametrize("c, o, k, stride, padding, dilation, groups", [
    (3, 5, 3, (1, 1), [1, 1, 1, 1], (1, 1), 1),
    (4, 6, 5, (2, 2), [2, 1, 0, 2], (1, 1), 2),
    (8, 8, 3, (2, 1), [1, 1, 1, 1], (1, 1), 8),  # depthwise
    (4, 8, 3, (1, 1), [0, 0, 0, 0], (1, 1), 4),  # depthwise, multiplier 2
    (3, 4, 3, (1, 1), [2, 2, 2, 2], (2, 2), 1),  # dilation
    (16, 7, 1, (2, 2), [0, 0, 0, 0], (1, 1), 1),
])
def test_conv2d_matches_exact_convolution(c, o, k, stride, padding, dilation, groups):
    rng = np.random.default_rng(c * 100 + o)
    x = rng.integers(-128, 128, size=(2, c, 9, 11))
    w = rng.integers(-127, 128, size=(o, c // groups, k, k))
    b = rng.integers(-(2**20), 2**20, size=o)
    ours = atomic_ops.get("conv2d")(x, w, b, stride, padding, dilation, groups)
    ref = _torch_conv(x, w, b, stride, padding, dilation, groups)
    assert ours.dtype == np.int64 and np.array_equal(ours, ref.astype(np.int64))


def test_linear_matches_exact():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(4, 300))
    w = rng.integers(-128, 128, size=(10, 300))
    b = rng.integers(-1000, 1000, size=10)
    assert np.array_equal(atomic_ops.get("linear")(x, w, b), x @ w.T + b)


@pytest.mark.parametrize("c", [64, 128])  # bound below / above 2^24: float32 / float64 BLAS
def test_conv2d_and_linear_exact_on_both_sides_of_the_float32_limit(c):
    from atomic_ops._gemm import FLOAT32_EXACT, exact_float_dtype

    rng = np.random.default_rng(c)
    x = np.full((1, c, 5, 5), 127, dtype=np.int64)
    x[0, 0, 2, 2] = 2  # odd sums above 2^24, where float32 would drop the last bit
    w = np.full((3, c, 3, 3), 127, dtype=np.int64)
    w[:, 1:4, 0, 0] = rng.integers(-128, 128, size=(3, 3))
    big = c * 9 * 127 * 127 >= FLOAT32_EXACT
    assert exact_float_dtype(x, w) == (np.float64 if big else np.float32)
    ours = atomic_ops.get("conv2d")(x, w, None, (1, 1), [0, 0, 0, 0], (1, 1), 1)
    cols = np.lib.stride_tricks.sliding_window_view(x[0], (3, 3), axis=(1, 2))  # c, 3, 3, 3, 3
    ref = np.einsum("chwij,ocij->ohw", cols.astype(object), w.astype(object))
    assert np.array_equal(ours[0], ref.astype(np.int64))
    xl, wl = x[:, :, 1:4, 1:4].reshape(1, -1), w.reshape(3, -1)
    assert np.array_equal(atomic_ops.get("linear")(xl, wl, None), (xl.astype(object) @ wl.T.astype(object)).astype(np.int64))
    # read-only weights (as the engine's) have their GEMM copies cached: same results, both paths
    w_ro = w.copy()
    w_ro.setflags(write=False)
    small = np.ones_like(x)
    for xi in (x, small, x):
        ours = atomic_ops.get("conv2d")(xi, w_ro, None, (1, 1), [0, 0, 0, 0], (1, 1), 1)
        ref = np.einsum("chwij,ocij->ohw", np.lib.stride_tricks.sliding_window_view(xi[0], (3, 3), axis=(1, 2))
                        .astype(object), w.astype(object))
        assert np.array_equal(ours[0], ref.astype(np.int64))


@pytest.mark.parametrize("k, s, p, ceil", [((2, 2), (2, 2), 0, False), ((3, 3), (2, 2), 1, True),
                                           ((3, 2), (1, 2), 1, False), ((2, 2), (2, 2), 0, True)])
def test_maxpool2d_matches_torch(k, s, p, ceil):
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, size=(2, 3, 7, 9))
    ref = F.max_pool2d(torch.from_numpy(x).double(), k, s, p, ceil_mode=ceil).numpy()
    ours = atomic_ops.get("maxpool2d")(x, k, s, [p, p, p, p], ceil)
    assert np.array_equal(ours, ref.astype(np.int64))


@pytest.mark.parametrize("shape, factors", [((2, 3, 4, 5), (2, 2)), ((1, 2, 3, 3), (3, 1)), ((1, 4, 7), (3,)),
                                           ((1, 1, 2, 2), (1, 4))])
def test_upsample_matches_torch_nearest(shape, factors):
    rng = np.random.default_rng(3)
    x = rng.integers(-(2**20), 2**20, size=shape).astype(np.int32)
    ref = F.interpolate(torch.from_numpy(x).double(), scale_factor=factors, mode="nearest").numpy()
    ours = atomic_ops.get("upsample")(x, factors)
    assert ours.dtype == np.int32 and np.array_equal(ours, ref.astype(np.int32))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_edge_pad_matches_torch_and_its_shape_rule(mode):
    """Each padded axis on its own, both axes of a map in turn (the last first, as gapforge/ops/edge_pad.py emits
    them) and the shape rule against F.pad, up to the widest padding PyTorch allows; wider is refused by both."""
    from atomic_ops.edge_pad import max_pad
    from gapforge.ops import registry
    from gapforge.ops._shapes import ShapeError

    rule = registry().ir_ops["edge_pad"].infer_shapes
    rng = np.random.default_rng(4)
    for _ in range(150):
        h, w = (int(v) for v in rng.integers(1, 7, 2))
        pads = [int(v) for v in rng.integers(0, 8, 4)]
        x = rng.integers(-(2**20), 2**20, size=(2, 3, h, w)).astype(np.int32)
        ok = all(p <= max_pad(n, mode) for p, n in zip(pads, (w, w, h, h)))
        try:
            ref = F.pad(torch.from_numpy(x).double(), pads, mode=mode).numpy()
        except RuntimeError:
            ref = None
        assert (ref is not None) == ok, (mode, h, w, pads)
        if not ok:
            axis, before, after = (3, *pads[:2]) if max(pads[:2]) > max_pad(w, mode) else (2, *pads[2:])
            with pytest.raises(ShapeError):
                rule([list(x.shape)], {"axis": axis, "before": before, "after": after, "mode": mode}, {})
            continue
        y = atomic_ops.get("edge_pad")(x, 3, pads[0], pads[1], mode)
        attrs = {"axis": 3, "before": pads[0], "after": pads[1], "mode": mode}
        assert rule([list(x.shape)], attrs, {}) == [list(y.shape)]
        y = atomic_ops.get("edge_pad")(y, 2, pads[2], pads[3], mode)
        assert y.dtype == np.int32 and np.array_equal(y, ref.astype(np.int32))


def test_avgpool2d_is_the_window_sum():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, size=(1, 4, 8, 8))
    ref = F.avg_pool2d(torch.from_numpy(x).double(), 3, 2, 1, count_include_pad=True).numpy() * 9
    ours = atomic_ops.get("avgpool2d")(x, (3, 3), (2, 2), [1, 1, 1, 1])
    assert np.array_equal(ours, np.rint(ref).astype(np.int64))


@pytest.mark.parametrize("rounding, kind", [("half_even", "RoundTo8bit"), ("floor", "TruncTo8bit")])
@pytest.mark.parametrize("bits, k", [(8, 2), (4, 4), (8, 7)])
def test_trunc_avgpool2d_bit_exact_with_brevitas(rounding, kind, bits, k):
    import brevitas.nn as qnn
    import brevitas.quant as bq

    torch.manual_seed(0)
    q = qnn.QuantReLU(bit_width=bits, return_quant_tensor=True)
    from brevitas.graph.calibrate import calibration_mode
    with torch.no_grad(), calibration_mode(q):
        q(torch.rand(8, 3, 14, 14) * 4)
    pool = qnn.TruncAvgPool2d(kernel_size=k, stride=k, trunc_quant=getattr(bq, kind)).eval()
    q.eval()
    with torch.no_grad():
        xq = q(torch.rand(4, 3, 14, 14) * 4)
        yq = pool(xq)
    x_int = torch.round(xq.value / xq.scale).long().numpy()
    y_int = torch.round(yq.value / yq.scale).long().numpy()
    shift = int(np.ceil(np.log2((2**bits - 1) * k * k))) - 8
    ours = atomic_ops.get("trunc_avgpool2d")(x_int, (k, k), (k, k), [0, 0, 0, 0], shift, rounding, 0, 255)
    assert np.array_equal(ours, y_int)
    assert float(yq.scale) == pytest.approx(float(xq.scale) * 2.0**shift / (k * k), rel=1e-7)


def test_quantize_is_bit_exact_with_brevitas():
    import brevitas.nn as qnn
    from brevitas.graph.calibrate import calibration_mode

    torch.manual_seed(3)
    q = qnn.QuantIdentity(return_quant_tensor=True)
    with torch.no_grad(), calibration_mode(q):
        q(torch.randn(64, 1000))
    q.eval()
    x = torch.randn(64, 1000) * 1.3
    with torch.no_grad():
        y = q(x)
    ref = torch.round(y.value / y.scale).long().numpy()
    ours = atomic_ops.get("quantize")(x.numpy(), float(y.scale), 0, -128, 127)
    assert np.array_equal(ours, ref)


def test_registry_finds_every_op_module():
    names = set(atomic_ops.registry())
    assert {"conv2d", "linear", "requantize", "quantize", "maxpool2d", "avgpool2d", "trunc_avgpool2d",
            "add", "concat", "relu", "reshape", "permute"} <= names
