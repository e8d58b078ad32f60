"""Attention modules (issue 9 item 5): brevitas.nn.QuantMultiheadAttention as Brevitas ships it (both
layouts, packed and separate in-projections), the checker's verdict on each unsupported variant, and
the LayerNorm of a residual sum (refused with the exact fix)."""

from __future__ import annotations

import json
from pathlib import Path

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from brevitas.quant import Int8ActPerTensorFloat, Int32Bias
from conftest import calibrated, run_tool

from gapforge.compat import check_model
from gapforge.extract import extract
from gapforge.fidelity import check as fidelity_check
from gapforge.modelsrc import ModelSource
from tools.int8_inference import INT8InferenceEngine

T, E, H = 6, 16, 2


class MHANet(nn.Module):
    """QuantIdentity -> QuantMultiheadAttention -> QuantIdentity -> QuantLinear head."""

    def __init__(self, batch_first=True, call=None, **mha):
        super().__init__()
        self.batch_first = batch_first
        self.call = {"need_weights": False} if call is None else call
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.mha = qnn.QuantMultiheadAttention(E, H, batch_first=batch_first, **mha)
        self.oq = qnn.QuantIdentity(return_quant_tensor=True)
        self.head = qnn.QuantLinear(T * E, 4, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        b = x.size(0)
        x = self.q(x)
        if not self.batch_first:
            x = x.transpose(0, 1)
        call = dict(self.call)
        if call.get("key_padding_mask") == "batch":
            call["key_padding_mask"] = torch.zeros(b, T, dtype=torch.bool)
        y, _ = self.mha(x, x, x, **call)
        if not self.batch_first:
            y = y.transpose(0, 1)
        return self.head(self.oq(y).reshape(b, T * E))


class CrossAttention(nn.Module):
    """Separate projections (packed_in_proj=False) with kdim = vdim = 8: queries from one tensor,
    keys and values from another with another token count."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.kv = qnn.QuantIdentity()
        self.mha = qnn.QuantMultiheadAttention(E, H, batch_first=True, packed_in_proj=False, kdim=8, vdim=8,
                                               out_proj_output_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        q = self.q(x)
        kv = self.kv(x)[:, :4, :8]
        y, _ = self.mha(q, kv, kv, need_weights=False)
        return y


class TransposeElsewhere(nn.Module):
    """x.transpose(0, 1) consumed by something other than a batch_first=False attention."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity()
        self.o = qnn.QuantIdentity()

    def forward(self, x):
        return self.o(self.q(x).transpose(0, 1))


class FunctionalDropout(nn.Module):
    """F.dropout(x, 0.1) without training=: its default training=True drops even in eval mode."""

    def __init__(self, training_flag=False):
        super().__init__()
        self.training_flag = training_flag
        self.q = qnn.QuantIdentity()
        self.o = qnn.QuantIdentity()

    def forward(self, x):
        x = self.q(x)
        x = F.dropout(x, 0.1, self.training) if self.training_flag else F.dropout(x, 0.1)
        return self.o(x)


class ResidualLayerNorm(nn.Module):
    """x + fc(x) (a QuantTensor plus a float accumulator: a float sum), then LayerNorm."""

    def __init__(self, quantized_sum=False):
        super().__init__()
        self.quantized_sum = quantized_sum
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(E, E, bias=True, bias_quant=Int32Bias)
        self.res_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.ln = nn.LayerNorm(E)
        self.o = qnn.QuantIdentity()

    def forward(self, x):
        x = self.q(x)
        s = x + self.fc(x)
        if self.quantized_sum:
            s = self.res_q(s)
        return self.o(self.ln(s))


class SameScaleResidual(ResidualLayerNorm):
    """QuantTensor + QuantTensor of one quantizer (the integer sum, bit width + 1), then LayerNorm."""

    def forward(self, x):
        x = self.q(x)
        return self.o(self.ln(x + self.q(self.fc(x))))


def _calibrated(factory, shape=(8, T, E)):
    return calibrated(factory, shape)


def _source(name, factory):
    m = _calibrated(factory)
    torch.manual_seed(1)
    return ModelSource(name, "test_attention.py", m, (torch.randn(1, T, E),), None)


def _unsupported(rep):
    return [d for d in rep.items if d.status == "unsupported"]


@pytest.mark.parametrize("name, factory, text, hint", [
    ("attn_mask_dead_row", lambda: MHANet(call={"need_weights": False,
                                                "attn_mask": torch.ones(T, T).triu(1).bool().index_fill(0, torch.tensor([1]), True)}),
     "its attn_mask masks every key of query row 1: PyTorch's softmax gives NaN there", "at least one key unmasked"),
    ("attn_mask_float_bias", lambda: MHANet(call={"need_weights": False, "attn_mask": torch.full((T, T), 0.5)}),
     "has values other than 0 and -inf", "a mask of 0 (keep)"),
    ("key_padding_mask", lambda: MHANet(call={"need_weights": False,
                                               "key_padding_mask": "batch"}),
     "key_padding_mask is given", "without key_padding_mask"),
    ("need_weights", lambda: MHANet(call={}), "need_weights=True (the default)", "need_weights=False"),
    ("add_bias_kv", lambda: MHANet(add_bias_kv=True), "add_bias_kv=True", "add_bias_kv=False"),
    ("add_zero_attn", lambda: MHANet(add_zero_attn=True), "add_zero_attn=True", "add_zero_attn=False"),
    ("transpose_elsewhere", TransposeElsewhere, "is sequence first", "transpose back"),
    ("functional_dropout", FunctionalDropout, "with training=True (its default)", "training=self.training"),
    ("residual_float_sum", ResidualLayerNorm, "float sum of a residual add", "self.res_q(x + "),
    ("residual_same_scale", SameScaleResidual, "integer sum of a residual add", "QuantIdentity"),
])
def test_unsupported_variants_are_named_with_a_hint(name, factory, text, hint):
    rep = check_model(_source(name, factory))
    assert not rep.deployable
    bad = _unsupported(rep)
    assert len(bad) == 1, [(d.name, d.message) for d in bad]
    assert text in bad[0].message and hint in (bad[0].hint or ""), (bad[0].message, bad[0].hint)
    if name not in ("transpose_elsewhere", "functional_dropout") and not name.startswith("residual"):
        assert bad[0].name == "mha"


class BatchFirstTensorToSeqFirst(MHANet):
    """batch_first=False given the batch-first tensor: Brevitas would attend over the batch axis."""

    def forward(self, x):
        x = self.q(x)
        y, _ = self.mha(x, x, x, need_weights=False)
        return y


def test_batch_first_false_on_a_batch_first_tensor_is_refused():
    rep = check_model(_source("wrong_layout", lambda: BatchFirstTensorToSeqFirst(batch_first=False)))
    bad = _unsupported(rep)
    assert len(bad) == 1 and bad[0].name == "mha" and "attend over the batch axis" in bad[0].message
    assert "x.transpose(0, 1)" in bad[0].hint


@pytest.mark.parametrize("name, factory", [
    ("batch_first", lambda: MHANet(batch_first=True)),
    ("seq_first", lambda: MHANet(batch_first=False)),
    ("dropout_eval", lambda: MHANet(dropout=0.1)),
    ("no_bias", lambda: MHANet(bias=False)),
    ("softmax_input_quant", lambda: MHANet(softmax_input_quant=Int8ActPerTensorFloat)),
    ("cross_attention", CrossAttention),
    ("residual_quantized", lambda: ResidualLayerNorm(quantized_sum=True)),
    ("functional_dropout_eval", lambda: FunctionalDropout(training_flag=True)),
])
def test_supported_attention_matches_brevitas_on_every_layer(name, factory):
    src = _source(name, factory)
    rep = check_model(src)
    assert rep.deployable, [(d.name, d.message) for d in _unsupported(rep)]
    net = extract(src)
    engine = INT8InferenceEngine(net)
    torch.manual_seed(2)
    x = torch.randn(64, T, E).numpy()
    fid = fidelity_check(src.model, engine, x, name)
    assert all(lf.compared for lf in fid.teacher_forced), [lf.name for lf in fid.teacher_forced if not lf.compared]
    assert fid.outside_window == 0 and fid.unexplained == 0
    assert fid.top1_agreement == 1.0
    with torch.no_grad():
        ref = src.model(torch.from_numpy(x))
    ref = getattr(ref, "value", ref).numpy()
    out, _ = engine.forward(x)
    assert np.abs(out.reshape(ref.shape) - ref).max() <= 1e-4 * max(1.0, float(np.abs(ref).max()))
    if name in ("batch_first", "seq_first"):
        kinds = {op.type for op in net.ops}
        assert {"matmul", "softmax", "linear", "permute"} <= kinds


MODEL_FILE = """
import sys
import torch
sys.path.insert(0, {tests!r})
from test_attention import MHANet, _calibrated

def create_model():
    return _calibrated(lambda: MHANet(batch_first=False))

def example_input():
    torch.manual_seed(1)
    return torch.randn(1, 6, 16)

def held_out_data():
    torch.manual_seed(2)
    return torch.randn(32, 6, 16), torch.zeros(32, dtype=torch.int64)
"""


def _model_file(tmp_path, body: str):
    src = tmp_path / "mha_model.py"
    src.write_text(body.replace("{tests!r}", repr(str(Path(__file__).resolve().parent))))
    return src


def test_batch_first_false_deploys_bit_exact_on_host(tmp_path):
    src = _model_file(tmp_path, MODEL_FILE)
    out = tmp_path / "out"
    r = run_tool("deploy", "--model-file", str(src), "--out", str(out), "--target", "host")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "RESULT: PASS" in r.stdout and "BIT-EXACT" in r.stdout
    summary = json.loads((out / "deploy_summary.json").read_text())
    assert summary


def test_checker_cli_names_the_argument_in_one_line(tmp_path):
    src = _model_file(tmp_path, MODEL_FILE.replace("MHANet(batch_first=False)", "MHANet(call={})"))
    r = run_tool("check_model_compatibility", "--model-file", str(src))
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if "FAIL" in ln]
    assert len(lines) == 1 and "mha" in lines[0] and "need_weights=True" in lines[0]
    assert "need_weights=False" in r.stdout
