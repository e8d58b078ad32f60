"""Graph walkers: the nodes the cost model estimates, from network_info.json or a PyTorch model.

Both walkers give the same :class:`Node` list: each compute node seen as a (grouped) matrix
product, M output positions x K reduction length x N output channels, plus the bytes of its
activations and parameters. MACs are M x K x N for nodes with weights (convolution, linear) and for
products of two activations (matmul), computed from the geometry alone, so comparing them with the
engine's figures (the operator declarations' ``macs``) is an independent check
(tests/test_characterize.py); element-wise and row ops (mul, softmax, LayerNorm) take the count of
their declaration.

* :func:`walk_network_info` reads an extracted network (ir.load) and its fused steps (the plan the
  INT8 engine and the code generator run): one node per step, activations at their integer widths,
  parameters in their params.bin containers (gapforge.plan.step_cost); the node keeps the step so
  the GAP9 strategy can run the real tiler on it.
* :func:`walk_torch` traces a PyTorch model with torch.fx (convolutions, linear layers, pooling,
  normalization and activation modules as leaves, Brevitas quantized layers included), runs the
  traced graph once on an example input to learn every node's shape, and estimates each node as
  deployed in INT8 (``elem_bytes`` 1: int8 activations and weights, int32 biases) unless told
  otherwise: a float model can be estimated before it is quantized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Node:
    name: str
    kind: str
    macs: int
    m: int  # output positions (rows of the matrix product)
    k: int  # reduction length
    n: int  # output channels
    groups: int
    in_bytes: int  # activations read
    w_bytes: int  # parameters read (weights, biases, requantization)
    out_bytes: int  # activations written
    out_elems: int
    weighted: bool
    step: Any = None  # network_info walker: the plan step (GAP9 tiler input)
    extra: dict = field(default_factory=dict)

    @property
    def footprint(self) -> int:
        return self.in_bytes + self.w_bytes + self.out_bytes


@dataclass
class Graph:
    name: str
    nodes: list[Node]
    net: Any = None  # ir.Network (network_info walker)
    plan: Any = None  # gapforge.plan.Plan (network_info walker)
    net_dir: Path | None = None

    @property
    def macs(self) -> int:
        return sum(n.macs for n in self.nodes)


def _gemm(out_shape, weight_shape, in_channels: int | None) -> tuple[int, int, int, int]:
    """(M, K, N, groups) of a node with a weight of ``weight_shape`` producing ``out_shape``."""
    out_numel = math.prod(out_shape)
    if len(weight_shape) == 4:  # [O, C/g, kh, kw]
        o, cg, kh, kw = weight_shape
        groups = max(1, (in_channels or cg) // cg)
        return out_numel // o, cg * kh * kw, o, groups
    o, k = weight_shape[0], math.prod(weight_shape[1:])
    return out_numel // o, k, o, 1


def _interior(o: int, size: int, k: int, s: int, p: int, d: int = 1) -> int:
    """Output positions along one axis whose window lies wholly inside the input (no padding)."""
    return sum(1 for i in range(o) if i * s - p >= 0 and i * s - p + (k - 1) * d <= size - 1)


def border_positions(out_shape, in_shape, kernel, stride, padding, dilation=(1, 1)) -> int:
    """Output elements (all channels) whose window touches the padding: the kernels' slow path."""
    if len(out_shape) != 4 or len(in_shape) != 4 or not kernel:
        return 0
    pt, pl = (padding[0], padding[1]) if len(padding) == 4 else (padding[0], padding[-1])
    ih = _interior(out_shape[2], in_shape[2], kernel[0], stride[0], pt, dilation[0])
    iw = _interior(out_shape[3], in_shape[3], kernel[1], stride[1], pl, dilation[1])
    return out_shape[1] * (out_shape[2] * out_shape[3] - ih * iw)


def tail_macs(out_shape, k: int) -> int:
    """MACs of the output pixels outside full 4-pixel blocks of a row (the register-blocked kernels
    compute 4 pixels at a time; the tail goes through a per-pixel path)."""
    if len(out_shape) != 4 or not k:
        return 0
    return out_shape[1] * out_shape[2] * (out_shape[3] % 4) * k


def requant_paths(net, step, outputs: int) -> dict:
    """How the requantization of a step's outputs runs (codegen/runtime/gf_requant.c gf_rqc_set,
    gf_internal.h gf_rq_fast): with a shift sh of 34..62 the 32-bit shortcut (k = sh - 32), whose
    ambiguous case (h mod 2^k in {0, 1}: a share 2 / 2^k of the outputs) takes the exact path
    gf_rq_amb; any other shift sends every output to the 64-bit path gf_rqc_slow. Returns
    {"rq_slow": outputs on the 64-bit path, "rq_amb": expected outputs on the ambiguous path}
    (zero for steps without requantization)."""
    import numpy as np

    from gapforge.plan import PlanError, prepare_requant

    try:
        rq = prepare_requant(net, step)
    except PlanError:  # a call record with requantization constants the plan builds another way
        return {"rq_slow": 0, "rq_amb": 0}
    sh = np.asarray(rq.sh).reshape(-1)
    if not sh.size:
        return {"rq_slow": 0, "rq_amb": 0}
    per = outputs / sh.size
    fast = (sh >= 34) & (sh <= 62)
    amb = np.where(fast, 2.0 ** (1 - np.clip(sh - 32, 2, 30)), 0.0)
    return {"rq_slow": round(float((~fast).sum() * per)), "rq_amb": round(float(amb.sum() * per), 1)}


def walk_network_info(net_dir: str | Path) -> Graph:
    """Nodes of the extracted network in ``net_dir`` (one per fused step of its plan)."""
    from gapforge import ir
    from gapforge.plan import build_plan, step_cost

    net = ir.load(Path(net_dir))
    plan = build_plan(net)
    nodes = []
    for step in plan.steps:
        cost = step_cost(net, step)
        head = net.op_by_name(step.main_op)
        out = net.tensors[step.output]
        w = head.params.get("weight")
        x = net.tensors[step.inputs[0]]
        if w is not None:
            m, k, n, g = _gemm(out.shape, list(w.shape), x.shape[1] if len(x.shape) > 1 else None)
            macs = m * k * n
        elif len(head.inputs) == 2 and step.kind == "matmul":  # a product of two activations [.., M, K] @ [.., K, N]
            b = net.tensors[head.inputs[1]]
            k, n = x.shape[-1], b.shape[-1]
            g = out.numel // (x.shape[-2] * n)
            m = g * x.shape[-2]
            macs = m * k * n
        else:
            # element-wise and row ops: their multiplies as the declaration counts them (a product of two
            # activations: one per element; softmax / LayerNorm: per element of the row work)
            m, k, n, g, macs = out.numel, max(1, x.numel // max(1, out.numel)), 1, 1, cost.macs
        rows = out.shape[1] * out.shape[2] if len(out.shape) == 4 else (out.shape[-1] if w is not None else 0)
        a = step.attrs
        border = border_positions(out.shape, x.shape, a.get("kernel_size"), a.get("stride", [1, 1]),
                                  a.get("padding", [0, 0, 0, 0]), a.get("dilation", [1, 1]))
        extra = {"rows": rows, "border": border, "tail": tail_macs(out.shape, k if w is not None else 0)}
        ks = a.get("kernel_size")
        if ks and len(out.shape) == len(x.shape) and len(x.shape) in (3, 4) and len(ks) == 2:
            pad = a.get("padding", [0, 0, 0, 0])
            st, dil = a.get("stride", [1, 1]), a.get("dilation", [1, 1])
            xs, ys = (list(x.shape), list(out.shape)) if len(x.shape) == 4 else \
                ([x.shape[0], x.shape[1], 1, x.shape[2]], [out.shape[0], out.shape[1], 1, out.shape[2]])  # 1-D: H = 1
            extra["geom"] = {"c": xs[1], "h": xs[2], "w": xs[3], "oh": ys[2], "ow": ys[3],
                             "kh": ks[0], "kw": ks[1], "sy": st[0], "sx": st[1], "pt": pad[0],
                             "pl": pad[1] if len(pad) == 4 else pad[-1], "dy": dil[0], "dx": dil[1],
                             "groups": a.get("groups", 1), "o": out.shape[1], "rq": out.dtype != "int32"}
            if w is None:  # pooling: window reads
                extra["window"] = out.numel * ks[0] * ks[1]
        if w is not None:
            from codegen.packing import packed_bits

            bits = getattr(w, "bit_width", None)
            extra["w_bits"] = packed_bits(bits) if bits else 8
        nodes.append(Node(step.output, step.kind, macs, m, k, n, g, cost.bytes_in, cost.bytes_params, cost.bytes_out,
                          out.numel, w is not None, step=step, extra=extra))
    graph = Graph(net.name, nodes, net, plan, Path(net_dir))
    from codegen.program import build_program

    case, tmp = case_dir(graph)
    try:
        program = build_program(plan, case)
    finally:
        if tmp is not None:
            tmp.cleanup()
    for node, call in zip(nodes, program.calls):
        node.extra["kernel"] = call.kernel or ""
        node.extra.update(requant_paths(net, node.step, node.out_elems) if call.rq is not None and call.kernel
                          else {"rq_slow": 0, "rq_amb": 0})
    return graph


def case_dir(graph: Graph):
    """(a golden test case directory, its TemporaryDirectory or None) for the program builder: the
    network's own, or zeros of the right sizes (tiling and placement depend on sizes only)."""
    import tempfile

    own = Path(graph.net_dir) / "test_cases" / "test_case_1"
    if (own / "intermediate_int8").is_dir():
        return own, None
    from codegen.program import ELEM_BYTES

    tmp = tempfile.TemporaryDirectory(prefix="gf-estimate-")
    d = Path(tmp.name) / "test_case_1" / "intermediate_int8"
    d.mkdir(parents=True)
    for step in graph.plan.steps:
        t = graph.net.tensors[step.output]
        (d / f"{step.output}.bin").write_bytes(bytes(t.numel * ELEM_BYTES.get(t.dtype, 1)))
    return d.parent, tmp


# -- PyTorch models (torch.fx) ----------------------------------------------------------------------

def _leaf_types():
    import torch.nn as nn

    return (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm1d, nn.ReLU, nn.ReLU6, nn.MaxPool2d, nn.AvgPool2d,
            nn.AdaptiveAvgPool2d, nn.Flatten, nn.Identity, nn.Dropout, nn.Softmax, nn.LayerNorm, nn.GELU, nn.Sigmoid)


def _is_brevitas(m) -> bool:
    return type(m).__module__.startswith("brevitas.")


def _tensor(v):
    """The torch.Tensor behind a value (a Brevitas QuantTensor carries it as .value)."""
    import torch

    if isinstance(v, torch.Tensor):
        return v
    inner = getattr(v, "value", None)
    return inner if isinstance(inner, torch.Tensor) else None


def trace(model) -> Any:
    """torch.fx GraphModule of ``model`` with layers (and every Brevitas module) as leaves."""
    import torch.fx as fx

    leaves = _leaf_types()

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return isinstance(m, leaves) or _is_brevitas(m) or super().is_leaf_module(m, qualname)

    from gapforge.errors import GapforgeError

    try:
        graph = Tracer().trace(model)
    except Exception as exc:  # torch.fx raises many kinds (TraceError, TypeError, ...) for untraceable code
        raise GapforgeError(f"torch.fx cannot trace {type(model).__name__}: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:200]}") from None
    return fx.GraphModule(model, graph)


def walk_torch(model, example_input, name: str | None = None, elem_bytes: int = 1, weight_bytes: int = 1,
               bias_bytes: int = 4) -> Graph:
    """Nodes of a PyTorch model's FX graph, shapes from one run on ``example_input`` (batch included)."""
    import torch
    import torch.fx as fx
    import torch.nn as nn

    gm = trace(model)
    shapes: dict[str, tuple[tuple, list[tuple]]] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n):
            result = super().run_node(n)
            t = _tensor(result)
            ins = []
            for a in n.all_input_nodes:
                if a.name in shapes:
                    ins.append(shapes[a.name][0])
            if t is not None:
                shapes[n.name] = (tuple(t.shape), ins)
            return result

    was_training = model.training
    model.eval()
    with torch.no_grad():
        Recorder(gm).run(example_input)
    model.train(was_training)
    modules = dict(gm.named_modules())
    nodes = []
    for n in gm.graph.nodes:
        if n.op in ("placeholder", "output", "get_attr") or n.name not in shapes:
            continue
        out_shape, in_shapes = shapes[n.name]
        out_numel = math.prod(out_shape)
        in_numel = sum(math.prod(s) for s in in_shapes)
        mod = modules.get(n.target) if n.op == "call_module" else None
        weight = getattr(mod, "weight", None) if isinstance(mod, (nn.Conv2d, nn.Linear)) else None
        if weight is not None:
            in_ch = in_shapes[0][1] if in_shapes and len(in_shapes[0]) > 1 else None
            m, k, nn_, g = _gemm(out_shape, list(weight.shape), in_ch)
            bias = getattr(mod, "bias", None)
            w_b = weight.numel() * weight_bytes + (bias.numel() * bias_bytes if bias is not None else 0)
            macs = m * k * nn_
            kind = type(mod).__name__
        else:
            if n.op == "call_module" and isinstance(mod, (nn.Flatten, nn.Identity, nn.Dropout)) or \
                    n.op == "call_method" and n.target in ("view", "reshape", "flatten", "size", "contiguous") or \
                    n.op == "call_function" and getattr(n.target, "__name__", "") in ("flatten", "reshape", "getitem"):
                continue  # views: no work, no traffic
            m, k, nn_, g, macs = out_numel, max(1, in_numel // max(1, out_numel)), 1, 1, 0
            w_b = sum(p.numel() for p in mod.parameters(recurse=False)) * bias_bytes if mod is not None else 0
            kind = type(mod).__name__ if mod is not None else str(getattr(n.target, "__name__", n.target))
        rows = out_shape[1] * out_shape[2] if len(out_shape) == 4 else (out_shape[-1] if weight is not None else 0)
        border = 0
        if mod is not None and hasattr(mod, "kernel_size") and in_shapes:
            def pair(v):
                return list(v) if isinstance(v, (tuple, list)) else [v, v]

            border = border_positions(out_shape, in_shapes[0], pair(mod.kernel_size), pair(mod.stride),
                                      pair(mod.padding) if not isinstance(mod.padding, str) else [0, 0],
                                      pair(getattr(mod, "dilation", 1)))
        nodes.append(Node(n.name, kind, macs, m, k, nn_, g, in_numel * elem_bytes, w_b, out_numel * elem_bytes,
                          out_numel, weight is not None,
                          extra={"rows": rows, "border": border, "tail": tail_macs(out_shape, k if weight is not None else 0)}))
    return Graph(name or type(model).__name__, nodes)
