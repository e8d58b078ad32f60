"""Extraction: integers, scales and biases equal Brevitas' own; folding, low bit widths, errors."""

import json
import math
import re

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
import torch.nn as nn
from brevitas.quant import Int32Bias
from brevitas.quant_tensor import IntQuantTensor
from conftest import DEPLOYABLE, REGRESSION, source

from gapforge import ir
from gapforge.errors import GapforgeError
from gapforge.extract import extract
from gapforge.modelsrc import ModelSource


def _layers(net):
    for op in net.ops:
        if op.type in ("conv2d", "linear"):
            yield op


@pytest.mark.parametrize("name", DEPLOYABLE)
def test_weights_scales_and_biases_equal_brevitas(name, extracted):
    net = ir.load(extracted(name))
    model = source(name).model
    checked = 0
    for op in _layers(net):
        layer = model.get_submodule(op.module)
        with torch.no_grad():
            qw = layer.quant_weight()
        ref_int = torch.round(qw.value.double() / qw.scale.double()).numpy()
        # one third of a packed in-projection (QuantMultiheadAttention): the rows [r0, r1) of the weight
        rows = re.search(r" rows (\d+):(\d+)$", op.source or "")
        r0, r1 = (int(rows.group(1)), int(rows.group(2))) if rows else (0, ref_int.shape[0])
        ref_int = ref_int[r0:r1]
        w = net.param(op, "weight")
        if w.ndim == 4 and ref_int.ndim == 3:  # QuantConv1d: stored as the map of height 1
            assert w.shape[2] == 1
            w = w[:, :, 0]
        assert np.array_equal(w.astype(np.float64), ref_int), op.name
        info = op.params["weight"]
        ref_scale = qw.scale.reshape(-1).double().tolist()
        if len(ref_scale) > 1:
            ref_scale = ref_scale[r0:r1]
        ours = info.scale if isinstance(info.scale, list) else [info.scale]
        assert ours == (ref_scale if len(ref_scale) > 1 else ref_scale[:1]), op.name
        assert info.bit_width == int(qw.bit_width) and w.dtype == np.int8
        if "bias" in op.params:
            x = net.tensors[op.inputs[0]]
            s = torch.tensor(x.scale, dtype=torch.float32)
            qx = IntQuantTensor(torch.zeros(x.shape), s.reshape((1, -1, 1, 1) if x.per_channel else ()),
                                torch.tensor(0.0), torch.tensor(float(x.bit_width)), x.signed, False)
            with torch.no_grad():
                qb = layer.bias_quant(layer.bias, qx, qw)
            ref_b = torch.round(qb.value.double() / qb.scale.double().reshape(-1)).numpy()[r0:r1]
            b = net.param(op, "bias").astype(np.float64)
            small = np.abs(ref_b) < 2**24  # Brevitas' float32 value is exact below 2^24
            assert np.array_equal(b[small], ref_b[small]), op.name
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("name", DEPLOYABLE)
def test_activation_scales_equal_quantizer_state(name, extracted):
    """Every requantize output carries exactly its Brevitas quantizer's calibrated parameters."""
    net = ir.load(extracted(name))
    model = source(name).model
    n = 0
    for op in net.ops:
        if op.type not in ("quantize", "requantize") or op.module is None:
            continue
        mod = model.get_submodule(op.module)
        if op.name.endswith(".input_quant"):
            proxy = mod.input_quant
        elif op.name.endswith(".output_quant"):
            proxy = mod.output_quant
        else:
            proxy = mod.act_quant
        t = net.tensors[op.outputs[0]]
        with torch.no_grad():
            ref = proxy.scale().reshape(-1).double().tolist()
        assert t.scale_list(len(ref)) == ref, op.name
        assert t.bit_width == int(proxy.bit_width()) and t.signed == bool(proxy.is_signed)
        assert t.zero_point == int(proxy.zero_point()) and t.narrow_range == bool(proxy.is_narrow_range)
        n += 1
    assert n > 0


@pytest.mark.parametrize("name", REGRESSION)
def test_file_is_schema_valid_and_topological(name, extracted):
    d = extracted(name)
    doc = json.loads((d / "network_info.json").read_text())
    ir.validate(doc)
    net = ir.load(d)
    seen = set(net.inputs)
    for op in net.ops:
        assert all(t in seen for t in op.inputs)
        seen.update(op.outputs)
    assert all(o in seen for o in net.outputs)


def test_low_bit_widths_are_kept(extracted):
    net = ir.load(extracted("lowbit_cnn"))
    widths = {t.bit_width for t in net.tensors.values() if t.kind == "quant"}
    assert {2, 4, 8} <= widths
    for t in net.tensors.values():
        if t.kind == "quant":
            assert t.dtype == ("int8" if t.signed else "uint8")
    wbits = {op.params["weight"].bit_width for op in _layers(net)}
    assert 4 in wbits
    for op in _layers(net):
        info = op.params["weight"]
        w = net.param(op, "weight")
        lo, hi = ir.int_range(info.bit_width, info.signed, info.narrow_range)
        assert w.min() >= lo and w.max() <= hi


def test_power_of_two_scales(extracted):
    net = ir.load(extracted("pot_cnn"))
    for t in net.tensors.values():
        if t.kind == "quant":
            for s in t.scale_list(1 if not t.per_channel else len(t.scale)):
                assert math.frexp(s)[0] == 0.5, (t.name, s)


def test_per_channel_weight_scales(extracted):
    net = ir.load(extracted("per_channel_cnn"))
    for op in _layers(net):
        info = op.params["weight"]
        assert isinstance(info.scale, list) and len(info.scale) == info.shape[0] and info.channel_axis == 0
        assert net.tensors[op.outputs[0]].per_channel


class _BN(nn.Module):
    def __init__(self, float_bias: bool):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(2, 3, 3, padding=1, bias=float_bias)
        self.bn = nn.BatchNorm2d(3)
        self.act = qnn.QuantReLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(self.q(x))))


def _calibrated_bn(float_bias: bool):
    torch.manual_seed(1)
    m = _BN(float_bias)
    with torch.no_grad():
        m.bn.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3]))
        m.bn.running_var.copy_(torch.tensor([0.5, 2.0, 1.5]))
        m.bn.weight.copy_(torch.tensor([1.5, -0.5, 0.0]))  # a negative and a zero gamma
        m.bn.bias.copy_(torch.tensor([0.05, 0.2, -0.1]))
    from brevitas.graph.calibrate import calibration_mode
    with torch.no_grad(), calibration_mode(m):
        for _ in range(3):
            m(torch.randn(8, 2, 6, 6))
    return m.eval()


@pytest.mark.parametrize("float_bias", [False, True])
def test_batchnorm_is_folded_into_the_accumulator(float_bias):
    m = _calibrated_bn(float_bias)
    net = extract(ModelSource("bn", "inline", m, (torch.randn(1, 2, 6, 6),), None))
    conv = next(op for op in net.ops if op.type == "conv2d")
    assert conv.folded == ["bn"]
    acc = net.tensors[conv.outputs[0]]
    s_in = net.tensors[conv.inputs[0]].scale
    with torch.no_grad():
        s_w = float(m.conv.quant_weight().scale)
    bn = m.bn
    a = (bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)).numpy()
    bias = m.conv.bias.detach().double().numpy() if float_bias else np.zeros(3)
    a, rm, rb = a, bn.running_mean.double().numpy(), bn.bias.detach().double().numpy()
    assert np.allclose(acc.scale, a * s_in * s_w, rtol=1e-12, atol=0)
    assert np.allclose(acc.offset, a * (bias - rm) + rb,
                       rtol=1e-12, atol=1e-15)
    assert acc.scale[1] < 0 and acc.scale[2] == 0  # signs carried by the scale, weights untouched
    assert "bias" not in conv.params  # float bias lives in the offset, not on an int32 grid
    assert not any(op.type == "batchnorm" for op in net.ops)


def test_batchnorm_elsewhere_is_an_error_naming_the_module():
    class BadBN(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = qnn.QuantIdentity(return_quant_tensor=True)
            self.block = nn.Sequential(qnn.QuantReLU(return_quant_tensor=True), nn.BatchNorm2d(1))

        def forward(self, x):
            return self.block(self.q(x))

    m = BadBN()
    from brevitas.graph.calibrate import calibration_mode
    with torch.no_grad(), calibration_mode(m):
        m(torch.randn(4, 1, 4, 4))
    with pytest.raises(GapforgeError, match=r"module 'block.1' \(BatchNorm2d\): BatchNorm can only be folded"):
        extract(ModelSource("badbn", "inline", m.eval(), (torch.randn(1, 1, 4, 4),), None))


def test_uncalibrated_quantizer_is_an_error():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = qnn.QuantIdentity(return_quant_tensor=True)
            self.fc = qnn.QuantLinear(4, 2, bias=True, bias_quant=Int32Bias)

        def forward(self, x):
            return self.fc(self.q(x))

    with pytest.raises(GapforgeError, match=r"module 'q' \(QuantIdentity\).*never calibrated"):
        extract(ModelSource("raw", "inline", Net().eval(), (torch.randn(1, 4),), None))


def test_unsupported_module_error_names_its_path():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = qnn.QuantIdentity(return_quant_tensor=True)
            self.features = nn.Sequential(nn.Conv2d(1, 2, 3))

        def forward(self, x):
            return self.features(self.q(x))

    m = Net()
    from brevitas.graph.calibrate import calibration_mode
    with torch.no_grad(), calibration_mode(m):
        m(torch.randn(2, 1, 5, 5))
    with pytest.raises(GapforgeError) as err:
        extract(ModelSource("bad", "inline", m.eval(), (torch.randn(1, 1, 5, 5),), None))
    assert err.value.one_line() == ("module 'features.0' (Conv2d): unsupported module class Conv2d "
                                    "(hint: float convolution: replace torch.nn.Conv2d by brevitas.nn.QuantConv2d)")
