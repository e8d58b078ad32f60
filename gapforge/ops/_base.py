"""Operator declarations: the single place where supported operators are described.

Two kinds of declaration live side by side in ``gapforge/ops/<op>.py``:

* ``IROp``: an operator of network_info.json (its attributes, integer semantics, the
  numpy reference in ``atomic_ops`` and the C kernel that implement it).
* ``Frontend``: a PyTorch / Brevitas construct (a module class or a functional call) and
  the function that lowers one recorded call of it to IR ops.

The compatibility checker, the extractor, the supported-operations doc, the INT8 engine
and the code generator all read these declarations; nothing else lists operators.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Attr:
    """One attribute of an IR op: a JSON Schema fragment and its meaning."""

    schema: dict[str, Any]
    doc: str
    required: bool = True


@dataclass(frozen=True)
class IROp:
    name: str
    summary: str
    semantics: str  # integer semantics, one or two sentences (the full text is docs/integer_contract.md)
    inputs: str  # accepted input tensors, for the doc
    attrs: dict[str, Attr] = field(default_factory=dict)
    params: tuple[str, ...] = ()
    reference: str | None = None  # atomic_ops function implementing the op on integers
    kernel: str | None = None  # C runtime kernel (codegen)
    # shape rule: (input shapes, attrs, param shapes) -> output shapes; raises ops._shapes.ShapeError
    # when the inputs cannot be this op's. network_info.json validation checks every declared shape with it.
    infer_shapes: Callable[[list[list[int]], dict[str, Any], dict[str, list[int]]], list[list[int]]] | None = None

    def attrs_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "required": [k for k, a in self.attrs.items() if a.required],
            "properties": {k: a.schema for k, a in self.attrs.items()},
        }


@dataclass(frozen=True)
class Frontend:
    """A PyTorch/Brevitas construct gapforge understands and how to lower it."""

    name: str  # as users write it, e.g. "brevitas.nn.QuantConv2d" or "torch.cat"
    lowers_to: tuple[str, ...]
    doc: str  # conditions and limits, one paragraph
    lower: Callable[[Any], None]  # lower(ctx): ctx is a gapforge.lowering.NodeContext
    modules: tuple[type, ...] = ()
    functions: tuple[str, ...] = ()  # canonical function names (see capture.canonical_function_name)


# Common attribute schemas
INT_PAIR = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2}
POS_PAIR = {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2}
PADDING4 = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 4, "maxItems": 4,
            "description": "top, left, bottom, right"}
