"""Capture + lowering + writing network_info.json: the extractor's pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gapforge import ir
from gapforge.capture import Graph, capture
from gapforge.errors import GapforgeError
from gapforge.fsutil import atomic_directory
from gapforge.inputs import checked, file_names
from gapforge.lowering import Lowering
from gapforge.modelsrc import REPO_ROOT, ModelSource
from gapforge.ops import registry


def capture_model(src: ModelSource) -> Graph:
    return capture(src.model, src.example_inputs, registry().is_leaf, getattr(src, "input_origin", "the example input"))


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
    source = Path(src.source).resolve()
    rel = str(source.relative_to(REPO_ROOT)) if source.is_relative_to(REPO_ROOT) else str(source)
    net, _ = lower_graph(capture_model(src), src.name, rel, strict=True)
    if net is None:  # strict lowering raises on the first problem; this is a safety net
        raise GapforgeError(f"model '{src.name}' cannot be deployed")
    return net


def model_inputs(src: ModelSource) -> dict[str, np.ndarray]:
    """The model's own inputs, stored next to network_info.json for the later stages.

    ``inputs/example_input.npy`` always; ``inputs/held_out_x.npy`` / ``held_out_y.npy`` when the
    model file provides ``held_out_data()`` (returning inputs and integer labels). A model with several
    inputs (``example_input()`` returns a tuple) stores ``example_input_<i>.npy`` and ``held_out_x_<i>.npy``
    per input ``i`` (``held_out_data()`` then returns a tuple of input batches and the labels).
    """
    count = len(src.example_inputs)
    arrays = {f"inputs/{f}.npy": t.detach().numpy().astype(np.float32)
              for f, t in zip(file_names("example_input", count), src.example_inputs)}
    held = getattr(src.module, "held_out_data", None)
    if callable(held):
        try:
            x, y = held()
        except Exception as exc:
            raise GapforgeError(f"{src.source}: held_out_data() failed: {type(exc).__name__}: {exc}") from None
        xs = list(x) if isinstance(x, (tuple, list)) and count > 1 else [x]
        if len(xs) != count:
            raise GapforgeError(f"{src.source}: held_out_data() returns {len(xs)} input batch(es) for a model with "
                                f"{count} inputs (return a tuple of {count} batches and the labels)")
        for i, (f, xi, ex) in enumerate(zip(file_names("held_out_x", count), xs, src.example_inputs)):
            what = "inputs" if count == 1 else f"input {i}"
            arrays[f"inputs/{f}.npy"] = _held_out_batch(xi, tuple(ex.shape), f"{src.source}: held_out_data() {what}")
        arrays["inputs/held_out_y.npy"] = np.asarray(y, dtype=np.int64)
    return arrays


def _held_out_batch(x, example_shape: tuple[int, ...], where: str) -> np.ndarray:
    """A held-out batch as float32, batch first, each sample shaped like the example input.

    A list or tuple of samples (each of the example's shape, or without its batch axis) is joined into
    one batch; any other shape is refused naming both shapes."""
    def arr(v):
        return v.detach().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)

    if isinstance(x, (list, tuple)) and len(x) and all(hasattr(v, "shape") for v in x):
        parts = [arr(v) for v in x]
        if all(p.shape == example_shape for p in parts):
            x = np.concatenate(parts)
        elif all(p.shape == example_shape[1:] for p in parts):
            x = np.stack(parts)
    x = checked(arr(x), where)
    if tuple(x.shape[1:]) != example_shape[1:]:
        raise GapforgeError(f"{where} have shape {list(x.shape)}, but example_input() has shape {list(example_shape)}; "
                            f"return a batch of shape [N, {', '.join(map(str, example_shape[1:]))}]")
    return x


def write_network(net: ir.Network, out_dir: str | Path, extra: dict[str, np.ndarray] | None = None) -> Path:
    """Write network_info.json, weights/*.npy (and ``extra`` arrays) atomically into ``out_dir``."""
    text = ir.dumps(net)
    with atomic_directory(out_dir) as tmp:
        (tmp / "weights").mkdir()
        (tmp / "inputs").mkdir()
        for rel, arr in sorted({**net.arrays, **(extra or {})}.items()):
            np.save(tmp / rel, np.ascontiguousarray(arr), allow_pickle=False)
        (tmp / "network_info.json").write_text(text + "\n", encoding="utf-8")
    net.directory = Path(out_dir)
    return Path(out_dir)
