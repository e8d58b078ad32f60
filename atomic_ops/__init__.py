"""Numpy reference implementations of the integer contract, one module per operator.

Each ``atomic_ops/<op>.py`` defines a function ``<op>`` (integer arrays in, integer arrays
out, NCHW layout, any batch size) whose docstring states its rounding rule and accumulator
bound; docs/integer_contract.md is the normative text they implement, and the C runtime
(codegen/runtime) implements the same contract. Functions are found through ``get(name)``,
a registry built from this package's modules, not a hand-kept list.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from functools import lru_cache


@lru_cache(maxsize=1)
def registry() -> dict[str, Callable]:
    ops = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        ops[info.name] = getattr(mod, info.name)
    return ops


def get(name: str) -> Callable:
    return registry()[name]
