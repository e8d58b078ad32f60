"""Compatibility check: every module and functional op of a model, classified.

The verdict comes from the same capture and lowering the extractor runs (in collecting
mode) and, when those accept the model, from the fusion planner that every later stage runs
(accumulator bounds, requantization ranges, tensors without an integer encoding), so
"deployable" here means "the pipeline will accept it".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gapforge.capture import CaptureError
from gapforge.extract import capture_model, lower_graph
from gapforge.lowering import Diagnostic
from gapforge.modelsrc import ModelSource
from gapforge.ops import registry
from gapforge.plan import PlanError, build_plan


@dataclass
class Report:
    model: str
    source: str
    items: list[Diagnostic] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the tools did to the model (--input-quant)

    @property
    def deployable(self) -> bool:
        return not any(d.status == "unsupported" for d in self.items)

    def counts(self) -> dict[str, int]:
        c = {"supported": 0, "warning": 0, "unsupported": 0}
        for d in self.items:
            c[d.status] += 1
        return c

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "source": self.source, "deployable": self.deployable,
                "summary": self.counts(), "notes": self.notes, "items": [d.to_json() for d in self.items]}


def check_model(src: ModelSource) -> Report:
    report = Report(src.name, src.source, notes=list(src.notes))
    reg = registry()
    called: set[int] = set()
    try:
        graph = capture_model(src)
    except CaptureError as err:
        report.items.append(Diagnostic("<model>", "model", type(src.model).__name__, "unsupported",
                                       str(err), "the model must run a forward pass on its example input in eval mode; "
                                       "model.eval()(example_input()) alone shows whether the error is the "
                                       "model's (or Brevitas') own"))
        graph = None
    if graph is not None:
        net, low = lower_graph(graph, src.name, src.source, strict=False)
        report.items.extend(low.diagnostics)
        if net is not None and report.deployable:
            try:
                build_plan(net)
            except PlanError as err:
                report.items.append(Diagnostic("<network>", "model", "fusion planner", "unsupported", str(err),
                                               err.hint))
        called = {id(n.module) for n in graph.nodes if n.module is not None}
    for name, mod in src.model.named_modules():
        path = name or "<root>"
        if name and _inside_leaf(name, src.model, reg):
            continue
        if not reg.is_leaf(mod):
            report.items.append(Diagnostic(path, "container", type(mod).__name__, "supported",
                                           "container: the modules and operations it calls are checked"))
        elif id(mod) not in called and graph is not None:
            front = reg.frontend_for_module(mod)
            report.items.append(Diagnostic(
                path, "module", type(mod).__name__, "warning",
                "never called by the forward pass on the example input, so it is not part of the deployed graph"
                + ("" if front else " (and its type is not supported)"), None))
    return report


def _inside_leaf(name: str, model, reg) -> bool:
    """True for submodules of a leaf (e.g. a QuantConv2d's quantizer proxies)."""
    parts = name.split(".")
    mod = model
    for p in parts[:-1]:
        mod = getattr(mod, p)
        if reg.is_leaf(mod):
            return True
    return False
