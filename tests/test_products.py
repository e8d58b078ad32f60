"""Products of activations and token ops (issue 9 item 4): engine semantics, checker verdicts for
the variants that are not supported, and the GAP9 gemm tiling (tokens over L1 tiles, L3 streaming)."""

from __future__ import annotations

import json
import math

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
import torch.nn as nn
from brevitas.quant import Int32Bias
from conftest import calibrated, run_tool

from atomic_ops.matmul import matmul as np_matmul
from atomic_ops.pad import pad as np_pad
from atomic_ops.slice import slice as np_slice
from codegen import toolchains
from codegen.gap9.hw import DEFAULT
from codegen.gap9.tiling import tile_step
from gapforge import ir
from gapforge.compat import check_model
from gapforge.modelsrc import ModelSource
from gapforge.plan import build_plan


def test_matmul_reference_is_the_exact_product_with_zero_points():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 3, 5, 7)).astype(np.uint8)
    b = rng.integers(-128, 128, (2, 3, 7, 4)).astype(np.int8)
    want = np.einsum("ghik,ghkj->ghij", a.astype(np.int64) - 9, b.astype(np.int64) + 4)
    assert np.array_equal(np_matmul(a, b, 9, -4), want)


def test_slice_and_pad_references():
    x = np.arange(2 * 5 * 3, dtype=np.int8).reshape(1, 2, 5, 3)
    assert np.array_equal(np_slice(x, 2, 1, 5, 2), x[:, :, 1:5:2])
    y = np_pad(x, 1, 1, 2, -7)
    assert y.shape == (1, 5, 5, 3) and (y[:, 0] == -7).all() and (y[:, 3:] == -7).all()
    assert np.array_equal(y[:, 1:3], x)


# -- checker verdicts --------------------------------------------------------------------------
class _Base(nn.Module):
    def __init__(self):
        super().__init__()
        self.qa = qnn.QuantIdentity(return_quant_tensor=True)
        self.qb = qnn.QuantIdentity()
        self.fc = qnn.QuantLinear(8, 8, bias=True, bias_quant=Int32Bias)
        self.out = qnn.QuantIdentity()
        self.pos = nn.Parameter(torch.randn(1, 4, 8))


class FloatProduct(_Base):
    def forward(self, x):
        return self.out(x @ self.qb(x).transpose(1, 2))


class AccProduct(_Base):
    def forward(self, x):
        a = self.qa(x)
        return self.out(self.fc(a) @ self.fc(a).transpose(1, 2))


class Masked(_Base):
    def forward(self, x):
        a = self.qb(x)
        s = self.out(a @ a.transpose(1, 2))
        return s.masked_fill(torch.ones(4, 4).triu(1).bool(), 0.0)


class Einsum(_Base):
    def forward(self, x):
        a = self.qb(x)
        return self.out(torch.einsum("bik,bjk->bij", a, a))


class Broadcast(_Base):
    def forward(self, x):
        a = self.qb(x)
        b = x.size(0)
        return self.out(a.view(b, 2, 2, 8) @ a.transpose(1, 2).reshape(b, 1, 8, 4))


class ConstantToRelu(_Base):
    def forward(self, x):
        a = self.qb(x)
        return self.out(torch.relu(a + self.pos))


class AccNumberAdd(_Base):  # a number added to a fresh linear accumulator folds into its offset
    def forward(self, x):
        return self.out(self.fc(self.qa(x)) + 1.5)


class NegativeScale(_Base):  # a negative factor of a fresh matmul accumulator flips its scale
    def forward(self, x):
        a = self.qb(x)
        return self.out((a @ a.transpose(1, 2)) * -0.5)


class Supported(_Base):
    """Both scalings, a slice, a mean, a constant add and a class-token cat: deployable."""

    def __init__(self):
        super().__init__()
        self.cls = nn.Parameter(torch.randn(1, 1, 4))
        self.pos5 = nn.Parameter(torch.randn(1, 5, 4))

    def forward(self, x):
        a = self.qb(x)
        s = self.out(a @ (a * 0.5).transpose(1, 2) / math.sqrt(8))  # [B, 4, 4]
        c = torch.cat([self.cls.expand(x.size(0), -1, -1), s], dim=1) + self.pos5
        t = self.qb(c)
        return self.out(t[:, 1:].mean(dim=1))


def _calibrated(cls):
    return calibrated(cls, (8, 4, 8))


def _verdict(cls):
    m = _calibrated(cls)
    return check_model(ModelSource(cls.__name__, "test_products.py", m, (torch.randn(1, 4, 8),), None))


@pytest.mark.parametrize("cls, text, hint", [
    (FloatProduct, "is an unquantized float tensor without an 8-bit encoding (the network input)", "QuantIdentity"),
    (AccProduct, "is an int32 accumulator without an 8-bit encoding", "output quantizer"),
    (Masked, "a mask is deployable only right before a softmax", "masked_fill(mask, float('-inf'))"),
    (Einsum, "unsupported operation einsum", "torch.matmul"),
    (Broadcast, "broadcasting of the leading axes is not supported", "same leading shape"),
    (ConstantToRelu, "must go to a quantizer first", "QuantIdentity right after"),
])
def test_unsupported_variants_are_named_with_a_hint(cls, text, hint):
    rep = _verdict(cls)
    assert not rep.deployable
    bad = [d for d in rep.items if d.status == "unsupported"]
    assert any(text in d.message and hint in (d.hint or "") for d in bad), [(d.message, d.hint) for d in bad]


@pytest.mark.parametrize("cls", [AccNumberAdd, NegativeScale])
def test_constants_on_a_fresh_accumulator_fold_and_are_exact(cls, tmp_path):
    """fc(x) + 1.5 and (a @ a^T) * -0.5: the constant goes into the accumulator's offset / scale (no op of its own),
    and the engine equals Brevitas (the next quantizer's codes, near-ties aside)."""
    from gapforge import fidelity
    from gapforge.extract import extract, write_network
    from tools.int8_inference import INT8InferenceEngine

    m = _calibrated(cls)
    src = ModelSource(cls.__name__, "test_products.py", m, (torch.randn(1, 4, 8),), None)
    assert check_model(src).deployable
    net = extract(src)
    assert not any(op.type in ("add_constant", "rescale", "lut") for op in net.ops), [op.type for op in net.ops]
    write_network(net, tmp_path / "net")
    torch.manual_seed(3)
    rep = fidelity.check(m, INT8InferenceEngine(tmp_path / "net"), torch.randn(16, 4, 8).numpy(), cls.__name__)
    assert rep.passed and rep.unexplained == 0 and rep.outside_window == 0


def test_scalings_slices_means_and_constants_are_deployable():
    rep = _verdict(Supported)
    assert rep.deployable, [(d.name, d.message, d.hint) for d in rep.items if d.status != "supported"]


def test_checker_cli_names_a_mask_in_one_line(tmp_path):
    src = tmp_path / "masked.py"
    src.write_text(
        "import torch, torch.nn as nn, brevitas.nn as qnn\n"
        "class M(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__(); self.q = qnn.QuantIdentity(); self.o = qnn.QuantIdentity()\n"
        "    def forward(self, x):\n"
        "        a = self.q(x); s = self.o(a @ a.transpose(1, 2))\n"
        "        return s.masked_fill(torch.ones(4, 4).triu(1).bool(), 0.0)\n"
        "def create_model():\n"
        "    m = M().eval()\n"
        "    from brevitas.graph.calibrate import calibration_mode\n"
        "    with torch.no_grad(), calibration_mode(m):\n"
        "        m(torch.randn(8, 4, 8))\n"
        "    return m.eval()\n"
        "def example_input():\n"
        "    return torch.randn(1, 4, 8)\n")
    r = run_tool("check_model_compatibility", "--model-file", str(src))
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr
    assert "masked_fill" in r.stdout and "a mask is deployable only right before a softmax" in r.stdout


# -- GAP9 gemm tiling --------------------------------------------------------------------------
def test_rows_tiles_split_the_tokens_and_predict_the_dma(extracted):
    net = ir.load(extracted("attention_core"))
    plan = build_plan(net)
    small = DEFAULT.with_budgets(2048, None)
    seen = set()
    for step in plan.steps:
        tp = tile_step(step, net, small)
        if tp.tiling != "gemm":
            continue
        seen.add(step.kind)
        y = net.tensors[step.output]
        assert tp.l1_bytes <= 2048 and tp.dma["out"] == y.numel * (4 if y.dtype == "int32" else 1)
        groups, per, per_c = tp.counts
        assert tp.n_tiles == groups * per * per_c and tp.cores == min(8, tp.tile["rows"])
        if step.kind == "matmul":  # each tile loads its head's second operand once
            b = net.tensors[step.inputs[1]]
            assert tp.dma["in2"] == tp.n_tiles * b.numel // groups
        full = tile_step(step, net, DEFAULT.with_budgets(None, None))
        assert full.n_tiles <= tp.n_tiles and full.dma_total <= tp.dma_total
    assert seen == {"matmul", "linear"}


GAP9_OK = toolchains.cross_compiler_available()[0]


@pytest.mark.skipif(not GAP9_OK, reason="rv32 cross compiler missing")
def test_attention_with_parameters_streamed_from_l3_stays_exact(golden, tmp_path):
    """At a 6 KiB L2 budget the weights and requantization parameters of every linear come from L3 through the
    bounce buffers (a matmul's per-tensor constants are read from L3 once, into its run record: no parameter
    buffer); 1 KiB of L1 splits the products into one tile per head."""
    from tools.run_generated import run_project

    proj = tmp_path / "attn_l3"
    r = run_tool("generate_c_code", "--network", str(golden("attention_core")), "--target", "gap9",
                 "--out", str(proj), "--l1-budget", "1K", "--l2-budget", "6K")
    assert r.returncode == 0, r.stdout + r.stderr
    plan = json.loads((proj / "plan.json").read_text())
    assert plan["gap9"]["params_level"] == "L3"
    rows = [lay for lay in plan["gap9"]["layers"] if lay["tiling"] == "gemm"]
    assert {lay["kind"].split("+")[0] for lay in rows} == {"matmul", "linear"}
    assert all(lay["dma_bytes"]["l3_to_l2"] > 0 for lay in rows if lay["kind"].startswith("linear"))
    assert all(lay["l1_buffers"]["p"] == 0 == lay["dma_bytes"]["l3_to_l2"] for lay in rows if lay["kind"].startswith("matmul"))
    assert any(lay["tiles"] > 1 for lay in rows if lay["kind"].startswith("matmul"))
    passed, res = run_project(proj, "gap9-emu", timeout=300)
    assert passed and res["totals"]["mismatches"] == 0 and res["plan_mismatches"] == [], res.get("reasons")


STREAMED = """
import torch, torch.nn as nn, brevitas.nn as qnn
from brevitas.quant import Int32Bias

class M(nn.Module):
    \"\"\"A product whose operands and result are no permute's (so they may live in L3).\"\"\"
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.fa = qnn.QuantLinear(32, 48, bias=True, bias_quant=Int32Bias)
        self.fb = qnn.QuantLinear(64, 48, bias=True, bias_quant=Int32Bias)
        self.qa, self.qb, self.o = qnn.QuantIdentity(), qnn.QuantIdentity(), qnn.QuantReLU()
        self.head = qnn.QuantIdentity()

    def forward(self, x):
        x = self.q(x)
        a = self.qa(self.fa(x))                    # [B, 64, 48]
        b = self.qb(self.fb(x.transpose(1, 2)))    # [B, 32, 48]
        return self.head(self.o(a @ b.transpose(1, 2) / 8.0))  # [B, 64, 32]

def create_model():
    torch.manual_seed(0)
    m = M().eval()
    from brevitas.graph.calibrate import calibration_mode
    with torch.no_grad(), calibration_mode(m):
        m(torch.randn(8, 64, 32))
    return m.eval()

def example_input():
    torch.manual_seed(1)
    return torch.randn(1, 64, 32)
"""


@pytest.mark.skipif(not GAP9_OK, reason="rv32 cross compiler missing")
def test_matmul_operands_streamed_from_l3_tile_over_tokens(tmp_path):
    from tools.run_generated import run_project

    src = tmp_path / "streamed.py"
    src.write_text(STREAMED)
    net, proj = tmp_path / "net", tmp_path / "proj"
    for tool, args in (("pytorch_extractor", ["--model-file", str(src), "--out", str(net), "-q"]),
                       ("generate_golden_outputs", ["--network", str(net), "-q"]),
                       ("generate_c_code", ["--network", str(net), "--target", "gap9", "--out", str(proj),
                                            "--l1-budget", "4K", "--l2-budget", "12K", "-q"])):
        r = run_tool(tool, *args)
        assert r.returncode == 0, (tool, r.stdout + r.stderr)
    plan = json.loads((proj / "plan.json").read_text())
    mm = next(lay for lay in plan["gap9"]["layers"] if lay["kind"].startswith("matmul"))
    assert mm["tiling"] == "gemm" and mm["tiles"] > 1
    assert any(mm["levels"][k] == "L3" for k in ("in", "in2", "out")), mm["levels"]
    passed, res = run_project(proj, "gap9-emu", timeout=300)
    assert passed and res["totals"]["mismatches"] == 0 and res["plan_mismatches"] == [], res.get("reasons")


COLUMNS = """
import torch, torch.nn as nn, brevitas.nn as qnn
from brevitas.quant import Int32Bias

class M(nn.Module):
    \"\"\"Linear layers over tokens whose weights, and a product whose second operand, exceed a small L1.\"\"\"
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.fa = qnn.QuantLinear(32, 96, bias=True, bias_quant=Int32Bias, weight_scaling_per_output_channel=True)
        self.fb = qnn.QuantLinear(32, 96, bias=True, bias_quant=Int32Bias, weight_bit_width=4)
        self.qa, self.qb, self.o = qnn.QuantIdentity(), qnn.QuantIdentity(), qnn.QuantIdentity()

    def forward(self, x):
        x = self.q(x)
        a = self.qa(self.fa(x))                        # [B, 24, 96], per-channel requantization
        b = self.qb(self.fb(x))                        # [B, 24, 96], 4-bit (packed) weights
        return self.o(a.transpose(1, 2) @ b / 8.0)     # [B, 96, 24] @ [B, 24, 96]

def create_model():
    torch.manual_seed(0)
    m = M().eval()
    from brevitas.graph.calibrate import calibration_mode
    with torch.no_grad(), calibration_mode(m):
        m(torch.randn(8, 24, 32))
    return m.eval()

def example_input():
    torch.manual_seed(1)
    return torch.randn(1, 24, 32)
"""


def _columns_net(tmp_path):
    src = tmp_path / "columns.py"
    src.write_text(COLUMNS)
    net = tmp_path / "net"
    for tool, args in (("pytorch_extractor", ["--model-file", str(src), "--out", str(net), "-q"]),
                       ("generate_golden_outputs", ["--network", str(net), "-q"])):
        r = run_tool(tool, *args)
        assert r.returncode == 0, (tool, r.stdout + r.stderr)
    return net


def test_gemm_tiles_the_output_columns_when_weights_or_the_second_operand_exceed_l1(tmp_path):
    """3 KiB of weights per linear, a 2.3 KiB second operand: at 2 KiB of L1 the columns are tiled as
    well as the rows; every tile reloads its input rows, so the input traffic is one pass per column
    block, and the weights, parameters or second operand are read once per row block."""
    net = ir.load(_columns_net(tmp_path))
    plan = build_plan(net)
    seen = set()
    for step in plan.steps:
        full = tile_step(step, net, DEFAULT.with_budgets(None, None), pack=True)
        tp = tile_step(step, net, DEFAULT.with_budgets(2048, None), pack=True)
        if tp.tiling != "gemm":
            continue
        # everything fits: one column block; a linear's bias resident (a matmul's per-tensor constants are in its
        # run record: no parameter buffer)
        assert full.counts[2] == 1 and set(full.resident) >= ({"p"} if step.kind == "linear" else set())
        groups, per, per_c = tp.counts
        assert per_c > 1 and tp.resident == [] and tp.l1_bytes <= 2048 and tp.tile["co"] < net.tensors[step.output].shape[-1]
        x = net.tensors[step.inputs[0]]
        assert tp.dma["in"] == per_c * x.numel and tp.n_tiles == groups * per * per_c
        if step.kind == "matmul":
            assert tp.dma["in2"] == groups * per * net.tensors[step.inputs[1]].numel
        else:
            op = net.op_by_name(step.main_op)
            n, k = op.params["weight"].shape
            packed = op.params["weight"].bit_width == 4
            assert tp.dma["w"] == groups * per * n * (k // 2 if packed else k) and bool(tp.buffers["wp"]) == packed
        seen.add((step.kind, op.params["weight"].bit_width if step.kind == "linear" else 8))
    assert seen == {("linear", 8), ("linear", 4), ("matmul", 8)}


@pytest.mark.skipif(not GAP9_OK, reason="rv32 cross compiler missing")
@pytest.mark.parametrize("l2", ["1536K", "12K"])
def test_gemm_column_tiles_are_exact_on_gap9(tmp_path, l2):
    """The column-tiled products at 2 KiB of L1 are bit-exact, their DMA as planned, with everything in
    L2 and with a 12 KiB L2 (parameters and activations streamed from L3)."""
    from tools.run_generated import run_project

    net, proj = _columns_net(tmp_path), tmp_path / "proj"
    r = run_tool("generate_c_code", "--network", str(net), "--target", "gap9", "--out", str(proj),
                 "--l1-budget", "2K", "--l2-budget", l2, "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    plan = json.loads((proj / "plan.json").read_text())
    gemm = [lay for lay in plan["gap9"]["layers"] if lay["tiling"] == "gemm"]
    assert len(gemm) == 3 and all(lay["tile_counts"][2] > 1 for lay in gemm)
    if l2 == "12K":
        assert plan["gap9"]["params_level"] == "L3"
        assert all(lay["dma_bytes"]["l3_to_l2"] > 0 for lay in gemm if lay["kind"].startswith("linear"))
        assert any(lay["levels"].get(k) == "L3" for lay in gemm for k in ("in", "in2", "out"))
    passed, res = run_project(proj, "gap9-emu", timeout=300)
    assert passed and res["totals"]["mismatches"] == 0 and res["plan_mismatches"] == [], res.get("reasons")
