"""Float recurrences: a loop-carried state that is multiplied every step without a quantizer.

A Python loop over time (a state-space scan ``h = A_bar * h + B_bar * x``, a hand-written RNN cell)
is unrolled by the capture: each step is a new set of nodes, and the line of user code that computes
the state is executed once per step. When the state of step t reaches the product of step t + 1 at the
same line through functional ops only (no quantizer module in between), the state is a float
recurrence: its value after T steps is a float32 polynomial of every earlier input whose integer form
grows without bound, so no integer program reproduces it (float-between-quantizers.md, section 5).
This module finds such products in the captured graph, so the checker can name the tensor and the
line and ask for a QuantIdentity on the state, instead of reporting a cascade of unrelated failures.

Only products count (``mul``, ``matmul``, ``bmm``): a repeated sum ``x = x + f(x)`` without a
quantizer is an exact integer sum and is left to the ops that lower it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gapforge.capture import Graph, Node

PRODUCTS = ("mul", "matmul", "bmm")


@dataclass(frozen=True)
class FloatRecurrence:
    node: int  # the product that receives the previous step's unquantized state
    state: Node  # the node whose output is that state (the previous step's state update)
    line: str  # user code location of the product ("file.py:line")

    def message(self) -> tuple[str, str]:
        where = f" in module '{self.state.path}'" if self.state.path else ""
        msg = (f"float recurrence: the state '{self.state.name}' ({self.state.type_name} at "
               f"{self.state.location or '?'}{where}) is fed back into the next step's product at {self.line} "
               "without a quantizer; an unquantized recurrent state has no exact integer form")
        owner = f"a submodule of '{self.state.path}'" if self.state.path else "a submodule"
        hint = (f"quantize the state every step: h = self.h_quant(...) around the update at "
                f"{self.state.location or self.line}, with self.h_quant = brevitas.nn.QuantIdentity() {owner}")
        return msg, hint


def find_float_recurrences(graph: Graph) -> list[FloatRecurrence]:
    """The first product of each loop expression whose operand carries the previous step's unquantized state.

    For every activation: the call sites (file, line, bytecode offset) of the products it depends on
    through functional ops only. A product depending on an earlier execution of its own call site is
    the recurrence; the state is the producer of that operand (the previous step's state update).
    """
    carried: dict[int, frozenset] = {}  # activation -> call sites of the products it depends on
    found: list[FloatRecurrence] = []
    seen: set = set()
    for node in graph.nodes:
        if node.kind != "function":
            continue  # a module (quantizer, layer) ends every float path through it
        deps: set = set()
        hit = None
        for a in node.inputs:
            sites = carried.get(a, frozenset())
            deps |= sites
            prod = graph.activations[a].producer
            if node.type_name in PRODUCTS and node.site is not None and node.site in sites and prod is not None:
                hit = prod
        if hit is not None and node.site not in seen:
            seen.add(node.site)
            found.append(FloatRecurrence(node.index, graph.nodes[hit], node.location or "?"))
        if node.type_name in PRODUCTS and node.site is not None:
            deps.add(node.site)
        for o in node.outputs:
            carried[o] = frozenset(deps)
    return found
