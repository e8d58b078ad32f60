"""Shared helpers of the regression networks: data, deterministic brief training, caching.

Data: scikit-learn's bundled handwritten digits (1797 8x8 images, 10 classes; no download),
resized with bilinear interpolation to the size a network needs. The first 1437 images are
the training set, the last 360 the held-out set.

Training is deterministic (fixed seeds, one thread) and brief; the trained state is cached in
``tests/test_networks/.cache/<name>-<hash>.pt`` keyed by the network file's source, the
shared helpers and building blocks (``_*.py``, ``seqdata/``) and the training settings, so a changed
network retrains and an unchanged one loads in milliseconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import os
from pathlib import Path
from collections.abc import Callable

import torch
import torch.nn.functional as F

CACHE_DIR = Path(os.environ.get("GAPFORGE_NET_CACHE", Path(__file__).resolve().parent / ".cache"))
N_TRAIN = 1437


def digits(size: int = 8, channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as float32 (N, channels, size, size) in [0, 1], and int64 labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if channels != 1:
        x = x.repeat(1, channels, 1, 1)
    return x.contiguous(), torch.tensor(d.target, dtype=torch.int64)


def split(size: int = 8, channels: int = 1, flat: bool = False):
    x, y = digits(size, channels)
    if flat:
        x = x.flatten(1)
    return (x[:N_TRAIN], y[:N_TRAIN]), (x[N_TRAIN:], y[N_TRAIN:])


def _key(name: str, factory: Callable, settings: dict) -> str:
    """Cache key: the network file, every shared helper of this directory (``_*.py`` and the building
    blocks of ``seqdata/``), the settings."""
    here = Path(__file__).resolve().parent
    helpers = "".join(p.read_text() for p in sorted([*here.glob("_*.py"), *here.glob("seqdata/*.py")]))
    src = inspect.getsource(inspect.getmodule(factory)) + helpers
    h = hashlib.sha256((src + repr(sorted(settings.items()))).encode()).hexdigest()[:16]
    return f"{name}-{h}"


def trained(name: str, factory: Callable[[], torch.nn.Module], *, size: int = 8, channels: int = 1,
            flat: bool = False, epochs: int = 3, lr: float = 2e-3, batch: int = 64,
            calib_batches: int = 8, max_steps: int | None = None) -> torch.nn.Module:
    """Build ``factory()``, calibrate its activation quantizers, train briefly (QAT), return it in eval mode.

    ``max_steps`` (optional) stops training after that many optimizer steps (for networks too
    big to train full epochs on a CPU); by default all ``epochs`` are run.
    Cached: the second call with the same source and settings loads the saved state.
    """
    settings = dict(size=size, channels=channels, flat=flat, epochs=epochs, lr=lr, batch=batch,
                    calib=calib_batches)
    if max_steps is not None:
        settings["max_steps"] = max_steps
    path = CACHE_DIR / f"{_key(name, factory, settings)}.pt"
    with _locked(path):
        torch.manual_seed(0)
        model = factory()
        if path.is_file():
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval()
        return _train(model, path, size, channels, flat, epochs, lr, batch, calib_batches, max_steps)


@contextlib.contextmanager
def _locked(path: Path):
    """One trainer per cache entry across processes (pytest-xdist workers): a second worker that
    needs the same network waits for the first one's result instead of training it again."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _train(model, path, size, channels, flat, epochs, lr, batch, calib_batches, max_steps):
    from brevitas.graph.calibrate import calibration_mode

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (xt, yt), _ = split(size, channels, flat)
        g = torch.Generator().manual_seed(0)
        model.eval()
        with torch.no_grad(), calibration_mode(model):
            for i in range(calib_batches):
                model(xt[i * batch:(i + 1) * batch])
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        steps = 0
        for _ in range(epochs):
            perm = torch.randperm(len(xt), generator=g)
            for i in range(0, len(xt), batch):
                if max_steps is not None and steps >= max_steps:
                    break
                steps += 1
                idx = perm[i:i + batch]
                out = model(xt[idx])
                out = getattr(out, "value", out)
                loss = F.cross_entropy(out, yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
    return model


def example(size: int = 8, channels: int = 1, flat: bool = False, index: int = 0) -> torch.Tensor:
    """One held-out image (batch 1)."""
    _, (xv, _) = split(size, channels, flat)
    return xv[index:index + 1].clone()


def held_out(size: int = 8, channels: int = 1, flat: bool = False):
    """The 360 held-out images and labels."""
    return split(size, channels, flat)[1]


def network(name: str, factory: Callable[[], torch.nn.Module], *, size: int = 8, channels: int = 1,
            flat: bool = False, **train_settings):
    """The three functions every network file exposes: ``create_model``, ``example_input`` and
    ``held_out_data``, for digits of ``size`` x ``size`` pixels and ``channels`` channels (flattened
    if ``flat``), the model trained by ``trained(name, factory, ...)`` with ``train_settings``.

    Use: ``create_model, example_input, held_out_data = network("simple_cnn", SimpleCNN, size=16)``.
    """

    def create_model() -> torch.nn.Module:
        return trained(name, factory, size=size, channels=channels, flat=flat, **train_settings)

    def example_input() -> torch.Tensor:
        return example(size, channels, flat)

    def held_out_data():
        return held_out(size, channels, flat)

    return create_model, example_input, held_out_data
