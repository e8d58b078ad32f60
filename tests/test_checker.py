"""Compatibility checker: verdicts, messages and fix hints; it never crashes on a module."""

import json

import pytest
from conftest import DEPLOYABLE, NOT_DEPLOYABLE, run_tool, source

from gapforge.compat import check_model

BAD_MODELS = '''
import torch, torch.nn as nn
import brevitas.nn as qnn
from brevitas.graph.calibrate import calibration_mode


def _calibrate(m, shape):
    with torch.no_grad(), calibration_mode(m):
        m(torch.randn(*shape))
    return m.eval()


class FloatConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.body = nn.Sequential(nn.Conv2d(1, 2, 3), qnn.QuantReLU())
        self.unused = nn.Linear(2, 2)

    def forward(self, x):
        return torch.sigmoid(self.body(self.q(x)))


class NoInputQuant(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = qnn.QuantConv2d(1, 2, 3)
        self.act = qnn.QuantReLU()

    def forward(self, x):
        return self.act(self.conv(x))


class Raises(nn.Module):
    def forward(self, x):
        raise ValueError("boom")


class Uncalibrated(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(16, 2, bias=False)

    def forward(self, x):
        return self.fc(self.q(x).flatten(1))


class ReturnsDict(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 2)

    def forward(self, x):
        return {"out": self.lin(x.flatten(1)), "n": 3}


class RealTwoUsers(nn.Module):
    """Lowers fine, but the real-valued sum has two consumers: only the fusion planner refuses it."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=False)
        self.q4 = qnn.QuantIdentity(bit_width=4, return_quant_tensor=False)
        self.a = qnn.QuantIdentity(return_quant_tensor=True)
        _calibrate(self, (2, 1, 4, 4))

    def forward(self, x):
        s = self.q(x) + self.q4(x)
        return torch.cat([self.a(s), self.a(s)], 1)


def example_input():
    return torch.randn(1, 1, 4, 4)


def float_conv():
    return _calibrate(FloatConv(), (2, 1, 4, 4))


def create_model():
    return float_conv()
'''


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("models") / "bad_models.py"
    p.write_text(BAD_MODELS)
    return p


@pytest.mark.parametrize("name", DEPLOYABLE)
def test_deployable_networks_pass(name):
    rep = check_model(source(name)).to_json()
    assert rep["deployable"] is True and rep["summary"]["unsupported"] == 0, rep
    assert rep["summary"]["supported"] > 0


@pytest.mark.parametrize("name", ["resnet_block", "thirdparty_mobilenet_v1"])
def test_checker_cli_on_deployable_networks(name, tmp_path):
    out = tmp_path / "r.json"
    r = run_tool("check_model_compatibility", "--test-network", name, "--json-out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(out.read_text())
    assert rep["deployable"] is True and rep["summary"]["unsupported"] == 0
    assert "DEPLOYABLE" in r.stdout
    # the summary line adds up: its counts are over every item it says it checked
    c, items = rep["summary"], rep["items"]
    ops = sum(1 for i in items if i["kind"] in ("module", "function"))
    assert (f"DEPLOYABLE: {c['supported']} supported, {c['warning']} warning{'' if c['warning'] == 1 else 's'}, "
            f"0 unsupported of {len(items)} items checked ({ops} modules/operations, ") in r.stdout
    assert c["supported"] + c["warning"] + c["unsupported"] == len(items)


@pytest.mark.parametrize("name", NOT_DEPLOYABLE)
def test_third_party_not_deployable_is_reported(name, tmp_path):
    out = tmp_path / "r.json"
    r = run_tool("check_model_compatibility", "--test-network", name, "--json-out", str(out))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    rep = json.loads(out.read_text())
    assert rep["deployable"] is False
    bad = [i for i in rep["items"] if i["status"] == "unsupported"]
    assert bad and all(i["message"] and i["hint"] for i in bad)
    assert "NOT DEPLOYABLE" in r.stdout


def _report(model_file, tmp_path, *args):
    out = tmp_path / "r.json"
    r = run_tool("check_model_compatibility", "--model-file", str(model_file), "--json-out", str(out), *args)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    return r, (json.loads(out.read_text()) if out.exists() else None)


def test_unsupported_modules_and_functions_have_reasons_and_hints(model_file, tmp_path):
    r, rep = _report(model_file, tmp_path)
    assert r.returncode == 1
    items = {i["name"]: i for i in rep["items"]}
    assert items["body.0"]["status"] == "unsupported"
    assert items["body.0"]["hint"] == "float convolution: replace torch.nn.Conv2d by brevitas.nn.QuantConv2d"
    assert items["body.1"]["status"] == "warning" and "not checked" in items["body.1"]["message"]
    sig = next(i for i in rep["items"] if i["type"] == "sigmoid")
    assert sig["kind"] == "function" and sig["location"].startswith("bad_models.py:")
    assert items["unused"]["status"] == "warning" and "never called" in items["unused"]["message"]
    assert items["q"]["status"] == "supported"
    assert items["body"]["kind"] == "container"
    assert "fix: float convolution" in r.stdout


@pytest.mark.parametrize("cls, status, text, hint", [
    ("NoInputQuant", 1, "receives the unquantized float input", "QuantIdentity"),
    ("Raises", 1, "forward pass failed", "forward pass"),
    ("Uncalibrated", 1, "never calibrated", "calibration_mode"),
    ("ReturnsDict", 1, "unsupported module class Linear", "QuantLinear"),
    ("RealTwoUsers", 1, "has no integer encoding", "put a quantizer"),  # the planner's verdict is the checker's
])
def test_verdicts(model_file, tmp_path, cls, status, text, hint):
    r, rep = _report(model_file, tmp_path, "--model-class", cls)
    assert r.returncode == status, r.stdout + r.stderr
    bad = [i for i in rep["items"] if i["status"] == "unsupported"]
    assert any(text in i["message"] and hint in (i["hint"] or "") for i in bad), bad


def test_load_errors_are_one_line_exit_2(model_file, tmp_path):
    r = run_tool("check_model_compatibility", "--model-file", str(tmp_path / "missing.py"))
    assert r.returncode == 2 and "no such model file" in r.stderr and r.stderr.count("\n") == 1
    r = run_tool("check_model_compatibility", "--model-file", str(model_file), "--model-class", "Nope")
    assert r.returncode == 2 and "no class named 'Nope'" in r.stderr
    r = run_tool("check_model_compatibility", "--test-network", "does_not_exist")
    assert r.returncode == 2 and "unknown network" in r.stderr
    bad = tmp_path / "syntax.py"
    bad.write_text("def create_model(:\n")
    r = run_tool("check_model_compatibility", "--model-file", str(bad))
    assert r.returncode == 2 and "syntax error" in r.stderr and "Traceback" not in r.stderr


def test_checker_never_crashes_on_arbitrary_modules(tmp_path):
    """A sweep of plain torch modules: each gets a verdict (exit 0 or 1), never a traceback."""
    src = tmp_path / "zoo.py"
    src.write_text('''
import torch, torch.nn as nn
ZOO = {
  "seq": lambda: nn.Sequential(nn.Linear(4, 4), nn.ReLU()),
  "lstm": lambda: nn.LSTM(4, 4, batch_first=True),
  "emb_free": lambda: nn.Sequential(nn.LayerNorm(4), nn.GELU(), nn.Softmax(-1)),
  "ident": lambda: nn.Identity(),
  "tx": lambda: nn.TransformerEncoderLayer(4, 2, 8, batch_first=True),
}
import os
def create_model():
    return ZOO[os.environ["ZOO"]]()
def example_input():
    return torch.randn(1, 3, 4)
''')
    import os
    import subprocess
    import sys

    from conftest import REPO
    for key in ["seq", "lstm", "emb_free", "ident", "tx"]:
        r = subprocess.run([sys.executable, str(REPO / "tools/check_model_compatibility.py"), "--model-file", str(src)],
                           capture_output=True, text=True, env={**os.environ, "ZOO": key}, timeout=300)
        assert r.returncode == 1, (key, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and "NOT DEPLOYABLE" in r.stdout, key


def test_1d_pooling_after_quant_conv1d_is_supported(tmp_path):
    """Sweep finding: MaxPool1d / F.max_pool1d / AdaptiveAvgPool1d after a QuantConv1d were refused (first
    with only 'see docs/supported_operations.md', then with a 2-D rewrite as hint); they now lower to the 2-D
    pooling ops over the (N, C, 1, T) map (tests/test_pool1d.py)."""
    src = tmp_path / "kws.py"
    src.write_text('''
import torch, torch.nn as nn, torch.nn.functional as F, brevitas.nn as qnn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.c1 = qnn.QuantConv1d(4, 8, 3, padding=1)
        self.r1 = qnn.QuantReLU(return_quant_tensor=True)
        self.p1 = nn.MaxPool1d(2)
        self.gap = nn.AdaptiveAvgPool1d(1)
    def forward(self, x):
        x = F.max_pool1d(self.p1(self.r1(self.c1(self.q(x)))), 2)
        return self.gap(x)
def create_model():
    from brevitas.graph.calibrate import calibration_mode
    m = Net().eval()
    with torch.no_grad(), calibration_mode(m):
        m(torch.randn(8, 4, 16))
    return m.eval()
def example_input():
    return torch.randn(1, 4, 16)
''')
    r, rep = _report(src, tmp_path)
    assert r.returncode == 0 and rep["deployable"], r.stdout
    items = {i["name"]: i for i in rep["items"]}
    assert {k: items[k]["status"] for k in ("p1", "max_pool1d", "gap")} == dict.fromkeys(("p1", "max_pool1d", "gap"),
                                                                                      "supported")
    assert not [i for i in rep["items"] if i["status"] != "supported"] and "1-D pooling" not in r.stdout


def test_refusals_inside_sequentials_name_the_full_dotted_path(tmp_path):
    """A refused module or call inside (nested) nn.Sequentials is named by its dotted path ('features.1.2'), not
    by its bare index, in the checker report and in the extractor's one-line error."""
    src = tmp_path / "seq.py"
    src.write_text('''
import torch, torch.nn as nn, torch.nn.functional as F, brevitas.nn as qnn
class Blk(nn.Module):
    def forward(self, x):
        return F.max_pool2d(x, 2, dilation=2)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            qnn.QuantIdentity(return_quant_tensor=True),
            nn.Sequential(qnn.QuantConv2d(1, 4, 3, padding=1), qnn.QuantReLU(return_quant_tensor=True),
                          nn.ReplicationPad3d(1)),
            Blk())
    def forward(self, x):
        return self.features(x)
def create_model():
    from brevitas.graph.calibrate import calibration_mode
    m = Net().eval()
    with torch.no_grad(), calibration_mode(m):
        m(torch.randn(4, 1, 8, 8))
    return m.eval()
def example_input():
    return torch.randn(1, 1, 8, 8)
''')
    r, rep = _report(src, tmp_path)
    assert r.returncode == 1
    bad = {i["name"]: i["message"] for i in rep["items"] if i["status"] != "supported"}
    assert list(bad) == ["features.1.2", "features.2.max_pool2d"], bad
    assert all(i["status"] == "unsupported" for i in rep["items"] if i["name"] in bad)
    assert "dilation 2 is not supported for max pooling" in bad["features.2.max_pool2d"]
    assert "unsupported module class ReplicationPad3d" in bad["features.1.2"]
    assert "  features.1.2 " in r.stdout and "  features.2.max_pool2d " in r.stdout
    out = tmp_path / "net"
    r = run_tool("pytorch_extractor", "--model-file", str(src), "--out", str(out))
    assert r.returncode == 2 and not out.exists()
    assert "module 'features.1.2' (ReplicationPad3d): unsupported module class ReplicationPad3d" in r.stderr, r.stderr
