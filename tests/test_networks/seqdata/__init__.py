"""1-D (batch, channels, time) data and training for the sequence regression networks.

The signal is derived from scikit-learn's bundled digits (no download): each 8x8 image is read as
8 channels (its rows) over time (its columns), optionally resampled to ``length`` time steps
(linear interpolation), which gives a deterministic spectrogram-like input. The split is the one
of ``_common`` (first 1437 training, last 360 held out).

Training mirrors ``_common.trained`` (calibration, brief deterministic QAT, the state cached in
``_common.CACHE_DIR`` keyed by the network file, the shared helpers and this file) for inputs that
are not images. It lives in this package rather than in ``_common.py`` because every ``_*.py``
helper is part of every network's cache key: adding it there would retrain all networks.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from _common import CACHE_DIR, N_TRAIN, _key, digits

_SOURCE = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def sequences(length: int = 8, halves: bool = False):
    """All 1797 digits as (N, 8, length) float32 in [0, 1], and int64 labels.

    ``halves``: a pair of inputs instead, the top and bottom half of the rows ((N, 4, length) each).
    """
    x, y = digits(8)
    x = x[:, 0]  # N, 8 rows (channels), 8 columns (time)
    if length != 8:
        x = F.interpolate(x, size=length, mode="linear", align_corners=False)
    x = x.contiguous()
    return ((x[:, :4].contiguous(), x[:, 4:].contiguous()) if halves else x), y


def _take(x, idx):
    return tuple(t[idx] for t in x) if isinstance(x, tuple) else x[idx]


def args(x) -> tuple:
    """The model's call arguments for a batch (a tuple of inputs, or one)."""
    return x if isinstance(x, tuple) else (x,)


def trained(name: str, factory: Callable[[], torch.nn.Module], *, length: int = 8, halves: bool = False,
            epochs: int = 3, lr: float = 2e-3, batch: int = 64, calib_batches: int = 8) -> torch.nn.Module:
    settings = dict(length=length, halves=halves, epochs=epochs, lr=lr, batch=batch, calib=calib_batches,
                    seqdata=_SOURCE)
    path = CACHE_DIR / f"{_key(name, factory, settings)}.pt"
    torch.manual_seed(0)
    model = factory()
    if path.is_file():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    from brevitas.graph.calibrate import calibration_mode

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x, y = sequences(length, halves)
        xt, yt = _take(x, slice(0, N_TRAIN)), y[:N_TRAIN]
        g = torch.Generator().manual_seed(0)
        model.eval()
        with torch.no_grad(), calibration_mode(model):
            for i in range(calib_batches):
                model(*args(_take(xt, slice(i * batch, (i + 1) * batch))))
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(N_TRAIN, generator=g)
            for i in range(0, N_TRAIN, batch):
                idx = perm[i:i + batch]
                out = model(*args(_take(xt, idx)))
                loss = F.cross_entropy(getattr(out, "value", out), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
    return model


def network(name: str, factory: Callable[[], torch.nn.Module], *, length: int = 8, halves: bool = False,
            **train_settings):
    """``create_model``, ``example_input`` (one held-out sample, batch 1; a tuple for ``halves``) and
    ``held_out_data`` (the 360 held-out samples and labels) of a sequence network."""

    def create_model() -> torch.nn.Module:
        return trained(name, factory, length=length, halves=halves, **train_settings)

    def example_input():
        x, _ = sequences(length, halves)
        return _take(x, slice(N_TRAIN, N_TRAIN + 1))

    def held_out_data():
        x, y = sequences(length, halves)
        return _take(x, slice(N_TRAIN, None)), y[N_TRAIN:]

    return create_model, example_input, held_out_data
