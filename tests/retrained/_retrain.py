"""Retrain a regression network of tests/test_networks with another seed (same architecture).

``retrained(name, seed)`` returns the three functions a model file exposes (``create_model``,
``example_input``, ``held_out_data``) for network ``name`` initialised with ``torch.manual_seed(seed)``
and then calibrated and trained exactly like the original (tests/test_networks/_common.py: same
data, settings and training loop), cached under its own name ``<name>_seed<seed>``. Used by the
weights-only update tests (tools/update_weights.py): same layout, different weights and scales.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

NETS = Path(__file__).resolve().parents[1] / "test_networks"
if str(NETS) not in sys.path:
    sys.path.insert(0, str(NETS))

import torch  # noqa: E402
from _common import network  # noqa: E402


def _factory_and_settings(name: str):
    """The module class and the ``network(...)`` settings of test network ``name`` (from its create_model)."""
    mod = importlib.import_module(name)
    fn = mod.create_model
    cells = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__ or ())))
    if "factory" not in cells:
        raise ValueError(f"{name}: create_model is not made by _common.network()")
    settings = dict(cells.get("train_settings", {}))
    return cells["factory"], dict(size=cells["size"], channels=cells["channels"], flat=cells["flat"], **settings)


def retrained(name: str, seed: int):
    factory, settings = _factory_and_settings(name)

    def seeded():
        torch.manual_seed(seed)
        return factory()

    seeded.__module__ = __name__  # the training cache key hashes this file, not the network's
    return network(f"{name}_seed{seed}", seeded, **settings)
