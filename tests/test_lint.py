"""The Python code passes the project's lint configuration (pyproject.toml [tool.ruff])."""

import shutil
import subprocess
import sys

import pytest
from conftest import REPO


def test_ruff_clean():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    r = subprocess.run([ruff, "check", "gapforge", "atomic_ops", "codegen", "tools", "tests"], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_tool_module_imports():
    """Tools are importable as modules (tests and other tools reuse their functions)."""
    names = [p.stem for p in sorted((REPO / "tools").glob("*.py")) if not p.stem.startswith("_")]
    code = f"import importlib\nfor n in {names!r}:\n    importlib.import_module('tools.' + n)\n"
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-800:]
