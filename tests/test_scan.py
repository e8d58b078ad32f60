"""The selective scan: the loop is recognised as users write it (factors in any order, with or without
the D term), folded into one scan op, and equals Brevitas teacher-forced on many random sequences."""

import sys

import pytest
import torch
from conftest import REPO, run_tool

from gapforge.capture import capture
from gapforge.ops import registry
from gapforge.ops.scan import fold_scans

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

VARIANT = {variant!r}
L = 6


class UserScan(SelectiveScan):
    """The same recurrence written differently: factors reordered, A computed inline, no D term."""

    def forward(self, delta, u, Bm, Cm):
        h = None
        ys = []
        for t in range(u.shape[1]):
            dt = delta[:, t].unsqueeze(2)
            a = self.dA_quant(torch.exp(dt * (-torch.exp(self.A_log))))
            bx = u[:, t].unsqueeze(2) * Bm[:, t].unsqueeze(1) * dt
            h = self.h_quant(bx) if t == 0 else self.h_quant(bx + a * h)
            ys.append((Cm[:, t].unsqueeze(1) * h).sum(dim=-1))
        return self.y_quant(torch.stack(ys, dim=1))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qid()
        self.mixer = MambaMixer(8, d_inner=8, d_state=3)
        if VARIANT == "user":
            self.mixer.scan = UserScan(8, 3)
        self.q = qid()
        self.fc = qnn.QuantLinear(8 * L, 10)

    def forward(self, x):
        x = self.quant_in(x).transpose(1, 2)
        return self.fc(self.q(self.mixer(x)).flatten(1))


def create_model():
    torch.manual_seed(0)
    m = Net()
    with torch.no_grad(), calibration_mode(m):
        m(torch.rand(64, 8, L, generator=torch.Generator().manual_seed(2)))
    return m.eval()


def example_input():
    return torch.rand(1, 8, L, generator=torch.Generator().manual_seed(1))


def held_out_data():
    return torch.rand(200, 8, L, generator=torch.Generator().manual_seed(3)), torch.zeros(200, dtype=torch.long)
'''


def _model(tmp_path, variant):
    f = tmp_path / f"scan_{variant}.py"
    f.write_text(MODEL.format(nets=str(NETS), variant=variant))
    return f


def _load(f):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f.stem, f)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("variant", ["reference", "user"])
def test_loop_is_folded_into_one_scan(tmp_path, variant):
    mod = _load(_model(tmp_path, variant))
    model = mod.create_model()
    g = capture(model, (mod.example_input(),), registry().is_leaf)
    (f,) = fold_scans(g)
    kw = f.node.kwargs
    assert kw["steps"] == 6 and tuple(kw["A"].shape) == (8, 3)
    assert (kw["D"] is None) == (variant == "user")
    assert kw["h_quant"] is model.mixer.scan.h_quant and kw["y_quant"] is model.mixer.scan.y_quant
    assert torch.equal(kw["A"], -torch.exp(model.mixer.scan.A_log.detach()))
    # every node of the loop is covered: ~13 per step
    assert len(f.covered) >= 12 * 6


@pytest.mark.parametrize("variant", ["reference", "user"])
def test_scan_equals_brevitas_teacher_forced(tmp_path, variant):
    res = run_tool("check_fidelity", "--model-file", str(_model(tmp_path, variant)))
    assert res.returncode == 0, res.stdout + res.stderr
    rows = [ln.split() for ln in res.stdout.splitlines() if " scan " in f" {ln} "]
    assert len(rows) == 1 and int(rows[0][2]) == 200 * 6 * 8  # elements compared: 200 sequences x L x D
    assert rows[0][3] == "0" or rows[0][6] == "0"  # mismatches, or none unexplained
    assert "0 not explained" in res.stdout and "top-1 agreement 100.00%" in res.stdout


def test_loop_of_another_form_is_not_folded_and_is_refused_clearly(tmp_path):
    src = MODEL.format(nets=str(NETS), variant="user").replace(
        "ys.append((Cm[:, t].unsqueeze(1) * h).sum(dim=-1))", "ys.append((Cm[:, t].unsqueeze(1) * h).amax(dim=-1))")
    f = tmp_path / "scan_other.py"
    f.write_text(src)
    mod = _load(f)
    g = capture(mod.create_model(), (mod.example_input(),), registry().is_leaf)
    assert fold_scans(g) == []
    res = run_tool("check_model_compatibility", "--model-file", str(f))
    assert res.returncode == 1 and "Traceback" not in res.stdout + res.stderr
