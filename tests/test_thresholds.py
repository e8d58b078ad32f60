"""A float function of a conv/linear int32 accumulator, then a quantizer: the thresholds op.

* ``find_steps`` (sampling, direction-change windows, bisection) gives the same code as evaluating the
  golden definition quantizer(f(fl32(s * acc + offset))) on every accumulator of ranges of 10^6 values,
  for monotone and non-monotone functions (GELU, SiLU, hardswish, Mish), per channel;
* user-style models (QuantLinear -> QuantSigmoid / QuantTanh / QuantHardSwish with input_quant None,
  QuantConv2d -> nn.ReLU6 / GELU / Hardtanh / sigmoid -> QuantIdentity / QuantReLU, QuantConv1d ->
  QuantSigmoid / MaxPool1d -> SiLU, per-channel weight scales, with and without bias, Int32Bias) extract to a thresholds op and equal Brevitas on every layer
  (teacher-forced: the thresholds layers with no mismatch at all) and free-running;
* the generated C is bit-exact with the golden on host and gap9-emu (with several tiles);
* the C packing of the tables and the reference agree on a hand-made case.
"""

from __future__ import annotations

import functools
import json

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from brevitas.graph.calibrate import calibration_mode
from brevitas.quant import Int8WeightPerChannelFloat, Int32Bias, Uint8ActPerTensorFloat
from test_conv1d import _exact, _src
from test_pool1d import needs_rv32
from torch import nn

import atomic_ops
from codegen.generate import generate_project
from gapforge import fidelity, inputs
from gapforge.brevitas_quant import act_quant_params
from gapforge.compat import check_model
from gapforge.extract import model_inputs, write_network
from gapforge.ops import thresholds as th
from tools.generate_golden_outputs import generate
from tools.int8_inference import INT8InferenceEngine
from tools.run_generated import run_project

FUNCTIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "gelu": nn.GELU(),
    "gelu_tanh": functools.partial(F.gelu, approximate="tanh"),
    "silu": F.silu,
    "hardswish": F.hardswish,
    "mish": F.mish,
    "relu6": nn.ReLU6(),
    "hardtanh": nn.Hardtanh(-1.0, 1.0),
    "softplus": F.softplus,
}


def _quantizer(signed: bool, spread: float):
    q = qnn.QuantIdentity(return_quant_tensor=False) if signed else \
        qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=False)
    torch.manual_seed(0)
    with torch.no_grad(), calibration_mode(q):
        q(torch.randn(4096) * spread + (0 if signed else spread))
    q.eval()
    return q.act_quant


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_steps_equal_every_accumulator(name):
    """Two channels (per-channel scale and offset) over 10^6 accumulators each: the thresholds give the
    golden code of every one of them."""
    proxy = _quantizer(signed=name not in ("relu6", "softplus", "sigmoid"), spread=1.5)
    qp = act_quant_params(proxy, 2, "test")
    sigma = np.array([1.3e-5, 2.9e-5])
    offset = np.array([0.05, -0.3])
    lo = np.array([-600_000, -250_000], dtype=np.int64)
    hi = np.array([500_000, 750_000], dtype=np.int64)
    ev = th._Evaluator(FUNCTIONS[name], proxy, qp, sigma, offset, 2, 1, "test")
    thr, codes, stats = th.find_steps(ev, lo, hi)
    assert stats["samples"] == th.SAMPLES + 1  # the sampled path, not the exhaustive one
    for c in range(2):
        accs = np.arange(lo[c], hi[c] + 1, dtype=np.int64)
        grid = np.broadcast_to(lo, (accs.size, 2)).copy()
        grid[:, c] = accs
        golden = ev(grid)[0][:, c]
        assert np.all(np.diff(thr[c]) > 0)
        assert thr[c].size == int((golden[1:] != golden[:-1]).sum())  # every step found, none invented
        ours = atomic_ops.get("thresholds")(accs, thr[c][None], codes[c][None])
        assert np.array_equal(ours, golden), (name, c, int((ours != golden).sum()))


def test_wide_range_gelu_skips_the_tail_wobble_and_stays_exact():
    """8 channels of 2 x 10^7 accumulators (a wide conv): the float32 wobble of GELU's flat negative tail turns
    thousands of times, which the search skips (no other code can hide there); around the minimum and over a
    stretch of the tail every accumulator still gets its golden code, except where the float32 function itself
    wobbles across a rounding tie (a near-tie within 1e-6 steps)."""
    proxy = _quantizer(signed=True, spread=1.5)
    qp = act_quant_params(proxy, 4, "test")
    rng = np.random.default_rng(0)
    sigma, offset = rng.uniform(2e-7, 6e-7, 8), rng.normal(0, 0.3, 8)
    lo, hi = -rng.integers(8_000_000, 12_000_000, 8), rng.integers(8_000_000, 12_000_000, 8)
    ev = th._Evaluator(nn.GELU(), proxy, qp, sigma, offset, 4, 1, "test")
    thr, codes, stats = th.find_steps(ev, lo, hi)
    assert stats["skipped_turns"] > 1000
    for c in (0, 5):
        at_min = int((-0.7518 - offset[c]) / sigma[c])
        tail = int((-4.0 - offset[c]) / sigma[c])
        for a0 in (at_min - 300_000, tail - 300_000):
            accs = np.arange(max(a0, lo[c]), a0 + 600_000, dtype=np.int64)
            grid = np.broadcast_to(lo, (accs.size, 8)).copy()
            grid[:, c] = accs
            golden, pre = ev(grid)
            golden, u = golden[:, c], pre[:, c] / float(qp.scale)
            bad = atomic_ops.get("thresholds")(accs, thr[c][None], codes[c][None]) != golden
            # only where GELU's float32 value wobbles across a rounding tie itself (measured: -3.49999992 steps
            # between two accumulators of code -3: code -4, -3, -4), a near-tie of the function, not of the search
            assert np.all(np.abs(np.abs(u[bad] - np.floor(u[bad])) - 0.5) < 1e-6), (c, accs[bad][:5], u[bad][:5])
            assert bad.sum() <= 2


def test_reference_and_packed_tables():
    thr = np.array([[-5, 0, 7], [2, 3, th.INT32_MAX]], dtype=np.int32)
    codes = np.array([[-3, -1, 4, 9], [0, 1, 2, 2]], dtype=np.int8)
    x = np.array([[[-6, -5], [2, 3]], [[6, 7], [100, -9]]])  # [2, 2(channels), 2]
    y = atomic_ops.get("thresholds")(x, thr, codes, 1)
    assert y.tolist() == [[[-3, -1], [1, 2]], [[4, 9], [2, 0]]]
    packed = th.pack_tables(thr, codes)
    assert packed.shape == (2, th.table_bytes(3)) == (2, 16)
    assert packed[0, :12].view("<i4").tolist() == [-5, 0, 7] and packed[0, 12:].view(np.int8).tolist() == [-3, -1, 4, 9]


# -- user-style models ------------------------------------------------------------------------
class LinearAct(nn.Module):
    """QuantIdentity -> QuantLinear (no output quantizer) -> act -> QuantLinear."""

    def __init__(self, act, bias=True, per_channel=False, bias_quant=None):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        kw = dict(weight_quant=Int8WeightPerChannelFloat) if per_channel else {}
        if bias_quant is not None:
            kw["bias_quant"] = bias_quant
        self.fc = qnn.QuantLinear(16, 8, bias=bias, **kw)
        self.act = act
        self.head = qnn.QuantLinear(8, 4, bias=True)

    def forward(self, x):
        return self.head(self.act(self.fc(self.q(x.flatten(1)))))


class ConvAct(nn.Module):
    """QuantIdentity -> QuantConv2d (no output quantizer) -> f -> quantizer -> flatten -> QuantLinear."""

    def __init__(self, f, out, bias=True, per_channel=False):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        kw = dict(weight_quant=Int8WeightPerChannelFloat) if per_channel else {}
        self.conv = qnn.QuantConv2d(3, 6, 3, padding=1, bias=bias, **kw)
        self.f = f
        self.out = out
        self.head = qnn.QuantLinear(6 * 16, 4, bias=True)

    def forward(self, x):
        return self.head(self.out(self.f(self.conv(self.q(x)))).flatten(1))


class Conv1dAct(nn.Module):
    """QuantConv1d (per-channel weights) -> QuantSigmoid, or -> MaxPool1d -> SiLU -> QuantIdentity; QuantLinear."""

    def __init__(self, pool: bool):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv = qnn.QuantConv1d(4, 6, 3, padding=1, bias=True, weight_quant=Int8WeightPerChannelFloat)
        self.pool = nn.MaxPool1d(2) if pool else None
        self.act = nn.SiLU() if pool else qnn.QuantSigmoid(return_quant_tensor=True)
        self.out = qnn.QuantIdentity(return_quant_tensor=True) if pool else nn.Identity()
        self.head = qnn.QuantLinear(6 * (8 if pool else 16), 3)

    def forward(self, x):
        y = self.conv(self.q(x))
        if self.pool is not None:  # the max of accumulators: the conv's bounds
            y = self.pool(y)
        return self.head(self.out(self.act(y)).flatten(1))


def _qid():
    return qnn.QuantIdentity(return_quant_tensor=True)


MODELS = {
    "linear_quantsigmoid": (lambda: LinearAct(qnn.QuantSigmoid(return_quant_tensor=True)), (16,), "sigmoid(x)"),
    "linear_quanttanh_pc_nobias": (lambda: LinearAct(qnn.QuantTanh(return_quant_tensor=True), bias=False,
                                                     per_channel=True), (16,), "tanh(x)"),
    "linear_quanthardswish_int32bias": (lambda: LinearAct(qnn.QuantHardSwish(return_quant_tensor=True),
                                                          bias_quant=Int32Bias), (16,), "hardswish(x)"),
    "conv_relu6_quantidentity": (lambda: ConvAct(nn.ReLU6(), _qid()), (3, 4, 4), "relu6(x)"),
    "conv_gelu_pc_quantidentity": (lambda: ConvAct(nn.GELU(), _qid(), per_channel=True), (3, 4, 4), "gelu(x)"),
    "conv_hardtanh_nobias": (lambda: ConvAct(nn.Hardtanh(-1, 1), _qid(), bias=False), (3, 4, 4), "hardtanh(x)"),
    "conv_sigmoid_quantrelu_pc": (lambda: ConvAct(torch.sigmoid, qnn.QuantReLU(return_quant_tensor=True),
                                                  per_channel=True), (3, 4, 4), "relu(sigmoid(x))"),
    "conv1d_quantsigmoid": (lambda: Conv1dAct(pool=False), (4, 16), "sigmoid(x)"),
    "conv1d_maxpool_silu": (lambda: Conv1dAct(pool=True), (4, 16), "silu(x)"),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = {}

    def get(name):
        if name not in cache:
            build, shape, _ = MODELS[name]
            torch.manual_seed(0)
            src = _src(build(), shape, name=name)
            tmp = tmp_path_factory.mktemp(name)
            cache[name] = (src, _exact(src, tmp, shape), tmp, shape)  # 0 unexplained, every layer compared
        return cache[name]
    return get


@pytest.mark.parametrize("name", list(MODELS))
def test_model_extracts_to_thresholds_equal_to_brevitas(name, built):
    src, net, _, shape = built(name)
    ops = [op for op in net.ops if op.type == "thresholds"]
    assert [op.attrs["function"] for op in ops] == [MODELS[name][2]]
    thr = net.param(ops[0], "thresholds")
    codes = net.param(ops[0], "codes")
    assert thr.dtype == np.int32 and (thr.shape[1] + 1) % 4 == 0 and codes.shape == (thr.shape[0], thr.shape[1] + 1)
    assert np.all(np.diff(thr.astype(np.int64), axis=1) >= 0)
    assert 1 < (thr < th.INT32_MAX).sum(axis=1).max() <= 255  # at most one step per output code and piece
    assert check_model(src).deployable
    # every thresholds layer equals Brevitas on every element (teacher-forced), over 256 more inputs
    torch.manual_seed(5)
    x = torch.randn(256, *shape).numpy() * 1.5
    rep = fidelity.check(src.model, INT8InferenceEngine(net), x, name)
    assert rep.unexplained == 0 and rep.top1_agreement == 1.0, fidelity.format_report(rep)
    layers = [lf for lf in rep.teacher_forced if lf.kind == "thresholds"]
    assert len(layers) == 1 and layers[0].compared and layers[0].mismatches == 0, layers


def test_brevitas_float32_accumulation_across_a_step_is_explained(built):
    """Over 2048 inputs Brevitas' float32 conv output lands across a GELU step once (measured: 38442.994
    accumulator units for the integer 38443): counted as float32-explained, nothing unexplained."""
    src, net, _, shape = built("conv_gelu_pc_quantidentity")
    torch.manual_seed(7)
    x = torch.randn(2048, *shape).numpy() * 1.5
    rep = fidelity.check(src.model, INT8InferenceEngine(net), x, "gelu2048")
    (lf,) = [lf for lf in rep.teacher_forced if lf.kind == "thresholds"]
    assert lf.mismatches >= 1 and lf.float32_explained == lf.mismatches and lf.max_abs_diff == 1, lf
    assert rep.unexplained == 0 and rep.passed


def test_quantrelu_max_val_after_conv_stays_a_requantize(built, tmp_path):
    """qnn.QuantReLU(max_val=6.0) on a conv output is ReLU + its quantizer (fused into the conv), not a table."""
    src = _src(ConvAct(nn.Identity(), qnn.QuantReLU(max_val=6.0, return_quant_tensor=True)), (3, 4, 4), name="mv")
    net = _exact(src, tmp_path, (3, 4, 4))
    assert [op.type for op in net.ops if op.type in ("thresholds", "lut")] == []


@pytest.mark.parametrize("name, target, l1", [
    ("linear_quantsigmoid", "host", None),
    ("conv_gelu_pc_quantidentity", "host", None),
    ("conv_relu6_quantidentity", "host", None),
    pytest.param("linear_quantsigmoid", "gap9", None, marks=needs_rv32),
    pytest.param("conv_gelu_pc_quantidentity", "gap9", 2048, marks=needs_rv32),
])
def test_deploys_bit_exact(name, target, l1, built, tmp_path):
    src, net, tmp, _ = built(name)
    d = write_network(net, tmp_path / "net", model_inputs(src))
    x, labels, what = inputs.select(d, None, 1)
    generate(d, x, labels, what, progress=False)
    proj = tmp_path / target
    generate_project(d, proj, target, 1, **({"tile_l1_budget": l1} if l1 else {}))
    passed, res = run_project(proj, "host" if target == "host" else "gap9-emu", timeout=600)
    plan = json.loads((proj / "plan.json").read_text())
    assert passed, res["reasons"][:5]
    assert res["totals"]["compared"] == len(plan["steps"]) and res["totals"]["mismatches"] == 0
    assert [s["kernel"] for s in plan["steps"] if s["kind"] == "thresholds"] == ["gf_thresholds"]
    if target == "gap9":
        assert res["plan_mismatches"] == []
        layer = next(la for la in plan["gap9"]["layers"] if la["kind"] == "thresholds")
        assert layer["tiling"] == "eltwise"
        if l1:
            assert layer["tiles"] > 1, layer
