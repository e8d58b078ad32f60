"""Networks with several inputs (dual_input_fusion): stored inputs, network_info.json, golden cases,
--inputs as an .npz, validation errors naming the input, and one input region per input on every target."""

import json

import numpy as np
import pytest
from conftest import run_tool

from codegen.generate import generate_project
from gapforge import inputs
from gapforge.errors import GapforgeError
from tools.int8_inference import INT8InferenceEngine

NET = "dual_input_fusion"


def test_every_input_is_stored_and_declared(extracted):
    d = extracted(NET)
    names = sorted(p.name for p in (d / "inputs").iterdir())
    assert names == ["example_input_0.npy", "example_input_1.npy", "held_out_x_0.npy", "held_out_x_1.npy",
                     "held_out_y.npy"]
    info = json.loads((d / "network_info.json").read_text())
    assert info["inputs"] == ["input_0", "input_1"]
    assert [info["tensors"][n]["shape"] for n in info["inputs"]] == [[1, 4, 8], [1, 4, 8]]
    x, y, _ = inputs.stored(d)
    assert isinstance(x, inputs.Several) and len(x) == len(y) == 360 and len(x.arrays) == 2


def test_engine_checks_each_input(extracted):
    engine = INT8InferenceEngine(extracted(NET))
    a, b = inputs.stored(extracted(NET))[0][:3].arrays
    out, _ = engine.forward((a, b))
    assert out.shape == (3, 10)
    assert np.array_equal(engine.forward(inputs.Several([a, b]))[0], out)
    with pytest.raises(GapforgeError, match=r"input 1 \('input_1'\): shape \[3, 3, 8\]"):
        engine.forward((a, b[:, :3]))
    with pytest.raises(GapforgeError, match="1 input array for a network with 2 inputs"):
        engine.forward(a)
    bad = b.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(GapforgeError, match=r"input 1 \('input_1'\): NaN at index \[1, 2, 3\]"):
        engine.forward((a, bad))


def test_golden_cases_from_an_npz_and_errors_naming_the_input(extracted, tmp_path):
    d = extracted(NET)
    a, b = inputs.stored(d)[0][:2].arrays
    np.savez(tmp_path / "two.npz", a, b)
    np.savez(tmp_path / "named.npz", input_1=b, input_0=a)
    np.savez(tmp_path / "bad.npz", a, b[:, :, :5])
    np.save(tmp_path / "one.npy", a)
    net = tmp_path / "net"
    net.mkdir()
    for f in ("network_info.json",):
        (net / f).write_text((d / f).read_text())
    (net / "weights").symlink_to(d / "weights")
    r = run_tool("generate_golden_outputs", "--network", str(net), "--inputs", str(tmp_path / "two.npz"), "-q")
    assert r.returncode == 0, r.stderr
    case = net / "test_cases" / "test_case_2"
    assert np.array_equal(np.load(case / "input_fp32_0.npy"), a[1:2])
    assert np.array_equal(np.load(case / "input_fp32_1.npy"), b[1:2])
    first = json.loads((case / "metadata.json").read_text())["tensors"]
    r = run_tool("generate_golden_outputs", "--network", str(net), "--inputs", str(tmp_path / "named.npz"), "-q")
    assert r.returncode == 0, r.stderr
    assert json.loads((case / "metadata.json").read_text())["tensors"] == first  # same order: input_0, input_1
    for f, words in (("bad.npz", "input 1 ('input_1'): shape [2, 4, 5]"),
                     ("one.npy", "1 input array for a network with 2 inputs (input_0, input_1); pass an .npz")):
        r = run_tool("generate_golden_outputs", "--network", str(net), "--inputs", str(tmp_path / f))
        assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("target", ["host", "gap9"])
def test_one_input_region_per_input(golden, tmp_path, target):
    g = generate_project(golden(NET), tmp_path / target, target, 1)
    prog = getattr(g, "program", g)
    assert [t.name for t in prog.inputs] == ["quant_a", "quant_b"]
    offsets = [prog.memory.offset(t.name) for t in prog.inputs]
    assert offsets[0] != offsets[1]
    assert {"golden_000.bin", "golden_002.bin"} <= set(prog.golden_files)
