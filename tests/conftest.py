"""Shared fixtures: regression networks are loaded and extracted once per test session."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from gapforge.extract import extract, model_inputs, write_network  # noqa: E402
from gapforge.modelsrc import ModelSource, list_test_networks, load_model  # noqa: E402

THIRD_PARTY_DEPLOYABLE = ["thirdparty_mobilenet_v1", "thirdparty_mobilenet_v1_4b",
                          "thirdparty_resnet18_4w4a", "thirdparty_resnet18_2w2a", "thirdparty_cnv_1w1a"]
NOT_DEPLOYABLE = ["thirdparty_mobilenet_v1_raw"]
REGRESSION = [n for n in list_test_networks() if not n.startswith("thirdparty_")]
DEPLOYABLE = REGRESSION + [n for n in THIRD_PARTY_DEPLOYABLE if n in list_test_networks()]

_sources: dict[str, ModelSource] = {}


def source(name: str) -> ModelSource:
    """The test network ``name`` (trained or loaded from the cache), built once per session."""
    if name not in _sources:
        _sources[name] = load_model(argparse.Namespace(test_network=name, model_file=None,
                                                       model_class=None, input_shape=None))
    return _sources[name]


@pytest.fixture(scope="session")
def extracted(tmp_path_factory):
    """extracted(name) -> directory holding network_info.json for test network ``name``."""
    cache: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("extracted")

    def get(name: str) -> Path:
        if name not in cache:
            src = source(name)
            out = root / name
            write_network(extract(src), out, model_inputs(src))
            cache[name] = out
        return cache[name]

    return get


def calibrated(factory, shape: tuple[int, ...], batches: int = 4) -> torch.nn.Module:
    """``factory()`` built with seed 0, its activation quantizers calibrated on ``batches`` random
    batches of ``shape`` (Brevitas calibration_mode), returned in eval mode: the test models of one
    operator form that are not trained."""
    from brevitas.graph.calibrate import calibration_mode

    torch.manual_seed(0)
    model = factory().eval()
    with torch.no_grad(), calibration_mode(model):
        for _ in range(batches):
            model(torch.randn(*shape))
    return model.eval()


def run_tool(tool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python tools/<tool>.py args`` as a user would; returns the completed process."""
    return subprocess.run([sys.executable, str(REPO / "tools" / f"{tool}.py"), *args],
                          capture_output=True, text=True, cwd=cwd or REPO, timeout=1800)


@pytest.fixture(scope="session")
def golden(extracted):
    """golden(name) -> extracted network directory with two golden test cases."""
    from gapforge.inputs import select
    from tools.generate_golden_outputs import generate

    done = {}

    def get(name: str) -> Path:
        if name not in done:
            d = extracted(name)
            x, labels, what = select(d, None, 2)
            generate(d, x, labels, what, progress=False)
            done[name] = d
        return done[name]

    return get
