"""RMSNorm, GroupNorm and products with constant tensors (RoPE): the integer contract against float64
and Brevitas, the forms users write (captured and deployed exactly), and the checker's verdicts.

* Property tests (hypothesis): random rows, scales, zero points and quantizers; the integer result
  equals the exactly rounded float64 value except within the documented bound of a tie, and Brevitas'
  (torch float32 rms_norm / group_norm / q * cos + rotate_half(q) * sin, then a QuantIdentity) except
  within 1e-4 of a tie.
* Forms: nn.RMSNorm, F.rms_norm, the hand-written RMSNorm variants, nn.GroupNorm / F.group_norm on
  4-D and 3-D maps, RoPE with register_buffer tables: extracted, run by the INT8 engine and compared
  with Brevitas layer by layer (teacher-forced, 0 mismatches outside near-ties).
* Checker: each unsupported variant gets a one-line reason with a fix hint.
"""

from __future__ import annotations

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from brevitas.quant import Int32Bias
from conftest import calibrated
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_reductions import _codes, _compare, brevitas_quantizer

from atomic_ops import groupnorm as gn
from atomic_ops import layernorm as ln
from atomic_ops import lincomb as lc
from atomic_ops import rmsnorm as rn
from gapforge import fidelity
from gapforge.compat import check_model
from gapforge.extract import extract
from gapforge.modelsrc import ModelSource
from tools.int8_inference import INT8InferenceEngine

RANGES = {"s8": (-128, 127), "u8": (0, 255), "s4": (-8, 7)}


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data(), n=st.integers(1, 96), rows=st.integers(1, 4), kind=st.sampled_from(["s8", "u8", "s4"]),
       log_s=st.floats(-3.0, 0.0), log_eps=st.floats(-7.0, -1.0), affine=st.booleans(), zin=st.integers(-3, 3),
       out_signed=st.booleans(), out_max=st.floats(0.5, 8.0))
def test_rmsnorm_matches_float64_and_brevitas(data, n, rows, kind, log_s, log_eps, affine, zin, out_signed, out_max):
    lo_in, hi_in = RANGES[kind]
    zin = zin + (128 if kind == "u8" else 0)
    s_in = float(np.float32(10.0**log_s))
    eps = 10.0**log_eps
    x = _codes(data, rows, n, lo_in, hi_in)
    gamma = np.random.default_rng(n).normal(1.0, 0.4, n).astype(np.float32) if affine else np.ones(n, np.float32)
    q = brevitas_quantizer(out_signed, out_max)
    s_out = float(q.act_quant.scale())
    lo, hi = (-128, 127) if out_signed else (0, 255)
    p = rn.prepare(s_in, (lo_in, hi_in), zin, eps, gamma, s_out, 0, lo, hi)
    assert p.bound < 1e-5
    ours = rn.rmsnorm(x, p)
    with torch.no_grad():
        value = (torch.tensor(x - zin, dtype=torch.float32)) * torch.tensor(s_in, dtype=torch.float32)
        y = F.rms_norm(value, (n,), torch.from_numpy(gamma) if affine else None, eps)
        theirs = q(y).int().numpy()
    _compare(ours, theirs, rn.exact(x, n, s_in, zin, eps, gamma, s_out), (y / q.act_quant.scale()).numpy(),
             p.bound, lo, hi, 0)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(data=st.data(), c=st.sampled_from([1, 2, 4, 6, 8]), split=st.sampled_from(["one", "pairs", "channels"]), spatial=st.integers(1, 12),
       batch=st.integers(1, 2), kind=st.sampled_from(["s8", "u8"]), log_s=st.floats(-3.0, 0.0),
       affine=st.booleans(), out_signed=st.booleans(), out_max=st.floats(0.5, 8.0))
def test_groupnorm_matches_float64_and_brevitas(data, c, split, spatial, batch, kind, log_s, affine, out_signed,
                                                out_max):
    groups = {"one": 1, "pairs": max(1, c // 2), "channels": c}[split]
    assume(c // groups * spatial > 1)  # torch refuses groups of one element (ours gives the bias)
    lo_in, hi_in = RANGES[kind]
    s_in = float(np.float32(10.0**log_s))
    x = _codes(data, batch * groups, c // groups * spatial, lo_in, hi_in)
    rng = np.random.default_rng(c * 100 + spatial)
    gamma = rng.normal(1.0, 0.4, c).astype(np.float32) if affine else np.ones(c, np.float32)
    beta = rng.normal(0.0, 0.4, c).astype(np.float32) if affine else np.zeros(c, np.float32)
    q = brevitas_quantizer(out_signed, out_max)
    s_out = float(q.act_quant.scale())
    lo, hi = (-128, 127) if out_signed else (0, 255)
    p = gn.prepare(s_in, (lo_in, hi_in), groups, spatial, 1e-5, gamma, beta, s_out, 0, lo, hi)
    assert p.bound < 1e-5
    ours = gn.groupnorm(x, p)
    with torch.no_grad():
        value = torch.tensor(x, dtype=torch.float32).reshape(batch, c, spatial) * torch.tensor(s_in)
        y = F.group_norm(value, groups, torch.from_numpy(gamma) if affine else None,
                         torch.from_numpy(beta) if affine else None, 1e-5)
        theirs = q(y).int().numpy().reshape(x.shape)
    _compare(ours, theirs, gn.exact(x, s_in, groups, spatial, 1e-5, gamma, beta, s_out),
             (y / q.act_quant.scale()).numpy().reshape(x.shape), p.bound, lo, hi, 0)


def rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat((-x[..., d:], x[..., :d]), dim=-1)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(data=st.data(), half=st.integers(1, 16), t=st.integers(1, 8), heads=st.integers(1, 3),
       kind=st.sampled_from(["s8", "u8"]), log_s=st.floats(-3.0, 0.0), zin=st.integers(-3, 3),
       out_signed=st.booleans(), out_max=st.floats(0.5, 8.0))
def test_rope_matches_float64_and_brevitas(data, half, t, heads, kind, log_s, zin, out_signed, out_max):
    d = 2 * half
    lo_in, hi_in = RANGES[kind]
    zin = zin + (128 if kind == "u8" else 0)
    s_in = float(np.float32(10.0**log_s))
    x = _codes(data, heads * t, d, lo_in, hi_in)
    ang = torch.arange(t, dtype=torch.float32)[:, None] * torch.linspace(0.1, 1.5, d)[None, :]
    cos, sin = ang.cos(), ang.sin()
    sign = np.where(np.arange(d) < half, -1.0, 1.0)
    gather = np.stack([np.arange(d), np.concatenate([np.arange(half, d), np.arange(half)])])
    coef = np.stack([cos.double().numpy(), sin.double().numpy() * sign])
    q = brevitas_quantizer(out_signed, out_max)
    s_out = float(q.act_quant.scale())
    lo, hi = (-128, 127) if out_signed else (0, 255)
    p = lc.prepare(s_in, (lo_in, hi_in), zin, gather, coef, s_out, 0, lo, hi)
    assert p.bound < 1e-5 and p.period == t
    ours = lc.lincomb(x, p)
    with torch.no_grad():
        v = (torch.tensor(x - zin, dtype=torch.float32) * torch.tensor(s_in)).reshape(heads, t, d)
        y = (v * cos + rotate_half(v) * sin).reshape(x.shape)
        theirs = q(y).int().numpy()
    _compare(ours, theirs, lc.exact(x, s_in, zin, gather, coef, s_out), (y / q.act_quant.scale()).numpy(),
             p.bound, lo, hi, 0)


def test_shared_core_edge_cases():
    # a row at the zero point gives 0 (RMSNorm: no bias); a constant LayerNorm row gives the bias
    p = rn.prepare(0.1, (-128, 127), 5, 1e-6, np.ones(4), 0.05, 0, -128, 127)
    assert rn.rmsnorm(np.array([[5, 5, 5, 5], [6, 4, 6, 4]]), p).tolist() == [[0, 0, 0, 0], [20, -20, 20, -20]]
    p = gn.prepare(0.1, (-128, 127), 2, 2, 1e-5, np.ones(4), np.array([0.5, -0.25, 0.3, 1.0]), 0.1, 0, -128, 127)
    assert gn.groupnorm(np.array([[7, 7, 7, 7], [1, 1, 1, 1]]), p).tolist() == [[5, 5, -2, -2], [3, 3, 10, 10]]
    # the row index selects the group (the device's tiles start at any row)
    assert ln.norm_rows(np.array([[1, 1, 1, 1]]), p, row0=1).tolist() == [[3, 3, 10, 10]]
    with pytest.raises(ValueError, match="exceed 2"):
        lc.prepare(1.0, (-128, 127), 0, np.zeros((1, 2), np.int64), np.full((1, 1, 2), 2.0**40), 1.0, 0, -128, 127)


# -- the forms users write: capture, lowering, engine == Brevitas ---------------------------------------
class RMSNormHand(nn.Module):
    def __init__(self, dim, variant):
        super().__init__()
        self.variant = variant
        self.weight = nn.Parameter(torch.linspace(0.5, 1.5, dim))

    def forward(self, x):
        if self.variant == "rsqrt":
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight
        if self.variant == "sqrt":
            return x / torch.sqrt(torch.mean(x ** 2, dim=-1, keepdim=True) + 1e-5)
        if self.variant == "two_axes":
            return self.weight.view(2, 4) * (x * (x.pow(2).mean(dim=(-2, -1), keepdim=True) + 1e-5).rsqrt())
        raise AssertionError(self.variant)


class Forms(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.q = qnn.QuantIdentity()  # plain tensors: Brevitas' QuantTensor has no pow and no [..., a:b]
        self.qt = qnn.QuantIdentity(return_quant_tensor=True)
        self.q2 = qnn.QuantIdentity()
        self.out = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(8, 8, bias=True, bias_quant=Int32Bias)
        self.rms = nn.RMSNorm(8)
        self.rms2 = nn.RMSNorm([2, 4], elementwise_affine=False, eps=1e-3)
        self.hand_rsqrt, self.hand_sqrt = RMSNormHand(8, "rsqrt"), RMSNormHand(8, "sqrt")
        self.hand_two = RMSNormHand(8, "two_axes")
        self.gn = nn.GroupNorm(2, 4)
        self.gn_c = nn.GroupNorm(4, 4, affine=False)
        ang = torch.arange(2, dtype=torch.float32)[:, None] * torch.tensor([0.3, 1.1, 0.3, 1.1])
        self.register_buffer("cos", ang.cos())
        self.register_buffer("sin", ang.sin())
        self.body = body

    def forward(self, x):
        return self.body(self, x)


FORMS = {
    "rmsnorm_module": lambda m, x: m.out(m.rms(m.q(x))),
    "rmsnorm_two_axes": lambda m, x: m.out(m.rms2(m.q(x).view(-1, 2, 4))),
    "rms_norm_function": lambda m, x: m.out(F.rms_norm(m.q(x).view(-1, 2, 4), (4,), None, 1e-4)),
    "rmsnorm_hand_rsqrt": lambda m, x: m.out(m.hand_rsqrt(m.q(x))),
    "rmsnorm_hand_sqrt": lambda m, x: m.out(m.hand_sqrt(m.q(x))),
    "rmsnorm_hand_two_axes": lambda m, x: m.out(m.hand_two(m.q(x).view(-1, 2, 4))),
    "rmsnorm_relu": lambda m, x: m.out(F.relu(m.rms(m.q2(m.fc(m.qt(x)))))),
    "groupnorm_4d": lambda m, x: m.out(m.gn(m.q(x).view(-1, 4, 1, 2))),
    "groupnorm_per_channel_3d": lambda m, x: m.out(m.gn_c(m.q(x).view(-1, 4, 2))),
    "group_norm_function": lambda m, x: m.out(F.group_norm(m.q(x).view(-1, 2, 2, 2), 1, eps=1e-3)),
    "rope": lambda m, x: m.out((lambda v: v * m.cos + rotate_half(v) * m.sin)(m.q(x).view(-1, 2, 4))),
    "rope_by_hand_sum": lambda m, x: m.out((lambda v: m.sin * rotate_half(v) + m.cos * v)(m.q(x).view(-1, 2, 4))),
}


def _calibrated(body):
    return calibrated(lambda: Forms(body), (1, 8))


@pytest.mark.parametrize("form", list(FORMS))
def test_forms_are_deployed_exactly(form):
    model = _calibrated(FORMS[form])
    src = ModelSource(form, "test_norms.py", model, (torch.randn(1, 8),), None)
    net = extract(src)
    kinds = {op.type for op in net.ops}
    assert kinds & {"rmsnorm", "groupnorm", "lincomb"}, kinds
    assert not kinds & {"lut", "mul", "concat"}, kinds  # the whole chain became one op
    engine = INT8InferenceEngine(net)
    x = torch.randn(200, 8).numpy()
    rep = fidelity.check(model, engine, x, form)
    assert rep.outside_window == 0 and rep.unexplained == 0, fidelity.format_report(rep)
    assert rep.top1_agreement == 1.0
    assert sum(lf.elements for lf in rep.teacher_forced if lf.kind.split("+")[0] in kinds) >= 1600


# -- checker verdicts ------------------------------------------------------------------------------
VARIANTS = {
    "rmsnorm_batch_axis": (lambda m, x: m.out(F.rms_norm(m.q(x), (1, 8))), "normalizes the batch axis",
                           "normalize the feature"),
    "rmsnorm_accumulator": (lambda m, x: m.out(m.rms(m.fc(m.qt(x)))), "int32 accumulator", "QuantIdentity"),
    "rmsnorm_hand_wrong_axis": (lambda m, x: m.out((lambda v: v * torch.rsqrt(v.pow(2).mean(1, keepdim=True) + 1e-6))(
        m.q(x).view(-1, 2, 4))), "pow of an activation is supported only", "torch.nn.RMSNorm"),
    "rmsnorm_no_quantizer": (lambda m, x: m.out(m.rms(m.q(x)).view(-1, 2, 4) @ m.q(x).view(-1, 4, 2)),
                             "reshapes an unquantized float result", "quantize before"),
    "groupnorm_accumulator": (lambda m, x: m.out(m.gn(m.fc(m.qt(x)).view(-1, 4, 2))), "int32 accumulator",
                              "QuantIdentity"),
    "groupnorm_2d": (lambda m, x: m.out(F.group_norm(m.q(x).view(-1, 8), 2)), "(N, C, H, W) or (N, C, T)",
                     "LayerNorm / RMSNorm"),
    "rope_no_quantizer": (lambda m, x: m.out((lambda v: v * m.cos + rotate_half(v) * m.sin)(
        m.q(x).view(-1, 2, 4)) @ m.q(x).view(-1, 4, 2)), "unquantized float result without an 8-bit encoding", "QuantIdentity"),
    "rope_to_relu": (lambda m, x: m.out(F.relu(m.q(x) * torch.linspace(-1, 1, 8)).view(-1, 2, 4)),
                     "products with constant tensors are deployable only", "QuantIdentity after"),
    "rope_accumulator": (lambda m, x: m.out(m.fc(m.qt(x)).view(-1, 2, 4) * m.cos), "'view', an int32 accumulator", "QuantIdentity after"),
    "rope_batch_constant": (lambda m, x: m.out(m.q(x).view(-1, 2, 4) * torch.ones(3, 2, 4)),
                            "broadcasts the activation", "must not add axes"),
    "swiglu_without_quantizer": (lambda m, x: m.out(F.silu(m.q(x)) * m.q2(x)), "float result of silu",
                                 "QuantIdentity right after"),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_unsupported_variants_are_named_with_a_hint(variant):
    body, text, hint = VARIANTS[variant]
    src = ModelSource(variant, "<test>", _calibrated(body), (torch.randn(1, 8),), None)
    rep = check_model(src)
    assert not rep.deployable
    bad = [d for d in rep.items if d.status == "unsupported"]
    assert any(text in d.message and hint in (d.hint or "") for d in bad), [(d.message, d.hint) for d in bad]
    assert all("\n" not in d.message for d in bad)


# -- GAP9: several row tiles per layer (each core's first row selects its groups / coefficient rows) ---------
@pytest.mark.parametrize("name, kinds, l1", [("groupnorm_cnn", {"groupnorm"}, 1000), ("llama_block", {"lincomb"}, 1300)])
def test_gap9_norm_rows_multi_tile(name, kinds, l1, golden, tmp_path):
    from test_reductions import _gap9_or_skip

    _assert_exact, _gap9 = _gap9_or_skip()
    g, passed, res, proj = _gap9(golden, name, tmp_path, l1=l1, l2=1536 * 1024)
    plan = _assert_exact(passed, res, proj)
    rows = [r for r in plan["gap9"]["layers"] if r["tiling"] == "rows"]
    assert rows and all(r["l1_bytes"] <= l1 and r["resident"] == ["p"] for r in rows)
    multi = {r["kind"].split("+")[0] for r in rows if r["tiles"] > 1}
    assert kinds <= multi, rows
