"""Models written the way users write them (tests/user_models/), each reproducing a defect found by
a robustness sweep on models gapforge had not seen; asserted on values."""

import argparse
import json
import re
from pathlib import Path

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
from conftest import run_tool

from gapforge import fidelity, inputs
from gapforge.compat import check_model
from gapforge.errors import GapforgeError
from gapforge.extract import extract, model_inputs, write_network
from gapforge.modelsrc import load_model
from gapforge.plan import tensor_abs_max
from tools.check_fidelity import accuracy_report
from tools.int8_inference import INT8InferenceEngine

MODELS = Path(__file__).resolve().parent / "user_models"


def _source(name: str):
    return load_model(argparse.Namespace(test_network=None, model_file=str(MODELS / f"{name}.py"),
                                         model_class=None, input_shape=None))


# the opening of the small model files the tests below write: a Net whose __init__ body follows
NET_HEAD = ("import torch, torch.nn as nn, brevitas.nn as qnn\n"
            "class Net(nn.Module):\n"
            "    def __init__(self):\n"
            "        super().__init__()\n")


def _calibrated_hooks(shape: tuple[int, ...], batch: int, seed: int | None = None) -> str:
    """The model-file hooks of an inline test model ``Net``: create_model() calibrates it on one random batch of
    ``batch`` x ``shape``, example_input() is one random input of that shape."""
    dims = ", ".join(map(str, shape))
    return ("def create_model():\n"
            "    from brevitas.graph.calibrate import calibration_mode\n"
            + (f"    torch.manual_seed({seed})\n" if seed is not None else "")
            + "    m = Net().eval()\n"
            "    with torch.no_grad(), calibration_mode(m):\n"
            f"        m(torch.rand({batch}, {dims}))\n"
            "    return m.eval()\n"
            "def example_input():\n"
            f"    return torch.rand(1, {dims})\n")


def _exact_report(src, net, tmp_path, near_ties: bool = False):
    """Extract, check fidelity on the held-out inputs (no mismatch at all; with ``near_ties``, none but near-ties
    of Brevitas' own float32 conv sums, which move with torch's thread count), and return (engine, its output,
    Brevitas' first output, the fidelity report) on them."""
    write_network(net, tmp_path / "net", model_inputs(src))
    engine = INT8InferenceEngine(tmp_path / "net")
    x = inputs.stored_arrays(tmp_path / "net", "held_out_x")
    rep = fidelity.check(src.model, engine, x, src.name)
    if near_ties:
        assert rep.passed and rep.unexplained == 0 and rep.outside_window == 0
        assert all(lf.mismatches == lf.near_tie_mismatches for lf in rep.teacher_forced)
    else:
        assert rep.passed and rep.total_mismatches == 0
    ours, _ = engine.forward(x)
    with torch.no_grad():
        ref = src.model(torch.from_numpy(x))
    if isinstance(ref, dict):  # the first output is the reference (as fidelity takes it)
        ref = next(iter(ref.values()))
    if isinstance(ref, (tuple, list)):
        ref = ref[0]
    return engine, ours, ref.numpy(), rep


def _exact_against_brevitas(src, net, tmp_path):
    """_exact_report without the report: (engine, its output, Brevitas' output)."""
    return _exact_report(src, net, tmp_path)[:3]


def test_two_outputs_fidelity_and_accuracy_use_the_first_output(tmp_path):
    src = _source("two_heads")
    write_network(extract(src), tmp_path / "net", model_inputs(src))
    engine = INT8InferenceEngine(tmp_path / "net")
    assert engine.net.outputs == ["head_cls", "head_par"]
    x, y = inputs.stored_arrays(tmp_path / "net", "held_out_x"), np.load(tmp_path / "net/inputs/held_out_y.npy")
    rep = fidelity.check(src.model, engine, x, src.name)
    # every layer, the second head included, is compared free-running; the output figures are the first head's
    free = {lf.name: lf for lf in rep.free_running}
    assert free["head_par"].compared and free["head_par"].elements == 24 * 2
    assert rep.passed and rep.unexplained == 0 and rep.top1_agreement == 1.0
    with torch.no_grad():
        cls, _ = src.model(torch.from_numpy(x))
    ours, _ = engine.forward(x)
    assert ours.shape == (24, 10) and rep.max_abs_output_diff == float(np.abs(ours - cls.numpy()).max())
    acc = accuracy_report(src.model, engine, x, y)
    assert acc["accuracy"]["brevitas"] == float((cls.numpy().argmax(1) == y).mean())
    assert acc["accuracy"]["int8_engine"] == acc["accuracy"]["brevitas"]


def test_two_outputs_deploy_bit_exact_on_host(tmp_path):
    out = tmp_path / "out"
    r = run_tool("deploy", "--model-file", str(MODELS / "two_heads.py"), "--out", str(out), "--target", "host")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "RESULT: PASS" in r.stdout and "Traceback" not in r.stderr
    res = json.loads((out / "project_host" / "results.json").read_text())
    layers = {(lay.get("name") or lay.get("tensor")): lay["mismatches"] for lay in res["layers"]}
    assert layers["head_cls"] == 0 and layers["head_par"] == 0 and sum(layers.values()) == 0


def test_inplace_relu_module_is_kept_and_exact(tmp_path):
    src = _source("inplace_relu")
    net = extract(src)
    assert [(op.type, op.inputs) for op in net.ops if op.type in ("relu", "add")] == [
        ("relu", ["conv1"]), ("add", ["conv2", "quant_in"]), ("relu", ["add"])]
    assert not [op for op in net.ops if op.type not in ("quantize", "conv2d", "relu", "requantize", "add")]
    engine, ours, ref = _exact_against_brevitas(src, net, tmp_path)
    assert ref.min() == 0.0 and (ref == 0).mean() > 0.2  # the ReLU clamps a good part of the outputs
    assert np.array_equal(ours, ref)


@pytest.mark.parametrize("name,kernels", [("kws_pool1d", [[1, 2], [1, 3]]), ("kws_pool1d_rewritten", [[1, 2], [1, 2]])])
def test_1d_pooling_deploys_bit_exact_on_host(tmp_path, name, kernels):
    """Native 1-D pooling (MaxPool1d, F.avg_pool1d, F.max_pool1d, AdaptiveAvgPool1d) and the 2-D rewrite on
    x.unsqueeze(2) that the checker's former hint asked for: both lower to maxpool2d over the map of height 1."""
    out = tmp_path / "out"
    r = run_tool("deploy", "--model-file", str(MODELS / f"{name}.py"), "--out", str(out), "--target", "host")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    # near-ties of Brevitas' own float32 conv sums (they move with torch's thread count) are all it may differ in
    assert re.search(r"\b\d+ teacher-forced mismatches \(0 unexplained\)", r.stdout), r.stdout[-2000:]
    info = json.loads((out / "network_info.json").read_text())
    pools = [op for op in info["ops"] if op["type"] == "maxpool2d"]
    assert [p["attrs"]["kernel_size"] for p in pools] == kernels
    res = json.loads((out / "project_host" / "results.json").read_text())
    assert res["layers"] and all(lay["mismatches"] == 0 for lay in res["layers"]) and "BIT-EXACT" in r.stdout


def test_relu_before_quant_relu_is_one_fused_step_and_exact(tmp_path):
    src = _source("double_relu")
    engine, ours, ref = _exact_against_brevitas(src, extract(src), tmp_path)
    assert [(s.kind, s.relu, len(s.ops)) for s in engine.plan.steps] == [
        ("quantize", False, 1), ("conv2d", True, 4), ("conv2d", False, 1), ("add", True, 4)]
    assert (ref == 0).mean() > 0.2 and np.array_equal(ours, ref)


def test_quant_hardswish_is_one_table_and_exact(tmp_path):
    src = _source("quant_hardswish")
    net = extract(src)
    luts = [op for op in net.ops if op.type == "lut"]
    assert [op.attrs["function"] for op in luts] == ["hardswish(x)", "hardswish(x)"]
    engine, ours, ref = _exact_against_brevitas(src, net, tmp_path)
    assert ref.min() < 0 < ref.max()  # the signed second QuantHardSwish keeps hardswish's negative part
    assert np.array_equal(ours, ref)


@pytest.mark.parametrize("layout,message", [
    ("timm", r"permutation \[2, 0, 3, 1, 4\] moves the batch axis \(axis 0\) of '\w+' to position 1.*"
             r"q = qkv\[:, :, 0\]\.permute\(0, 2, 1, 3\)"),
    ("float_bias", r"splits axis 2 of 'qkv', an int32 accumulator with a per-channel offset \(a float bias: "
                   r"bias_quant=None\).*QuantIdentity.*bias_quant=Int32Bias"),
])
def test_timm_qkv_layout_refusals_name_the_tensor_and_the_fix(monkeypatch, layout, message):
    src = _source("timm_qkv_permute")
    monkeypatch.syspath_prepend(str(MODELS))
    import timm_qkv_permute as mod
    monkeypatch.setattr(mod, "LAYOUT", layout)
    src.model = mod.create_model()
    with pytest.raises(GapforgeError) as err:
        extract(src)
    assert re.search(message, err.value.one_line())


def test_timm_qkv_indexed_rewrite_is_exact(tmp_path):
    src = _source("timm_qkv_permute")
    net = extract(src)
    assert [op.type for op in net.ops].count("matmul") == 2
    engine, ours, ref = _exact_against_brevitas(src, net, tmp_path)
    assert np.array_equal(ours, ref) and np.abs(ref).max() > 0


def test_a_model_failing_in_eval_mode_is_refused_naming_its_line(tmp_path):

    src = _source("cat_two_scales")
    with pytest.raises(RuntimeError, match="Scaling factors are different"):
        src.model(*src.example_inputs)  # the model fails by itself
    (item,) = [i for i in check_model(src).items if i.status == "unsupported"]
    assert re.search(r"forward pass failed at cat_two_scales\.py:\d+ \(return self\.fc\(torch\.cat\(\[a, b\], "
                     r"dim=1\)\)\): RuntimeError: Scaling factors are different", item.message), item.message
    assert "model.eval()(example_input())" in item.hint
    r = run_tool("deploy", "--model-file", str(MODELS / "cat_two_scales.py"), "--out", str(tmp_path / "o"))
    assert r.returncode == 1 and "cat_two_scales.py:" in r.stdout and "Traceback" not in r.stderr


def _deploy_bit_exact(tmp_path, model: str, target: str = "host"):
    """deploy.py on tests/user_models/``model``.py: (its output dir, the per-layer results) after asserting that it
    passed with no mismatch on any layer."""
    out = tmp_path / "out"
    r = run_tool("deploy", "--model-file", str(MODELS / f"{model}.py"), "--out", str(out), "--target", target)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "RESULT: PASS" in r.stdout and "Traceback" not in r.stderr
    res = json.loads((out / f"project_{target}" / "results.json").read_text())
    assert res["passed"] and res["layers"] and all(lay["mismatches"] == 0 for lay in res["layers"])
    return out, res["layers"]


def test_float_input_view_and_transpose_before_the_quantizer_are_exact(tmp_path):
    """nn.Unflatten(1, (T, F)) then .transpose(1, 2) of the float input, then QuantIdentity: both fold into the
    host-side quantize step (module and function forms, one preprocessing); a dict output's first value is the
    logits."""
    src = _source("raw_input_views")
    net = extract(src)
    q = net.ops[0]
    assert (q.type, q.inputs) == ("quantize", ["input"]) and net.ops[1].type == "conv2d"
    assert q.attrs["preprocess"] == [{"op": "reshape", "shape": [24, 3]}, {"op": "permute", "dims": [0, 2, 1]}]
    assert net.tensors["input"].shape == [1, 72] and net.tensors[q.outputs[0]].shape == [1, 3, 24]
    _, ours, ref, rep = _exact_report(src, net, tmp_path)  # ref: the dict's first value, "logits"
    # the logits are an accumulator times its scale: equal to Brevitas' float32 up to its rounding
    assert ours.shape == (12, 4) and np.abs(ours - ref).max() < 1e-6 * np.abs(ref).max()
    assert rep.max_abs_output_diff == float(np.abs(ours - ref).max()) and rep.top1_agreement == 1.0


def test_float_input_view_deploys_bit_exact_on_host(tmp_path):
    _, layers = _deploy_bit_exact(tmp_path, "raw_input_views")
    assert len(layers) >= 4


def test_float_input_view_without_a_quantizer_is_refused_at_the_layer(tmp_path, monkeypatch):
    src = _source("raw_input_views")
    monkeypatch.setattr(src.model, "inp", torch.nn.Identity())  # the view reaches the convolution unquantized
    with pytest.raises(GapforgeError, match=r"module 'conv' \(QuantConv1d\): receives the unquantized float input"):
        extract(src)


def test_held_out_list_of_batches_is_one_batch(tmp_path):
    src = _source("raw_input_views")
    x, _ = src.module.held_out_data()
    src.module.held_out_data = lambda: ([x[i:i + 1] for i in range(4)], [0] * 4)
    assert np.array_equal(model_inputs(src)["inputs/held_out_x.npy"], x[:4].numpy())
    src.module.held_out_data = lambda: ([x[i] for i in range(3)], [0] * 3)  # samples without a batch axis
    assert np.array_equal(model_inputs(src)["inputs/held_out_x.npy"], x[:3].numpy())
    src.module.held_out_data = lambda: (x[:, :10], [0] * 12)
    with pytest.raises(GapforgeError, match=r"held_out_data\(\) inputs have shape \[12, 10\], but example_input\(\) "
                                            r"has shape \[1, 72\]"):
        model_inputs(src)


def test_channel_shuffle_permute_is_merged_to_the_kernels_axes():
    from gapforge.ops.permute import merged

    assert merged([1, 3, 2, 5, 5], [0, 2, 1, 3, 4]) == ([3, 2, 25], [1, 0, 2])
    assert merged([1, 2, 3, 4, 5, 6], [0, 5, 4, 3, 2, 1]) == ([2, 3, 4, 5, 6], [4, 3, 2, 1, 0])  # nothing merges
    x = np.arange(2 * 3 * 4 * 5).reshape(1, 2, 3, 4, 5)
    for perm in ([0, 2, 1, 3, 4], [0, 3, 4, 1, 2], [0, 1, 2, 4, 3]):
        shape, p = merged(list(x.shape), perm)
        assert np.array_equal(x.reshape(shape).transpose(p).ravel(), x.transpose(perm).ravel())


@pytest.mark.parametrize("target", ["host", "gap9"])
def test_channel_shuffle_deploys_bit_exact(tmp_path, target):
    out, _ = _deploy_bit_exact(tmp_path, "channel_shuffle", target)
    net = json.loads((out / "network_info.json").read_text())
    assert [op["attrs"]["perm"] for op in net["ops"] if op["type"] == "permute"] == [[0, 2, 1, 3, 4]]


def test_subtractions_lower_to_add_and_add_constant_and_are_exact(tmp_path):
    """QuantTensor - QuantTensor, x - number, number - x, torch.sub of two float conv outputs, Tensor.sub of a
    buffer, sigmoid(x) - 0.5: add with the subtrahend's multiplier negated, add_constant, one table."""
    src = _source("sub_ops")
    net = extract(src)
    subs = [op for op in net.ops if op.type == "add"]
    assert [op.attrs for op in subs] == [{"subtract": True}] * 2
    assert [op.type for op in net.ops].count("add_constant") == 3
    assert [op.attrs["function"] for op in net.ops if op.type == "lut"] == ["sub(sigmoid(x), c)"]
    engine, ours, ref = _exact_against_brevitas(src, net, tmp_path)
    rq = {s.output: s.requant for s in engine.plan.steps if s.requant is not None}
    m = rq["q1"].m[:, 0]
    assert m[0] > 0 and m[1] == -m[0]  # one scale: a - b with the negated multiplier
    # every quantized layer matched (no mismatch at all); the logits are a float32 sum in Brevitas
    assert np.abs(ours - ref).max() < 1e-5 and np.array_equal(ours.argmax(1), ref.argmax(1))


@pytest.mark.parametrize("target", ["host", "gap9"])
def test_subtractions_deploy_bit_exact(tmp_path, target):
    _, layers = _deploy_bit_exact(tmp_path, "sub_ops", target)
    assert len(layers) == 21


def test_a_difference_without_a_quantizer_is_refused_by_the_checker(tmp_path):
    model = tmp_path / "bare_sub.py"
    model.write_text(
        NET_HEAD +
        "        self.q = qnn.QuantIdentity(return_quant_tensor=True)\n"
        "        self.fc1, self.fc2 = qnn.QuantLinear(8, 4, bias=False), qnn.QuantLinear(8, 4, bias=False)\n"
        "    def forward(self, x):\n"
        "        x = self.q(x)\n"
        "        return self.fc1(x) - self.fc2(x)\n"
        + _calibrated_hooks((8,), 16))
    r = run_tool("check_model_compatibility", "--model-file", str(model))
    assert r.returncode == 1 and "NOT DEPLOYABLE" in r.stdout
    assert "network output 'sub' is" in r.stdout and "without an integer encoding" in r.stdout, r.stdout


def test_float_preprocessing_folds_into_the_input_quantizer_and_is_exact(tmp_path):
    """x.float().unsqueeze(1).transpose(2, 3), (x / 255.0 - mean) / std and 1.0 - x * (2 / 255.0) before two input
    quantizers: two quantize ops reading the raw input with the steps replayed on the host; the quantized
    inputs equal Brevitas' integers on every held-out input."""
    src = _source("preprocess_ops")
    net = extract(src)
    quant = [op for op in net.ops if op.type == "quantize"]
    assert [op.inputs for op in quant] == [["input"], ["input"]] and net.tensors["input"].shape == [1, 8, 8]
    steps = [[(s["op"], s.get("reversed", False)) for s in op.attrs["preprocess"]] for op in quant]
    assert steps == [[("reshape", False), ("permute", False), ("div", False), ("sub", False), ("div", False)],
                     [("reshape", False), ("permute", False), ("mul", False), ("sub", True)]]
    assert quant[0].attrs["preprocess"][3]["operand"]["shape"] == [1, 1, 1, 8]
    assert net.tensors["qin"].shape == [1, 1, 8, 8]
    engine, ours, ref = _exact_against_brevitas(src, net, tmp_path)
    x = inputs.stored_arrays(tmp_path / "net", "held_out_x")
    seen = {}
    hooks = [getattr(src.model, n).register_forward_hook(
        lambda m, a, out, n=n: seen.__setitem__(n, (out.value / out.scale).round().numpy())) for n in ("qin", "qin2")]
    with torch.no_grad():
        src.model(torch.from_numpy(x))
    for h in hooks:
        h.remove()
    _, ints = engine.forward(x)
    assert np.array_equal(ints["qin"], seen["qin"]) and np.array_equal(ints["qin2"], seen["qin2"])
    assert len(np.unique(ints["qin"])) > 50  # the normalized pixels use the quantizer's range
    assert np.abs(ours - ref).max() < 1e-5 and np.array_equal(ours.argmax(1), ref.argmax(1))


@pytest.mark.parametrize("target", ["host", "gap9"])
def test_float_preprocessing_deploys_bit_exact(tmp_path, target):
    out, layers = _deploy_bit_exact(tmp_path, "preprocess_ops", target)
    assert len(layers) == 7
    case = out / "test_cases" / "test_case_1"
    raw = np.load(case / "input_fp32.npy")
    q = np.load(case / "intermediate_int8" / "qin.npy")
    assert raw.shape == (1, 8, 8) and raw.max() > 100 and q.shape == (1, 1, 8, 8)  # raw pixels in, codes out


def test_preprocessed_input_without_a_quantizer_is_refused_naming_the_fix(tmp_path):
    model = tmp_path / "bare_pre.py"
    model.write_text(
        NET_HEAD +
        "        self.c = qnn.QuantConv2d(1, 2, 3, bias=False)\n"
        "    def forward(self, x):\n"
        "        return self.c(x / 255.0 - 0.5)\n"
        "def create_model():\n"
        "    return Net().eval()\n"
        "def example_input():\n"
        "    return torch.rand(1, 1, 8, 8) * 255\n")
    r = run_tool("check_model_compatibility", "--model-file", str(model))
    assert r.returncode == 1 and "receives the unquantized float input" in r.stdout
    assert "'sub' is the float preprocessing of the network input (2 steps)" in r.stdout
    assert "put a QuantIdentity right after the preprocessing" in r.stdout, r.stdout


def test_quant_eltwise_add_of_a_negated_quant_tensor_is_exact(tmp_path):
    src = _source("eltwise_sub")
    net = extract(src)
    assert [op.attrs["function"] for op in net.ops if op.type == "lut"] == ["neg(x)"]
    engine, ours, ref = _exact_against_brevitas(src, net, tmp_path)
    assert np.abs(ours - ref).max() < 1e-5 and np.array_equal(ours.argmax(1), ref.argmax(1))


def test_preprocessing_that_divides_by_zero_is_refused_in_one_line(tmp_path):
    """(x - mean) / std with a zero std: the quantizer calibrated on inf is refused naming the preprocessing's
    values (not the 'add a QuantIdentity' hint: there is one), and NaN made by the host-side replay of the
    preprocessing (0 / 0) is refused naming the quantizer, not a ValueError."""
    import types

    from gapforge.ops.quantize import _preprocessed

    model = tmp_path / "zero_std.py"
    model.write_text(
        "import torch, torch.nn as nn, brevitas.nn as qnn\n"
        "from brevitas.graph.calibrate import calibration_mode\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.register_buffer('std', torch.tensor([0.25, 0.0]).reshape(1, 2, 1, 1))\n"
        "        self.q = qnn.QuantIdentity(return_quant_tensor=True)\n"
        "        self.conv = qnn.QuantConv2d(2, 4, 3, bias=True)\n"
        "    def forward(self, x):\n"
        "        return self.conv(self.q((x - 0.5) / self.std))\n"
        + _calibrated_hooks((2, 6, 6), 8))
    r = run_tool("check_model_compatibility", "--model-file", str(model))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "quantizer 'q': scale inf is not a positive finite number" in r.stdout, r.stdout
    assert "a division by zero makes inf or NaN" in r.stdout and "right after the preprocessing" not in r.stdout
    step = types.SimpleNamespace(output="qin", attrs={"preprocess": [
        {"op": "div", "operand": {"shape": [1, 2], "values": [1.0, 0.0]}, "reversed": False}]})
    assert _preprocessed(step, np.array([[1.0, 2.0]], np.float32)).tolist() == [[1.0, float("inf")]]
    with pytest.raises(GapforgeError, match=r"preprocessing of the network input before quantizer 'qin' \(a division "
                                            r"by zero\?\): NaN at index \[0, 1\]"):
        _preprocessed(step, np.array([[1.0, 0.0]], np.float32))


def _conv_ops(net):
    return {op.name: op for op in net.ops if op.type == "conv2d"}


def test_conv_transpose2d_decoder_lowers_to_stacked_phase_convs_exact_against_brevitas(tmp_path):
    """Each QuantConvTranspose2d is one stride-1 conv2d of its s^2 phases (channels stacked, per-channel weight
    scales and the Int32Bias replicated per phase), interleaved by views and one permute; k=4 s=2 p=1 takes 2x2
    taps a phase and cuts its first row and column. Exact on the held-out inputs, layer by layer."""
    src = _source("conv_transpose_decoder")
    net = extract(src)
    convs = _conv_ops(net)
    shapes = {n: (convs[n].params["weight"].shape, convs[n].attrs["padding"]) for n in ("up1", "up2", "up3")}
    assert shapes == {"up1": ([20, 6, 2, 2], [0, 0, 1, 1]), "up2": ([16, 5, 2, 2], [1, 1, 1, 1]),
                      "up3": ([8, 4, 1, 1], [0, 0, 0, 0])}
    assert all(convs[n].attrs["stride"] == [1, 1] for n in shapes)
    w = convs["up1"].params["weight"]
    assert w.channel_axis == 0 and len(w.scale) == 20 and w.scale[:5] == w.scale[5:10] == w.scale[15:]
    assert [net.tensors[n].shape for n in ("up1", "up2", "up2.crop~2", "up3.interleaved")] == \
        [[1, 20, 3, 3], [1, 16, 7, 7], [1, 4, 12, 12], [1, 2, 24, 24]]
    crops = [op.attrs for op in net.ops if op.type == "slice"]
    assert crops == [{"axis": 2, "start": 1, "stop": 13, "step": 1}, {"axis": 3, "start": 1, "stop": 13, "step": 1}]
    assert sum(op.type == "permute" for op in net.ops) == 3
    # the accumulators keep their per-channel scale (up1) / float bias offset (up3) through the views: the
    # stacked channels' values repeat with the period of the module's channels
    ph1, ph3 = net.tensors["up1.phases"], net.tensors["up3.phases"]
    assert (ph1.shape, ph1.channel_axis, len(ph1.scale)) == ([1, 2, 2, 5, 3, 3], 3, 5)
    assert (ph3.channel_axis, len(ph3.offset), ph3.per_channel) == (3, 2, False)
    _, ours, ref, rep = _exact_report(src, net, tmp_path)
    # the last layer returns its accumulator (float bias): Brevitas' float32 values up to their rounding
    assert ours.shape == ref.shape == (8, 2, 24, 24) and np.abs(ours - ref).max() < 1e-5 * np.abs(ref).max()
    assert rep.top1_agreement == 1.0


def test_conv_transpose1d_depthwise_and_grouped_exact_against_brevitas(tmp_path):
    """QuantConvTranspose1d over (batch, channels, time): conv2d over the map of height 1 with s phases; the
    depthwise (groups = channels) and grouped ones stack (group, phase, channel), which a 1-D interleave moves
    with one permute."""
    src = _source("conv_transpose_1d")
    net = extract(src)
    convs = _conv_ops(net)
    assert [(convs[n].params["weight"].shape, convs[n].attrs["groups"]) for n in ("up1", "dw", "up3")] == \
        [([12, 4, 1, 2], 1), ([8, 1, 1, 2], 4), ([12, 2, 1, 1], 2)]
    assert [net.tensors[n].shape for n in ("up1.crop", "dw", "dw.crop", "up3.interleaved")] == \
        [[1, 4, 20], [1, 8, 21], [1, 4, 40], [1, 6, 80]]
    assert sum(op.type == "permute" for op in net.ops) == 3
    _, ours, ref, _ = _exact_report(src, net, tmp_path)
    assert ours.shape == ref.shape == (8, 6, 80) and np.abs(ours - ref).max() < 1e-5 * np.abs(ref).max()


def test_pixel_shuffle_and_unshuffle_are_views_and_permutes_exact_against_brevitas(tmp_path):
    src = _source("pixel_shuffle")
    net = extract(src)
    assert {op.type for op in net.ops} == {"quantize", "conv2d", "relu", "requantize", "reshape", "permute"}
    assert sum(op.type == "permute" for op in net.ops) == 4  # two each: the channel blocks, the phases
    assert net.tensors["shuffle.interleaved"].shape == [1, 3, 8, 10]
    _, ours, ref, _ = _exact_report(src, net, tmp_path)
    assert ours.shape == ref.shape == (8, 3, 4, 5) and np.abs(ours - ref).max() < 1e-5 * np.abs(ref).max()


@pytest.mark.parametrize("target", ["host", "gap9"])
@pytest.mark.parametrize("model", ["conv_transpose_decoder", "conv_transpose_1d", "pixel_shuffle"])
def test_conv_transpose_and_pixel_shuffle_deploy_bit_exact(tmp_path, model, target):
    _, layers = _deploy_bit_exact(tmp_path, model, target)  # gap9: on gap9-emu, tiled
    assert len(layers) >= 10


def test_conv_transpose_decoder_deploys_bit_exact_on_rv32(tmp_path):
    from codegen import toolchains

    ok, why = toolchains.available("rv32")
    if not ok:
        pytest.skip(f"rv32 toolchain: {why}")
    _, layers = _deploy_bit_exact(tmp_path, "conv_transpose_decoder", "rv32")
    assert len(layers) >= 10


def test_conv_transpose_with_dilation_is_refused_in_one_line(tmp_path):
    model = tmp_path / "dilated_up.py"
    model.write_text(
        NET_HEAD +
        "        self.q = qnn.QuantIdentity(return_quant_tensor=True)\n"
        "        self.up = qnn.QuantConvTranspose2d(2, 2, 2, stride=2, dilation=2)\n"
        "    def forward(self, x):\n"
        "        return self.up(self.q(x))\n"
        + _calibrated_hooks((2, 4, 4), 8))
    r = run_tool("check_model_compatibility", "--model-file", str(model))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    fails = [line for line in r.stdout.splitlines() if "FAIL" in line]
    assert fails == ["  FAIL  up          QuantConvTranspose2d: dilation=(2, 2) is not supported (only 1)"], r.stdout


def test_upsampling_decoders_lower_to_upsample_and_are_exact(tmp_path):
    """nn.Upsample then torch.cat with the skip connection, F.interpolate(size=...) of a plain tensor added to a
    lateral convolution, nn.UpsamplingNearest2d, scale_factor=(2, 1) of a convolution's accumulator, and the 1-D
    forms on (N, C, T): each an upsample op repeating the integers (Brevitas keeps the scale), no mismatch."""
    src = _source("unet_upsample")
    net = extract(src)
    ups = [(op.attrs["factors"], net.tensors[op.inputs[0]].kind) for op in net.ops if op.type == "upsample"]
    assert ups == [([2, 2], "quant"), ([2, 2], "quant"), ([2, 2], "quant"), ([2, 1], "acc")]
    (cat,) = [op for op in net.ops if op.type == "concat"]
    producer = {op.outputs[0]: op for op in net.ops}
    requant = producer[cat.inputs[0]]  # the shared QuantIdentity on the upsampled branch
    assert requant.type == "requantize" and producer[requant.inputs[0]].type == "upsample"
    _, ours, ref, rep = _exact_report(src, net, tmp_path, near_ties=True)
    assert ours.shape == (8, 2, 8, 6) and rep.top1_agreement == 1.0
    # the logits, an accumulator times its scale, equal Brevitas' but where a near-tie upstream moved an input LSB
    same = np.abs(ours - ref) <= 1e-6 * np.abs(ref).max()
    moved = sum(lf.near_tie_mismatches for lf in rep.teacher_forced)
    assert same.mean() >= 0.95 and (moved > 0 or same.all()), (same.mean(), moved)
    src = _source("upsample1d")
    net = extract(src)
    assert [op.attrs["factors"] for op in net.ops if op.type == "upsample"] == [[3], [2]]
    _, ours, ref, _ = _exact_report(src, net, tmp_path / "1d")
    assert ours.shape == (8, 2, 8) and np.abs(ours - ref).max() <= 1e-6 * np.abs(ref).max()


@pytest.mark.parametrize("target", ["host", "gap9"])
@pytest.mark.parametrize("model", ["unet_upsample", "upsample1d"])
def test_upsampling_deploys_bit_exact(tmp_path, model, target):
    out, layers = _deploy_bit_exact(tmp_path, model, target)
    assert len(layers) == {"unet_upsample": 18, "upsample1d": 6}[model]
    if target == "gap9":
        calls = (out / "project_gap9" / "src" / "network.c").read_text()
        assert calls.count("gf_upsample(") == {"unet_upsample": 4, "upsample1d": 2}[model]


@pytest.mark.parametrize("up, message", [
    (torch.nn.Upsample(scale_factor=2, mode="bicubic"),
     r"module 'up2' \(Upsample\): nn.Upsample mode='bicubic' upsampling is not supported \(only mode='nearest', "
     r"'linear' and 'bilinear' by integer scale factors\)"),
    (torch.nn.Upsample(scale_factor=2, mode="area"), r"module 'up2' \(Upsample\): nn.Upsample mode='area'"),
    (torch.nn.Upsample(scale_factor=1.5),
     r"module 'up2' \(Upsample\): nn.Upsample from \[8, 8\] to \[12, 12\] is not by integer factors"),
    (torch.nn.Upsample(scale_factor=1.5, mode="bilinear"),
     r"module 'up2' \(Upsample\): nn.Upsample from \[8, 8\] to \[12, 12\] is not by integer factors"),
    (torch.nn.Upsample(scale_factor=2, mode="linear"),  # torch itself refuses it; the error names the module
     r"inside module 'up2' at unet_upsample.py:\d+ .*NotImplementedError: Got 4D input, but linear mode needs 3D"),
])
def test_upsampling_other_modes_and_fractional_factors_are_refused(up, message):
    src = _source("unet_upsample")
    src.model.up2 = up
    with pytest.raises(GapforgeError) as err:
        extract(src)
    assert re.search(message, err.value.one_line()), err.value.one_line()


def test_bilinear_antialias_is_refused_naming_the_module():
    src = _source("unet_bilinear")
    model = src.model

    def fwd(x, m=model):
        return torch.nn.functional.interpolate(m.r2(m.enc2(m.pool(m.r1(m.enc1(m.qin(x)))))), scale_factor=2,
                                               mode="bilinear", antialias=True)

    model.forward = fwd
    with pytest.raises(GapforgeError) as err:
        extract(src)
    assert "F.interpolate mode='bilinear' with antialias=True is not supported" in err.value.one_line()


def test_bilinear_decoders_lower_to_exact_weighted_sums(tmp_path):
    """nn.Upsample(mode='bilinear') then torch.cat with the skip through a shared QuantIdentity,
    F.interpolate(mode='bilinear', align_corners=True) of a plain tensor added to a lateral convolution (FPN),
    nn.UpsamplingBilinear2d into a QuantConv2d's input quantizer, a (3, 2) factor after a zero-point quantizer,
    and the 1-D linear forms: each an upsample op in mode linear whose int32 output has the input's scale over
    the denominator of its weights (16, 7 * 7, 15 * 15, 6 * 4; 6, 27), no mismatch with Brevitas."""
    src = _source("unet_bilinear")
    net = extract(src)
    ups = [op for op in net.ops if op.type == "upsample"]
    assert [(op.attrs["factors"], op.attrs["align_corners"], op.attrs["mode"]) for op in ups] == [
        ([2, 2], False, "linear"), ([2, 2], True, "linear"), ([2, 2], True, "linear"), ([3, 2], False, "linear")]
    ratios = [net.tensors[op.inputs[0]].scale / net.tensors[op.outputs[0]].scale for op in ups]
    assert np.allclose(ratios, [16, 49, 225, 24], rtol=1e-12)
    assert [net.tensors[op.outputs[0]].kind for op in ups] == ["acc"] * 4
    assert net.tensors[ups[3].inputs[0]].zero_point != 0
    consumers = {i: op.type for op in net.ops for i in op.inputs}
    assert [consumers[op.outputs[0]] for op in ups] == ["requantize", "add", "requantize", "requantize"]
    _, ours, ref, rep = _exact_report(src, net, tmp_path)
    assert rep.top1_agreement == 1.0
    assert np.abs(ours - ref).max() <= 1e-6 * np.abs(ref).max()
    src = _source("upsample1d_linear")
    net = extract(src)
    ups = [op for op in net.ops if op.type == "upsample"]
    assert [(op.attrs["factors"], op.attrs["align_corners"]) for op in ups] == [([3], False), ([2], True)]
    assert np.allclose([net.tensors[op.inputs[0]].scale / net.tensors[op.outputs[0]].scale for op in ups], [6, 27])
    _, ours, ref, _ = _exact_report(src, net, tmp_path / "1d")
    assert np.abs(ours - ref).max() <= 1e-6 * np.abs(ref).max()


@pytest.mark.parametrize("target", ["host", "gap9"])
@pytest.mark.parametrize("model", ["unet_bilinear", "upsample1d_linear"])
def test_bilinear_upsampling_deploys_bit_exact(tmp_path, model, target):
    out, layers = _deploy_bit_exact(tmp_path, model, target)
    assert len(layers) == {"unet_bilinear": 19, "upsample1d_linear": 8}[model]
    if target == "gap9":
        calls = (out / "project_gap9" / "src" / "network.c").read_text()
        assert calls.count("gf_upsample_linear(") == {"unet_bilinear": 4, "upsample1d_linear": 2}[model]


def test_clamps_of_the_raw_input_fold_into_the_input_quantizers_and_are_exact(tmp_path):
    """x.clamp(0, 1), F.hardtanh, F.relu, nn.ReLU6, torch.clip(max=), clamp_min, nn.ReLU, clamp_(max=) and
    nn.Hardtanh on the raw input: clamp steps of the host-side quantize ops; the quantized inputs equal
    Brevitas' integers on every held-out input."""
    src = _source("raw_input_clamps")
    net = extract(src)
    quant = [op for op in net.ops if op.type == "quantize"]
    assert [op.inputs for op in quant] == [["input"]] * 5
    steps = [[(s["op"], s.get("min"), s.get("max")) for s in op.attrs["preprocess"]] for op in quant]
    assert steps == [[("clamp", 0.0, 1.0)], [("mul", None, None), ("clamp", -1.0, 1.0)],
                     [("clamp", 0.0, None), ("mul", None, None), ("clamp", 0.0, 6.0)],
                     [("clamp", None, 0.25), ("clamp", -0.7, None)],
                     [("clamp", 0.0, None), ("clamp", None, 0.8), ("clamp", -0.5, 0.5)]]
    engine, ours, ref = _exact_against_brevitas(src, net, tmp_path)
    x = inputs.stored_arrays(tmp_path / "net", "held_out_x")
    assert (x < -1).any() and (x > 1).any()  # every clamp bites
    seen = {}
    hooks = [q.register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(i, (out / m.act_quant.scale()).round()
                                                                            .numpy())) for i, q in enumerate(src.model.qs)]
    with torch.no_grad():
        src.model(torch.from_numpy(x))
    for h in hooks:
        h.remove()
    _, ints = engine.forward(x)
    for i, op in enumerate(quant):
        assert np.array_equal(ints[op.outputs[0]], seen[i]), op.outputs[0]
    assert len(np.unique(ints[quant[0].outputs[0]])) > 50 and (ints[quant[0].outputs[0]] >= 0).all()
    assert np.abs(ours - ref).max() < 1e-5 and np.array_equal(ours.argmax(1), ref.argmax(1))


@pytest.mark.parametrize("target", ["host", "gap9"])
def test_clamps_of_the_raw_input_deploy_bit_exact(tmp_path, target):
    _, layers = _deploy_bit_exact(tmp_path, "raw_input_clamps", target)
    assert len(layers) == 10


def test_a_clamp_of_the_raw_input_by_a_tensor_is_refused_in_one_line(monkeypatch):
    src = _source("raw_input_clamps")
    monkeypatch.setattr(type(src.model), "forward", lambda self, x: self.fc(self.r(self.conv(self.catq(
        torch.cat([q(x.clamp(min=torch.zeros(1, 2, 1, 1))) for q in self.qs], 1)))).flatten(1)))
    with pytest.raises(GapforgeError, match=r"call to clamp .*: clamp of the float network input with a Tensor bound; "
                                            r"only number bounds fold"):
        extract(src)


def test_indexing_the_raw_input_folds_into_the_input_quantizers_and_is_exact(tmp_path):
    """x.squeeze(1), x[:, 0] and x[..., 1:, ::2].flatten(1) of the raw input: reshape and index steps of the
    host-side quantize ops, replayed on the held-out batch; no mismatch."""
    src = _source("raw_input_index")
    net = extract(src)
    quant = [op for op in net.ops if op.type == "quantize"]
    assert [op.attrs["preprocess"] for op in quant] == [
        [{"op": "reshape", "shape": [4, 10]}, {"op": "index", "key": [[None, None, None], 0]}],
        [{"op": "reshape", "shape": [4, 10]}, {"op": "index", "key": [[None, None, None], [1, None, None],
                                                                      [None, None, 2]]},
         {"op": "reshape", "shape": [15]}]]
    assert [net.tensors[op.outputs[0]].shape for op in quant] == [[1, 10], [1, 15]]
    engine, ours, ref = _exact_against_brevitas(src, net, tmp_path)
    assert ours.shape == (12, 3) and np.abs(ours - ref).max() < 1e-5 and np.array_equal(ours.argmax(1), ref.argmax(1))
    _deploy_bit_exact(tmp_path, "raw_input_index")


@pytest.mark.parametrize("forward, message", [
    (lambda self, x: x[0], r"call to getitem .*: indexes the batch axis of the float network input .*"
                           r"\(hint: index the other axes only, e\.g\. x\[:, 0\]"),
    (lambda self, x: x[:, None, 0], r"indexing the float network input with NoneType .* is not supported"),
    (lambda self, x: x.squeeze(1).unsqueeze(0)[0], r"unsqueeze of the float network input changes the batch axis "
                                                   r"\(hint: keep the batch axis first\)"),
])
def test_batch_indexing_of_the_raw_input_is_refused_in_one_line(monkeypatch, forward, message):
    src = _source("raw_input_index")
    monkeypatch.setattr(type(src.model), "forward", lambda self, x: self.fa(self.qa(forward(self, x).reshape(1, -1)[:, :10])))
    with pytest.raises(GapforgeError) as err:
        extract(src)
    assert re.search(message, err.value.one_line()), err.value.one_line()


# -- brevitas.nn.QuantLSTM / QuantRNN (gapforge/ops/rnn.py) ---------------------------------------------
def _op_counts(net) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in net.ops:
        counts[op.type] = counts.get(op.type, 0) + 1
    return counts


def test_quant_lstm_unrolls_into_integer_ops_equal_to_brevitas(tmp_path):
    """QuantLSTM(4, 8) with Brevitas' defaults over T = 6, y[:, -1] classified: per step one linear per gate (over
    [x, h] after the first step, the two weights share their quantizer), five tables and three products (at t = 0
    the forget gate times the zero state is 0: neither is computed); y[:, -1] is the last step's h (no slice). Every internal
    tensor is compared with Brevitas' own (teacher-forced) with no mismatch at all."""
    src = _source("quant_lstm")
    net = extract(src)
    counts = _op_counts(net)
    assert counts["linear"] == 4 * 6 - 1 + 1 and counts["lut"] == 5 * 6 - 1 and counts["mul"] == 3 * 6 - 1
    assert "slice" not in {op.type for op in net.ops if op.inputs[0].startswith("lstm.y")}
    gates = {op.name: op.params["weight"].shape for op in net.ops if op.type == "linear" and ".t" in op.name}
    assert gates["lstm.layers.0.0.t0.input.acc"] == [8, 4] and gates["lstm.layers.0.0.t5.output.acc"] == [8, 4 + 8]
    luts = [op.attrs["function"] for op in net.ops if op.type == "lut" and ".t3." in op.name]
    assert luts == ["sigmoid(x)", "sigmoid(x)", "tanh(x)", "sigmoid(x)", "tanh(x)"]
    _, ours, ref, rep = _exact_report(src, net, tmp_path)
    assert len(rep.teacher_forced) > 90 and all(lf.compared for lf in rep.teacher_forced)
    assert np.abs(ours - ref).max() < 1e-5 * np.abs(ref).max() and rep.top1_agreement == 1.0


def test_quant_rnn_with_two_weight_scales_sums_two_accumulators_exactly(tmp_path):
    """Input-to-hidden and hidden-to-hidden weights with different scales: per step after the first, two
    linears and one add of the accumulators, requantized once; every step equals Brevitas."""
    src = _source("quant_rnn_two_scales")
    net = extract(src)
    assert [op.type for op in net.ops if op.name.startswith("rnn.layers.0.0.t3.")] == ["linear", "linear", "add",
                                                                                      "requantize", "lut"]
    _, ours, ref, rep = _exact_report(src, net, tmp_path)
    assert all(lf.compared for lf in rep.teacher_forced) and np.abs(ours - ref).max() < 1e-5 * np.abs(ref).max()


@pytest.mark.parametrize("model, shape", [("quant_lstm", (6, 4)), ("quant_lstm_stacked", (5, 3)),
                                          ("quant_rnn", (5, 4))])
def test_recurrent_reference_equals_brevitas_on_random_inputs(tmp_path, model, shape):
    """256 random inputs three times wider than the calibration range (saturating gates and states): every step
    of every layer and direction, fed Brevitas' own integers, equals Brevitas except at documented near-ties."""
    src = _source(model)
    net = extract(src)
    write_network(net, tmp_path / "net", model_inputs(src))
    engine = INT8InferenceEngine(tmp_path / "net")
    torch.manual_seed(5)
    x = ((torch.rand(256, *shape) * 2 - 1) * 3).numpy()
    rep = fidelity.check(src.model, engine, x, src.name)
    assert all(lf.compared for lf in rep.teacher_forced)
    assert sum(lf.elements for lf in rep.teacher_forced) > 256 * 500
    assert rep.unexplained == 0 and rep.outside_window == 0 and rep.passed


@pytest.mark.parametrize("model, target", [("quant_lstm", "host"), ("quant_lstm", "gap9"),
                                           ("quant_lstm_stacked", "gap9"), ("quant_rnn", "gap9")])
def test_recurrent_models_deploy_bit_exact(tmp_path, model, target):
    out, layers = _deploy_bit_exact(tmp_path, model, target)
    net = json.loads((out / "network_info.json").read_text())
    assert not any(op["type"] in ("scan", "QuantLSTM") for op in net["ops"]) and len(layers) > 60


@pytest.mark.parametrize("layer, call, words", [
    ("qnn.QuantLSTM(4, 8, batch_first=True)", "y, _ = self.l(x, torch.zeros(1, 1, 8))", ["hx is given"]),
    ("qnn.QuantLSTM(4, 8, batch_first=True, gate_acc_quant=None)", "y, _ = self.l(x)", ["gate_acc_quant is None"]),
    ("qnn.QuantLSTM(4, 8, batch_first=True, coupled_input_forget_gates=True)", "y, _ = self.l(x)",
     ["coupled_input_forget_gates=True"]),
    ("qnn.QuantRNN(4, 8, batch_first=True, io_quant=None)", "y, _ = self.l(x)", ["io_quant is None"]),
    ("qnn.QuantLSTM(4, 8)", "y, _ = self.l(x)", ["batch_first=False, but its input is batch first"]),
    ("qnn.QuantLSTM(4, 8, batch_first=True)", "y, (h, c) = self.l(x); y = h.view(-1, 8)", ["h_n is read by call to view", "h_n[-1]"]),
], ids=["hx", "gate-acc-none", "cifg", "io-quant-none", "seq-first", "h-n-view"])
def test_recurrent_layer_refusals_name_the_module_and_the_argument(tmp_path, layer, call, words):
    model = tmp_path / "rnn_bad.py"
    model.write_text(
        NET_HEAD +
        "        self.q = qnn.QuantIdentity(return_quant_tensor=True)\n"
        f"        self.l = {layer}\n"
        "        self.fc = qnn.QuantLinear(8, 3)\n"
        "    def forward(self, x):\n"
        "        x = self.q(x)\n"
        f"        {call}\n"
        "        return self.fc(y[:, -1] if y.dim() == 3 else y)\n"
        + _calibrated_hooks((6, 4), 8, seed=0))
    rep = check_model(load_model(argparse.Namespace(test_network=None, model_file=str(model), model_class=None,
                                                    input_shape=None))).to_json()
    bad = [i for i in rep["items"] if i["status"] == "unsupported"]
    assert not rep["deployable"] and len(bad) == 1 and bad[0]["name"] == "l" and bad[0]["hint"], rep
    assert "\n" not in bad[0]["message"] and all(w in bad[0]["message"] + " " + bad[0]["hint"] for w in words), bad


def test_recurrent_layer_refusal_is_one_line_and_exit_2_without_output(tmp_path):
    model = tmp_path / "rnn_hx.py"
    model.write_text(
        NET_HEAD +
        "        self.q = qnn.QuantIdentity(return_quant_tensor=True)\n"
        "        self.l = qnn.QuantRNN(4, 8, batch_first=True)\n"
        "    def forward(self, x):\n"
        "        return self.l(self.q(x), torch.zeros(1, 1, 8))[0]\n"
        + _calibrated_hooks((6, 4), 8))
    r = run_tool("pytorch_extractor", "--model-file", str(model), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and not (tmp_path / "out").exists() and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        "pytorch_extractor.py: error: module 'l' (QuantRNN): hx is given: initial states are not supported "
        "(hint: call it without hx (the zero initial state))")


def test_brevitas_pools_a_quant_tensor_to_scale_s_over_n_and_its_linear_reads_the_float_value():
    """The Brevitas 0.13 facts docs/integer_contract.md (section 2) builds on: AdaptiveAvgPool2d / AvgPool2d of
    an IntQuantTensor give an IntQuantTensor of scale fl32(s) / N (float32) and bit width
    ceil(log2((2^b - 1) * N)) whose value is the float32 average (not exactly scale * integer); the 1-D pools
    and torch.mean give plain tensors; a QuantLinear without input quantizer computes F.linear of that value
    with its quantized weight (a float bias as is; Int32Bias rounded with the pool's scale)."""
    from brevitas.quant import Int32Bias

    torch.manual_seed(0)
    relu = qnn.QuantReLU(return_quant_tensor=True).eval()
    with torch.no_grad():
        q = relu(torch.rand(4, 6, 7, 7) * 3)
        codes = torch.round(q.value / q.scale).double()
        for pool in (torch.nn.AdaptiveAvgPool2d(1), torch.nn.AvgPool2d(7)):
            p = pool(q)
            assert type(p).__name__ == "IntQuantTensor" and p.scale.dtype == torch.float32
            assert p.scale.item() == (q.scale / torch.tensor(49.0)).item() and p.bit_width.item() == 14
            sums = codes.sum((2, 3), keepdim=True)
            assert 0 < float((p.value.double() / p.scale.double() - sums).abs().max()) < 0.01  # float32 noise
        assert type(torch.mean(q, (2, 3))).__name__ == "Tensor"
        assert type(torch.nn.AdaptiveAvgPool1d(1)(relu(torch.rand(2, 3, 10)))).__name__ == "Tensor"
        flat = torch.flatten(torch.nn.AdaptiveAvgPool2d(1)(q), 1)
        for fc in (qnn.QuantLinear(6, 4, bias=True), qnn.QuantLinear(6, 4, bias=True, bias_quant=Int32Bias)):
            fc.eval()
            w = fc.quant_weight()
            bias = fc.bias if not fc.bias_quant.is_quant_enabled else \
                torch.round(fc.bias / (flat.scale * w.scale)) * (flat.scale * w.scale)
            assert torch.equal(fc(flat), torch.nn.functional.linear(flat.value, w.value) + bias)


def _pool_sum_linears(net):
    """The linear ops reading int32 codes, each with the pool its input comes from (through reshapes)."""
    found = {}
    for op in net.ops:
        if op.type == "linear" and net.tensors[op.inputs[0]].kind == "acc":
            prod = net.producer_of(op.inputs[0])
            while prod.type == "reshape":
                prod = net.producer_of(prod.inputs[0])
            found[op.name] = prod.type
    return found


@pytest.mark.parametrize("name,linears", [("gap_linear", 1), ("gap_linear_forms", 4), ("gap_linear_1d", 3)])
def test_global_average_pool_into_a_quantlinear_reads_the_int32_sums_exactly(tmp_path, name, linears):
    """A QuantLinear without input quantizer after a global average pool (every form) reads the window sums
    (int32 codes, scale s / N); teacher-forced no mismatch on any layer, free-running every layer equal, the
    logits equal Brevitas' float32 ones up to its rounding."""
    src = _source(name)
    net = extract(src)
    assert list(_pool_sum_linears(net).values()) == ["avgpool2d"] * linears
    engine, ours, ref, rep = _exact_report(src, net, tmp_path, near_ties=True)
    assert rep.top1_agreement == 1.0
    if rep.total_mismatches == 0:  # no near-tie in these inputs (torch's thread count decides): equal everywhere
        assert all(lf.mismatches == 0 for lf in rep.free_running)
        assert 0 < np.abs(ours - ref).max() < 1e-6 * np.abs(ref).max()
    for step in engine.plan.steps:  # the accumulator bound comes from the pool: N * max|q|, not 2^31
        if step.main_op in _pool_sum_linears(net):
            x = engine.net.tensors[engine.net.op_by_name(step.main_op).inputs[0]]
            assert int(step.acc_bound.max()) < 2**31 and x.kind == "acc"
            assert tensor_abs_max(engine.net, x.name) == 64 * 255  # 8 x 8 maps, 64 time steps; QuantReLU: uint8
    if name == "gap_linear_forms":  # Int32Bias: an integer bias at the pool's scale; float biases: offsets
        assert [op.module for op in net.ops if op.type == "linear" and "bias" in op.params] == ["fc_a"]


@pytest.mark.parametrize("name,target", [("gap_linear", "host"), ("gap_linear", "gap9"), ("gap_linear_forms", "gap9"),
                                         ("gap_linear_1d", "host")])
def test_global_average_pool_into_a_quantlinear_deploys_bit_exact(tmp_path, name, target):
    out, layers = _deploy_bit_exact(tmp_path, name, target)
    assert len(layers) >= 5
    if target == "gap9":  # the int32-input copy of gf_linear is linked (only) when a call reads int32 codes
        plan = json.loads((out / "project_gap9" / "plan.json").read_text())
        assert "GF_K_LINEAR_S32" in plan["build"]["defines"] and "GF_K_LINEAR" in plan["build"]["defines"]
    elif name == "gap_linear":  # new weights are checked against the recorded bound of the sums (64 * 255)
        plan = json.loads((out / "project_host" / "plan.json").read_text())
        fc = next(rec for rec in plan["layout"]["steps"] if rec["name"] == "fc")
        assert [enc.get("abs_max") for enc in fc["inputs"].values()] == [64 * 255]
        r = run_tool("update_weights", "--project", str(out / "project_host"), "--model-file", str(MODELS / f"{name}.py"))
        assert r.returncode == 0 and "UPDATED" in r.stdout, r.stdout + r.stderr


def test_pool_sums_beyond_the_int32_proof_are_refused_naming_the_layer():
    r = run_tool("check_model_compatibility", "--model-file", str(MODELS / "gap_linear_overflow.py"))
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr
    assert "linear 'fc': the int32 accumulator can overflow" in r.stdout
    assert "its input 'flatten' holds int32 codes up to 261120: put a QuantIdentity before this layer" in r.stdout


def test_pool_sums_into_a_convolution_are_refused_with_the_quantizer_to_add(tmp_path):
    model = tmp_path / "pool_conv.py"
    model.write_text(
        NET_HEAD +
        "        self.q = qnn.QuantIdentity(return_quant_tensor=True)\n"
        "        self.conv = qnn.QuantConv2d(1, 4, 3, padding=1)\n"
        "        self.relu = qnn.QuantReLU(return_quant_tensor=True)\n"
        "        self.head = qnn.QuantConv2d(4, 3, 1)\n"
        "    def forward(self, x):\n"
        "        return self.head(nn.functional.adaptive_avg_pool2d(self.relu(self.conv(self.q(x))), 1))\n"
        + _calibrated_hooks((1, 6, 6), 16))
    r = run_tool("check_model_compatibility", "--model-file", str(model))
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr
    assert "QuantConv2d: its input is an int32 accumulator (no 8-bit encoding; only a linear layer reads int32 " \
           "codes" in r.stdout and "head " in r.stdout and "put a quantizer (QuantIdentity/QuantReLU) before this " \
           "layer (or set its input_quant)" in r.stdout


def test_a_bias_free_conv_accumulator_read_by_a_quantlinear_is_exact_when_bounded(tmp_path):
    """The rule is general: a QuantLinear without input quantizer reads any accumulator without offset whose
    bound its producer proves (here a bias-free QuantConv2d's, sum |w| * 255), bit-exact on the host."""
    model = tmp_path / "conv_lin.py"
    model.write_text(
        NET_HEAD +
        "        self.q = qnn.QuantIdentity(return_quant_tensor=True)\n"
        "        self.conv = qnn.QuantConv2d(1, 4, 3, padding=1, bias=False, return_quant_tensor=True)\n"
        "        self.fc = qnn.QuantLinear(4 * 36, 3)\n"
        "    def forward(self, x):\n"
        "        return self.fc(torch.flatten(self.conv(self.q(x)), 1))\n"
        "def create_model():\n"
        "    from brevitas.graph.calibrate import calibration_mode\n"
        "    torch.manual_seed(0)\n"
        "    m = Net().eval()\n"
        "    with torch.no_grad(), calibration_mode(m):\n"
        "        m(torch.rand(16, 1, 6, 6))\n"
        "    return m.eval()\n"
        "def example_input():\n"
        "    torch.manual_seed(1)\n"
        "    return torch.rand(1, 1, 6, 6)\n")
    out = tmp_path / "out"
    r = run_tool("deploy", "--model-file", str(model), "--out", str(out), "--target", "host")
    assert r.returncode == 0 and "RESULT: PASS" in r.stdout and "0 unexplained" in r.stdout, r.stdout[-2000:]
    info = json.loads((out / "network_info.json").read_text())
    fc = next(op for op in info["ops"] if op["type"] == "linear")
    assert info["tensors"][fc["inputs"][0]]["kind"] == "acc"


def test_empty_sequential_shortcut_is_the_identity(tmp_path):
    """nn.Sequential() as a residual block's identity shortcut is a container like any other: traced through, so the
    add takes the block's input itself; the projection shortcut (conv 1x1 + BatchNorm in a Sequential) is a conv."""
    src = _source("resnet_cifar")
    net = extract(src)
    producer = {op.outputs[0]: op for op in net.ops}
    adds = [op for op in net.ops if op.type == "add"]
    assert len(adds) == 2
    # block 1: the identity shortcut's operand is the block's input (what its conv1 reads), requantized by qadd
    shortcut = producer[adds[0].inputs[1]]
    (conv1,) = [op for op in net.ops if op.name == "layer1.0.conv1"]
    assert shortcut.type == "requantize" and shortcut.inputs == conv1.inputs
    # block 2: the projection shortcut is a 1x1 convolution of the first block's output
    proj = producer[producer[adds[1].inputs[1]].inputs[0]]
    assert proj.type == "conv2d" and proj.attrs["kernel_size"] == [1, 1] and proj.attrs["stride"] == [2, 2]
    _, ours, ref, rep = _exact_report(src, net, tmp_path, near_ties=True)
    assert rep.top1_agreement == 1.0 and ours.shape == ref.shape == (48, 10)
    _, layers = _deploy_bit_exact(tmp_path / "deploy", "resnet_cifar", "gap9")
    assert len(layers) == 13


def test_max_pool_of_the_relu_of_a_biased_accumulator_pools_then_relus(tmp_path):
    """F.max_pool2d(F.relu(conv(x))) with a float conv bias: maxpool2d of the accumulator, then the ReLU (whose real
    result the QuantIdentity requantizes); no relu op is left before the pool; exact against Brevitas."""
    src = _source("functional_cnn")
    net = extract(src)
    assert [op.type for op in net.ops] == ["quantize", "conv2d", "maxpool2d", "relu", "requantize", "conv2d",
                                           "maxpool2d", "relu", "requantize", "reshape", "linear"]
    pool = net.ops[2]
    assert net.tensors[pool.inputs[0]].kind == "acc" and net.tensors[pool.inputs[0]].offset is not None
    _, ours, ref, _ = _exact_report(src, net, tmp_path)
    assert np.abs(ours - ref).max() <= 1e-6 * np.abs(ref).max()  # the logits: the fc's float bias added in float
    _deploy_bit_exact(tmp_path / "deploy", "functional_cnn", "gap9")


def test_global_max_over_time_is_a_maxpool_of_the_map_of_height_1(tmp_path):
    """torch.max(x, dim=2)[0] of a QuantReLU's (batch, channels, time) output: maxpool2d with a [1, T] window (as
    MaxPool1d), the indices output unused; exact against Brevitas and bit-exact on gap9-emu."""
    src = _source("global_max_1d")
    net = extract(src)
    (pool,) = [op for op in net.ops if op.type == "maxpool2d"]
    assert pool.attrs["kernel_size"] == [1, 8] and net.tensors[pool.inputs[0]].shape == [1, 24, 8]
    assert net.tensors[pool.outputs[0]].kind == "quant"
    _, ours, ref, _ = _exact_report(src, net, tmp_path)
    assert ours.shape == ref.shape == (48, 10)
    _deploy_bit_exact(tmp_path / "deploy", "global_max_1d", "gap9")


def test_amax_of_an_accumulator_and_a_kept_axis_max_are_exact(tmp_path):
    """torch.amax(conv(x), dim=(2, 3)) pools the accumulator (float bias, positive scales) over the whole map and the
    shared QuantIdentity follows; torch.max(x, 2, keepdim=True).values is an 8 x 1 window over the rows."""
    src = _source("global_max_2d")
    net = extract(src)
    pools = {op.name.split(".")[0]: op for op in net.ops if op.type == "maxpool2d"}
    assert pools["amax"].attrs["kernel_size"] == [8, 8] and net.tensors[pools["amax"].inputs[0]].kind == "acc"
    assert pools["max"].attrs["kernel_size"] == [8, 1] and net.tensors[pools["max"].outputs[0]].shape == [1, 8, 1, 8]
    _, ours, ref, _ = _exact_report(src, net, tmp_path)
    assert np.abs(ours - ref).max() <= 1e-6 * np.abs(ref).max()
    _deploy_bit_exact(tmp_path / "deploy", "global_max_2d", "gap9")


def _assert_one_refusal(model, words):
    """The checker refuses the model file ``model`` for exactly one node, in one line with a hint holding ``words``."""
    rep = check_model(load_model(argparse.Namespace(test_network=None, model_file=str(model), model_class=None,
                                                    input_shape=None))).to_json()
    bad = [i for i in rep["items"] if i["status"] == "unsupported"]
    assert not rep["deployable"] and len(bad) == 1 and bad[0]["hint"], rep
    assert "\n" not in bad[0]["message"] and all(w in bad[0]["message"] + " " + bad[0]["hint"] for w in words), bad


@pytest.mark.parametrize("call, words", [
    ("y = torch.max(x)", ["whole tensor", "dim=2"]),
    ("y = torch.max(x, x)", ["two tensors", "over an axis"]),
    ("y = torch.max(x, dim=2)[1].float()", ["indices", "argmax"]),
    ("y = torch.amax(x, dim=(1, 2))", ["per-channel", "QuantIdentity"]),
    ("y = torch.amax(x, dim=(0, 2))", ["contiguous axes after the batch"]),
])
def test_max_refusals_are_one_line_with_a_hint(tmp_path, call, words):
    model = tmp_path / "maxes.py"
    model.write_text(
        "import torch, torch.nn as nn, brevitas.nn as qnn\n"
        "from brevitas.quant import Int8WeightPerChannelFloat\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.q = qnn.QuantIdentity(return_quant_tensor=True)\n"
        "        self.c = qnn.QuantConv1d(4, 6, 3, bias=False, weight_quant=Int8WeightPerChannelFloat)\n"
        "        self.o = qnn.QuantIdentity()\n"
        "    def forward(self, x):\n"
        "        x = self.c(self.q(x))\n"
        f"        {call}\n"
        "        return self.o(y)\n"
        + _calibrated_hooks((4, 10), 8, seed=0))
    _assert_one_refusal(model, words)


def test_prelu_per_channel_slopes_give_per_channel_steps_and_tables(tmp_path):
    """nn.PReLU(8) on a conv accumulator: a thresholds op with one step function per channel; on a quantized tensor
    (per-tensor scale): a lut with one table per channel; exact against Brevitas, bit-exact on gap9-emu."""
    src = _source("prelu_cnn")
    net = extract(src)
    by_type = {op.type: op for op in net.ops if op.type in ("thresholds", "lut")}
    thr, lut = by_type["thresholds"], by_type["lut"]
    assert thr.attrs["channel_axis"] == 1 and net.param(thr, "thresholds").shape[0] == 8
    assert net.tensors[lut.inputs[0]].per_channel is False
    table = net.param(lut, "table")
    assert lut.attrs["channel_axis"] == 1 and table.shape[0] == 8 and len({row.tobytes() for row in table}) > 1
    _exact_report(src, net, tmp_path, near_ties=True)
    _deploy_bit_exact(tmp_path / "deploy", "prelu_cnn", "gap9")


def test_chunk_split_tensor_split_unbind_select_are_slices_and_exact(tmp_path):
    """torch.chunk / split (sections) / tensor_split / unbind / select of quantized activations: each piece one slice
    (unbind and select also drop the axis through a reshape); exact against Brevitas, bit-exact on gap9-emu."""
    from gapforge.ops.slice import _pieces

    class Ctx:  # the piece ranges match torch's own for sizes that do not divide evenly
        def __init__(self, name, *args):
            self.node = argparse.Namespace(type_name=name)
            self.args = args

        def arg(self, i, name=None, default=None):
            return self.args[i - 1] if i - 1 < len(self.args) else default

    t = torch.arange(7)
    for name, args in [("chunk", (3,)), ("chunk", (4,)), ("split", (3,)), ("split", ([2, 5],)),
                       ("tensor_split", (3,)), ("tensor_split", ([1, 5],)), ("unbind", ())]:
        want = [p.reshape(-1).tolist() for p in getattr(torch, name)(t, *args)]
        assert [list(range(a, b)) for a, b in _pieces(Ctx(name, *args), 7)] == want, (name, args)
    src = _source("split_branches")
    net = extract(src)
    slices = [op for op in net.ops if op.type == "slice"]
    assert {(op.attrs["axis"], op.attrs["start"], op.attrs["stop"]) for op in slices} >= {
        (1, 0, 6), (1, 6, 12), (1, 7, 12), (2, 5, 6), (3, 4, 6)}
    _exact_report(src, net, tmp_path, near_ties=True)
    _deploy_bit_exact(tmp_path / "deploy", "split_branches", "gap9")


@pytest.mark.parametrize("call, words", [
    ("b = torch.chunk(x, 2, dim=0)[0]", ["batch axis", "dim=1"]),
    ("a, b, c, d, e, f = torch.unbind(x, dim=1); b = torch.cat([a, b, c, d, e, f], dim=1)", ["per-channel", "per-tensor"]),
])
def test_split_refusals_are_one_line_with_a_hint(tmp_path, call, words):
    model = tmp_path / "splits.py"
    model.write_text(
        "import torch, torch.nn as nn, brevitas.nn as qnn\n"
        "from brevitas.quant import Int8ActPerTensorFloat\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.q = qnn.QuantIdentity(return_quant_tensor=True)\n"
        "        self.c = qnn.QuantConv1d(4, 6, 3)\n"
        "        self.o = qnn.QuantIdentity(return_quant_tensor=True, scaling_per_output_channel=True,\n"
        "                                   per_channel_broadcastable_shape=(1, 6, 1), scaling_stats_permute_dims=(1, 0, 2))\n"
        "        self.f = qnn.QuantLinear(6 * 8, 3, input_quant=Int8ActPerTensorFloat)\n"
        "    def forward(self, x):\n"
        "        x = self.o(self.c(self.q(x)))\n"
        f"        {call}\n"
        "        return self.f(torch.flatten(b, 1))\n"
        + _calibrated_hooks((4, 10), 8, seed=0))
    _assert_one_refusal(model, words)


def test_reflect_replicate_and_circular_padding_become_edge_pads_exact_and_bit_exact_on_gap9(tmp_path):
    """padding_mode='reflect' / 'circular' and nn.ReplicationPad2d((1, 1, 2, 0)): one edge_pad per padded axis, the
    width first (as F.pad orders them), after the layer's input quantizer for padding_mode, then the convolutions
    with no padding; exact against Brevitas and bit-exact on gap9-emu."""
    src = _source("reflect_pad_cnn")
    net = extract(src)
    pads = [(op.inputs[0], op.attrs["mode"], op.attrs["axis"], op.attrs["before"], op.attrs["after"])
            for op in net.ops if op.type == "edge_pad"]
    assert pads == [("qin", "reflect", 3, 1, 1), ("conv1.pad", "reflect", 2, 1, 1),
                    ("relu1", "replicate", 3, 1, 1), ("pad", "replicate", 2, 2, 0),
                    ("relu2", "circular", 3, 2, 2), ("dw.pad", "circular", 2, 1, 1)], pads
    convs = [op for op in net.ops if op.type == "conv2d"]
    assert [c.attrs["padding"] for c in convs] == [[0, 0, 0, 0]] * 3 and convs[2].attrs["dilation"] == [1, 2]
    _exact_report(src, net, tmp_path, near_ties=True)
    _deploy_bit_exact(tmp_path / "deploy", "reflect_pad_cnn", "gap9")


def test_brevitas_examples_cnv_with_tensornorm_folds_into_the_logits(tmp_path):
    """brevitas_examples' CNV (cnv_2w2a) as loaded with model_with_cfg: its TensorNorm is traced through and its
    (x - mean) / std * w + b (w < 0) folds into the last linear's accumulator, no op of its own; exact against
    Brevitas on held-out inputs, bit-exact on gap9-emu."""
    src = _source("bnn_pynq_cnv")
    net = extract(src)
    assert net.ops[-1].type == "linear" and not any(op.type in ("add_constant", "rescale", "lut") for op in net.ops)
    out = net.tensors[net.outputs[0]]
    assert out.kind == "acc" and float(np.asarray(out.scale_list(10))[0]) < 0
    _, ours, ref, _ = _exact_report(src, net, tmp_path)
    assert np.abs(ours - ref).max() <= 1e-5 * np.abs(ref).max()
    _deploy_bit_exact(tmp_path / "deploy", "bnn_pynq_cnv", "gap9")


def test_constants_fold_into_a_conv_accumulator_unless_they_vary_along_its_map(tmp_path):
    """conv(x) - per-channel buffer, * negative number, / number, + number: one conv with a folded scale and offset,
    exact; a constant that varies along the map does not fold and is refused with the quantizer hint."""
    def model(expr):
        path = tmp_path / f"fold{len(list(tmp_path.iterdir()))}.py"
        path.write_text(
            "import torch, torch.nn as nn, brevitas.nn as qnn\n"
            "class Net(nn.Module):\n"
            "    def __init__(self):\n"
            "        super().__init__()\n"
            "        self.q = qnn.QuantIdentity(return_quant_tensor=True)\n"
            "        self.c = qnn.QuantConv2d(2, 4, 3, padding=1)\n"
            "        self.register_buffer('m', torch.linspace(-0.5, 0.5, 4).view(1, 4, 1, 1))\n"
            "        self.register_buffer('grid', torch.linspace(-0.5, 0.5, 6).view(1, 1, 1, 6))\n"
            "        self.o = qnn.QuantIdentity()\n"
            "    def forward(self, x):\n"
            "        x = self.c(self.q(x))\n"
            f"        return self.o({expr})\n"
            + _calibrated_hooks((2, 6, 6), 8, seed=0)
            + "def held_out_data():\n    torch.manual_seed(5)\n"
              "    return torch.rand(16, 2, 6, 6), torch.zeros(16, dtype=torch.int64)\n")
        return load_model(argparse.Namespace(test_network=None, model_file=str(path), model_class=None,
                                             input_shape=None))

    src = model("((x - self.m) * -0.5) / 3.0 + 0.25")
    net = extract(src)
    assert [op.type for op in net.ops] == ["quantize", "conv2d", "requantize"]
    _, ours, ref, _ = _exact_report(src, net, tmp_path / "ok", near_ties=True)
    assert ours.shape == ref.shape
    rep = check_model(model("x + self.grid")).to_json()
    bad = [i for i in rep["items"] if i["status"] == "unsupported"]
    assert not rep["deployable"] and len(bad) == 1 and "QuantIdentity" in bad[0]["hint"], rep


def test_brevitas_binary_quantizers_are_sign_times_a_constant_scale_with_codes_minus_one_and_one():
    """What Brevitas 0.13.4 computes (docs/integer_contract.md section 1): value = s * (+1 where x >= 0 else -1),
    so 0.0 and -0.0 give +1 and NaN -1; int() is -1 / +1 with bit_width 1, signed, narrow range; gapforge's host
    quantizer (atomic_ops.quantize.binarize) gives the same codes, and reads both presets as binary."""
    from brevitas.quant import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst

    from atomic_ops.quantize import binarize
    from gapforge.brevitas_quant import act_quant_params, weight_params

    x = torch.tensor([-2.0, -0.3, -1e-30, -0.0, 0.0, 1e-30, 0.3, 5.0, float("inf"), -float("inf")])
    act = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True).eval()
    y = act(x)
    assert y.int().tolist() == [-1, -1, -1, 1, 1, 1, 1, 1, 1, -1] == binarize(x.numpy()).tolist()
    assert (float(y.scale), float(y.bit_width), y.signed) == (1.0, 1.0, True) and act.act_quant.is_narrow_range
    assert float(act(torch.tensor([float("nan")])).value) == -1.0  # (int() calls that tensor not valid)
    qp = act_quant_params(act.act_quant, 1, "act")
    assert (qp.bit_width, qp.signed, qp.qrange()) == (1, True, (-1, 1))
    lin = qnn.QuantLinear(4, 3, bias=False, weight_quant=SignedBinaryWeightPerTensorConst)
    with torch.no_grad():
        lin.weight[0, :2] = torch.tensor([0.0, -0.0])
    qw = lin.quant_weight()
    w, wq = weight_params(lin, "lin")
    assert np.array_equal(w, qw.int().numpy()) and set(np.unique(w)) <= {-1, 1} and w[0, 0] == w[0, 1] == 1
    assert np.allclose(qw.value.detach().numpy(), w * 0.1) and (wq.scale, wq.bit_width) == (float(qw.scale), 1)


def test_one_bit_signed_integer_quantizers_are_refused_naming_the_binary_ones(tmp_path):
    """Brevitas' IntQuant with bit_width=1 (codes [-1, 0], not binary; with the weights' default narrow range its
    scale is max|w| / 0 = inf) is refused by the checker in one item whose hint names the binary quantizers."""
    model = tmp_path / "int1.py"
    model.write_text(
        NET_HEAD +
        "        self.q = qnn.QuantIdentity(return_quant_tensor=True)\n"
        "        self.fc = qnn.QuantLinear(8, 4, bias=False, weight_bit_width=1, weight_narrow_range=False)\n"
        "    def forward(self, x):\n"
        "        return self.fc(self.q(x))\n"
        + _calibrated_hooks((8,), 16, seed=0))
    rep = check_model(load_model(argparse.Namespace(test_network=None, model_file=str(model), model_class=None,
                                                    input_shape=None))).to_json()
    bad = [i for i in rep["items"] if i["status"] == "unsupported"]
    assert not rep["deployable"] and len(bad) == 1, bad
    assert "1-bit signed integer weight" in bad[0]["message"] and "SignedBinary" in bad[0]["hint"], bad


BNN_LAYERS = {"lfc": 3, "sfc": 3, "tfc": 3, "cnv": 8}  # binary activations after a BatchNorm'd accumulator


@pytest.mark.parametrize("name", ["lfc", "sfc", "cnv"])
def test_brevitas_examples_binary_networks_are_exact_against_brevitas(tmp_path, name):
    """bnn_pynq's *_1w1a (binary weights and activations; the FC ones binarize the preprocessed input 2x - 1
    too) as loaded with model_with_cfg: every binary activation after a conv/linear + BatchNorm is a thresholds op
    with one step per channel, no requantize; every layer equal to Brevitas on the held-out inputs."""
    src = _source(f"bnn_pynq_{name}_1w1a")
    net = extract(src)
    counts = _op_counts(net)
    assert counts["thresholds"] == BNN_LAYERS[name] and "requantize" not in counts and "lut" not in counts, counts
    for op in net.ops:
        if op.type == "thresholds":
            t, k = net.param(op, "thresholds"), net.param(op, "codes")
            assert t.shape[1] == 3 and (t[:, 1:] == 2**31 - 1).all() and set(np.unique(k)) == {-1, 1}
            assert {(-1, 1), (1, -1)} <= {tuple(r) for r in k[:, :2].tolist()}  # both directions (gamma > 0, < 0)
        if op.type in ("conv2d", "linear"):
            assert set(np.unique(net.param(op, "weight"))) == {-1, 1}
    made = {op.outputs[0]: op.type for op in net.ops}
    binary = sorted(made[t.name] for t in net.tensors.values() if t.binary)  # pooled and flattened codes stay binary
    assert binary == sorted(["thresholds"] * BNN_LAYERS[name] + (["quantize"] if name != "cnv" else
                                                                 ["maxpool2d", "maxpool2d", "reshape"]))
    _, ours, ref, _ = _exact_report(src, net, tmp_path)
    assert np.abs(ours - ref).max() <= 1e-5 * np.abs(ref).max()


@pytest.mark.parametrize("target", ["host", "gap9"])
def test_brevitas_examples_binary_tfc_deploys_bit_exact(tmp_path, target):
    """tfc_1w1a end to end: extraction, fidelity and the generated C bit-exact on every layer (gap9-emu packs the
    binary weights four per byte)."""
    _, layers = _deploy_bit_exact(tmp_path, "bnn_pynq_tfc_1w1a", target)
    assert len(layers) == 8


def test_binary_quantizers_of_quantized_tensors_are_tables_and_exact(tmp_path):
    """A binary QuantIdentity of an 8-bit tensor is a lut into -1 / +1, a function of a binary tensor a lut with the
    2-bit layout, a binary output quantizer of a QuantLinear a thresholds op; exact against Brevitas and
    bit-exact on gap9-emu."""
    src = _source("binary_tables")
    net = extract(src)
    assert [op.type for op in net.ops] == ["quantize", "lut", "lut", "linear", "thresholds", "requantize", "concat"]
    luts = [op for op in net.ops if op.type == "lut"]
    assert set(np.unique(net.param(luts[0], "table"))) == {-1, 1} and net.param(luts[1], "table").shape == (1, 4)
    _exact_report(src, net, tmp_path)
    _deploy_bit_exact(tmp_path / "deploy", "binary_tables", "gap9")


CAUSAL = [[[0, i + 1]] for i in range(6)]  # per query row the allowed keys: 0 .. i


def _causal_form(monkeypatch, form: str):
    src = _source("causal_attention")
    monkeypatch.syspath_prepend(str(MODELS))
    import causal_attention as mod
    monkeypatch.setattr(mod, "FORM", form)
    src.model = mod.create_model()
    return src


@pytest.mark.parametrize("form", ["buffer", "finfo", "additive", "mha"])
def test_causal_attention_mask_is_exact(tmp_path, monkeypatch, form):
    """A causal mask (masked_fill of a buffer with -inf, of a tril built in forward with finfo.min, an additive
    0 / -inf buffer, QuantMultiheadAttention(attn_mask=...)): one softmax with the mask's allowed key runs, exact
    against Brevitas (the masked keys' probabilities are the code of 0.0)."""
    src = _causal_form(monkeypatch, form)
    net = extract(src)
    (sm,) = [op for op in net.ops if op.type == "softmax"]
    assert sm.attrs["mask"] == CAUSAL and not any(op.type == "add_constant" for op in net.ops)
    engine, ours, ref, rep = _exact_report(src, net, tmp_path, near_ties=True)
    assert ours.shape == ref.shape and np.abs(ref).max() > 0
    _, ints = engine.forward(inputs.stored_arrays(tmp_path / "net", "held_out_x"))
    att = ints[net.ops[net.ops.index(sm) + 1].outputs[0]]  # the softmax's quantizer (Uint8: zero point 0)
    future = np.triu(np.ones((6, 6), bool), 1)
    assert (att[..., future] == 0).all() and (att[..., ~future] > 0).any()


@pytest.mark.parametrize("form, message", [
    ("dynamic", r"unsupported operation lt"),
    ("full_row", r"masked_fill at causal_attention\.py:\d+: the masked_fill masks every key of query row 2: "
                 r"PyTorch's softmax gives NaN there \(hint: leave at least one key unmasked"),
    ("not_softmax", r"the masked_fill scores go to module 'q_s' \(QuantIdentity\); a mask is deployable only right "
                    r"before a softmax"),
])
def test_causal_attention_refusals(monkeypatch, form, message):
    src = _causal_form(monkeypatch, form)
    with pytest.raises(GapforgeError) as err:
        extract(src)
    assert re.search(message, err.value.one_line()), err.value.one_line()


@pytest.mark.parametrize("target", ["host", "gap9"])
def test_causal_attention_deploys_bit_exact(tmp_path, target):
    """The masked softmax in C (gf_softmax reading the mask rows after its tables; on gap9-emu the rows tiles
    with each core's first row) equals the golden."""
    out, _ = _deploy_bit_exact(tmp_path, "causal_attention", target)
    net = json.loads((out / "network_info.json").read_text())
    assert [op["attrs"]["mask"] for op in net["ops"] if op["type"] == "softmax"] == [CAUSAL]
