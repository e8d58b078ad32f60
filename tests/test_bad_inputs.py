"""Bad-input catalogue: every user mistake is exit 2 with one line on stderr, no traceback, and no
earlier output is touched; inputs Brevitas saturates are saturated the same way; defaults work on
the documented minimum model file.

Most cases run the tools' ``main(argv)`` in-process through ``run_cli`` (exactly what
``python tools/<tool>.py`` does, minus starting Python); a handful run as real subprocesses.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import shutil
import sys

import numpy as np
import pytest
from conftest import REPO, run_tool

from gapforge.errors import GapforgeError, run_cli

# The documented minimum: create_model() and example_input(), nothing else; written the way a
# Brevitas user writes a calibrated (post-training quantized) model.
MINIMAL_MODEL = '''
import torch
import torch.nn as nn
import brevitas.nn as qnn
from brevitas.graph.calibrate import calibration_mode
from brevitas.quant import Int32Bias


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(1, 4, 3, padding=1, bias=True, bias_quant=Int32Bias, return_quant_tensor=True)
        self.relu = qnn.QuantReLU(return_quant_tensor=True)
        self.pool = nn.MaxPool2d(2)
        self.fc = qnn.QuantLinear(4 * 4 * 4, 5, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(self.inp(x)))), 1))


def create_model():
    torch.manual_seed(0)
    model = TinyNet()
    with torch.no_grad(), calibration_mode(model):
        model(torch.rand(32, 1, 8, 8))
    return model.eval()


def example_input():
    torch.manual_seed(1)
    return torch.rand(1, 1, 8, 8)
'''

# The same network without its input quantizer: its first conv takes the float image (bias-free and
# returning a float tensor, as in brevitas_examples' MobileNet: Brevitas needs an input scale for an
# Int32Bias or a QuantTensor output), plus
# variants: returned in training mode, and with a NaN in the example input / held-out data.
FLOAT_INPUT_MODEL = MINIMAL_MODEL.replace(
    "self.fc(torch.flatten(self.pool(self.relu(self.conv(self.inp(x)))), 1))",
    "self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))").replace(
    "self.inp = qnn.QuantIdentity(return_quant_tensor=True)", "").replace(
    "qnn.QuantConv2d(1, 4, 3, padding=1, bias=True, bias_quant=Int32Bias, return_quant_tensor=True)",
    "qnn.QuantConv2d(1, 4, 3, padding=1, bias=False)")
TRAINING_MODE_MODEL = MINIMAL_MODEL.replace("return model.eval()", "return model.train()")
NAN_EXAMPLE_MODEL = MINIMAL_MODEL.replace("return torch.rand(1, 1, 8, 8)",
                                          "x = torch.rand(1, 1, 8, 8)\n    x[0, 0, 2, 5] = float('nan')\n    return x")
FLOAT64_EXAMPLE_MODEL = MINIMAL_MODEL.replace("return torch.rand(1, 1, 8, 8)",
                                              "return torch.rand(1, 1, 8, 8, dtype=torch.float64)")
NUMPY_EXAMPLE_MODEL = MINIMAL_MODEL.replace("return torch.rand(1, 1, 8, 8)",
                                            "return (torch.rand(1, 1, 8, 8).numpy(),)")
CHANNELS_EXAMPLE_MODEL = MINIMAL_MODEL.replace("return torch.rand(1, 1, 8, 8)", "return torch.rand(1, 3, 8, 8)")
SIZE_EXAMPLE_MODEL = MINIMAL_MODEL.replace("return torch.rand(1, 1, 8, 8)", "return torch.rand(1, 1, 10, 10)")
NAN_HELD_OUT_MODEL = MINIMAL_MODEL + '''

def held_out_data():
    x = torch.rand(4, 1, 8, 8)
    x[3, 0, 1, 1] = float("nan")
    return x, torch.zeros(4, dtype=torch.int64)
'''


def cli(tool: str, *args) -> tuple[int, str, str]:
    """``python tools/<tool>.py args`` in-process: (exit code, stdout, stderr)."""
    mod = importlib.import_module(f"tools.{tool}")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as ex:
        run_cli(mod.main, [str(a) for a in args])
    return ex.value.code, out.getvalue(), err.getvalue()


def user_error(result, *fragments: str) -> str:
    """Assert exit 2, exactly one stderr line (warnings aside) containing ``fragments``, no traceback."""
    code, out, err = result
    lines = [ln for ln in err.splitlines() if not ln.startswith("warning: ")]
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert len(lines) == 1 and "error: " in lines[0], err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def snapshot(d) -> dict:
    """Every file (bytes) and directory under ``d``: equal snapshots mean untouched."""
    d = os.fspath(d)
    if not os.path.exists(d):
        return {}
    snap = {}
    for root, dirs, files in os.walk(d):
        for name in dirs:
            snap[os.path.relpath(os.path.join(root, name), d) + "/"] = None
        for name in files:
            p = os.path.join(root, name)
            with open(p, "rb") as fh:
                snap[os.path.relpath(p, d)] = fh.read()
    return snap


def no_temporaries(parent) -> None:
    assert [p.name for p in parent.iterdir() if p.name.startswith(".")] == []


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("model_files")
    files = {}
    for name, text in (("minimal", MINIMAL_MODEL), ("float_input", FLOAT_INPUT_MODEL),
                       ("training_mode", TRAINING_MODE_MODEL), ("nan_example", NAN_EXAMPLE_MODEL),
                       ("nan_held_out", NAN_HELD_OUT_MODEL), ("float64_example", FLOAT64_EXAMPLE_MODEL),
                       ("numpy_example", NUMPY_EXAMPLE_MODEL), ("channels_example", CHANNELS_EXAMPLE_MODEL),
                       ("size_example", SIZE_EXAMPLE_MODEL)):
        files[name] = d / f"{name}.py"
        files[name].write_text(text)
    return files


@pytest.fixture
def net(golden, tmp_path):
    """A private copy of resnet_block (network_info.json, weights, inputs, two golden cases)."""
    d = tmp_path / "net"
    shutil.copytree(golden("resnet_block"), d)
    return d


def _doc(d):
    return json.loads((d / "network_info.json").read_text())


def _op(doc, name):
    return next(o for o in doc["ops"] if o["name"] == name)


def _tensor(doc, name):
    return doc["tensors"][name]


def _set_weight(d, doc, op, param, index, value, **meta):
    p = _op(doc, op)["params"][param]
    p.update(meta)
    arr = np.load(d / p["file"]).copy()
    arr[index] = value
    np.save(d / p["file"], arr)


# -- 1. network_info.json that contradicts itself: refused before any work ----------------------
def _add_extra_output(doc):
    doc["tensors"]["extra"] = dict(_tensor(doc, "add"))
    _op(doc, "add")["outputs"].append("extra")


def _new_input_tensor(doc, op, shape):
    doc["tensors"]["bogus"] = dict(_tensor(doc, "quant_in"), shape=shape)
    doc["tensors"]["bogus_src"] = dict(_tensor(doc, "input"), shape=shape)
    doc["ops"].insert(0, {"name": "bogus_q", "type": "quantize", "inputs": ["input"], "outputs": ["bogus"],
                          "attrs": {}, "params": {}, "source": "test"})
    doc["tensors"]["bogus"]["shape"] = list(_tensor(doc, "input")["shape"])


INCONSISTENT = {
    # shapes: every declared shape against each op's shape rule (gapforge/ops/<op>.py infer_shapes)
    "pool_output_shape": (lambda d, j: _tensor(j, "pool2").__setitem__("shape", [1, 32, 2, 2]),
                          ["'tensors.pool2.shape'", "declared [1, 32, 2, 2]", "gives [1, 32, 4, 4]"]),
    "add_input_shape": (lambda d, j: _op(j, "add")["inputs"].__setitem__(1, "pool1"),
                        ["(add 'add')", "adds tensors of shapes [1, 32, 4, 4] and [1, 16, 8, 8]"]),
    "add_one_input": (lambda d, j: _op(j, "add")["inputs"].pop(), ["'ops[15].inputs'", "takes 2 inputs, got 1"]),
    "add_two_outputs": (lambda d, j: _add_extra_output(j), ["'ops[15].outputs'", "has 1 output, got 2"]),
    "reshape_element_count": (lambda d, j: _op(j, "view")["attrs"].__setitem__("shape", [1, 31]),
                              ["'ops[20].attrs.shape'", "(32 elements) to [1, 31] (31 elements)"]),
    "reshape_batch_axis": (lambda d, j: _op(j, "view")["attrs"].__setitem__("shape", [2, 16]),
                           ["'ops[20].attrs.shape'", "batch axis"]),
    "conv_stride": (lambda d, j: _op(j, "stem1")["attrs"].__setitem__("stride", [2, 2]),
                    ["'tensors.stem1.shape'", "gives [1, 16, 8, 8]"]),
    "conv_kernel_vs_weight": (lambda d, j: _op(j, "stem1")["attrs"].__setitem__("kernel_size", [5, 5]),
                              ["'ops[1].params.weight.shape'", "does not match kernel_size [5, 5]"]),
    "conv_groups": (lambda d, j: _op(j, "stem2")["attrs"].__setitem__("groups", 2),
                    ["'ops[5].params.weight.shape'", "with groups 2 takes 32 input channels"]),
    "conv_bias_shape": (lambda d, j: _op(j, "stem1")["params"]["bias"].__setitem__("shape", [15]),
                        ["'ops[1].params.bias.shape'", "bias shape [15]"]),
    "linear_features": (lambda d, j: _op(j, "fc")["inputs"].__setitem__(0, "gap_quant"),
                        ["'ops[21].params.weight.shape'", "takes 32 input features"]),
    # scales: finite and non-zero everywhere
    "input_scale_inf": (lambda d, j: _tensor(j, "quant_in").__setitem__("scale", float("inf")),
                        ["'tensors.quant_in.scale'", "inf is not a finite number"]),
    "activation_scale_nan": (lambda d, j: _tensor(j, "relu1").__setitem__("scale", float("nan")),
                             ["'tensors.relu1.scale'", "nan is not a finite number"]),
    "weight_scale_nan": (lambda d, j: _op(j, "conv1")["params"]["weight"].__setitem__("scale", float("nan")),
                         ["'ops[9].params.weight.scale'", "nan is not a finite number"]),
    "weight_scale_zero": (lambda d, j: _op(j, "conv1")["params"]["weight"].__setitem__("scale", 0.0),
                          ["'ops[9].params.weight.scale'", "less than or equal to the minimum of 0"]),
    "accumulator_scale_zero": (lambda d, j: _tensor(j, "stem1").__setitem__("scale", 0.0),
                               ["'tensors.stem1.scale'", "accumulator scale of 0"]),
    "accumulator_scale_inf": (lambda d, j: _tensor(j, "fc").__setitem__("scale", float("-inf")),
                              ["'tensors.fc.scale'", "-inf is not a finite number"]),
    "accumulator_offset_nan": (lambda d, j: _tensor(j, "fc").__setitem__("offset", [float("nan")] * 10),
                               ["'tensors.fc.offset[0]'", "not a finite number"]),
    # zero point, bit width, dtype and signedness agree
    "zero_point_out_of_range": (lambda d, j: _tensor(j, "quant_in").__setitem__("zero_point", 200),
                                ["'tensors.quant_in.zero_point'", "200 is outside the 8-bit signed range"]),
    "unsigned_zero_point_negative": (lambda d, j: _tensor(j, "relu1").__setitem__("zero_point", -1),
                                     ["'tensors.relu1.zero_point'", "outside the 8-bit unsigned range [0, 255]"]),
    "bit_width_9_in_int8": (lambda d, j: _tensor(j, "quant_in").__setitem__("bit_width", 9),
                            ["'tensors.quant_in.bit_width'", "9-bit values [-256, 255] in dtype int8"]),
    "int8_unsigned": (lambda d, j: _tensor(j, "quant_in").__setitem__("signed", False),
                      ["'tensors.quant_in.signed'", "dtype int8 with signed false"]),
    "uint8_signed": (lambda d, j: _tensor(j, "relu1").__setitem__("signed", True),
                     ["'tensors.relu1.signed'", "dtype uint8 with signed true"]),
    "accumulator_16_bit": (lambda d, j: _tensor(j, "stem1").__setitem__("bit_width", 16),
                           ["'tensors.stem1.bit_width'", "signed 32-bit"]),
    "weight_zero_point": (lambda d, j: _op(j, "conv1")["params"]["weight"].__setitem__("zero_point", 3),
                          ["'ops[9].params.weight.zero_point'", "symmetric"]),
    "channel_axis_out_of_range": (lambda d, j: _tensor(j, "relu1").__setitem__("channel_axis", 4),
                                  ["'tensors.relu1.channel_axis'", "axis 4 of a 4-D shape"]),
    # where the float input may go
    "conv_on_float_input": (lambda d, j: _op(j, "stem1")["inputs"].__setitem__(0, "input"),
                            ["'ops[1].inputs[0]'", "must be quantized first"]),
    "quantized_network_input": (lambda d, j: _tensor(j, "input").update(_tensor(j, "quant_in")),
                                ["'tensors.input.kind'", "must be a float tensor"]),
    # weights and biases within their declared bit width and narrow range (the .npy values)
    "weight_outside_bit_width": (lambda d, j: _set_weight(d, j, "conv1", "weight", (0, 0, 0, 0), 9, bit_width=4),
                                 ["conv1.weight.npy", "outside the 4-bit signed narrow range [-7, 7]"]),
    "weight_minus_128_narrow": (lambda d, j: _set_weight(d, j, "conv1", "weight", (1, 2, 0, 1), -128),
                                ["conv1.weight.npy", "value -128 at index [1, 2, 0, 1]", "narrow range [-127, 127]"]),
    "bias_outside_bit_width": (lambda d, j: _set_weight(d, j, "stem1", "bias", (3,), 40000, bit_width=16),
                               ["stem1.bias.npy", "value 40000 at index [3]", "16-bit signed range"]),
    # an input zero point the integer kernels cannot take (found when the plan is built, before any work)
    "conv_input_zero_point": (lambda d, j: _tensor(j, "quant_in").__setitem__("zero_point", 3),
                              ["conv2d 'stem1'", "zero point 0", "zero point 3"]),
}


@pytest.mark.parametrize("case", sorted(INCONSISTENT))
def test_inconsistent_network_info_is_refused(net, case):
    mutate, fragments = INCONSISTENT[case]
    doc = _doc(net)
    mutate(net, doc)
    (net / "network_info.json").write_text(json.dumps(doc))
    before = snapshot(net)
    line = user_error(cli("generate_golden_outputs", "--network", net, "-q"), *fragments)
    if "npy" not in fragments[0] and case != "conv_input_zero_point":
        assert str(net / "network_info.json") in line
    assert snapshot(net) == before
    no_temporaries(net)


@pytest.mark.parametrize("tool, args", [
    ("int8_inference", []),
    ("generate_c_code", ["--out", "{tmp}/proj", "--target", "gap9"]),
])
def test_nan_weight_scale_never_reaches_the_engine_or_codegen(net, tmp_path, tool, args):
    doc = _doc(net)
    _op(doc, "conv1")["params"]["weight"]["scale"] = float("nan")
    (net / "network_info.json").write_text(json.dumps(doc))
    user_error(cli(tool, "--network", net, *[a.format(tmp=tmp_path) for a in args]),
               "'ops[9].params.weight.scale'", "nan")
    assert not (tmp_path / "proj").exists()


def test_unsigned_8bit_weights_are_not_packed_silently():
    from codegen.packing import pack_rows

    with pytest.raises(GapforgeError, match="weight 200 does not fit the device's signed 8-bit container"):
        pack_rows(np.array([[1, 200, 3]]), 8, "op 'x' weights")
    with pytest.raises(GapforgeError, match="weight 9 does not fit the device's signed 4-bit container"):
        pack_rows(np.array([[1, 9]]), 4)


# -- 2. inputs: NaN and complex refused, +-inf and huge values saturate as in Brevitas ---------------
def _bad_inputs(net, tmp_path, kind):
    x = np.load(net / "inputs" / "held_out_x.npy")[:2].copy()
    if kind == "nan":
        x[1, 0, 3, 4] = np.nan
    elif kind == "complex":
        x = x.astype(np.complex64)
        x[0, 0, 2, 2] += 1j
    elif kind == "object":
        path = tmp_path / "object.npy"
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        return path
    elif kind == "strings":
        x = np.array(["a", "b"])
    path = tmp_path / f"{kind}.npy"
    np.save(path, x)
    return path


BAD_INPUTS = {
    "nan": ["nan.npy: NaN at index [1, 0, 3, 4]"],
    "complex": ["complex.npy: complex values", "imaginary part at index [0, 0, 2, 2]"],
    "object": ["object.npy: cannot load inputs"],
    "strings": ["strings.npy: dtype <U1 is not a numeric input"],
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input_values_are_refused_by_the_golden_generator(net, tmp_path, kind):
    path = _bad_inputs(net, tmp_path, kind)
    before = snapshot(net)
    user_error(cli("generate_golden_outputs", "--network", net, "--inputs", path), *BAD_INPUTS[kind])
    assert snapshot(net) == before


@pytest.mark.parametrize("kind", ["nan", "complex"])
def test_bad_input_values_are_refused_by_the_engine(net, tmp_path, kind):
    path = _bad_inputs(net, tmp_path, kind)
    user_error(cli("int8_inference", "--network", net, "--input", path), *BAD_INPUTS[kind])


def test_bad_inputs_are_refused_by_fidelity_and_deploy_before_any_work(net, tmp_path):
    path = _bad_inputs(net, tmp_path, "nan")
    user_error(cli("check_fidelity", "--test-network", "resnet_block", "--network", net, "--inputs", path),
               *BAD_INPUTS["nan"])
    out = tmp_path / "deployed"
    user_error(cli("deploy", "--test-network", "resnet_block", "--out", out, "--inputs", path), *BAD_INPUTS["nan"])
    assert not out.exists()
    no_temporaries(tmp_path)


def test_missing_and_misshapen_inputs(net, tmp_path):
    user_error(cli("generate_golden_outputs", "--network", net, "--inputs", tmp_path / "none.npy"),
               "none.npy: no such file")
    np.save(tmp_path / "wrong.npy", np.zeros((2, 3, 5, 5), dtype=np.float32))
    before = snapshot(net)
    user_error(cli("generate_golden_outputs", "--network", net, "--inputs", tmp_path / "wrong.npy"),
               "inputs of shape [2, 3, 5, 5] (batch first) do not match the network's input [1, 1, 16, 16]")
    assert snapshot(net) == before
    out = tmp_path / "deployed"  # deploy names the file, not the model's example input, and writes nothing
    user_error(cli("deploy", "--test-network", "resnet_block", "--out", out, "--inputs", tmp_path / "wrong.npy"),
               "wrong.npy: shape [2, 3, 5, 5] does not match the network's [1, 1, 16, 16]")
    assert not out.exists()


def test_model_file_inputs_with_nan_are_refused(model_files, tmp_path):
    user_error(cli("pytorch_extractor", "--model-file", model_files["nan_example"], "--out", tmp_path / "a"),
               "nan_example.py: example_input(): NaN at index [0, 0, 2, 5]")
    user_error(cli("pytorch_extractor", "--model-file", model_files["nan_held_out"], "--out", tmp_path / "b"),
               "nan_held_out.py: held_out_data() inputs: NaN at index [3, 0, 1, 1]")
    assert list(tmp_path.iterdir()) == []


def test_model_file_example_input_of_another_dtype_names_it_and_the_fix(model_files, tmp_path):
    line = user_error(cli("pytorch_extractor", "--model-file", model_files["float64_example"], "--out", tmp_path / "a"),
                      "float64_example.py: example_input() returned a torch.float64 tensor, not float32; "
                      "return x.float()")
    assert line.count("float64") == 2  # the file name and the dtype
    user_error(cli("check_model_compatibility", "--model-file", model_files["numpy_example"]),
               "numpy_example.py: example_input() returned a value of type ndarray, not a float32 tensor; "
               "return torch.as_tensor(x, dtype=torch.float32)")
    assert list(tmp_path.iterdir()) == []


def test_model_file_example_input_of_the_wrong_shape_is_one_line_exit_2(model_files, tmp_path):
    """A model built for (1, 1, 8, 8) given 3 channels (its first convolution fails) or 10 x 10 pixels (its linear
    layer, after the flatten, gets 100 features for 64): one line naming example_input(), its shape and the layer."""
    user_error(cli("deploy", "--model-file", model_files["channels_example"], "--out", tmp_path / "a"),
               "example_input() has shape [1, 3, 8, 8], but module 'conv' (QuantConv2d) expects (N, C, H, W) with "
               "C = 1 and receives shape [1, 3, 8, 8]", "make example_input() return the shape the model was built for")
    user_error(cli("check_model_compatibility", "--model-file", model_files["size_example"]),
               "example_input() has shape [1, 1, 10, 10], but module 'fc' (QuantLinear) expects 64 features on its "
               "last axis and receives shape [1, 100]")
    assert list(tmp_path.iterdir()) == []


def test_inf_and_huge_inputs_saturate_exactly_as_brevitas():
    """Measured with Brevitas 0.13: a QuantIdentity maps +inf and 1e30 to its maximum, -inf and -1e30
    to its minimum (before: +inf became -128 and 1e30 overflowed int64 to -128)."""
    import brevitas.nn as qnn
    import torch
    from brevitas.graph.calibrate import calibration_mode
    from brevitas.quant import Int8ActPerTensorFloat, ShiftedUint8ActPerTensorFloat, Uint8ActPerTensorFloat

    import atomic_ops
    from gapforge.brevitas_quant import act_quant_params
    from gapforge.ir import int_range

    x = np.array([np.inf, -np.inf, 1e30, -1e30, 3.4e38, -3.4e38, 1e10, 2.0**63, 0.3, -0.7, 1.5], dtype=np.float32)
    torch.manual_seed(0)
    for quant in (Int8ActPerTensorFloat, Uint8ActPerTensorFloat, ShiftedUint8ActPerTensorFloat):
        q = qnn.QuantIdentity(act_quant=quant, return_quant_tensor=True)
        with torch.no_grad(), calibration_mode(q):
            q(torch.randn(256) + (1.0 if quant is ShiftedUint8ActPerTensorFloat else 0.0))
        q.eval()
        with torch.no_grad():
            y = q(torch.from_numpy(x))
        theirs = np.rint(y.value.double().numpy() / float(y.scale)) + float(y.zero_point)
        qp = act_quant_params(q.act_quant, 1, "q")
        ours = atomic_ops.get("quantize")(x, qp.scale, qp.zero_point, *int_range(qp.bit_width, qp.signed))
        assert ours.tolist() == theirs.astype(np.int64).tolist(), quant.__name__
        lo, hi = int_range(qp.bit_width, qp.signed)
        assert ours[[0, 2, 4, 7]].tolist() == [hi] * 4 and ours[[1, 3, 5]].tolist() == [lo] * 3


def test_inf_input_runs_through_the_engine_saturated(net):
    from tools.int8_inference import INT8InferenceEngine

    eng = INT8InferenceEngine(net)
    x = np.load(net / "inputs" / "example_input.npy").copy()
    x[0, 0, 0, :4] = [np.inf, -np.inf, 1e30, -1e30]
    _, ints = eng.forward(x)
    assert ints["quant_in"][0, 0, 0, :4].tolist() == [127, -128, 127, -128]


# -- 3. atomic outputs, deploy included; results.json for every run --------------------------------
@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A passing deploy of the mlp test network on the host: the 'earlier output' of the failure cases."""
    root = tmp_path_factory.mktemp("deployed")
    code, out, err = cli("deploy", "--test-network", "mlp", "--out", root / "out", "--skip-fidelity",
                         "--num-cases", "1")
    assert code == 0 and "RESULT: PASS" in out, out + err
    return root / "out"


def _fresh_copy(deployed, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(deployed, out, symlinks=True)
    return out


def test_deploy_failing_at_golden_leaves_out_untouched(deployed, tmp_path):
    out = _fresh_copy(deployed, tmp_path)
    before = snapshot(out)
    user_error(cli("deploy", "--test-network", "mlp", "--out", out, "--skip-fidelity", "--num-cases", "999"),
               "--num-cases 999 but only 360 inputs are available")
    assert snapshot(out) == before
    no_temporaries(tmp_path)


def test_deploy_failing_at_codegen_leaves_out_untouched(deployed, tmp_path):
    out = _fresh_copy(deployed, tmp_path)
    before = snapshot(out)
    user_error(cli("deploy", "--test-network", "mlp", "--out", out, "--skip-fidelity", "--num-cases", "1",
                   "--target", "gap9", "--l1-budget", "64"), "L1 budget of 64 bytes")
    assert snapshot(out) == before
    no_temporaries(tmp_path)


def test_deploy_negative_verdict_leaves_out_untouched_and_keeps_its_outputs_apart(deployed, tmp_path):
    out = _fresh_copy(deployed, tmp_path)
    before = snapshot(out)
    code, stdout, err = cli("deploy", "--test-network", "thirdparty_mobilenet_v1_raw", "--out", out)
    assert code == 1 and "RESULT: FAIL" in stdout and "Traceback" not in err
    assert snapshot(out) == before
    failed = tmp_path / "out.failed"
    summary = json.loads((failed / "deploy_summary.json").read_text())
    assert summary["passed"] is False and summary["check"]["deployable"] is False
    assert json.loads((failed / "compatibility_report.json").read_text())["deployable"] is False
    assert f"{out} was left as it was" in stdout
    no_temporaries(tmp_path)


def test_run_generated_writes_results_for_a_failed_build(deployed, tmp_path):
    proj = _fresh_copy(deployed, tmp_path) / "project_host"
    assert json.loads((proj / "results.json").read_text())["passed"] is True
    (proj / "src" / "network.c").write_text("this is not C\n")
    user_error(cli("run_generated", "--project", proj, "--target", "host"), "failed")
    res = json.loads((proj / "results.json").read_text())
    assert res["passed"] is False and res["layers"] == [] and "failed" in res["reasons"][0]


def test_run_generated_writes_results_for_a_wrong_target(deployed, tmp_path):
    proj = _fresh_copy(deployed, tmp_path) / "project_host"
    user_error(cli("run_generated", "--project", proj, "--target", "gap9-emu"), "generated for host")
    res = json.loads((proj / "results.json").read_text())
    assert res["passed"] is False and res["target"] == "gap9-emu" and "generated for host" in res["reasons"][0]


# -- 4. unwritable output / project directories; malformed flags; no traceback anywhere -------------
@pytest.mark.parametrize("tool, args", [
    ("pytorch_extractor", ["--test-network", "mlp", "--out", "{blocker}/net"]),
    ("generate_c_code", ["--network", "{net}", "--out", "{blocker}/proj", "--target", "host"]),
    ("generate_golden_outputs", ["--network", "{net}", "--inputs", "{net}/inputs/example_input.npy"]),
])
def test_output_below_a_file_is_refused(net, tmp_path, tool, args):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    if tool == "generate_golden_outputs":  # its output is NET/test_cases: make NET's copy a file there
        shutil.rmtree(net / "test_cases")
        (net / "test_cases").write_text("")
    before = snapshot(net)
    user_error(cli(tool, *[a.format(blocker=blocker, net=net) for a in args]),
               "is a file" if tool != "generate_golden_outputs" else "test_cases: exists and is not a directory")
    assert snapshot(net) == before


@pytest.mark.parametrize("tool", ["pytorch_extractor", "generate_c_code", "generate_golden_outputs",
                                  "run_generated"])
def test_unwritable_directories_are_one_line(net, deployed, tmp_path, monkeypatch, tool):
    """A directory the tool may not write (EACCES, as for a non-root user in a read-only directory)."""
    import tempfile

    import codegen.toolchains

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "ro"))

    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    monkeypatch.setattr(tempfile, "mkstemp", denied)
    monkeypatch.setattr(codegen.toolchains, "build", denied)
    args = {"pytorch_extractor": ["--test-network", "mlp", "--out", tmp_path / "ro" / "net"],
            "generate_c_code": ["--network", net, "--out", tmp_path / "ro" / "proj", "--target", "host"],
            "generate_golden_outputs": ["--network", net],
            "run_generated": ["--project", _fresh_copy(deployed, tmp_path) / "project_host", "--target", "host"]}
    before = snapshot(net)
    user_error(cli(tool, *args[tool]), "Permission denied")
    assert snapshot(net) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to read-only directories")
def test_read_only_directory(net, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        user_error(cli("generate_c_code", "--network", net, "--out", ro / "proj", "--target", "host"),
                   "Permission denied")
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("tool, args, fragment", [
    ("generate_golden_outputs", ["--network", "x", "--num-cases", "three"], "invalid int value: 'three'"),
    ("deploy", ["--test-network", "mlp"], "the following arguments are required: --out"),
    ("deploy", ["--test-network", "mlp", "--out", "{tmp}/o", "--l1-budget", "16K"], "apply to --target gap9 only"),
    ("deploy", ["--test-network", "mlp", "--out", "{tmp}/o", "--num-cases", "0"], "--num-cases must be at least 1"),
    ("run_generated", ["--project", "{tmp}", "--target", "gap9"], "invalid choice: 'gap9'"),
    ("pytorch_extractor", ["--test-network", "mlp", "--out", "{tmp}/o", "--input-quant", "int4"],
     "--input-quant 'int4': expected int8 or uint8"),
    ("pytorch_extractor", ["--test-network", "mlp", "--out", "{tmp}/o", "--input-quant", "uint8:-1"],
     "the scale must be a positive finite number"),
    ("pytorch_extractor", ["--test-network", "mlp", "--out", "{tmp}/o", "--input-quant", "int8:nan"],
     "the scale must be a positive finite number"),
    ("pytorch_extractor", ["--test-network", "mlp", "--out", "{tmp}/o", "--input-quant", "int8"],
     "the model already quantizes its input"),
])
def test_bad_flags_are_one_line(tmp_path, tool, args, fragment):
    user_error(cli(tool, *[a.format(tmp=tmp_path) for a in args]), fragment)
    assert not (tmp_path / "o").exists()


def test_internal_errors_are_one_line_exit_3():
    def broken(argv):
        raise KeyError("boom")

    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as ex:
        run_cli(broken, [])
    assert ex.value.code == 3 and err.getvalue().count("\n") == 1
    assert "internal error: KeyError: 'boom'" in err.getvalue() and "Traceback" not in err.getvalue()


def test_training_mode_model_is_switched_to_eval_with_a_warning(model_files, tmp_path):
    code, out, err = cli("pytorch_extractor", "--model-file", model_files["training_mode"], "--out", tmp_path / "n")
    assert code == 0, err
    assert [ln for ln in err.splitlines() if ln.startswith("warning:")] == [
        f"warning: {model_files['training_mode']}: the model is in training mode; switched to eval mode "
        "(BatchNorm uses its running statistics, quantizers their calibrated scales)"]


# -- 5. defaults on the documented minimum model file -----------------------------------------------
def test_golden_and_fidelity_defaults_on_the_minimal_model_file(model_files, tmp_path):
    d = tmp_path / "net"
    assert cli("pytorch_extractor", "--model-file", model_files["minimal"], "--out", d)[0] == 0
    code, out, err = cli("generate_golden_outputs", "--network", d)
    assert code == 0, err
    assert "1 test case from the model's example input: only 1 available, so 1 test case" in out
    assert json.loads((d / "test_cases" / "summary.json").read_text())["cases"] == 1
    code, out, err = cli("check_fidelity", "--model-file", model_files["minimal"], "--network", d)
    assert code == 0, err
    assert "on 1 input (the model's example input)" in out and "ran on ONE input only" in out


def test_deploy_with_defaults_on_the_minimal_model_file(model_files, tmp_path):
    """The documented minimum (create_model + example_input) deploys with every default: RESULT: PASS."""
    r = run_tool("deploy", "--model-file", str(model_files["minimal"]), "--out", str(tmp_path / "out"))
    assert r.returncode == 0 and "RESULT: PASS" in r.stdout, r.stdout + r.stderr
    assert "1 test case x" in r.stdout and "[ONE input only]" in r.stdout
    summary = json.loads((tmp_path / "out" / "deploy_summary.json").read_text())
    assert summary["passed"] and summary["run"]["mismatches"] == 0 and summary["fidelity"]["inputs"] == 1


# -- 6. --input-quant ----------------------------------------------------------------------------
def test_input_quant_makes_a_float_input_model_deployable(model_files, tmp_path):
    code, out, _ = cli("check_model_compatibility", "--model-file", model_files["float_input"])
    assert code == 1 and "receives the unquantized float input" in out and "--input-quant int8" in out
    code, out, err = cli("deploy", "--model-file", model_files["float_input"], "--input-quant", "uint8",
                         "--out", tmp_path / "out")
    assert code == 0 and "RESULT: PASS" in out, out + err
    assert "note: --input-quant uint8: inserted QuantIdentity(uint8, scale" in out
    assert "calibrated on the example input" in out
    summary = json.loads((tmp_path / "out" / "deploy_summary.json").read_text())
    assert summary["notes"][0].startswith("--input-quant uint8: inserted") and summary["fidelity"]["passed"]
    report = json.loads((tmp_path / "out" / "compatibility_report.json").read_text())
    assert report["deployable"] and report["notes"] == summary["notes"]
    doc = json.loads((tmp_path / "out" / "network_info.json").read_text())
    quant = _op(doc, "input_quant")
    assert quant["type"] == "quantize" and doc["tensors"]["input_quant"]["dtype"] == "uint8"


def test_input_quant_with_a_given_scale(model_files, tmp_path):
    code, out, err = cli("pytorch_extractor", "--model-file", model_files["float_input"], "--input-quant",
                         "int8:0.0078125", "--out", tmp_path / "net")
    assert code == 0, err
    t = json.loads((tmp_path / "net" / "network_info.json").read_text())["tensors"]["input_quant"]
    assert (t["scale"], t["zero_point"], t["bit_width"], t["signed"]) == (0.0078125, 0, 8, True)
    assert "scale 0.0078125 given" in out


# -- 7. the seed's entry point ---------------------------------------------------------------------
def test_codegen_entry_point_is_the_tool(net, tmp_path):
    a = subprocess_run([sys.executable, str(REPO / "codegen" / "generate_c_code.py"), "--network", str(net),
                        "--out", str(tmp_path / "a"), "--target", "host", "-q"])
    assert a.returncode == 0, a.stderr
    assert cli("generate_c_code", "--network", net, "--out", tmp_path / "b", "--target", "host", "-q")[0] == 0
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    bad = subprocess_run([sys.executable, str(REPO / "codegen" / "generate_c_code.py"), "--network",
                          str(tmp_path / "none"), "--out", str(tmp_path / "c"), "--target", "host"])
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no such file" in bad.stderr


def subprocess_run(cmd):
    import subprocess

    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)


def test_input_quant_on_brevitas_examples_mobilenet_unmodified(tmp_path):
    """brevitas_examples' imagenet MobileNet as its users build it (no input quantizer): the checker's fix
    names --input-quant, and with it the model deploys bit-exact on the host."""
    model = REPO / "tests" / "float_input_models" / "mobilenet_v1.py"
    code, out, _ = cli("check_model_compatibility", "--model-file", model)
    assert code == 1 and "features.init_block.conv" in out and "--input-quant int8" in out
    code, out, err = cli("deploy", "--model-file", model, "--input-quant", "uint8", "--fidelity-cases", "16",
                         "--out", tmp_path / "out")
    assert code == 0 and "RESULT: PASS" in out, out + err
    summary = json.loads((tmp_path / "out" / "deploy_summary.json").read_text())
    assert summary["fidelity"]["passed"] and summary["run"]["mismatches"] == 0
    assert summary["run"]["compared"] == summary["run"]["layers"]


FACTORY_MODEL = '''
import torch.nn as nn
import brevitas.nn as qnn


class Classifier(nn.Module):
    def __init__(self, in_ch, n_classes=10):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(in_ch, n_classes, bias=True)

    def forward(self, x):
        return self.fc(self.q(x))


def get_model():
    return Classifier(4)
'''


def test_model_file_without_create_model_names_what_it_has(tmp_path):
    """A factory of another name, a class needing arguments: one line naming them and the fix."""
    f = tmp_path / "factory.py"
    f.write_text(FACTORY_MODEL)
    user_error(cli("check_model_compatibility", "--model-file", f),
               "factory.py: defines no create_model(); add a create_model() returning the trained model (it "
               "defines get_model(): def create_model(): return get_model()), or pass --model-class Classifier")
    user_error(cli("check_model_compatibility", "--model-file", f, "--model-class", "Classifier", "--input-shape", "1,4"),
               "factory.py: --model-class Classifier: its constructor needs in_ch, and --model-class calls it with "
               "no arguments; give them defaults or add a create_model() that returns Classifier(...)")
