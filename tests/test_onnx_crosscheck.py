"""onnxruntime on the Brevitas QCDQ export agrees bit-exactly with the engine (power-of-two nets)."""

import numpy as np
import pytest
from conftest import REGRESSION, source

from gapforge import fidelity
from gapforge.onnx_check import compare, op_name_for
from tools.int8_inference import INT8InferenceEngine

POT = [n for n in REGRESSION if n.startswith("pot_")]


def test_onnx_name_mapping():
    assert op_name_for("/relu1/act_quant/export_handler/QuantizeLinear_output_0") == "relu1"
    assert op_name_for("/layer1/0/relu/act_quant/export_handler_1/QuantizeLinear_output_0") == "layer1.0.relu.call2"
    assert op_name_for("/conv/input_quant/export_handler/QuantizeLinear_output_0") == "conv.input_quant"
    assert op_name_for("/conv/weight_quant/export_handler/Clip_output_0") is None


@pytest.mark.parametrize("name", POT)
def test_power_of_two_networks_match_onnxruntime_bit_exactly(name, extracted):
    d = extracted(name)
    engine = INT8InferenceEngine(d)
    assert fidelity.is_power_of_two_network(engine.net)
    x = np.load(d / "inputs" / "held_out_x.npy")[:16]
    res = compare(source(name).model, engine, x)
    assert res["output_equal"], res
    matched = {k: v for k, v in res["layers"].items() if v is not None}
    quant_steps = [s.output for s in engine.plan.steps if s.requant is not None or s.kind == "quantize"]
    assert set(quant_steps) <= set(matched), (quant_steps, res["layers"])
    assert all(v == 0 for v in matched.values()), matched


def test_there_is_at_least_one_power_of_two_network():
    assert POT
