"""The network fuzzer (tools/fuzz_networks.py): a fixed-seed run, and every bug it found kept as a fixed network.

tests/fuzz_regressions/ holds one small model file per bug the fuzzer found (its docstring names
the symptom, cause and fix); each must now be bit-exact on every target and L1 budget it lists.
"""

import importlib.util
from pathlib import Path

import pytest

from codegen import toolchains
from tools import fuzz_networks as fz

REGRESSIONS = sorted(p for p in (Path(__file__).parent / "fuzz_regressions").glob("*.py") if not p.name.startswith("_"))
RV32_OK, _ = toolchains.available("rv32")


def _module_constants(path: Path) -> dict:
    spec = importlib.util.spec_from_file_location(f"fuzz_regression_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return {"targets": getattr(mod, "TARGETS", fz.TARGETS), "l1": getattr(mod, "L1_BUDGETS", fz.DEFAULT_L1)}


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.stem for p in REGRESSIONS])
def test_fuzzer_finding_stays_fixed(path, tmp_path):
    c = _module_constants(path)
    targets = [t for t in c["targets"] if t != "rv32" or RV32_OK]
    runs = fz._target_runs(targets, [fz._budget(b, "L1_BUDGETS") for b in c["l1"]])
    rec = fz.run_model_file(path, tmp_path, runs)
    assert rec.deployable is True
    assert rec.failure is None, rec.detail
    assert [(r.target, r.status) for r in rec.runs] == [(label, "exact") for label, _, _ in runs]
