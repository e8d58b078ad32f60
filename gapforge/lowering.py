"""Lowering: captured graph -> network_info IR, one frontend declaration per recorded node.

The same pass serves the extractor (``strict=True``: the first unsupported construct is an
error naming the module) and the compatibility checker (``strict=False``: every node gets
a diagnostic, and nodes downstream of an unsupported one are reported as not checked).
"""

from __future__ import annotations

import contextlib
import inspect
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gapforge import ir
from gapforge.brevitas_quant import static_problems
from gapforge.capture import Graph, Node, QuantMeta, Ref
from gapforge.errors import GapforgeError


class LoweringError(GapforgeError):
    """A construct that cannot be deployed; raised by frontends through ``NodeContext.fail``."""


class _Blocked(Exception):
    def __init__(self, upstream: str):
        super().__init__(upstream)
        self.upstream = upstream


@dataclass
class Diagnostic:
    name: str
    kind: str  # "module" | "function" | "container" | "model"
    type_name: str
    status: str  # "supported" | "unsupported" | "warning"
    message: str = ""
    hint: str | None = None
    lowered_to: list[str] = field(default_factory=list)
    location: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = {"name": self.name, "kind": self.kind, "type": self.type_name, "status": self.status,
             "message": self.message, "hint": self.hint, "lowered_to": self.lowered_to}
        if self.location:
            d["location"] = self.location
        return d


class Lowering:
    def __init__(self, graph: Graph, name: str, source: str = "", strict: bool = True):
        from gapforge.ops import registry

        self.graph = graph
        self.registry = registry()
        self.name = name
        self.source = source
        self.strict = strict
        self.tensors: dict[str, ir.TensorInfo] = {}
        self.ops: list[ir.OpInfo] = []
        self.act_tensor: dict[int, str | None] = {}
        self.arrays: dict[str, np.ndarray] = {}
        self.diagnostics: list[Diagnostic] = []
        self.failed_by: dict[int, str] = {}  # activation -> name of the unsupported node it came from
        # Brevitas' own (float) value of each IR tensor in the captured pass, for fidelity checks
        self.values: dict[str, torch.Tensor] = {}
        # "real" tensors that are a float function of one quantized tensor, waiting for the quantizer
        # that turns them into a table (gapforge/ops/lut.py): tensor name -> lut.FloatFn
        self.float_fns: dict[str, Any] = {}
        # "real" tensors that are sums of products of one quantized tensor with constants (RoPE), waiting
        # for their quantizer (gapforge/ops/lincomb.py): tensor name -> lincomb.LinForm
        self.lin_forms: dict[str, Any] = {}
        # flat accumulators (add_constant) -> the activation shape their quantizer's output gets back
        self.restore_shape: dict[str, list[int]] = {}
        # zero padding folded into the convolution that consumes it: padded activation -> the pads
        # [top, left, bottom, right] (the activation is bound to the unpadded tensor; gapforge/ops/zeropad.py)
        self.pending_pad: dict[int, list[int]] = {}
        # masked attention scores waiting for their softmax (gapforge/ops/softmax.py): activation (bound to
        # the unmasked scores) -> bool mask of its shape, True at the excluded keys
        self.softmax_masks: dict[int, Any] = {}
        # nodes a frontend folded into the op it emitted (e.g. Mamba's slice of a causal conv1d):
        # node index -> (tensor bound to the node's outputs, the folding op's name)
        self.absorbed: dict[int, tuple[str, str]] = {}
        # activations that are x.transpose(0, 1) of a batch-first tensor (sequence first, the layout of
        # QuantMultiheadAttention(batch_first=False)): bound to the batch-first IR tensor, usable only by
        # the frontends that accept that layout (gapforge/ops/mha.py, the transpose back)
        self.seq_first: set[int] = set()
        # products that receive a loop's unquantized state (gapforge/recurrence.py): node index -> it
        self.recurrences: dict[int, Any] = {}
        # loops folded into one node (gapforge/ops/scan.py): node index -> the node lowered in its place,
        # and the nodes it covers -> its name
        self.replaced: dict[int, Node] = {}
        self.folded: dict[int, str] = {}
        # float tensors computed from a network input by its preprocessing before the input quantizer
        # (gapforge/ops/quantize.py): tensor name -> (the network input, the preprocessing steps)
        self.pre_inputs: dict[str, tuple[str, list]] = {}

    # -- driver -----------------------------------------------------------------------
    def run(self) -> ir.Network | None:
        for i, act in enumerate(self.graph.inputs):
            name = "input" if len(self.graph.inputs) == 1 else f"input_{i}"
            shape = list(self.graph.activations[act].shape)
            self.tensors[name] = ir.TensorInfo(name, "float", shape, "float32")
            self.act_tensor[act] = name
            self.values[name] = self.graph.activations[act].value
            self.pre_inputs[name] = (name, [])
        from gapforge.ops.scan import fold_scans
        from gapforge.recurrence import find_float_recurrences

        for f in fold_scans(self.graph):  # loops over time recognised as one scan (gapforge/ops/scan.py)
            self.replaced[f.node.index] = f.node
            self.folded.update({i: f.node.name for i in f.covered})
        self.recurrences = {r.node: r for r in find_float_recurrences(self.graph)}
        for rec in self.recurrences.values():  # the root cause of the failures in its loop: reported first
            self._model_problem(*rec.message())
        for node in self.graph.nodes:
            self._lower_node(node)
        outputs = []
        for act in self.graph.outputs:
            t = self.act_tensor.get(act)
            if t is None:
                continue
            if act in self.seq_first:
                self._model_problem(f"network output '{t}' is sequence first (x.transpose(0, 1) of a batch-first "
                                    "tensor)", "transpose it back (x.transpose(0, 1)) before returning it")
                continue
            info = self.tensors[t]
            if info.kind not in ("quant", "acc"):
                self._model_problem(
                    f"network output '{t}' is {info.described} without an integer encoding",
                    "end the network with a quantized layer (QuantLinear/QuantConv2d) or a quantizer")
                continue
            outputs.append(t)
        if not outputs or any(d.status == "unsupported" for d in self.diagnostics):
            return None
        self._drop_dead_ops(outputs)
        return ir.Network(
            name=self.name, tensors=self.tensors, ops=self.ops,
            inputs=[self.act_tensor[a] for a in self.graph.inputs], outputs=outputs,
            producer=producer_info(), source=self.source, arrays=self.arrays)

    def _drop_dead_ops(self, outputs: list[str]) -> None:
        """Remove ops whose results reach no output (e.g. a shape computation the model discarded)."""
        live = set(outputs)
        kept = []
        for op in reversed(self.ops):
            if any(o in live for o in op.outputs):
                kept.append(op)
                live.update(op.inputs)
        kept.reverse()
        self.ops = kept
        self.tensors = {n: t for n, t in self.tensors.items() if n in live}

    def _model_problem(self, message: str, hint: str | None) -> None:
        if self.strict:
            raise LoweringError(message, hint=hint)
        self.diagnostics.append(Diagnostic("<model>", "model", "", "unsupported", message, hint))

    def _lower_node(self, node: Node) -> None:
        if node.index in self.folded:
            self.diagnostics.append(Diagnostic(node.name, node.kind, node.type_name, "supported",
                                               f"folded into '{self.folded[node.index]}'", None, [], node.location))
            return
        node = self.replaced.get(node.index, node)
        from gapforge.ops.quantize import PREPROCESSING, reads_preprocessable

        # float arithmetic / shape ops on the network input fold into its host-side quantization
        front = PREPROCESSING if reads_preprocessable(self, node) else self.registry.frontend_for_node(node)
        ctx = NodeContext(self, node)
        if node.index in self.recurrences:
            rec = self.recurrences[node.index]
            self._fail_node(node, f"receives the unquantized recurrent state '{rec.state.name}' (float recurrence, "
                            "see above)", rec.message()[1])
            return
        if node.index in self.absorbed:
            tensor, into = self.absorbed[node.index]
            ctx.bind(self.tensors[tensor])
            self.diagnostics.append(Diagnostic(node.name, node.kind, node.type_name, "supported",
                                               f"folded into '{into}'", None, [], node.location))
            return
        if front is None:
            msg, hint = self.registry.unsupported_reason(node)
            self._fail_node(node, msg, hint)
            return
        try:
            front.lower(ctx)
        except _Blocked as b:
            for a in node.outputs:
                self.act_tensor[a] = None
                self.failed_by[a] = b.upstream
            problems = static_problems(node.module) if node.module is not None else []
            if problems:
                self.diagnostics.append(Diagnostic(node.name, node.kind, node.type_name, "unsupported",
                                                   "; ".join(p[0] for p in problems),
                                                   "; ".join(p[1] for p in problems if p[1]) or None, [],
                                                   node.location))
                return
            self.diagnostics.append(Diagnostic(
                node.name, node.kind, node.type_name, "warning",
                f"not checked: its input comes from unsupported '{b.upstream}'", None, [], node.location))
            return
        except GapforgeError as err:  # LoweringError, QuantReadError, ...
            # a preprocessing step's own refusal keeps its hint (the 'add a QuantIdentity' one is for its readers)
            # and a quantizer that cannot be read (its configuration, e.g. binary) keeps its own hint too
            from gapforge.brevitas_quant import QuantReadError

            own = err.hint if front is PREPROCESSING or isinstance(err, QuantReadError) else None
            self._fail_node(node, str(err), own or self._preprocessing_hint(node) or err.hint)
            return
        except Exception as exc:  # a gapforge bug must not crash the checker
            if self.strict:
                raise
            self._fail_node(node, f"internal error while checking ({type(exc).__name__}: {exc}); "
                            "please report it", None)
            return
        missing = [a for a in node.outputs if a not in self.act_tensor]
        if missing:
            raise AssertionError(f"frontend {front.name} left outputs of {node.name} unbound")
        status = "warning" if ctx.warnings else "supported"
        msg = "; ".join(w[0] for w in ctx.warnings) if ctx.warnings else front.name
        hint = "; ".join(w[1] for w in ctx.warnings if w[1]) or None
        self.diagnostics.append(Diagnostic(node.name, node.kind, node.type_name, status, msg, hint,
                                           ctx.emitted, node.location))

    def _preprocessing_hint(self, node: Node) -> str | None:
        """The fix when ``node`` failed on the float result of the network input's preprocessing."""
        from brevitas.nn.quant_layer import QuantNonLinearActLayer

        for a in node.inputs:
            name = self.act_tensor.get(a)
            if name is not None and self.pre_inputs.get(name, (None, []))[1]:
                if node.kind == "module" and isinstance(node.module, QuantNonLinearActLayer):  # its quantizer
                    return ("look at the values the preprocessing gives on the model's inputs (a division by "
                            "zero makes inf or NaN)")
                return (f"'{name}' is the float preprocessing of the network input ({len(self.pre_inputs[name][1])} "
                        "steps), which folds into the host-side input quantization only when a quantizer reads it: "
                        "put a QuantIdentity right after the preprocessing")
        return None

    def _fail_node(self, node: Node, message: str, hint: str | None) -> None:
        if self.strict:
            raise LoweringError(f"{node.describe()}: {message}", hint=hint)
        for a in node.outputs:
            self.act_tensor[a] = None
            self.failed_by[a] = node.name
        self.diagnostics.append(Diagnostic(node.name, node.kind, node.type_name, "unsupported",
                                           message, hint, [], node.location))

    # -- naming -------------------------------------------------------------------------
    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.tensors or any(op.name == name for op in self.ops):
            k += 1
            name = f"{base}~{k}"
        return name


class NodeContext:
    """What a frontend's ``lower`` function sees: the node, its inputs, and emit helpers."""

    def __init__(self, low: Lowering, node: Node):
        self.low = low
        self.node = node
        self.warnings: list[tuple[str, str | None]] = []
        self.emitted: list[str] = []
        self._proxy_calls: dict[int, int] = {}
        # (module path, type name) the emitted ops are attributed to, when not the node's own module
        # (the submodules of a module lowered as a whole, e.g. QuantMultiheadAttention's projections)
        self.attribute_to: tuple[str, str] | None = None

    # -- reading the node ---------------------------------------------------------------
    @property
    def module(self) -> torch.nn.Module:
        return self.node.module

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def where(self) -> str:
        return self.node.describe()

    def input_tensor(self, i: int = 0) -> ir.TensorInfo:
        return self.tensor_of_act(self.node.inputs[i])

    def tensor_of_act(self, act: int, seq_first_ok: bool = False) -> ir.TensorInfo:
        if act in self.low.failed_by:
            raise _Blocked(self.low.failed_by[act])
        name = self.low.act_tensor.get(act)
        if name is None:
            self.fail("an input is not produced by any captured operation")
        if act in self.low.seq_first and not seq_first_ok:
            self.fail(f"its input '{name}' is sequence first (x.transpose(0, 1) of a batch-first tensor), which "
                      "only QuantMultiheadAttention(batch_first=False) and the transpose back can use",
                      hint="keep the batch axis first here: transpose back with x.transpose(0, 1) first")
        return self.low.tensors[name]

    def is_seq_first(self, act: int) -> bool:
        return act in self.low.seq_first

    def bind_seq_first(self, tensor: ir.TensorInfo, out_index: int = 0) -> None:
        """Bind output ``out_index`` (sequence first: [T, B, ...]) to the batch-first IR ``tensor``."""
        act = self.node.outputs[out_index]
        self.low.act_tensor[act] = tensor.name
        self.low.seq_first.add(act)

    def act_of(self, obj: Any) -> int | None:
        return obj.index if isinstance(obj, Ref) else None

    def arg(self, i: int, name: str | None = None, default: Any = None) -> Any:
        if i < len(self.node.args):
            return self.node.args[i]
        if name is not None and name in self.node.kwargs:
            return self.node.kwargs[name]
        return default

    def out_shape(self, i: int = 0) -> list[int]:
        return list(self.low.graph.activations[self.node.outputs[i]].shape)

    def in_shape(self, i: int = 0) -> list[int]:
        return list(self.low.graph.activations[self.node.inputs[i]].shape)

    def observed(self, act: int) -> QuantMeta | None:
        return self.low.graph.activations[act].quant

    def observed_proxy(self, proxy: torch.nn.Module) -> QuantMeta | None:
        """What the quantizer ``proxy`` produced in the captured pass, for its next call in this node."""
        calls = self.node.proxy_meta.get(id(proxy), [])
        k = self._proxy_calls.get(id(proxy), 0)
        self._proxy_calls[id(proxy)] = k + 1
        return calls[k] if k < len(calls) else None

    def consumers(self, i: int = 0):
        return self.low.graph.consumers(self.node.outputs[i])

    # -- building IR ------------------------------------------------------------------
    def new_tensor(self, base: str, kind: str, shape: list[int], **fields: Any) -> ir.TensorInfo:
        name = self.low.unique(base)
        if kind == "quant":
            fields.setdefault("dtype", ir.container_dtype(fields["bit_width"], fields["signed"]))
        elif kind == "acc":
            fields.setdefault("dtype", "int32")
            fields.setdefault("bit_width", 32)
            fields.setdefault("signed", True)
        else:
            fields.setdefault("dtype", "float32")
        t = ir.TensorInfo(name=name, kind=kind, shape=list(shape), **fields)
        self.low.tensors[name] = t
        return t

    def quant_tensor(self, base: str, shape: list[int], qp) -> ir.TensorInfo:
        return self.new_tensor(base, "quant", shape, scale=qp.scale, zero_point=qp.zero_point,
                               bit_width=qp.bit_width, signed=qp.signed, narrow_range=qp.narrow_range,
                               channel_axis=qp.channel_axis)

    def emit(self, type_: str, inputs: list[ir.TensorInfo], outputs: list[ir.TensorInfo],
             attrs: dict[str, Any] | None = None, params: dict[str, ir.ParamInfo] | None = None,
             name: str | None = None, folded: list[str] | None = None) -> ir.OpInfo:
        if type_ not in self.low.registry.ir_ops:
            raise AssertionError(f"unknown IR op {type_}")
        for t in inputs:
            pending = self.low.float_fns.get(t.name)
            if pending is not None:
                self.fail(f"the float result of {pending.desc} reaches a {type_} op without a quantizer; a float "
                          "function of a quantized tensor is deployable only when a quantizer follows it",
                          hint=f"put a QuantIdentity right after {pending.desc}")
            if t.name in self.low.lin_forms:
                self.fail(f"the float product of '{t.name}' with constants reaches a {type_} op without a quantizer; "
                          "products with constant tensors are deployable only when a quantizer follows them",
                          hint=f"put a QuantIdentity after '{t.name}'")
        node = self.node
        op_name = name or (outputs[0].name if outputs else self.low.unique(node.name))
        source = node.type_name if node.kind == "module" else f"{node.type_name}" + (
            f" at {node.location}" if node.location else "")
        path = node.path if node.kind == "module" else None
        if self.attribute_to is not None:
            path, source = self.attribute_to
        op = ir.OpInfo(op_name, type_, [t.name for t in inputs], [t.name for t in outputs],
                       attrs or {}, params or {}, path, source, folded or [])
        self.low.ops.append(op)
        self.emitted.append(op_name)
        return op

    @contextlib.contextmanager
    def submodule(self, module: torch.nn.Module):
        """Attribute the ops emitted inside the block to ``module``, a submodule of the node's module."""
        saved = self.attribute_to
        sub = next(n for n, m in self.module.named_modules() if m is module)
        self.attribute_to = (f"{self.node.path}.{sub}" if sub else self.node.path, type(module).__name__)
        try:
            yield
        finally:
            self.attribute_to = saved

    def add_param(self, op_name: str, pname: str, array: np.ndarray, **meta: Any) -> ir.ParamInfo:
        fname = f"weights/{op_name}.{pname}.npy"
        self.low.arrays[fname] = array
        return ir.ParamInfo(file=fname, shape=list(array.shape), dtype=str(array.dtype), **meta)

    def bind(self, tensor: ir.TensorInfo, out_index: int = 0) -> None:
        act = self.node.outputs[out_index]
        self.low.act_tensor[act] = tensor.name
        self.low.values[tensor.name] = self.low.graph.activations[act].value

    def record_value(self, tensor: ir.TensorInfo, value) -> None:
        """Brevitas' value of an internal tensor (e.g. a layer's input quantizer output)."""
        if value is not None:
            self.low.values[tensor.name] = value

    def derive_value(self, tensor: ir.TensorInfo, source: ir.TensorInfo, fn) -> None:
        """Record ``fn(value of source)`` as Brevitas' value of ``tensor`` (data movement inside a
        node: a view, slice or pad of a tensor whose value was captured), when that value is known."""
        v = self.low.values.get(source.name)
        if v is not None:
            self.low.values[tensor.name] = fn(v)

    def absorb(self, node: Node, tensor: ir.TensorInfo) -> None:
        """``node`` (a later one) is folded into what this node emitted: its output is ``tensor``."""
        self.low.absorbed[node.index] = (tensor.name, self.name)

    def bind_all(self, tensor: ir.TensorInfo) -> None:
        for a in self.node.outputs:
            self.low.act_tensor[a] = tensor.name

    def producer_op(self, tensor: ir.TensorInfo) -> ir.OpInfo | None:
        for op in self.low.ops:
            if tensor.name in op.outputs:
                return op
        return None

    def call_arguments(self) -> dict[str, Any]:
        """The module's forward arguments of this call by name, defaults applied (a module lowered to the ops it
        computes reads its optional inputs: masks, initial states); a call its signature does not take fails."""
        sig = inspect.signature(type(self.module).forward)
        try:
            ba = sig.bind(self.module, *self.node.args, **self.node.kwargs)
        except TypeError as exc:
            self.fail(f"unexpected call arguments ({exc})")
        ba.apply_defaults()
        return dict(ba.arguments)

    # -- reporting ----------------------------------------------------------------------
    def fail(self, message: str, hint: str | None = None):
        raise LoweringError(message, hint=hint)

    def warn(self, message: str, hint: str | None = None) -> None:
        self.warnings.append((message, hint))


def producer_info() -> dict[str, str]:
    import brevitas

    from gapforge import __version__

    return {"name": "gapforge", "version": __version__, "torch": torch.__version__,
            "brevitas": brevitas.__version__}


def pair(v: Any, n: int = 2) -> list[int]:
    if isinstance(v, (list, tuple)):
        if len(v) == 1:
            return [int(v[0])] * n
        return [int(x) for x in v]
    return [int(v)] * n


def same_scale(a: ir.TensorInfo, b: ir.TensorInfo) -> bool:
    return a.scale == b.scale and a.channel_axis == b.channel_axis


def prod(xs) -> int:
    return int(math.prod(xs))
