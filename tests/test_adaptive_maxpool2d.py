"""AdaptiveMaxPool2d / F.adaptive_max_pool2d: lowered to maxpool2d with kernel = stride = input / output size
per axis when each output size divides the input size (output 1 = the global max), as AdaptiveMaxPool1d.

A small user-style model (QuantConv2d -> QuantReLU -> the pooling -> flatten -> QuantLinear) is extracted,
compared with Brevitas and deployed bit-exact on host and gap9-emu; unequal windows and return_indices are
refused in one line naming the module."""

import json

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_conv1d import _exact, _src
from test_pool1d import Fn, _refusal, needs_rv32
from torch import nn

from codegen.generate import generate_project
from gapforge import inputs
from gapforge.extract import capture_model, model_inputs, write_network
from tools.generate_golden_outputs import generate
from tools.run_generated import run_project

SHAPE = (3, 8, 8)


class AdaptiveMaxNet(nn.Module):
    """QuantConv2d -> QuantReLU -> the pooling -> flatten -> QuantLinear, as a user writes it."""

    def __init__(self, pool, pooled: int):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(3, 4, 3, padding=1, bias=True)
        self.relu = qnn.QuantReLU(return_quant_tensor=True)
        self.pool = pool
        self.fc = qnn.QuantLinear(4 * pooled, 5, bias=True)

    def forward(self, x):
        y = self.pool(self.relu(self.conv(self.q(x))))
        return self.fc((y[0] if isinstance(y, tuple) else y).flatten(1))


MODELS = {
    "AdaptiveMaxPool2d((2,2))": (lambda: AdaptiveMaxNet(nn.AdaptiveMaxPool2d((2, 2)), 4),
                                 ("module", "AdaptiveMaxPool2d"), [4, 4], [1, 4, 2, 2]),
    "F.adaptive_max_pool2d(x,1)": (lambda: AdaptiveMaxNet(Fn(F.adaptive_max_pool2d, output_size=1), 1),
                                   ("function", "adaptive_max_pool2d"), [8, 8], [1, 4, 1, 1]),
    "AdaptiveMaxPool2d((4,None))": (lambda: AdaptiveMaxNet(nn.AdaptiveMaxPool2d((4, None)), 32),
                                    ("module", "AdaptiveMaxPool2d"), [2, 1], [1, 4, 4, 8]),
}


@pytest.fixture(scope="module", params=list(MODELS))
def net(request, tmp_path_factory):
    """(name, model source, network, extracted directory with golden cases), built once per model."""
    build, _, _, _ = MODELS[request.param]
    src = _src(build(), SHAPE)
    tmp = tmp_path_factory.mktemp("amp2d")
    network = _exact(src, tmp, SHAPE)  # 0 unexplained mismatches, every layer compared
    d = write_network(network, tmp / "net", model_inputs(src))
    x, labels, what = inputs.select(d, None, 1)
    generate(d, x, labels, what, progress=False)
    return request.param, src, network, d


def test_extracted_as_maxpool2d_with_kernel_equal_to_stride(net):
    name, src, network, _ = net
    _, node, k, shape = MODELS[name]
    assert [(n.kind, n.type_name) for n in capture_model(src).nodes if "pool" in n.type_name.lower()] == [node]
    ops = [(op.type, op.attrs.get("kernel_size"), op.attrs.get("stride"), op.attrs.get("padding"),
            op.attrs.get("ceil_mode"), network.tensors[op.outputs[0]].shape) for op in network.ops
           if "pool" in op.type]
    assert ops == [("maxpool2d", k, k, [0, 0, 0, 0], False, shape)]
    with torch.no_grad():  # the same shape as PyTorch's
        assert list(src.model.pool(torch.zeros(1, 4, 8, 8)).shape) == shape


@pytest.mark.parametrize("target", ["host", pytest.param("gap9", marks=needs_rv32)])
def test_deploys_bit_exact(net, tmp_path, target):
    _, _, _, d = net
    proj = tmp_path / target
    generate_project(d, proj, target, 1)
    passed, res = run_project(proj, "host" if target == "host" else "gap9-emu", timeout=600)
    plan = json.loads((proj / "plan.json").read_text())
    assert passed, res["reasons"][:5]
    assert res["totals"]["compared"] == len(plan["steps"]) >= 3 and res["totals"]["mismatches"] == 0
    assert [(s["kind"], s["kernel"]) for s in plan["steps"] if "pool" in s["kind"]] == [("maxpool2d", "gf_maxpool2d")]
    if target == "gap9":
        assert res["plan_mismatches"] == []


def test_pooled_integers_are_the_window_max_of_the_relu_integers(net):
    """The engine's pooled integers are the max of the ReLU's integers over each (kh, kw) window, and the output
    equals Brevitas'."""
    name, src, network, d = net
    from tools.int8_inference import INT8InferenceEngine

    engine = INT8InferenceEngine(d)
    torch.manual_seed(3)
    x = torch.randn(4, *SHAPE)
    out, ints = engine.forward(x.numpy())
    (pool,) = [op for op in network.ops if op.type == "maxpool2d"]
    a, y = ints[pool.inputs[0]], ints[pool.outputs[0]]
    kh, kw = pool.attrs["kernel_size"]
    n, c, h, w = a.shape
    want = a.reshape(n, c, h // kh, kh, w // kw, kw).max(axis=(3, 5))
    assert y.shape == (4, *MODELS[name][3][1:]) and np.array_equal(y, want) and y.max() > 0
    with torch.no_grad():
        ref = src.model(x).numpy()
    assert out.shape == ref.shape == (4, 5) and np.allclose(out, ref, rtol=0, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("pool,pooled,words", [
    (nn.AdaptiveMaxPool2d(3), 9, "adaptive pooling from 8x8 to 3x3 has unequal windows"),
    (Fn(F.adaptive_max_pool2d, output_size=(2, 3)), 6, "adaptive pooling from 8x8 to 2x3 has unequal windows"),
    (nn.AdaptiveMaxPool2d(2, return_indices=True), 4, "return_indices=True is not supported"),
    (Fn(F.adaptive_max_pool2d, output_size=2, return_indices=True), 4, "return_indices=True is not supported"),
], ids=["unequal", "F-unequal", "return_indices", "F-return_indices"])
def test_refusals_name_the_module_in_one_line(pool, pooled, words):
    bad = _refusal(AdaptiveMaxNet(pool, pooled), SHAPE)
    assert words in bad["message"], bad
    assert bad["name"].startswith("pool"), bad
    if "unequal" in words:
        assert bad["hint"] == "choose an output size that divides the input size"
