"""Dataflow capture: one real forward pass records the graph of a Brevitas model.

Why not ``torch.fx`` / ``torch.export``: both fail on Brevitas' QuantTensor and its
data-dependent checks, and symbolic tracing can take the wrong branch of an
``isinstance`` test. A real forward pass cannot.

How it works:

* Leaf modules (types gapforge knows as one operator, e.g. ``QuantConv2d``, and any module
  without children) get forward pre/post hooks. A depth counter makes sure nothing that
  happens *inside* a leaf is recorded: a leaf is one node.
* Everything the model does outside leaves (``x + y``, ``torch.cat``, ``x.view``,
  ``F.relu``, ...) is seen by a ``TorchFunctionMode``; QuantTensor's own Python operators
  (``__add__``, ``view``, ...) are wrapped for the duration of the capture so that a
  QuantTensor-level call is one node, not the dozen tensor ops it runs internally.
* Edges are real tensors: every activation is identified by the identity of its
  underlying ``torch.Tensor``; a reference to each is kept for the whole capture so
  identities are never reused, and a detached copy of its value is stored (in-place
  ops create a new version of the same tensor object).

Limits (documented in docs/network_info.md): one execution path is recorded (the one the
example input takes); constant arguments such as the batch size in ``view`` are baked in.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from gapforge.errors import GapforgeError

try:  # brevitas is a hard dependency of the frontend, but keep import errors readable
    from brevitas.proxy.quant_proxy import QuantProxyFromInjector
    from brevitas.quant_tensor import IntQuantTensor, QuantTensor
except ImportError as exc:  # pragma: no cover - exercised only without brevitas installed
    raise ImportError("gapforge needs brevitas 0.13.x: pip install 'brevitas>=0.13,<0.14'") from exc


@dataclass(frozen=True)
class Ref:
    """Reference to a recorded activation inside a node's stored arguments."""

    index: int


@dataclass
class QuantMeta:
    """Quantization metadata of an activation as carried by Brevitas' IntQuantTensor."""

    scale: torch.Tensor
    zero_point: torch.Tensor
    bit_width: float
    signed: bool
    value: torch.Tensor | None = None  # the dequantized output (recorded for quantizer proxies)

    def integers(self, value: torch.Tensor) -> torch.Tensor:
        """Brevitas' integers for ``value`` (``round(value / scale) + zp`` in float64)."""
        v = value.double() / self.scale.double() + self.zero_point.double()
        return torch.round(v)


@dataclass
class Activation:
    """One tensor that flowed between recorded nodes."""

    index: int
    value: torch.Tensor  # detached copy of the float value (QuantTensor.value for quant tensors)
    producer: int | None  # node index; None for graph inputs
    quant: QuantMeta | None = None  # set when the tensor was seen as an IntQuantTensor

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)


@dataclass
class Node:
    """One recorded operation: a leaf module call or a functional op at the top level."""

    index: int
    kind: str  # "module" | "function"
    name: str  # unique, readable op name (module path, or enclosing path + function name)
    path: str  # module path ("" for the root) of the module, or of the container calling the function
    type_name: str  # class name for modules, canonical function name for functions
    module: nn.Module | None
    func: Any
    args: tuple
    kwargs: dict
    inputs: list[int]
    outputs: list[int]
    location: str | None = None  # "file.py:line" of the user code calling a functional op
    # the exact call site (file, line, bytecode offset): equal for the executions of one expression
    # in a loop, different for two calls on one line (gapforge/recurrence.py)
    site: tuple | None = None
    proxy_meta: dict[int, list[QuantMeta]] = field(default_factory=dict)  # id(quant proxy) -> its outputs

    def describe(self) -> str:
        if self.kind == "module":
            return f"module '{self.path or '<root>'}' ({self.type_name})"
        where = f" in '{self.path}'" if self.path else ""
        at = f" at {self.location}" if self.location else ""
        return f"call to {self.type_name}{where}{at}"


@dataclass
class Graph:
    """The captured dataflow graph, nodes in execution (hence topological) order."""

    model: nn.Module
    nodes: list[Node] = field(default_factory=list)
    activations: list[Activation] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    module_paths: dict[int, str] = field(default_factory=dict)

    def consumers(self, act: int) -> list[Node]:
        return [n for n in self.nodes if act in n.inputs]

    def producer(self, act: int) -> Node | None:
        p = self.activations[act].producer
        return None if p is None else self.nodes[p]


# Canonical names of functional operations. Aliases (in-place, dunder, method vs function)
# are normalised here so the rest of gapforge sees one name per operation.
_FUNCTION_ALIASES = {
    "__add__": "add", "__radd__": "add", "__iadd__": "add", "add_": "add",
    "__sub__": "sub", "__rsub__": "sub", "__isub__": "sub", "sub_": "sub",
    "__mul__": "mul", "__rmul__": "mul", "__imul__": "mul", "mul_": "mul",
    "__truediv__": "div", "__rtruediv__": "div", "__itruediv__": "div", "div_": "div",
    "__neg__": "neg", "__pow__": "pow", "__matmul__": "matmul", "__rmatmul__": "matmul",
    "concat": "cat", "concatenate": "cat",
    "relu_": "relu", "hardtanh_": "hardtanh", "sigmoid_": "sigmoid", "tanh_": "tanh",
    "leaky_relu_": "leaky_relu", "elu_": "elu", "celu_": "celu", "selu_": "selu", "exp_": "exp",
    "__getitem__": "getitem",
    "max_pool2d_with_indices": "max_pool2d", "max_pool1d_with_indices": "max_pool1d",
    "adaptive_max_pool1d_with_indices": "adaptive_max_pool1d",
    "adaptive_max_pool2d_with_indices": "adaptive_max_pool2d",
}

# QuantTensor methods that are Python-level operators; wrapped during capture so that one
# call is one node (see module docstring).
_QUANT_TENSOR_METHODS = (
    "__add__", "__radd__", "__sub__", "__mul__", "__rmul__", "__neg__", "__truediv__",
    "view", "reshape", "flatten", "transpose", "permute",
)

# Frames in these directories are library code; the user's code is the first frame outside them.
# The standard library counts as library code, but not the packages installed under it
# (site-packages / dist-packages hold user models too, e.g. brevitas_examples).
_LIBRARY_DIRS = tuple(
    os.path.dirname(m.__file__) + os.sep for m in (torch, sys.modules["brevitas"])
) + (os.path.dirname(os.path.abspath(__file__)) + os.sep,)
_STDLIB_DIR = os.path.dirname(contextlib.__file__) + os.sep


def _is_library(filename: str) -> bool:
    if filename.startswith(_LIBRARY_DIRS) or filename.startswith("<"):
        return True
    return filename.startswith(_STDLIB_DIR) and not any(
        part in filename for part in ("site-packages", "dist-packages"))


def canonical_function_name(func: Any) -> str:
    name = getattr(func, "__name__", None) or type(func).__name__
    if name == "__get__":  # property access such as Tensor.shape / .T
        name = getattr(getattr(func, "__self__", None), "__name__", "attribute")
    return _FUNCTION_ALIASES.get(name, name)


def _user_location() -> tuple[str | None, tuple | None]:
    """("file.py:line", (file, line, bytecode offset)) of the first user frame calling a functional op."""
    frame = sys._getframe(2)
    while frame is not None:
        fn = frame.f_code.co_filename
        if not _is_library(fn):
            return f"{os.path.basename(fn)}:{frame.f_lineno}", (fn, frame.f_lineno, frame.f_lasti)
        frame = frame.f_back
    return None, None


def _user_frame(exc: BaseException) -> str:
    """'file.py:LINE (source line)' of the innermost frame of the model's own code (not torch, Brevitas, the
    standard library or gapforge) in the traceback of ``exc``; '' when there is none."""
    import traceback

    found = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if not _is_library(frame.filename):
            text = (frame.line or "").strip()
            found = f"{os.path.basename(frame.filename)}:{frame.lineno}" + (f" ({text})" if text else "")
    return found


def iter_leaves(obj: Any) -> Iterator[Any]:
    """The tensors in a (nested) tuple / list / dict, in order: a model's outputs, the first one first."""
    if isinstance(obj, QuantTensor) or isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from iter_leaves(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from iter_leaves(o)


class _Recorder:
    """Mutable state of one capture."""

    def __init__(self, model: nn.Module, is_leaf: Callable[[nn.Module], bool]):
        self.graph = Graph(model=model)
        self.by_tensor_id: dict[int, int] = {}
        self.keepalive: list[torch.Tensor] = []
        self.depth = 0  # > 0 while inside a leaf module
        self.in_function = False  # True while a recorded functional op runs
        self.container_stack: list[str] = [""]
        self.pending: list[tuple[nn.Module, list[int], tuple, dict] | None] = []
        self.proxy_meta: dict[int, list[QuantMeta]] = {}
        self.call_counts: dict[str, int] = {}
        self.is_leaf = is_leaf
        for name, mod in model.named_modules():
            self.graph.module_paths.setdefault(id(mod), name)

    # -- activations -------------------------------------------------------------------
    def _tensor_of(self, obj: Any) -> torch.Tensor:
        return obj.value if isinstance(obj, QuantTensor) else obj

    def register(self, obj: Any, producer: int | None) -> int:
        t = self._tensor_of(obj)
        # The copies are the recorder's own tensor operations, not the model's: with in_function set
        # the function mode passes them through. Otherwise the copy of a tensor that is already an
        # activation (the output of an in-place op such as nn.ReLU(inplace=True), or of a module that
        # returns its input) would be recorded as detach / clone nodes that take the op's place.
        in_function, self.in_function = self.in_function, True
        try:
            act = Activation(len(self.graph.activations), t.detach().clone(), producer)
            if isinstance(obj, IntQuantTensor):
                act.quant = self._meta(obj)
        finally:
            self.in_function = in_function
        idx = act.index
        self.graph.activations.append(act)
        self.by_tensor_id[id(t)] = idx
        self.keepalive.append(t)
        return idx

    @staticmethod
    def _meta(qt: IntQuantTensor) -> QuantMeta:
        return QuantMeta(
            scale=qt.scale.detach().clone(),
            zero_point=qt.zero_point.detach().clone(),
            bit_width=float(qt.bit_width),
            signed=bool(qt.signed),
        )

    def lookup(self, obj: Any) -> int | None:
        if not isinstance(obj, (torch.Tensor, QuantTensor)):
            return None
        t = self._tensor_of(obj)
        if not isinstance(t, torch.Tensor):
            return None
        idx = self.by_tensor_id.get(id(t))
        if idx is not None and isinstance(obj, IntQuantTensor) and self.graph.activations[idx].quant is None:
            # metadata of a tensor first seen as plain value (e.g. produced inside QuantTensor.__add__)
            self.graph.activations[idx].quant = self._meta(obj)
        return idx

    def refs(self, obj: Any) -> list[int]:
        out = []
        for leaf in iter_leaves(obj):
            idx = self.lookup(leaf)
            if idx is not None and idx not in out:
                out.append(idx)
        return out

    def to_refs(self, obj: Any) -> Any:
        """Replace activations by Ref and untracked tensors by detached copies."""
        if isinstance(obj, (torch.Tensor, QuantTensor)):
            idx = self.lookup(obj)
            if idx is not None:
                return Ref(idx)
            t = self._tensor_of(obj)
            return t.detach().clone() if isinstance(t, torch.Tensor) else t
        if isinstance(obj, list):
            return [self.to_refs(o) for o in obj]
        if isinstance(obj, tuple):
            return tuple(self.to_refs(o) for o in obj)
        if isinstance(obj, dict):
            return {k: self.to_refs(v) for k, v in obj.items()}
        return obj

    # -- nodes -------------------------------------------------------------------------
    def _unique(self, base: str) -> str:
        n = self.call_counts.get(base, 0) + 1
        self.call_counts[base] = n
        return base if n == 1 else f"{base}.call{n}"

    def add_node(self, kind, path, type_name, module, func, args, kwargs, inputs, out, location=None) -> Node:
        idx = len(self.graph.nodes)
        if kind == "module":
            name = self._unique(path or type_name)
        else:
            name = self._unique(f"{path}.{type_name}" if path else type_name)
        node = Node(idx, kind, name, path, type_name, module, func,
                    self.to_refs(args), self.to_refs(kwargs), inputs, [], location)
        self.graph.nodes.append(node)
        for leaf in iter_leaves(out):
            if isinstance(self._tensor_of(leaf), torch.Tensor):
                node.outputs.append(self.register(leaf, idx))
        return node

    # -- hooks -------------------------------------------------------------------------
    def leaf_pre(self, module, args, kwargs):
        if self.depth == 0 and not self.in_function:
            self.pending.append((module, self.refs((args, kwargs)), args, kwargs))
            self.proxy_meta = {}
        else:
            self.pending.append(None)
        self.depth += 1

    def leaf_post(self, module, args, kwargs, output):
        self.depth -= 1
        entry = self.pending.pop()
        if entry is None:
            return
        mod, inputs, a, kw = entry
        path = self.graph.module_paths.get(id(mod), type(mod).__name__)
        node = self.add_node("module", path, type(mod).__name__, mod, None, a, kw, inputs, output)
        node.proxy_meta = self.proxy_meta
        self.proxy_meta = {}

    def proxy_post(self, module, args, output):
        """Record what a quantizer proxy inside a leaf produced (every call, in order)."""
        if isinstance(output, IntQuantTensor):
            meta = self._meta(output)
            meta.value = output.value.detach().clone()
            self.proxy_meta.setdefault(id(module), []).append(meta)

    def container_pre(self, module, args):
        self.container_stack.append(self.graph.module_paths.get(id(module), ""))

    def container_post(self, module, args, output):
        self.container_stack.pop()

    def function(self, func: Any, name: str, args: tuple, kwargs: dict, call: Callable[[], Any]) -> Any:
        if self.depth > 0 or self.in_function:
            return call()
        inputs = self.refs((args, kwargs))
        if not inputs:
            return call()
        self.in_function = True
        try:
            out = call()
        finally:
            self.in_function = False
        if not any(isinstance(self._tensor_of(o), torch.Tensor) for o in iter_leaves(out)):
            return out  # size(), dim(), shape, comparisons to Python values ...
        location, site = _user_location()
        node = self.add_node("function", self.container_stack[-1], name, None, func, args, kwargs,
                             inputs, out, location)
        node.site = site
        return out


# Reflected operators: ``a @ b`` with ``a`` a QuantTensor (no __matmul__) reaches torch as
# ``Tensor.__rmatmul__(b, a)``; the node records the operands in the order the user wrote them.
_REFLECTED = frozenset(("__radd__", "__rsub__", "__rmul__", "__rtruediv__", "__rmatmul__"))


def _as_written(name: str, args: tuple) -> tuple:
    """The operands of operator ``name`` called as ``(self, other, ...)`` in the order the user wrote them."""
    return (args[1], args[0]) + tuple(args[2:]) if name in _REFLECTED and len(args) >= 2 else tuple(args)


class _FunctionMode(TorchFunctionMode):
    def __init__(self, rec: _Recorder):
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        return self.rec.function(func, canonical_function_name(func), _as_written(getattr(func, "__name__", ""), args),
                                 kwargs,
                                 lambda: func(*args, **kwargs))


@contextlib.contextmanager
def _patched_quant_tensor(rec: _Recorder):
    saved = {}
    for meth in _QUANT_TENSOR_METHODS:
        orig = getattr(IntQuantTensor, meth, None)
        if orig is None:
            continue
        saved[meth] = IntQuantTensor.__dict__.get(meth)

        def wrapper(self, *args, __orig=orig, __meth=meth, **kwargs):
            name = _FUNCTION_ALIASES.get(__meth, __meth)
            return rec.function(__meth, name, _as_written(__meth, (self,) + args), kwargs,
                                lambda: __orig(self, *args, **kwargs))

        setattr(IntQuantTensor, meth, wrapper)
    try:
        yield
    finally:
        for meth, orig in saved.items():
            if orig is None:
                delattr(IntQuantTensor, meth)
            else:
                setattr(IntQuantTensor, meth, orig)


class CaptureError(GapforgeError):
    """The model's forward pass failed during capture."""


class InputShapeError(GapforgeError):
    """The example input does not have the shape a layer of the model expects (a user error, exit 2)."""


def _shapes(tensors) -> str:
    return ", ".join(str(list(t.shape)) for t in tensors)


def _expected_shape(mod: nn.Module, x: Any) -> str | None:
    """What ``mod`` (a layer with a declared input size) expects when ``x`` does not fit it, else None."""
    x = x.value if isinstance(x, QuantTensor) else x
    if not isinstance(x, torch.Tensor) or x.dim() == 0:
        return None
    shape = list(x.shape)
    if isinstance(mod, nn.Linear) and shape[-1] != mod.in_features:
        return f"{mod.in_features} features on its last axis"
    if isinstance(mod, nn.modules.conv._ConvNd):
        rank = len(mod.kernel_size) + 2
        if x.dim() not in (rank, rank - 1) or shape[-rank + 1] != mod.in_channels:
            axes = {3: "(N, C, T)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}.get(rank, f"{rank} axes")
            return f"{axes} with C = {mod.in_channels}"
    if isinstance(mod, nn.modules.batchnorm._BatchNorm) and (x.dim() < 2 or shape[1] != mod.num_features):
        return f"{mod.num_features} channels on axis 1"
    if isinstance(mod, nn.LayerNorm) and shape[-len(mod.normalized_shape):] != list(mod.normalized_shape):
        return f"last axes {list(mod.normalized_shape)}"
    return None


def capture(model: nn.Module, example_inputs: tuple, is_leaf: Callable[[nn.Module], bool],
            input_origin: str = "the example input") -> Graph:
    """Run ``model(*example_inputs)`` once and return its dataflow graph.

    ``is_leaf(module)`` decides which modules are recorded as one node (the op registry
    provides it). The model must be in eval mode: Brevitas' train-mode arithmetic differs.
    ``input_origin`` names where the example inputs come from in messages (``example_input()``).
    A forward pass that fails in a layer whose declared input size (in_features, in_channels, ...)
    the tensor reaching it does not have is an InputShapeError naming the input's shape.
    """
    if model.training:
        raise GapforgeError("the model is in training mode; call model.eval() after calibration")
    rec = _Recorder(model, is_leaf)
    handles = []
    visited: set[int] = set()

    def hook_tree(mod: nn.Module) -> None:
        if id(mod) in visited:
            return
        visited.add(id(mod))
        if is_leaf(mod):
            handles.append(mod.register_forward_pre_hook(rec.leaf_pre, with_kwargs=True))
            handles.append(mod.register_forward_hook(rec.leaf_post, with_kwargs=True))
            for sub in mod.modules():
                if isinstance(sub, QuantProxyFromInjector) and id(sub) not in visited:
                    visited.add(id(sub))
                    handles.append(sub.register_forward_hook(rec.proxy_post))
        else:
            handles.append(mod.register_forward_pre_hook(rec.container_pre))
            handles.append(mod.register_forward_hook(rec.container_post))
            for child in mod.children():
                hook_tree(child)

    hook_tree(model)
    try:
        for x in example_inputs:
            rec.graph.inputs.append(rec.register(x, None))
        with torch.no_grad(), _patched_quant_tensor(rec), _FunctionMode(rec):
            out = model(*example_inputs)
        rec.graph.outputs = rec.refs(out)
    except GapforgeError:
        raise
    except Exception as exc:  # the user's model failed: report where, without a traceback
        where = ""
        inner = [p for p in rec.pending if p is not None]
        stack = [rec.graph.module_paths.get(id(p[0]), "?") for p in inner]
        want = _expected_shape(inner[-1][0], inner[-1][2][0]) if inner and inner[-1][2] else None
        if want is not None:
            got = rec._tensor_of(inner[-1][2][0])
            first = any(got is t for t in example_inputs)
            raise InputShapeError(
                f"{input_origin} has shape {_shapes(example_inputs)}, but module '{stack[-1]}' "
                f"({type(inner[-1][0]).__name__}) expects {want} and receives "
                + ("it" if first else f"shape {list(got.shape)}"),
                hint=f"make {input_origin} return the shape the model was built for") from None
        if stack:
            where = f" inside module '{stack[-1]}'"
        elif rec.container_stack[-1]:
            where = f" inside module '{rec.container_stack[-1]}'"
        line = _user_frame(exc)
        if line:
            where += f" at {line}"
        msg = " ".join(str(exc).split())
        raise CaptureError(f"the forward pass failed{where}: {type(exc).__name__}: {msg} ({input_origin} has "
                           f"shape {_shapes(example_inputs)})") from exc
    finally:
        for h in handles:
            h.remove()
    if not rec.graph.outputs:
        raise GapforgeError("the model's output does not depend on its input (nothing was captured)")
    return rec.graph
