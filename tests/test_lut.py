"""Float functions as tables (lut) and products of activations (mul): equal to Brevitas.

* every function x every input bit width (2..8) x signed/unsigned x per-tensor/per-channel: the
  table built at extraction, applied to every input code, equals Brevitas' own output for those
  codes computed in a differently shaped (spatial, shuffled) tensor;
* every way of writing them (nn modules, F.* functions, Tensor methods, QuantSigmoid / QuantTanh /
  QuantHardTanh, compositions, x * f(x), x * constant, gating products with zero points) extracts
  and matches Brevitas on every layer (teacher-forced, outside near-ties);
* the unsupported variants get a one-line verdict with a hint from the checker.
"""

from __future__ import annotations

import functools
import types

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from brevitas.graph.calibrate import calibration_mode
from brevitas.quant import Int8ActPerTensorFloat, Int32Bias, Uint8ActPerTensorFloat

import atomic_ops
from gapforge import fidelity, ir
from gapforge.brevitas_quant import act_quant_params
from gapforge.compat import check_model
from gapforge.extract import extract
from gapforge.modelsrc import ModelSource
from gapforge.ops.lut import build_table, input_base
from tools.int8_inference import INT8InferenceEngine

C = 3
FUNCTIONS = {
    "gelu": nn.GELU(),
    "gelu_tanh": functools.partial(F.gelu, approximate="tanh"),
    "silu": nn.SiLU(),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "hardswish": F.hardswish,
    "hardsigmoid": nn.Hardsigmoid(),
    "leaky_relu_001": nn.LeakyReLU(),
    "leaky_relu_03": functools.partial(F.leaky_relu, negative_slope=0.3),
    "elu": nn.ELU(),
    "softplus": nn.Softplus(),
    "softplus_beta2": functools.partial(F.softplus, beta=2.0, threshold=5.0),
    "exp": torch.exp,
    "relu6": nn.ReLU6(),
    "hardtanh": functools.partial(F.hardtanh, min_val=-0.5, max_val=0.5),
    "mish": nn.Mish(),
}


def _per_channel(quant):
    return dict(act_quant=quant, scaling_per_output_channel=True, per_channel_broadcastable_shape=(1, C, 1, 1),
                scaling_stats_permute_dims=(1, 0, 2, 3))


class _Branches(nn.Module):
    """One input quantizer, then every function with its own output quantizer."""

    def __init__(self, bits: int, signed: bool, per_channel: bool):
        super().__init__()
        base = Int8ActPerTensorFloat if signed else Uint8ActPerTensorFloat
        kw = _per_channel(base) if per_channel else dict(act_quant=base)
        self.q_in = qnn.QuantIdentity(bit_width=bits, return_quant_tensor=False, **kw)
        # outputs per channel when the input is per tensor (and vice versa): both table cases occur
        out_kw = dict(act_quant=Int8ActPerTensorFloat) if per_channel else _per_channel(Int8ActPerTensorFloat)
        self.q_out = nn.ModuleDict({k: qnn.QuantIdentity(return_quant_tensor=False, **out_kw) for k in FUNCTIONS})

    def forward(self, x):
        x = self.q_in(x)
        return {k: self.q_out[k](fn(x)) for k, fn in FUNCTIONS.items()}


def _tensor_info(proxy, shape) -> ir.TensorInfo:
    qp = act_quant_params(proxy, len(shape), "test")
    return ir.TensorInfo("x", "quant", list(shape), ir.container_dtype(qp.bit_width, qp.signed), scale=qp.scale,
                         zero_point=qp.zero_point, bit_width=qp.bit_width, signed=qp.signed,
                         narrow_range=qp.narrow_range, channel_axis=qp.channel_axis)


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
@pytest.mark.parametrize("bits", range(2, 9))
def test_table_equals_brevitas_on_every_code(bits, signed, per_channel):
    """Every function of FUNCTIONS at this input bit width / signedness / scale granularity."""
    torch.manual_seed(bits * 7 + signed)
    model = _Branches(bits, signed, per_channel)
    with torch.no_grad(), calibration_mode(model):
        model(torch.randn(16, C, 6, 6) * 2 + 0.5)
    model.eval()
    src = _tensor_info(model.q_in.act_quant, (1, C, 1, 1))
    lo, hi = src.qrange()
    # every code, several times, at shuffled positions of a [2, C, 16, 16] tensor
    g = torch.Generator().manual_seed(bits)
    codes = torch.arange(lo, hi + 1).repeat(2 * 256 // (hi - lo + 1) + 1)[: 2 * 256]
    codes = codes[torch.randperm(codes.numel(), generator=g)].reshape(2, 1, 16, 16).expand(2, C, 16, 16)
    scale = torch.tensor(src.scale_list(C), dtype=torch.float32).reshape(1, C, 1, 1)
    x = (codes.float() - src.zero_point) * scale
    with torch.no_grad():
        xq = model.q_in(x)
        outs = model(x)
    q_back = torch.round(xq.double() / scale.double()) + src.zero_point
    assert torch.equal(q_back.long(), codes.long())  # the input really holds every code
    bad = {}
    for name, fn in FUNCTIONS.items():
        q_out = model.q_out[name]
        out_qp = act_quant_params(q_out.act_quant, 4, "test")
        s_out = torch.tensor(out_qp.scale if out_qp.channel_axis is not None else [out_qp.scale],
                             dtype=torch.float64).reshape(1, -1, 1, 1)
        theirs = (torch.round(outs[name].double() / s_out) + out_qp.zero_point).long().numpy()
        table = build_table(src, fn, q_out.act_quant, out_qp, 4, "test")
        assert table.shape == (C, 1 << bits)  # input or output per channel: one table per channel
        ours = atomic_ops.get("lut")(codes.numpy(), table, input_base(src), 1)
        if not np.array_equal(ours, theirs):
            bad[name] = int((ours != theirs).sum())
    assert not bad, f"tables differ from Brevitas (elements of {codes.numel()}): {bad}"


class _Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


# -- every way of writing them, through extraction and the INT8 engine -------------------------
class Forms(nn.Module):
    """Functions as modules, F.*, torch.* and Tensor methods, compositions, products."""

    def __init__(self):
        super().__init__()
        self.q0 = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(16, 12, bias=True, bias_quant=Int32Bias, output_quant=Int8ActPerTensorFloat,
                                  return_quant_tensor=False)
        self.gelu = nn.GELU(approximate="tanh")
        self.q1 = qnn.QuantIdentity(return_quant_tensor=False)
        self.relu_q = qnn.QuantReLU(return_quant_tensor=False)
        self.q2 = qnn.QuantIdentity(bit_width=4, return_quant_tensor=False)
        self.sig = qnn.QuantSigmoid(return_quant_tensor=False)
        self.tanh = qnn.QuantTanh(return_quant_tensor=True)
        self.q3 = qnn.QuantIdentity(return_quant_tensor=True)
        self.q4 = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.hard = qnn.QuantHardTanh(max_val=0.5, min_val=-0.5, return_quant_tensor=True)
        self.q5 = qnn.QuantIdentity(return_quant_tensor=True)
        self.q6 = qnn.QuantIdentity(return_quant_tensor=True)
        self.head = qnn.QuantLinear(12, 4, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.fc(self.q0(x).flatten(1))           # plain tensor out of a quantizer
        a = self.q1(torch.sigmoid(self.gelu(x)))     # composition: one table
        b = self.relu_q(F.elu(a))                    # QuantReLU after a float function: one table
        c = self.q2(a * a.sigmoid())                 # x * f(x) (Tensor method), 4-bit output
        d = self.sig(c)                              # QuantSigmoid on a quantized tensor
        e = self.tanh(b * 0.75)                      # x * constant, then QuantTanh
        f = self.q4(self.q3(d) * e)                  # product of two quantized tensors (zero points 0)
        g = self.hard(f)                             # QuantHardTanh: a quantizer
        h = self.q6(torch.exp(self.q5(-g)))          # negation, then exp of a QuantTensor
        return self.head(h)


class Gate(nn.Module):
    """A gate with zero points and broadcasting: [N, T, F] * [N, T, 1], both asymmetric uint8."""

    def __init__(self):
        super().__init__()
        from brevitas.quant import ShiftedUint8ActPerTensorFloat as Asym

        self.q0 = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4, 6, bias=True, bias_quant=Int32Bias, output_quant=Int8ActPerTensorFloat,
                                  return_quant_tensor=True)
        self.fc_g = qnn.QuantLinear(6, 1, bias=True, bias_quant=Int32Bias, output_quant=Int8ActPerTensorFloat,
                                    return_quant_tensor=True)
        # plain tensors: Brevitas refuses QuantTensor products with non-zero zero points
        self.qg = qnn.QuantIdentity(act_quant=Asym, return_quant_tensor=False)
        self.qx = qnn.QuantIdentity(act_quant=Asym, return_quant_tensor=False)
        self.qm = qnn.QuantIdentity(return_quant_tensor=True)
        self.head = qnn.QuantLinear(6, 3, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.fc(self.q0(x))                           # [N, T, 6]
        g = self.qg(torch.tanh(self.fc_g(x)))             # [N, T, 1]
        return self.head(self.qm(self.qx(x) * g))


def _source(model: nn.Module, shape, name: str) -> ModelSource:
    torch.manual_seed(0)
    with torch.no_grad(), calibration_mode(model):
        for _ in range(4):
            model(torch.randn(*shape))
    model.eval()
    return ModelSource(name, f"<{name}>", model, (torch.randn(*shape),), types.ModuleType(name))


def test_every_form_matches_brevitas_on_every_layer():
    torch.manual_seed(3)
    src = _source(Forms(), (8, 1, 4, 4), "forms")
    net = extract(src)
    kinds = [op.type for op in net.ops]
    assert kinds.count("lut") >= 6 and kinds.count("mul") >= 1, kinds
    eng = INT8InferenceEngine(net)
    x = torch.randn(64, 1, 4, 4).numpy()
    rep = fidelity.check(src.model, eng, x, "forms")
    assert rep.outside_window == 0 and rep.passed, [lf for lf in rep.teacher_forced if lf.mismatches]
    assert all(lf.mismatches == 0 for lf in rep.teacher_forced if lf.kind == "lut")
    assert rep.top1_agreement == 1.0


def test_gating_product_with_zero_points_and_broadcast():
    torch.manual_seed(4)
    src = _source(Gate(), (8, 5, 4), "gate")
    net = extract(src)
    mul = next(op for op in net.ops if op.type == "mul")
    a, b = (net.tensors[t] for t in mul.inputs)
    assert a.zero_point != 0 and b.zero_point != 0 and a.shape != b.shape
    eng = INT8InferenceEngine(net)
    rep = fidelity.check(src.model, eng, torch.randn(64, 5, 4).numpy(), "gate")
    assert rep.outside_window == 0 and rep.passed and rep.top1_agreement == 1.0


# -- checker verdicts ---------------------------------------------------------------------------
class _Bad(nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.q2 = qnn.QuantIdentity(return_quant_tensor=False)
        self.q3 = qnn.QuantIdentity(return_quant_tensor=False)
        self.fc = qnn.QuantLinear(16, 8, bias=True, bias_quant=Int32Bias, return_quant_tensor=False)
        self.fc2 = qnn.QuantLinear(8, 4, bias=False)

    def forward(self, x):
        h = self.fc(self.q(x).flatten(1))  # int32 accumulator (no output quantizer)
        if self.kind == "acc":  # a function of a sum of activations (a function of a conv/linear output deploys)
            return self.fc2(self.q2(F.gelu(self.q3(h) + self.q3(h))))
        y = self.q2(h)
        if self.kind == "no_quantizer":
            return self.fc2(torch.tanh(y))
        if self.kind == "fn_times_act":
            return self.fc2(self.q3(torch.sigmoid(y) * self.q3(h)))
        if self.kind == "maximum":
            return self.fc2(self.q3(torch.maximum(y, self.q3(h))))
        raise AssertionError(self.kind)


@pytest.mark.parametrize("kind, text, hint", [
    ("acc", "not a conv/linear output", "QuantIdentity before the gelu"),
    ("no_quantizer", "without a quantizer", "QuantIdentity right after"),
    ("fn_times_act", "multiplies the float result", "QuantIdentity right after"),
    ("maximum", "unsupported operation maximum", "no table form"),
])
def test_unsupported_variants_are_named_with_a_hint(kind, text, hint):
    src = _source(_Bad(kind), (4, 1, 4, 4), kind)
    rep = check_model(src)
    assert not rep.deployable
    bad = [d for d in rep.items if d.status == "unsupported"]
    assert any(text in d.message and hint in (d.hint or "") for d in bad), [(d.message, d.hint) for d in bad]
    assert all("\n" not in d.message and "Traceback" not in d.message for d in bad)


def test_function_of_the_network_input_is_refused():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = qnn.QuantIdentity(return_quant_tensor=True)
            self.fc = qnn.QuantLinear(16, 4, bias=False)

        def forward(self, x):
            return self.fc(self.q(torch.sigmoid(x).flatten(1)))

    rep = check_model(_source(M(), (4, 1, 4, 4), "fn_input"))
    bad = [d for d in rep.items if d.status == "unsupported"]
    assert any("unquantized network input" in d.message and "quantize the input" in (d.hint or "") for d in bad)
