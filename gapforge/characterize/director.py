"""The analysis director: models x profiles (x sizes) -> one table of estimates.

A model is a name, a size label and a function building its :class:`~gapforge.characterize.graph.Graph`
(from network_info.json or from a PyTorch model's FX graph); every model is estimated on every
profile, per node or as totals, and the rows share one set of columns (the union, in a fixed
order) so the table can be written as one CSV.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gapforge.characterize import model as cost
from gapforge.characterize.graph import Graph, walk_network_info, walk_torch
from gapforge.characterize.profiles import Profile

BASE_COLUMNS = ["model", "size", "profile", "node", "kind", "kernel", "macs", "footprint_bytes", "tiles", "regime",
                "instructions", "compute_cycles", "memory_cycles", "latency_s", "energy_j"]


@dataclass
class ModelSpec:
    name: str
    size: str
    build: Callable[[], Graph]


def network_info_model(net_dir, name: str | None = None, size: str = "") -> ModelSpec:
    from pathlib import Path

    return ModelSpec(name or Path(net_dir).name, size, lambda: walk_network_info(net_dir))


def torch_model(name: str, size: str, make: Callable[[], tuple]) -> ModelSpec:
    """``make()`` -> (torch model, example input)."""
    def build():
        m, x = make()
        return walk_torch(m, x, name=name)

    return ModelSpec(name, size, build)


def family_models(family: str, sizes: Sequence[str]) -> list[ModelSpec]:
    """The float PyTorch models of a sweep family (gapforge/characterize/families.py)."""
    import torch

    from gapforge.characterize import families

    out = []
    for s in sizes:
        p = families.parse_size(family, s)
        out.append(torch_model(family, p.size, lambda p=p: (families.float_model(p),
                                                             torch.rand(families.input_shape(p)))))
    return out


def analyze(models: Sequence[ModelSpec], profiles: Sequence[Profile], per_node: bool = False,
            l1_budget: int | None = None, l2_budget: int | None = None, platform: str | None = None) -> list[dict]:
    """``platform``: the hardware-model entry the gap9-strategy profiles plan for instead of their own
    (tiling.platform)."""
    rows = []
    for spec in models:
        graph = spec.build()
        if graph.nodes:
            graph.nodes[0].extra.update(l1_budget=l1_budget, l2_budget=l2_budget, platform=platform)
        for prof in profiles:
            ests = cost.estimate(graph, prof)
            if per_node:
                for e in ests:
                    rows.append({"model": spec.name, "size": spec.size, **e.row(prof.name)})
            else:
                rows.append({"model": spec.name, "size": spec.size, "profile": prof.name, "node": "(total)",
                             **cost.totals(ests)})
    return rows


def columns(rows: Sequence[dict]) -> list[str]:
    extra = sorted({k for r in rows for k in r} - set(BASE_COLUMNS))
    return BASE_COLUMNS + extra
