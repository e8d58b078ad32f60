"""1-D pooling (MaxPool1d, AvgPool1d, AdaptiveAvgPool1d, AdaptiveMaxPool1d and their F.* forms) after
QuantConv1d: lowered to maxpool2d / avgpool2d over the map of height 1, as QuantConv1d is conv2d.

The user model tests/user_models/kws_pool1d.py (built and extracted once per module) is captured,
extracted, compared with Brevitas and deployed bit-exact on host and gap9-emu; small random models check
each argument (kernel, stride, padding, ceil_mode, count_include_pad, adaptive sizes) against PyTorch,
and the refusals are one line naming the module."""

import argparse
import json
from pathlib import Path

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import run_tool
from test_conv1d import _exact, _src
from torch import nn

from codegen import toolchains
from codegen.generate import generate_project
from gapforge import fidelity, inputs, ir
from gapforge.compat import check_model
from gapforge.extract import capture_model, extract, model_inputs, write_network
from gapforge.modelsrc import load_model
from gapforge.ops import registry
from tools.generate_golden_outputs import generate
from tools.int8_inference import INT8InferenceEngine
from tools.run_generated import run_project

MODEL = Path(__file__).resolve().parent / "user_models" / "kws_pool1d.py"


@pytest.fixture(scope="module")
def kws(tmp_path_factory):
    """(model source, extracted network directory with golden cases) of the user model, built once."""
    src = load_model(argparse.Namespace(test_network=None, model_file=str(MODEL), model_class=None,
                                        input_shape=None))
    d = write_network(extract(src), tmp_path_factory.mktemp("kws") / "net", model_inputs(src))
    x, labels, what = inputs.select(d, None, 2)
    generate(d, x, labels, what, progress=False)
    return src, d


def test_kws_is_captured_and_extracted_as_2d_pooling_over_time(kws):
    src, d = kws
    graph = capture_model(src)
    pools = [(n.kind, n.type_name) for n in graph.nodes if "pool" in n.type_name.lower()]
    assert pools == [("module", "MaxPool1d"), ("function", "avg_pool1d"), ("function", "max_pool1d"),
                     ("module", "AdaptiveAvgPool1d")]
    rep = check_model(src).to_json()
    assert rep["deployable"] and not [i for i in rep["items"] if i["status"] != "supported"]
    net = ir.load(d)
    ops = [(op.type, op.attrs.get("kernel_size"), op.attrs.get("stride"), op.attrs.get("padding"),
            net.tensors[op.outputs[0]].shape) for op in net.ops if "pool" in op.type]
    assert ops == [("maxpool2d", [1, 2], [1, 2], [0, 0, 0, 0], [1, 8, 32]),
                   ("avgpool2d", [1, 2], [1, 2], [0, 0, 0, 0], [1, 16, 16]),
                   ("maxpool2d", [1, 3], [1, 2], [0, 1, 0, 1], [1, 16, 8]),
                   ("avgpool2d", [1, 8], [1, 8], [0, 0, 0, 0], [1, 16, 1])]
    # each average goes into its QuantIdentity: the divisor is in the scale, the requantize divides exactly
    avgs = [op for op in net.ops if op.type == "avgpool2d"]
    assert [op.attrs["divisor"] for op in avgs] == [2, 8]
    after = {i: [o.type for o in net.ops if op.outputs[0] in o.inputs] for i, op in enumerate(avgs)}
    assert after == {0: ["requantize"], 1: ["requantize"]}


def test_kws_fidelity_and_engine_equal_brevitas(kws):
    src, d = kws
    engine = INT8InferenceEngine(d)
    x = inputs.stored_arrays(d, "held_out_x")
    rep = fidelity.check(src.model, engine, x, src.name)
    assert rep.passed and rep.unexplained == 0 and rep.top1_agreement == 1.0, fidelity.format_report(rep)
    assert all(lf.compared for lf in rep.teacher_forced) and len(x) == 96
    ours, _ = engine.forward(x)
    with torch.no_grad():
        ref = src.model(torch.from_numpy(x)).numpy()
    assert ours.shape == ref.shape == (96, 10) and np.allclose(ours, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    assert rep.max_abs_output_diff == float(np.abs(ours - ref).max())


needs_rv32 = pytest.mark.skipif(not toolchains.cross_compiler_available()[0],
                                reason=f"rv32 cross compiler: {toolchains.cross_compiler_available()[1]}")


@pytest.mark.parametrize("target,l1", [("host", None), pytest.param("gap9", None, marks=needs_rv32),
                                       pytest.param("gap9", 320, marks=needs_rv32)],
                         ids=["host", "gap9", "gap9-l1-320"])
def test_kws_is_bit_exact_on_device(kws, tmp_path, target, l1):
    _, d = kws
    proj = tmp_path / target
    generate_project(d, proj, target, 1, l1_budget=l1)
    passed, res = run_project(proj, "host" if target == "host" else "gap9-emu", timeout=600)
    plan = json.loads((proj / "plan.json").read_text())
    assert passed, res["reasons"][:5]
    assert res["totals"]["compared"] == len(plan["steps"]) == 10 and res["totals"]["mismatches"] == 0
    if target == "gap9":
        assert res["plan_mismatches"] == []  # measured DMA bytes, tiles, peaks == planned
        tiles = {r["name"]: r["tiles"] for r in plan["gap9"]["layers"]}
        if l1 is not None:  # the pooling steps are cut over time
            assert tiles["pool1"] > 1 and tiles["q_avg"] > 1 and tiles["max_pool1d"] > 1, tiles


class Pool1dNet(nn.Module):
    """QuantConv1d -> [QuantReLU] -> the pooling -> [QuantIdentity]: `pool` on a quantized tensor (relu) or on
    the conv's int32 accumulator (max pooling only); `quant` a QuantIdentity after it (an average needs one)."""

    def __init__(self, pool, relu=True, quant=True):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv = qnn.QuantConv1d(3, 4, 3, padding=1, bias=True)
        self.relu = qnn.QuantReLU(return_quant_tensor=True) if relu else nn.Identity()
        self.pool = pool
        self.out = qnn.QuantIdentity(return_quant_tensor=True) if quant else nn.Identity()

    def forward(self, x):
        y = self.pool(self.relu(self.conv(self.q(x))))
        return self.out(y[0] if isinstance(y, tuple) else y)  # (values, indices) with return_indices=True


class Fn(nn.Module):
    def __init__(self, fn, **kw):
        super().__init__()
        self.fn, self.kw = fn, kw

    def forward(self, x):
        return self.fn(x, **self.kw)


T = 13
CONFIGS = {
    "MaxPool1d(2)": (nn.MaxPool1d(2), "maxpool2d", [1, 2], [1, 2], [0, 0, 0, 0]),
    "MaxPool1d(3,2,1,ceil)": (nn.MaxPool1d(3, 2, padding=1, ceil_mode=True), "maxpool2d", [1, 3], [1, 2],
                              [0, 1, 0, 1]),
    "MaxPool1d(4,3,2,ceil)": (nn.MaxPool1d(4, 3, padding=2, ceil_mode=True), "maxpool2d", [1, 4], [1, 3],
                              [0, 2, 0, 2]),
    "F.max_pool1d(3,1,1)": (Fn(F.max_pool1d, kernel_size=3, stride=1, padding=1), "maxpool2d", [1, 3], [1, 1],
                            [0, 1, 0, 1]),
    "F.max_pool1d(2,ceil)": (Fn(F.max_pool1d, kernel_size=2, ceil_mode=True), "maxpool2d", [1, 2], [1, 2],
                             [0, 0, 0, 0]),
    "AvgPool1d(3)": (nn.AvgPool1d(3), "avgpool2d", [1, 3], [1, 3], [0, 0, 0, 0]),
    "AvgPool1d(3,2,1)": (nn.AvgPool1d(3, 2, padding=1), "avgpool2d", [1, 3], [1, 2], [0, 1, 0, 1]),
    "AvgPool1d(3,2,ceil-no-partial)": (nn.AvgPool1d(3, 2, ceil_mode=True), "avgpool2d", [1, 3], [1, 2],
                                       [0, 0, 0, 0]),
    "AvgPool1d(2,cip=False,no-pad)": (nn.AvgPool1d(2, count_include_pad=False), "avgpool2d", [1, 2], [1, 2],
                                      [0, 0, 0, 0]),
    "F.avg_pool1d(4,1,2)": (Fn(F.avg_pool1d, kernel_size=4, stride=1, padding=2), "avgpool2d", [1, 4], [1, 1],
                            [0, 2, 0, 2]),
    "AdaptiveAvgPool1d(1)": (nn.AdaptiveAvgPool1d(1), "avgpool2d", [1, T], [1, T], [0, 0, 0, 0]),
    "F.adaptive_avg_pool1d(1)": (Fn(F.adaptive_avg_pool1d, output_size=1), "avgpool2d", [1, T], [1, T],
                                 [0, 0, 0, 0]),
    "AdaptiveMaxPool1d(1)": (nn.AdaptiveMaxPool1d(1), "maxpool2d", [1, T], [1, T], [0, 0, 0, 0]),
    "F.adaptive_max_pool1d(1)": (Fn(F.adaptive_max_pool1d, output_size=1), "maxpool2d", [1, T], [1, T],
                                 [0, 0, 0, 0]),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_1d_pooling_is_exact_and_has_pytorch_geometry(name, tmp_path):
    pool, op_type, k, s, p = CONFIGS[name]
    src = _src(Pool1dNet(pool, quant=op_type == "avgpool2d"), (3, T))
    net = _exact(src, tmp_path, (3, T))
    (op,) = [o for o in net.ops if "pool" in o.type]
    want = list(pool(torch.zeros(1, 4, T)).shape)
    assert (op.type, op.attrs["kernel_size"], op.attrs["stride"], op.attrs["padding"]) == (op_type, k, s, p)
    assert net.tensors[op.outputs[0]].shape == want


@pytest.mark.parametrize("pool,o", [(nn.AdaptiveAvgPool1d(4), 4), (nn.AdaptiveMaxPool1d(4), 4),
                                    (Fn(F.adaptive_max_pool1d, output_size=2), 2)],
                         ids=["AdaptiveAvgPool1d(4)", "AdaptiveMaxPool1d(4)", "F.adaptive_max_pool1d(2)"])
def test_adaptive_1d_pooling_with_dividing_output_sizes(pool, o, tmp_path):
    src = _src(Pool1dNet(pool), (3, 12))
    net = _exact(src, tmp_path, (3, 12))
    (op,) = [o for o in net.ops if "pool" in o.type]
    assert op.attrs["kernel_size"] == op.attrs["stride"] == [1, 12 // o]
    assert net.tensors[op.outputs[0]].shape == [1, 4, o]


def test_max_pool1d_of_an_accumulator_is_exact(tmp_path):
    """MaxPool1d right after the QuantConv1d (before its quantizer): pooled on the int32 accumulator."""
    src = _src(Pool1dNet(nn.MaxPool1d(3, 2, padding=1), relu=False), (3, T))
    net = _exact(src, tmp_path, (3, T))
    (op,) = [o for o in net.ops if o.type == "maxpool2d"]
    assert net.tensors[op.inputs[0]].kind == "acc" and net.tensors[op.outputs[0]].shape == [1, 4, 7]


def test_1d_pool_shape_rules_match_pytorch():
    reg = registry().ir_ops
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(300):
        k, s = (int(v) for v in rng.integers(1, 5, 2))
        p = int(rng.integers(0, k // 2 + 1))
        t = int(rng.integers(k, 30))
        ceil = bool(rng.integers(0, 2))
        x = torch.zeros(1, 2, t)
        attrs = {"kernel_size": [1, k], "stride": [1, s], "padding": [0, p, 0, p]}
        want = list(F.max_pool1d(x, k, s, p, ceil_mode=ceil).shape)
        assert reg["maxpool2d"].infer_shapes([[1, 2, t]], {**attrs, "ceil_mode": ceil}, {}) == [want]
        want = list(F.avg_pool1d(x, k, s, p).shape)
        assert reg["avgpool2d"].infer_shapes([[1, 2, t]], {**attrs, "divisor": k}, {}) == [want]
        checked += 1
    assert checked == 300
    with pytest.raises(ValueError, match="needs stride 1 along the unit height"):
        reg["maxpool2d"].infer_shapes([[1, 2, 8]], {"kernel_size": [1, 2], "stride": [2, 2],
                                                     "padding": [0, 0, 0, 0], "ceil_mode": False}, {})


def _refusal(model, shape=(3, T)):
    rep = check_model(_src(model, shape)).to_json()
    bad = [i for i in rep["items"] if i["status"] == "unsupported"]
    assert rep["deployable"] is False and len(bad) == 1, rep
    assert "\n" not in bad[0]["message"]
    return bad[0]


@pytest.mark.parametrize("pool,words", [
    (nn.MaxPool1d(2, dilation=2), "dilation 2 is not supported for max pooling"),
    (Fn(F.max_pool1d, kernel_size=2, dilation=2), "dilation 2 is not supported for max pooling"),
    (nn.MaxPool1d(2, return_indices=True), "return_indices=True is not supported"),
    (Fn(F.max_pool1d, kernel_size=2, return_indices=True), "return_indices=True is not supported"),
    (nn.AdaptiveMaxPool1d(2, return_indices=True), "return_indices=True is not supported"),
    (nn.AvgPool1d(3, padding=1, count_include_pad=False), "count_include_pad=False with padding"),
    (Fn(F.avg_pool1d, kernel_size=3, padding=1, count_include_pad=False), "count_include_pad=False with padding"),
    (nn.AvgPool1d(2, ceil_mode=True), "ceil_mode=True creates partial windows"),
    (nn.AdaptiveAvgPool1d(3), "adaptive pooling from 13 to 3 steps has unequal windows"),
    (Fn(F.adaptive_avg_pool1d, output_size=3), "adaptive pooling from 13 to 3 steps has unequal windows"),
    (nn.AdaptiveMaxPool1d(3), "adaptive pooling from 13 to 3 steps has unequal windows"),
], ids=["dilation", "F-dilation", "return_indices", "F-return_indices", "adaptive-return_indices",
        "count_include_pad", "F-count_include_pad", "ceil-partial", "adaptive-avg-unequal", "F-adaptive-avg-unequal",
        "adaptive-max-unequal"])
def test_1d_pooling_refusals_are_those_of_2d(pool, words):
    bad = _refusal(Pool1dNet(pool))
    assert words in bad["message"], bad
    assert bad["name"] in ("pool", "pool.max_pool1d", "pool.avg_pool1d", "pool.adaptive_avg_pool1d")


def test_average_pooling_needs_a_zero_point_0_input():
    """As AvgPool2d: an asymmetric input (zero point != 0) is refused with the fix."""
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            from brevitas.quant import ShiftedUint8ActPerTensorFloat

            self.q = qnn.QuantIdentity(act_quant=ShiftedUint8ActPerTensorFloat, return_quant_tensor=True)
            self.pool = nn.AvgPool1d(2)
            self.out = qnn.QuantIdentity(return_quant_tensor=True)

        def forward(self, x):
            return self.out(self.pool(self.q(x)))

    bad = _refusal(M())
    assert "average pooling of" in bad["message"] and "zero point" in bad["message"] and "zero point 0" in bad["hint"]


def test_the_extractor_refuses_in_one_line_naming_the_module(tmp_path):
    f = tmp_path / "dilated.py"
    f.write_text('''
import torch, torch.nn as nn, brevitas.nn as qnn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.c = qnn.QuantConv1d(2, 4, 3)
        self.pool = nn.MaxPool1d(2, dilation=2)
    def forward(self, x):
        return self.pool(self.c(self.q(x)))
def create_model():
    from brevitas.graph.calibrate import calibration_mode
    m = Net().eval()
    with torch.no_grad(), calibration_mode(m):
        m(torch.randn(4, 2, 16))
    return m.eval()
def example_input():
    return torch.randn(1, 2, 16)
''')
    r = run_tool("pytorch_extractor", "--model-file", str(f), "--out", str(tmp_path / "net"))
    assert r.returncode != 0 and "Traceback" not in r.stderr and not (tmp_path / "net").exists()
    lines = [ln for ln in r.stderr.splitlines() if "MaxPool1d" in ln]
    assert len(lines) == 1 and "module 'pool' (MaxPool1d): dilation 2 is not supported for max pooling" in lines[0], \
        r.stderr
