"""The network fuzzer (tools/fuzz_networks.py): a fixed-seed run, and every bug it found kept as a fixed network.

tests/fuzz_regressions/ holds one small model file per bug the fuzzer found (its docstring names
the symptom, cause and fix); each must now be bit-exact on every target and L1 budget it lists.
"""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from conftest import run_tool

from codegen import toolchains
from gapforge.errors import run_cli
from tools import fuzz_networks as fz

REGRESSIONS = sorted((Path(__file__).parent / "fuzz_regressions").glob("*.py"))
RV32_OK, RV32_WHY = toolchains.available("rv32")
KIB = 1024
SEED, COUNT = 4, 7  # networks 0-6 of seed 4: residual (shared, eltwise), concat, trunc pooling, BatchNorm, refusals


def _module_constants(path: Path) -> dict:
    spec = importlib.util.spec_from_file_location(f"fuzz_regression_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return {"targets": getattr(mod, "TARGETS", fz.TARGETS), "l1": getattr(mod, "L1_BUDGETS", fz.DEFAULT_L1)}


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.stem for p in REGRESSIONS])
def test_fuzzer_finding_stays_fixed(path, tmp_path):
    c = _module_constants(path)
    targets = [t for t in c["targets"] if t != "rv32" or RV32_OK]
    runs = fz.target_runs(targets, [fz.l1_budget(b, "L1_BUDGETS") for b in c["l1"]])
    rec = fz.run_model_file(path, tmp_path, runs)
    assert rec.deployable is True
    assert rec.failure is None, rec.detail
    assert [(r.target, r.status) for r in rec.runs] == [(run.label, "exact") for run in runs]


def test_fixed_seed_run_is_clean(tmp_path):
    """Host and gap9-emu at the default and a 16 KiB L1: every deployable network bit-exact, the others refused
    consistently."""
    code = fz.fuzz(list(range(COUNT)), SEED, tmp_path, ["host", "gap9-emu"], [None, 16 * KIB], progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    t = summary["totals"]
    assert code == 0, [n for n in summary["networks"] if n["failure"]]
    assert t["networks"] == COUNT and t["failed"] == 0 and t["invalid_models"] == 0
    assert t["mismatches"] == 0 and t["crashes"] == 0 and t["fidelity_failures"] == 0
    assert t["checker_yes_later_failed"] == 0 and t["checker_no_extract_accepted"] == 0
    refused = {n["index"]: n for n in summary["networks"] if n["deployable"] is False}
    assert sorted(refused) == [4, 6] and t["deployable"] == COUNT - 2
    assert "concatenates tensors with different zero points, bit widths" in refused[4]["refusal"]  # QuantReLU + QuantIdentity outputs
    assert refused[6]["probe"] == "relu_input" and "ReLU to the unquantized network input" in refused[6]["refusal"]
    for label in ("host", "gap9-emu@max", "gap9-emu@16K"):
        assert t["per_target"][label] == {"exact": COUNT - 2, "mismatch": 0, "crash": 0, "error": 0, "runs": COUNT - 2}
    assert not (tmp_path / "failures").exists() and not (tmp_path / "work").exists()


@pytest.mark.skipif(not RV32_OK, reason=f"rv32 toolchain: {RV32_WHY}")
def test_fixed_seed_network_on_rv32(tmp_path):
    assert fz.fuzz([1], SEED, tmp_path, ["rv32"], [], progress=False) == 0
    t = json.loads((tmp_path / "summary.json").read_text())["totals"]
    assert t["per_target"]["rv32"]["exact"] == 1 == t["deployable"]


def test_networks_are_reproducible_from_seed_and_index():
    a, b = fz.generate_network(SEED, 3), fz.generate_network(SEED, 3)
    assert a.text == b.text and a.name == "fuzz_s4_n0003"
    assert len({fz.generate_network(SEED, i).text for i in range(COUNT)}) == COUNT


def test_a_failure_keeps_a_standalone_reproducer(tmp_path, monkeypatch):
    """A (simulated) device mismatch: exit 1, the model file saved, and it deploys on its own elsewhere."""
    real = fz.run_project

    def one_bad_layer(proj, target, **kw):
        passed, res = real(proj, target, **kw)
        res["layers"][1]["mismatches"], res["layers"][1]["max_diff"] = 3, 1
        res["totals"]["mismatches"] = 3
        return False, res

    monkeypatch.setattr(fz, "run_project", one_bad_layer)
    out = tmp_path / "out"
    assert fz.fuzz([1], SEED, out, ["host", "gap9-emu"], [16 * KIB], progress=False) == 1
    t = json.loads((out / "summary.json").read_text())["totals"]
    assert t["mismatches"] == 1 and t["checker_yes_later_failed"] == 1 and t["per_target"]["host"]["exact"] == 1
    record = json.loads((out / "failures" / "fuzz_s4_n0001.json").read_text())
    assert record["failure"] == "mismatch" and record["detail"].startswith("gap9-emu@16K: mismatching layers: ")
    alone = tmp_path / "elsewhere"
    alone.mkdir()
    shutil.copy(out / "failures" / "fuzz_s4_n0001.py", alone / "repro.py")
    r = run_tool("deploy", "--model-file", str(alone / "repro.py"), "--out", str(alone / "d"), "--target", "host",
                 cwd=alone)
    assert r.returncode == 0 and "RESULT: PASS" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


@pytest.mark.parametrize("args, message", [
    (["--count", "0", "--seed", "1"], "--count must be at least 1"),
    (["--count", "3", "--seed", "1", "--only", "5"], "--only 5: outside 0..2"),
    (["--count", "3", "--seed", "1", "--l1-budgets", "lots"], "--l1-budgets 'lots'"),
    (["--count", "3", "--seed", "1", "--targets", "gpu"], "invalid choice: 'gpu'"),
    (["--count", "3"], "the following arguments are required: --seed"),
])
def test_bad_arguments_exit_2_with_one_line(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        run_cli(fz.main, [*args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert done.value.code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


def test_command_line_bad_argument(tmp_path):
    r = run_tool("fuzz_networks", "--count", "0", "--seed", "1", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and r.stderr == "fuzz_networks.py: error: --count must be at least 1\n"
