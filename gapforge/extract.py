"""Capture + lowering + writing network_info.json: the extractor's pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gapforge import ir
from gapforge.capture import Graph, capture
from gapforge.errors import GapforgeError
from gapforge.fsutil import atomic_directory
from gapforge.lowering import Lowering
from gapforge.modelsrc import ModelSource
from gapforge.ops import registry


def capture_model(src: ModelSource) -> Graph:
    return capture(src.model, src.example_inputs, registry().is_leaf)


def lower_graph(graph: Graph, name: str, source: str = "", strict: bool = True) -> tuple[ir.Network | None, Lowering]:
    low = Lowering(graph, name, source, strict=strict)
    try:
        net = low.run()
    except GapforgeError:
        raise
    except Exception as exc:  # a bug in gapforge, reported in one line rather than a traceback
        raise GapforgeError(f"internal error while lowering '{name}': {type(exc).__name__}: {exc} "
                            "(please report this with the model)") from exc
    return net, low


def extract(src: ModelSource) -> ir.Network:
    net, _ = lower_graph(capture_model(src), src.name, src.source, strict=True)
    if net is None:  # strict lowering raises on the first problem; this is a safety net
        raise GapforgeError(f"model '{src.name}' cannot be deployed")
    return net


def write_network(net: ir.Network, out_dir: str | Path) -> Path:
    """Write network_info.json and weights/*.npy atomically into ``out_dir``."""
    text = ir.dumps(net)
    with atomic_directory(out_dir) as tmp:
        (tmp / "weights").mkdir()
        for rel, arr in sorted(net.arrays.items()):
            np.save(tmp / rel, np.ascontiguousarray(arr), allow_pickle=False)
        (tmp / "network_info.json").write_text(text + "\n", encoding="utf-8")
    net.directory = Path(out_dir)
    return Path(out_dir)
