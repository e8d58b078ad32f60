"""Every tool: --help works, bad input is one line and a non-zero exit, outputs are atomic."""

import json
import shutil

import pytest
from conftest import REPO, run_tool

TOOLS = sorted(p.stem for p in (REPO / "tools").glob("*.py") if not p.stem.startswith("_"))


@pytest.mark.parametrize("tool", TOOLS)
def test_help(tool):
    r = run_tool(tool, "--help")
    assert r.returncode == 0, r.stderr
    assert "usage:" in r.stdout


def test_extractor_writes_atomically(tmp_path):
    out = tmp_path / "net"
    r = run_tool("pytorch_extractor", "--test-network", "mlp", "--out", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "network_info.json").read_text())
    assert doc["network"]["name"] == "mlp"
    assert (out / "inputs" / "example_input.npy").is_file()
    before = sorted(p.name for p in out.rglob("*"))
    # a failing extraction leaves the previous output untouched and no temporary directory behind
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\ndef create_model():\n    return torch.nn.Conv2d(1, 1, 1).eval()\n"
                   "def example_input():\n    return torch.zeros(1, 1, 2, 2)\n")
    r = run_tool("pytorch_extractor", "--model-file", str(bad), "--out", str(out))
    assert r.returncode == 2 and "unsupported module class Conv2d" in r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert sorted(p.name for p in out.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_golden_generator_replaces_test_cases_atomically(extracted, tmp_path):
    d = tmp_path / "net"
    shutil.copytree(extracted("simple_cnn"), d)
    r = run_tool("generate_golden_outputs", "--network", str(d), "--num-cases", "2", "-q")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (d / "test_cases").iterdir()) == ["summary.json", "test_case_1", "test_case_2"]
    r = run_tool("generate_golden_outputs", "--network", str(d), "--num-cases", "999", "-q")
    assert r.returncode == 2 and "only 360 inputs" in r.stderr
    assert sorted(p.name for p in (d / "test_cases").iterdir()) == ["summary.json", "test_case_1", "test_case_2"]


def test_bad_flags_exit_2():
    r = run_tool("pytorch_extractor", "--out", "x")
    assert r.returncode == 2 and "one of the arguments --model-file --test-network is required" in r.stderr
    r = run_tool("int8_inference", "--network", "/nonexistent")
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
