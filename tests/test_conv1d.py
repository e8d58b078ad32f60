"""1-D convolution (QuantConv1d as conv2d over the map of height 1), zero padding folded into the
following convolution, Mamba's pad-and-slice causal convolution, reflect / replicate / circular padding
(edge_pad: modules, F.pad and padding_mode), and the checker's refusals.

Small random models (calibrated, not trained): the INT8 engine must equal Brevitas on every layer
(teacher-forced, outside near-ties) and the extracted conv attrs must be the ones PyTorch applies.
The regression networks kws_conv1d / zeropad2d / dual_input_fusion run the same constructs on host,
rv32 and gap9-emu in the network suites.
"""

import types

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from brevitas.graph.calibrate import calibration_mode
from brevitas.quant import Int8ActPerTensorFloat, Int32Bias, ShiftedUint8ActPerTensorFloat
from conftest import run_tool
from test_user_models import NET_HEAD
from torch import nn

from codegen.gap9.hw import DEFAULT
from codegen.gap9.tiling import tile_step
from gapforge import fidelity, ir
from gapforge.compat import check_model
from gapforge.extract import extract, model_inputs, write_network
from gapforge.modelsrc import ModelSource
from gapforge.ops import registry
from gapforge.plan import build_plan
from tools.int8_inference import INT8InferenceEngine


def _src(model, *shapes, name="m"):
    torch.manual_seed(1)
    model.eval()
    with torch.no_grad(), calibration_mode(model):
        for _ in range(4):
            model(*[torch.randn(8, *s) for s in shapes])
    model.eval()
    ex = tuple(torch.randn(1, *s) for s in shapes)
    return ModelSource(name, __file__, model, ex, types.ModuleType("m"))


def _exact(src, tmp_path, *shapes):
    """Extract, then teacher-forced and free-running fidelity on 16 random inputs; returns the network."""
    net = extract(src)
    d = write_network(net, tmp_path / src.name, model_inputs(src))
    engine = INT8InferenceEngine(d)
    torch.manual_seed(2)
    xs = [torch.randn(16, *s).numpy() for s in shapes]
    from gapforge.inputs import batch_of

    rep = fidelity.check(src.model, engine, batch_of(xs), src.name)
    assert rep.unexplained == 0 and rep.top1_agreement == 1.0, fidelity.format_report(rep)
    assert all(lf.compared for lf in rep.teacher_forced), fidelity.format_report(rep)
    return engine.net


class Conv1dNet(nn.Module):
    def __init__(self, c, o, k, **kw):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv = qnn.QuantConv1d(c, o, k, bias=True, bias_quant=Int32Bias, **kw)
        self.out = qnn.QuantIdentity(return_quant_tensor=True)

    def forward(self, x):
        return self.out(self.conv(self.q(x)))


CONFIGS = [
    dict(c=3, o=5, k=3, padding=1),
    dict(c=4, o=4, k=4, padding="same"),  # even kernel: PyTorch pads 1 left, 2 right
    dict(c=4, o=6, k=3, padding="same", dilation=3),
    dict(c=4, o=8, k=5, stride=3, padding=2),
    dict(c=6, o=6, k=3, groups=6, padding="valid"),  # depthwise
    dict(c=6, o=12, k=3, groups=3, dilation=2, padding=(4,)),  # grouped, int-tuple padding
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_quant_conv1d_is_exact(cfg, tmp_path):
    cfg = dict(cfg)
    c, o, k = cfg.pop("c"), cfg.pop("o"), cfg.pop("k")
    src = _src(Conv1dNet(c, o, k, **cfg), (c, 19))
    net = _exact(src, tmp_path, (c, 19))
    conv = next(op for op in net.ops if op.type == "conv2d")
    m = src.model.conv
    want = F.conv1d(torch.zeros(1, c, 19), m.weight, None, m.stride, m.padding, m.dilation, m.groups).shape
    assert net.tensors[conv.outputs[0]].shape == list(want)
    assert conv.attrs["kernel_size"] == [1, k] and net.param(conv, "weight").shape == (o, c // m.groups, 1, k)


def test_conv1d_shape_rule_matches_pytorch():
    rule = registry().ir_ops["conv2d"].infer_shapes
    rng = np.random.default_rng(0)
    for _ in range(200):
        c, g = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        k, s, d = (int(v) for v in rng.integers(1, 5, 3))
        pl, pr = (int(v) for v in rng.integers(0, 4, 2))
        t = int(rng.integers(1, 30))
        if t + pl + pr < d * (k - 1) + 1:
            continue
        x = torch.zeros(1, c * g, t)
        w = torch.zeros(2 * g, c, k)
        want = list(F.conv1d(F.pad(x, (pl, pr)), w, stride=s, dilation=d, groups=g).shape)
        attrs = {"kernel_size": [1, k], "stride": [1, s], "padding": [0, pl, 0, pr], "dilation": [1, d], "groups": g}
        assert rule([list(x.shape)], attrs, {"weight": [2 * g, c, 1, k]}) == [want]


class CausalPad(nn.Module):
    """The two ways users write a causal convolution: F.pad and nn.ConstantPad1d with zeros on the left."""

    def __init__(self, functional: bool):
        super().__init__()
        self.functional = functional
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.pad = nn.ConstantPad1d((3, 0), 0.0)
        self.conv = qnn.QuantConv1d(4, 4, 4, groups=4, bias=True, bias_quant=Int32Bias)
        self.out = qnn.QuantIdentity(return_quant_tensor=True)

    def forward(self, x):
        x = self.q(x)
        return self.out(self.conv(F.pad(x, (3, 0)) if self.functional else self.pad(x)))


class MambaCausal(nn.Module):
    """Mamba's depthwise causal conv: padding=k-1 on both sides, then the first T outputs."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv1d = qnn.QuantConv1d(4, 4, 4, groups=4, padding=3, bias=True, bias_quant=Int32Bias)
        self.act = qnn.QuantReLU(return_quant_tensor=True)

    def forward(self, x):
        seqlen = x.shape[-1]
        return self.act(self.conv1d(self.q(x))[..., :seqlen])


@pytest.mark.parametrize("model", [CausalPad(True), CausalPad(False), MambaCausal()],
                         ids=["F.pad", "ConstantPad1d", "mamba-slice"])
def test_causal_convolutions_become_left_padding(model, tmp_path):
    net = _exact(_src(model, (4, 11)), tmp_path, (4, 11))
    conv = next(op for op in net.ops if op.type == "conv2d")
    assert conv.attrs["padding"] == [0, 3, 0, 0] and net.tensors[conv.outputs[0]].shape == [1, 4, 11]
    assert [op.type for op in net.ops].count("conv2d") == 1


class Pad2d(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.pad = nn.ZeroPad2d((1, 2, 0, 3))
        self.conv = qnn.QuantConv2d(2, 3, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.relu = qnn.QuantReLU(return_quant_tensor=True)
        self.pad2 = nn.ConstantPad2d((0, 1, 1, 0), 0.0)
        self.conv2 = qnn.QuantConv2d(3, 3, 2, stride=2, bias=True, bias_quant=Int32Bias)
        self.out = qnn.QuantIdentity(return_quant_tensor=True)

    def forward(self, x):
        x = self.relu(self.conv(F.pad(self.pad(self.q(x)), (0, 0, 1, 0))))  # pad of a pad: the pads add up
        return self.out(self.conv2(self.pad2(x)))


def test_asymmetric_2d_zero_padding_is_folded(tmp_path):
    net = _exact(_src(Pad2d(), (2, 7, 6)), tmp_path, (2, 7, 6))
    convs = [op for op in net.ops if op.type == "conv2d"]
    assert [c.attrs["padding"] for c in convs] == [[2, 2, 4, 3], [1, 0, 0, 1]]


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.qa, self.qb = qnn.QuantIdentity(return_quant_tensor=True), qnn.QuantIdentity(return_quant_tensor=True)
        self.a = qnn.QuantConv1d(2, 4, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.b = qnn.QuantConv2d(1, 4, 3, bias=True, bias_quant=Int32Bias)
        self.relu = qnn.QuantReLU(return_quant_tensor=True)  # shared: both branches get one scale
        self.out = qnn.QuantIdentity(return_quant_tensor=True)

    def forward(self, a, b):
        return self.out(self.relu(self.a(self.qa(a))).flatten(1) + self.relu(self.b(self.qb(b))).flatten(1))


def test_two_inputs_of_different_ranks_are_exact(tmp_path):
    net = _exact(_src(TwoInputs(), (2, 9), (1, 5, 5)), tmp_path, (2, 9), (1, 5, 5))
    assert net.inputs == ["input_0", "input_1"]
    assert [net.tensors[t].shape for t in net.inputs] == [[1, 2, 9], [1, 1, 5, 5]]


def _refusal(model, shape):
    rep = check_model(_src(model, shape)).to_json()
    bad = [i for i in rep["items"] if i["status"] == "unsupported"]
    assert rep["deployable"] is False and len(bad) == 1, rep
    assert "\n" not in bad[0]["message"] and bad[0]["hint"]
    return bad[0]


class PadThen(nn.Module):
    def __init__(self, pad, conv=True):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.pad = pad
        self.conv = qnn.QuantConv1d(2, 2, 3, bias=False) if conv else qnn.QuantReLU(return_quant_tensor=True)

    def forward(self, x):
        return self.conv(self.pad(self.q(x)))


class Rnn(nn.Module):
    def __init__(self, cls):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=False)
        self.rnn = cls(2, 4, batch_first=True)

    def forward(self, x):
        return self.rnn(self.q(x))[0]


@pytest.mark.parametrize("model, words", [
    (PadThen(nn.ConstantPad1d((2, 0), 0.5)), ["value 0.5", "only zeros"]),
    (PadThen(nn.ReflectionPad2d(1), conv=False), ["reflection padding", "batch or channel axis", "time axis"]),
    (PadThen(nn.ZeroPad1d((1, 1)), conv=False), ["only as the input of a convolution", "QuantReLU"]),
    (PadThen(nn.Identity()), []),
    (Rnn(nn.LSTM), ["LSTM", "recurrent"]),
    (Rnn(nn.GRU), ["GRU", "recurrent"]),
], ids=["nonzero-value", "reflect-channels", "pad-before-relu", "reference", "lstm", "gru"])
def test_checker_refuses_unsupported_1d_constructs(model, words):
    if not words:  # the same model with no pad is deployable
        assert check_model(_src(model, (2, 8))).deployable
        return
    bad = _refusal(model, (2, 8) if not isinstance(model, Rnn) else (8, 2))
    text = bad["type"] + " " + bad["message"] + " " + bad["hint"]
    assert all(w in text for w in words), bad


MODES = ["reflect", "replicate", "circular"]
_MODULES = {"reflect": nn.ReflectionPad1d, "replicate": nn.ReplicationPad1d, "circular": nn.CircularPad1d}


class ModePad1d(nn.Module):
    """The three ways users pad a sequence with its own values before a convolution: a padding module, F.pad with
    a mode, and the layer's padding_mode (PyTorch: F.pad by _reversed_padding_repeated_twice, then padding 0).
    The input quantizer is unsigned with a zero point (ShiftedUint8): padding moves codes, so any zero point is
    exact; the convolution's own input quantizer then gives it zero point 0."""

    def __init__(self, mode, form):
        super().__init__()
        self.mode, self.form = mode, form
        self.q = qnn.QuantIdentity(act_quant=ShiftedUint8ActPerTensorFloat, return_quant_tensor=True)
        self.pad = _MODULES[mode]((3, 1))
        kw = dict(padding=2, padding_mode=mode) if form == "padding_mode" else {}
        self.conv = qnn.QuantConv1d(3, 5, 3, bias=True, bias_quant=Int32Bias, input_quant=Int8ActPerTensorFloat,
                                    **kw)
        self.relu = qnn.QuantReLU(return_quant_tensor=True)
        self.conv2 = qnn.QuantConv1d(5, 4, 3, padding=1, padding_mode=mode, stride=2, bias=True, bias_quant=Int32Bias)
        self.out = qnn.QuantIdentity(return_quant_tensor=True)

    def forward(self, x):
        x = self.q(x)
        if self.form == "module":
            x = self.pad(x)
        elif self.form == "functional":
            x = F.pad(x, (3, 1), mode=self.mode)
        return self.out(self.conv2(self.relu(self.conv(x))))


@pytest.mark.parametrize("form", ["module", "functional", "padding_mode"])
@pytest.mark.parametrize("mode", MODES)
def test_1d_padding_modes_are_exact(mode, form, tmp_path):
    net = _exact(_src(ModePad1d(mode, form), (3, 11)), tmp_path, (3, 11))
    pads = [op for op in net.ops if op.type == "edge_pad"]
    first = (3, 1) if form != "padding_mode" else (2, 2)
    assert [(p.attrs["mode"], p.attrs["axis"], p.attrs["before"], p.attrs["after"]) for p in pads] == [
        (mode, 2, *first), (mode, 2, 1, 1)]
    assert all(op.attrs["padding"] == [0, 0, 0, 0] for op in net.ops if op.type == "conv2d")
    if form == "padding_mode":  # the layer pads the output of its input quantizer (zero point 0), as Brevitas
        assert pads[0].inputs[0] == "conv.input_quant"
    else:  # the padding moves the codes of the zero-point tensor; the layer's input quantizer follows
        assert net.tensors[pads[0].inputs[0]].zero_point != 0
        assert any(op.type == "requantize" and op.inputs == pads[0].outputs for op in net.ops)
    assert [op.type for op in net.ops].count("conv2d") == 2


class ReflectThenZeros(nn.Module):
    """Reflection padding, then zero padding of the result (folded into the convolution), then a pooling that
    reads a reflect-padded tensor (the padded result needs no convolution after it)."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv = qnn.QuantConv1d(2, 3, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.relu = qnn.QuantReLU(return_quant_tensor=True)
        self.pool = nn.MaxPool1d(3, stride=1)
        self.out = qnn.QuantIdentity(return_quant_tensor=True)

    def forward(self, x):
        x = self.relu(self.conv(F.pad(F.pad(self.q(x), (2, 2), "reflect"), (1, 0))))
        return self.out(self.pool(F.pad(x, (1, 1), mode="replicate")))


def test_zero_padding_of_a_reflected_tensor_folds_and_a_pad_may_feed_a_pool(tmp_path):
    net = _exact(_src(ReflectThenZeros(), (2, 9)), tmp_path, (2, 9))
    conv = next(op for op in net.ops if op.type == "conv2d")
    assert conv.attrs["padding"] == [0, 2, 0, 1]  # its padding=1 and the F.pad (1, 0) after the reflection
    assert [op.attrs["mode"] for op in net.ops if op.type == "edge_pad"] == ["reflect", "replicate"]
    assert net.tensors[net.outputs[0]].shape == [1, 3, 14]  # 9 + 4 + 1, conv 3 (padding 1), + 2, pool 3


class ZerosThenReflect(PadThen):
    def forward(self, x):
        return self.conv(F.pad(F.pad(self.q(x), (1, 1)), (1, 1), mode="reflect"))


class ZerosIntoReflectConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv = qnn.QuantConv1d(2, 2, 3, padding=1, padding_mode="circular", bias=False)

    def forward(self, x):
        return self.conv(F.pad(self.q(x), (2, 0)))


@pytest.mark.parametrize("model, words", [
    (ZerosThenReflect(nn.Identity()), ["zero padding is supported only as the input of a convolution", "pad"]),
    (ZerosIntoReflectConv(), ["zero padding before a convolution with padding_mode='circular'", "one padding mode"]),
], ids=["zeros-then-reflect", "zeros-into-circular-conv"])
def test_zero_padding_before_another_mode_is_refused(model, words):
    bad = _refusal(model, (2, 8))
    text = bad["message"] + " " + bad["hint"]
    assert all(w in text for w in words), bad


MODE_PAD_1D = (
    'import torch, torch.nn as nn, torch.nn.functional as F, brevitas.nn as qnn\n'
    'from brevitas.quant import ShiftedUint8ActPerTensorFloat, Int8ActPerTensorFloat\n'
    'class Net(nn.Module):\n'
    '    def __init__(self):\n'
    '        super().__init__()\n'
    '        self.q = qnn.QuantIdentity(act_quant=ShiftedUint8ActPerTensorFloat, return_quant_tensor=True)\n'
    '        self.pad = nn.CircularPad1d((3, 1))\n'
    '        self.c1 = qnn.QuantConv1d(3, 6, 3, input_quant=Int8ActPerTensorFloat)\n'
    '        self.r1 = qnn.QuantReLU(return_quant_tensor=True)\n'
    '        self.c2 = qnn.QuantConv1d(6, 6, 5, padding=2, padding_mode="reflect", groups=6)\n'
    '        self.r2 = qnn.QuantReLU(return_quant_tensor=True)\n'
    '        self.c3 = qnn.QuantConv1d(6, 4, 3, padding=1, padding_mode="replicate", stride=2)\n'
    '        self.o = qnn.QuantIdentity()\n'
    '    def forward(self, x):\n'
    '        x = self.r1(self.c1(self.pad(self.q(x))))\n'
    '        x = self.r2(self.c2(F.pad(x, (1, 2), mode="reflect")))\n'
    '        return self.o(self.c3(x))\n'
    'def create_model():\n'
    '    from brevitas.graph.calibrate import calibration_mode\n'
    '    torch.manual_seed(0)\n'
    '    m = Net().eval()\n'
    '    with torch.no_grad(), calibration_mode(m):\n'
    '        m(torch.randn(16, 3, 40))\n'
    '    return m.eval()\n'
    'def example_input():\n'
    '    return torch.randn(1, 3, 40)\n'
)


def test_1d_padding_modes_deploy_bit_exact_on_host_and_gap9_emu(tmp_path):
    """A model file with CircularPad1d on a zero-point input, F.pad(mode='reflect') and depthwise / strided
    QuantConv1d with padding_mode 'reflect' / 'replicate': gf_edge_pad in the generated C equals the golden."""
    model = tmp_path / "mode_pad_1d.py"
    model.write_text(MODE_PAD_1D)
    for target in ("host", "gap9"):
        out = tmp_path / target
        r = run_tool("deploy", "--model-file", str(model), "--out", str(out), "--target", target)
        assert r.returncode == 0 and "RESULT: PASS" in r.stdout and "BIT-EXACT" in r.stdout, r.stdout[-3000:] + r.stderr
        assert (out / f"project_{target}" / "src" / "network.c").read_text().count("gf_edge_pad(") == 4


def test_padding_wider_than_pytorch_allows_fails_in_the_model_on_one_line(tmp_path):
    """Reflection by 8 of 8 samples: PyTorch itself refuses it (each side must be smaller than the axis), and the
    checker reports the model's own error on one line naming the module; the edge_pad shape rule has the same
    limit (tests/test_atomic_ops.py)."""
    model = tmp_path / "wide_reflect.py"
    model.write_text(
        NET_HEAD +
        "        self.q = qnn.QuantIdentity(return_quant_tensor=True)\n"
        "        self.pad = nn.ReflectionPad1d(8)\n"
        "        self.conv = qnn.QuantConv1d(2, 2, 3)\n"
        "    def forward(self, x):\n"
        "        return self.conv(self.pad(self.q(x)))\n"
        "def create_model():\n"
        "    return Net().eval()\n"
        "def example_input():\n"
        "    return torch.rand(1, 2, 8)\n")
    r = run_tool("check_model_compatibility", "--model-file", str(model))
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    line = next(ln for ln in r.stdout.splitlines() if "FAIL" in ln)
    assert "module 'pad'" in line and "Padding size should be less than" in line, r.stdout


def test_long_sequences_are_tiled_over_time(extracted):
    """kws_conv1d's 16 x 1024 map at 16 KiB of L1: the conv tiles cut the time axis."""
    net = ir.load(extracted("kws_conv1d"))
    plan = build_plan(net)
    budgets = DEFAULT.with_budgets(l1=16 * 1024)
    first = next(s for s in plan.steps if s.kind == "conv2d")
    assert net.tensors[first.output].shape == [1, 16, 1024]
    t = tile_step(first, net, budgets)
    assert t.tiling == "conv" and t.counts[2] > 1 and t.tile["oh"] == 1 and t.l1_bytes <= 16 * 1024, t
