"""Float recurrences: a loop whose state is never quantized is refused in one line naming the state and
where the QuantIdentity goes; products repeated on one line and quantized states are not flagged."""

import sys
from pathlib import Path

from conftest import REPO, run_tool

from gapforge.capture import capture
from gapforge.ops import registry
from gapforge.recurrence import find_float_recurrences

NETS = REPO / "tests" / "test_networks"
if str(NETS) not in sys.path:
    sys.path.insert(0, str(NETS))

MODEL = '''
import sys
sys.path.insert(0, {nets!r})
import torch, torch.nn as nn
import brevitas.nn as qnn
from brevitas.graph.calibrate import calibration_mode
from seqdata.mamba import MambaMixer, SelectiveScan, qid

QUANTIZED_STATE = {quantized}


class FloatStateScan(SelectiveScan):
    def forward(self, delta, u, Bm, Cm):
        A = -torch.exp(self.A_log)
        h = None
        ys = []
        for t in range(u.shape[1]):
            d_t = delta[:, t].unsqueeze(-1)
            dA = self.dA_quant(torch.exp(d_t * A))
            dBx = d_t * Bm[:, t].unsqueeze(1) * u[:, t].unsqueeze(-1)
            h = dBx if h is None else dA * h + dBx  # the state is never quantized
            ys.append((h * Cm[:, t].unsqueeze(1)).sum(-1) + self.D * u[:, t])
        return self.y_quant(torch.stack(ys, 1))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qid()
        self.mixer = MambaMixer(8)
        if not QUANTIZED_STATE:
            self.mixer.scan = FloatStateScan(16, 4)
        self.q = qid()
        self.fc = qnn.QuantLinear(8 * 6, 10)

    def forward(self, x):
        x = self.quant_in(x).transpose(1, 2)
        return self.fc(self.q(self.mixer(x)).flatten(1))


def create_model():
    torch.manual_seed(0)
    m = Net()
    with torch.no_grad(), calibration_mode(m):
        m(torch.rand(4, 8, 6))
    return m.eval()


def example_input():
    return torch.rand(1, 8, 6, generator=torch.Generator().manual_seed(1))
'''


def _model_file(tmp_path: Path, quantized: bool) -> Path:
    f = tmp_path / f"scan_{'q' if quantized else 'float'}.py"
    f.write_text(MODEL.format(nets=str(NETS), quantized=quantized))
    return f


def _graph(f: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f.stem, f)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return capture(mod.create_model(), (mod.example_input(),), registry().is_leaf)


def test_float_state_is_found_once_naming_the_state_and_the_line(tmp_path):
    f = _model_file(tmp_path, quantized=False)
    found = find_float_recurrences(_graph(f))
    assert len(found) == 1  # one loop expression, reported once (not once per step)
    msg, hint = found[0].message()
    assert found[0].state.type_name == "add" and found[0].state.path == "mixer.scan"
    line = next(i for i, ln in enumerate(f.read_text().splitlines(), 1) if "never quantized" in ln)
    assert "float recurrence" in msg and f"{f.name}:{line}" in msg and "'mixer.scan.add" in msg
    assert "QuantIdentity" in hint and "'mixer.scan'" in hint


def test_quantized_state_and_products_on_one_line_are_not_recurrences(tmp_path):
    # d_t * B_t * u_t multiplies twice on one line, every step: not a recurrence; h_quant breaks the loop
    assert find_float_recurrences(_graph(_model_file(tmp_path, quantized=True))) == []


def test_checker_and_extractor_refuse_the_float_state_in_one_line(tmp_path):
    f = _model_file(tmp_path, quantized=False)
    res = run_tool("check_model_compatibility", "--model-file", str(f))
    assert res.returncode == 1, res.stdout + res.stderr
    fails = [ln for ln in res.stdout.splitlines() if ln.lstrip().startswith("FAIL")]
    assert "float recurrence: the state 'mixer.scan.add" in fails[0]  # the root cause comes first
    assert "h = self.h_quant(" in res.stdout
    res = run_tool("pytorch_extractor", "--model-file", str(f), "--out", str(tmp_path / "out"))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "float recurrence" in lines[0] and "QuantIdentity" in lines[0]
    assert "Traceback" not in res.stderr
