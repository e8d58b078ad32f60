"""The INT8 engine against Brevitas: teacher-forced per layer, free-running end to end."""

import numpy as np
import pytest
import torch
from conftest import DEPLOYABLE, source

from gapforge import fidelity, inputs, ir
from tools.int8_inference import INT8InferenceEngine

CASES = 48


def _inputs(d):
    held = inputs.stored_arrays(d, "held_out_x")
    return held[:CASES] if held is not None else inputs.stored_arrays(d, "example_input")


@pytest.mark.parametrize("name", DEPLOYABLE)
def test_teacher_forced_and_free_running(name, extracted):
    d = extracted(name)
    engine = INT8InferenceEngine(d)
    rep = fidelity.check(source(name).model, engine, _inputs(d), name)
    print(fidelity.format_report(rep))
    assert rep.unexplained == 0, fidelity.format_report(rep)
    compared = [lf for lf in rep.teacher_forced if lf.compared]
    assert len(compared) >= len(rep.teacher_forced) - 1  # every layer is observable in Brevitas
    if rep.power_of_two:
        assert rep.total_mismatches == 0
    # explained mismatches really are rare near-ties
    for lf in rep.teacher_forced:
        assert lf.mismatches <= max(5, lf.elements * 1e-4), lf
        assert lf.max_abs_diff <= 1 or lf.note
    assert rep.top1_agreement == 1.0


@pytest.mark.parametrize("name", ["pot_cnn"])
def test_power_of_two_network_is_exact_everywhere(name, extracted):
    d = extracted(name)
    engine = INT8InferenceEngine(d)
    assert fidelity.is_power_of_two_network(engine.net)
    rep = fidelity.check(source(name).model, engine, _inputs(d), name)
    assert rep.total_mismatches == 0
    assert all(lf.mismatches == 0 for lf in rep.free_running)
    assert rep.max_abs_output_diff == 0.0


@pytest.mark.parametrize("name", DEPLOYABLE)
def test_example_input_top1_and_golden_output(name, extracted):
    d = extracted(name)
    engine = INT8InferenceEngine(d)
    x = inputs.stored_arrays(d, "example_input")
    out, ints = engine.forward(x)
    with torch.no_grad():
        ref = source(name).model(*inputs.torch_args(x))
    ref = getattr(ref, "value", ref).numpy()
    assert fidelity.top1_agreement(out.reshape(1, -1), ref.reshape(1, -1)) == 1.0
    rel = np.abs(out - ref).max() / np.abs(ref).max()
    assert rel < 0.05, rel  # identical up to rare near-tie flips propagating
    assert set(ints) == set(engine.plan.step_outputs())


def test_engine_batches_equal_single_runs(extracted):
    d = extracted("resnet_block")
    engine = INT8InferenceEngine(d)
    x = _inputs(d)[:5]
    out_b, ints_b = engine.forward(x)
    for i in range(5):
        out_1, ints_1 = engine.forward(x[i])
        assert np.array_equal(out_1[0], out_b[i])
        for k in ints_1:
            assert np.array_equal(ints_1[k][0], ints_b[k][i])


def test_int_outputs_use_container_dtypes(extracted):
    engine = INT8InferenceEngine(extracted("lowbit_cnn"))
    _, ints = engine.forward(np.load(extracted("lowbit_cnn") / "inputs" / "example_input.npy"))
    for name, arr in ints.items():
        t = engine.net.tensors[name]
        assert str(arr.dtype) == t.dtype
        if t.kind == "quant":
            lo, hi = t.qrange()
            assert arr.min() >= lo and arr.max() <= hi
    net = ir.load(extracted("lowbit_cnn"))
    assert any(t.bit_width == 2 for t in net.tensors.values() if t.kind == "quant")
