"""Fusion planner: which tensors exist, integer requantization parameters, refusals."""

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
import torch.nn as nn
from brevitas.graph.calibrate import calibration_mode
from brevitas.quant import Int32Bias
from conftest import REGRESSION

from gapforge import ir
from gapforge.extract import extract
from gapforge.modelsrc import ModelSource
from gapforge.plan import PlanError, build_plan
from tools.int8_inference import INT8InferenceEngine


def _net(model, shape):
    with torch.no_grad(), calibration_mode(model):
        for _ in range(2):
            model(torch.rand(4, *shape[1:]) * 2 - 0.5)
    return extract(ModelSource("t", "inline", model.eval(), (torch.rand(*shape),), None))


def test_simple_cnn_steps(extracted):
    plan = build_plan(ir.load(extracted("simple_cnn")))
    assert [(s.kind, s.relu) for s in plan.steps] == [
        ("quantize", False), ("conv2d", True), ("maxpool2d", False), ("conv2d", True),
        ("maxpool2d", False), ("reshape", False), ("linear", False)]
    conv = plan.steps[1]
    assert conv.ops == ["conv1", "relu1.relu", "relu1"] and conv.output == "relu1"
    assert conv.requant.lo == 0 and conv.requant.hi == 255
    assert plan.steps[-1].requant is None  # logits stay int32 accumulators


def test_implicit_add_of_different_scales_is_one_two_source_requantize(extracted):
    net = ir.load(extracted("implicit_add"))
    plan = build_plan(net)
    adds = [s for s in plan.steps if s.kind == "add"]
    assert adds and all(s.requant is not None and s.requant.m.shape[0] == 2 for s in adds)
    s = adds[0]
    a, b = (net.tensors[t] for t in s.inputs)
    assert a.scale != b.scale  # really different scales
    out = net.tensors[s.output]
    assert s.requant.M[0, 0] == pytest.approx(a.scale / out.scale, rel=1e-15)
    assert s.requant.M[1, 0] == pytest.approx(b.scale / out.scale, rel=1e-15)
    assert all(net.tensors[t].kind != "real" for t in plan.step_outputs())


@pytest.mark.parametrize("name", REGRESSION)
def test_every_step_output_is_materializable_and_bounded(name, extracted):
    plan = build_plan(ir.load(extracted(name)))
    for s in plan.steps:
        t = plan.tensor(s.output)
        assert t.kind in ("quant", "acc")
        if s.requant is not None:
            rq = s.requant
            assert np.all((rq.sh >= 1) & (rq.sh <= 62)) and np.all(np.abs(rq.m) < 2**31)
            assert np.all(np.abs(rq.o) < 2**62)
        if s.acc_bound is not None:
            assert s.acc_bound.max() < 2**31


def test_bn_offsets_go_into_the_requant_offset(extracted):
    net = ir.load(extracted("bn_cnn"))
    plan = build_plan(net)
    step = next(s for s in plan.steps if s.kind == "conv2d" and net.tensors[net.op_by_name(s.main_op).outputs[0]].offset)
    acc = net.tensors[net.op_by_name(step.main_op).outputs[0]]
    out = net.tensors[step.output]
    B = np.asarray(acc.offset) / out.scale
    assert np.allclose(step.requant.o / 2.0**step.requant.sh, B, rtol=0, atol=2.0**-30)


class _ConvPool(nn.Module):
    """conv -> maxpool -> activation quantizer: max pooling of an accumulator."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(1, 2, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.pool = nn.MaxPool2d(2)
        self.act = qnn.QuantReLU(return_quant_tensor=True)

    def forward(self, x):
        return self.act(self.pool(self.conv(self.q(x))))


def test_maxpool_of_accumulator_is_an_int32_step():
    """conv -> MaxPool2d -> QuantReLU: the conv writes its int32 accumulator, pooled, then requantized."""
    net = _net(_ConvPool(), (1, 1, 4, 4))
    plan = build_plan(net)
    assert [(s.kind, s.relu) for s in plan.steps] == [("quantize", False), ("conv2d", False), ("maxpool2d", False),
                                                      ("requantize", True)]
    conv, pool, act = plan.steps[1:]
    assert conv.requant is None and net.tensors[conv.output].dtype == "int32"
    assert net.tensors[pool.output].dtype == "int32" and act.inputs == [pool.output]
    x = np.random.default_rng(0).uniform(-0.5, 1.5, (3, 1, 4, 4)).astype(np.float32)
    _, ints = INT8InferenceEngine(net).forward(x)
    acc = ints[conv.output]
    windows = acc.reshape(3, 2, 2, 2, 2, 2).max(axis=(3, 5))  # 2x2 windows of the 4x4 accumulator
    assert (ints[pool.output] == windows).all()


class _ReluOfAcc(nn.Module):
    """A float ReLU on one accumulator of a sum of two accumulators (no bias: no offset)."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.a = qnn.QuantConv2d(1, 2, 3, padding=1, bias=False)
        self.b = qnn.QuantConv2d(1, 2, 1, bias=False)
        self.act = qnn.QuantReLU(return_quant_tensor=True)

    def forward(self, x):
        x = self.q(x)
        return self.act(torch.relu(self.a(x)) + self.b(x))


def test_relu_of_accumulator_is_max_with_zero():
    net = _net(_ReluOfAcc(), (1, 1, 4, 4))
    plan = build_plan(net)
    relu = next(s for s in plan.steps if s.kind == "relu")
    assert net.tensors[relu.output].kind == "acc" and net.tensors[relu.output].zero_code == 0
    x = np.random.default_rng(1).uniform(-1, 1, (2, 1, 4, 4)).astype(np.float32)
    _, ints = INT8InferenceEngine(net).forward(x)
    assert (ints[relu.output] == np.maximum(ints[relu.inputs[0]], 0)).all() and (ints[relu.inputs[0]] < 0).any()


class _TwoUsers(nn.Module):
    """The real-valued sum of two differently scaled tensors is used twice."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=False)
        self.q4 = qnn.QuantIdentity(bit_width=4, return_quant_tensor=False)
        self.a = qnn.QuantIdentity(return_quant_tensor=True)
        self.b = qnn.QuantIdentity(return_quant_tensor=True)

    def forward(self, x):
        s = self.q(x) + self.q4(x)
        return torch.cat([self.a(s), self.a(s)], 1)


def test_real_tensor_with_two_consumers_is_refused():
    net = _net(_TwoUsers(), (1, 2, 3, 3))
    add = next(op for op in net.ops if op.type == "add")
    assert net.tensors[add.outputs[0]].kind == "real"
    with pytest.raises(PlanError) as err:
        build_plan(net)
    assert "has no integer encoding" in err.value.one_line() and "hint: put a quantizer" in err.value.one_line()


def test_accumulator_overflow_is_refused(extracted):
    net = ir.load(extracted("mlp"))
    op = next(o for o in net.ops if o.type == "linear")
    w = net.param(op, "weight").copy()
    w[:] = 127
    net.arrays[op.params["weight"].file] = w
    big = np.full_like(net.param(op, "bias"), 2**31 - 1)
    net.arrays[op.params["bias"].file] = big
    with pytest.raises(PlanError, match="int32 accumulator can overflow"):
        build_plan(net)


def test_multiplier_out_of_range_is_refused(extracted):
    net = ir.load(extracted("mlp"))
    t = next(t for t in net.tensors.values() if t.kind == "quant" and t.name != net.inputs[0]
             and net.producer_of(t.name).type == "requantize")
    t.scale = 1e-30
    with pytest.raises(PlanError, match="too large"):
        build_plan(net)
