"""The fusion planner: network_info IR -> an ordered list of executable steps.

This is the single place that decides which tensors exist at run time. The INT8 engine
(tools/int8_inference.py), the golden generator and the C code generator all execute the
same ``Plan``, so the golden files and the device can never disagree about which layers
there are.

Passes, in order (each can be dumped with ``Plan.describe()``):

1. ``fuse_chains``: every op starts a step unless it is absorbed into the step of its
   producer; a producer absorbs ``[relu] -> requantize`` when the intermediate tensors have
   exactly one consumer and are not network outputs. Which ops are heads is their declaration's
   ``fusion`` (gapforge/ops): today ``conv2d|linear|avgpool2d|add -> [relu] -> requantize`` and
   ``relu -> requantize``.
2. ``check_materializable``: every step output must have an integer encoding (quant or acc), and
   the op's own ``check`` (declaration) must accept the step.
3. ``prepare_requant``: float scales become integer multipliers, shifts and 64-bit offsets
   (see docs/integer_contract.md); accumulator and 64-bit bounds are checked here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from atomic_ops._fixedpoint import INT64_LIMIT, quantize_multipliers, quantize_offset
from atomic_ops._gemm import row_abs_sums
from gapforge import ir
from gapforge.errors import GapforgeError

ACC_LIMIT = 2**31  # int32 accumulators


class PlanError(GapforgeError):
    pass


@dataclass
class Requant:
    """``y = clamp(rne_shift(sum_s q_s * m[s, c] + o[c], sh[c]) + zp, lo, hi)`` along ``channel_axis``.

    ``M`` / ``B`` are the exact real multipliers / offsets (float64) the integers approximate;
    they are kept for diagnostics (near-tie detection) and never used on the device path.
    """

    m: np.ndarray  # int64 (sources, channels)
    sh: np.ndarray  # int64 (channels,)
    o: np.ndarray  # int64 (channels,)
    zp: int
    lo: int
    hi: int
    channel_axis: int | None
    M: np.ndarray
    B: np.ndarray

    @property
    def channels(self) -> int:
        return int(self.sh.shape[0])


@dataclass
class Step:
    name: str  # = output tensor name
    kind: str  # type of the main IR op
    ops: list[str]  # IR ops covered, in execution order
    inputs: list[str]  # materialized tensors read
    output: str  # materialized tensor written
    attrs: dict[str, Any] = field(default_factory=dict)
    main_op: str = ""  # IR op holding params (weights)
    relu: bool = False
    requant: Requant | None = None
    acc_bound: np.ndarray | None = None  # conv/linear: per-channel worst-case |acc|
    params: Any = None  # the op's own integer parameters (declaration ``prepare``), e.g. softmax tables


@dataclass
class Plan:
    net: ir.Network
    steps: list[Step]

    def tensor(self, name: str) -> ir.TensorInfo:
        return self.net.tensors[name]

    def step_outputs(self) -> list[str]:
        return [s.output for s in self.steps]

    def describe(self) -> str:
        lines = []
        for s in self.steps:
            rq = ""
            if s.requant is not None:
                rq = f" requant[{s.requant.channels} ch, shift {int(s.requant.sh.min())}..{int(s.requant.sh.max())}]"
            lines.append(f"{s.name}: {s.kind}{' +relu' if s.relu else ''}{rq} <- {', '.join(s.inputs)} "
                         f"(ops: {', '.join(s.ops)})")
        return "\n".join(lines)


# -- pass 1: fusion --------------------------------------------------------------------
def _decl(op_type: str):
    from gapforge.ops import registry

    return registry().ir_ops[op_type]


def fuse_chains(net: ir.Network) -> list[Step]:
    """Every op starts a step unless absorbed into its producer's: a head op (declaration
    ``fusion="head"``) absorbs ``relu [relu ...] -> requantize``, a relu (``fusion="activation"``) absorbs
    ``[relu ...] -> requantize``, when the intermediate tensors have one consumer and are not network
    outputs (consecutive ReLUs are one: F.relu before a QuantReLU)."""
    consumers: dict[str, list[ir.OpInfo]] = {}
    for op in net.ops:
        for t in op.inputs:
            consumers.setdefault(t, []).append(op)
    outputs = set(net.outputs)

    def sole_consumer(tensor: str) -> ir.OpInfo | None:
        users = consumers.get(tensor, [])
        if len(users) == 1 and tensor not in outputs:
            return users[0]
        return None

    def fusion(op: ir.OpInfo | None) -> str | None:
        return _decl(op.type).fusion if op is not None else None

    absorbed: set[str] = set()
    steps: list[Step] = []
    for op in net.ops:
        if op.name in absorbed:
            continue
        chain = [op]
        role = fusion(op)
        if role in ("head", "activation"):
            # a run of activations (relu(relu(x)), e.g. F.relu before a QuantReLU) is one: relu is idempotent
            acts = []
            nxt = sole_consumer(op.outputs[0])
            while fusion(nxt) == "activation":
                acts.append(nxt)
                nxt = sole_consumer(nxt.outputs[0])
            if nxt is not None and nxt.type == "requantize":
                chain += [*acts, nxt]
        absorbed.update(o.name for o in chain)
        kind = op.type
        if role == "activation" and len(chain) > 1:
            kind = "requantize"  # relu -> requantize: one requantization with the relu as its lower clamp
        steps.append(Step(
            name=chain[-1].outputs[0], kind=kind, ops=[o.name for o in chain], inputs=list(op.inputs),
            output=chain[-1].outputs[0], attrs=dict(op.attrs), main_op=op.name,
            relu=any(fusion(o) == "activation" for o in chain) and chain[-1].type == "requantize"))
    return steps


# -- pass 2: every boundary tensor has an integer encoding ------------------------------
def check_materializable(net: ir.Network, steps: list[Step]) -> None:
    for s in steps:
        t = net.tensors[s.output]
        if t.kind == "real":
            op = net.op_by_name(s.ops[-1])
            raise PlanError(
                f"tensor '{t.name}' (from {op.source or op.type} '{op.module or op.name}') has no integer encoding "
                "and is not consumed by exactly one quantizer",
                hint="put a quantizer (QuantIdentity/QuantReLU) right after it")
        check = _decl(s.kind).check
        if check is not None:
            check(net, s)


# -- pass 3: integer requantization parameters -----------------------------------------
def _sources(net: ir.Network, step: Step) -> list[tuple[ir.TensorInfo, int]]:
    """(encoding tensor, bound on |q|) of each integer source of the requantize of ``step``."""
    head = net.op_by_name(step.main_op)
    if _decl(step.kind).acc_bound is not None:  # the head computes one int32 accumulator
        acc = net.tensors[head.outputs[0]]
        bound = int(step.acc_bound.max()) if step.acc_bound is not None else ACC_LIMIT - 1
        return [(acc, bound)]
    srcs = []
    for name in step.inputs:
        t = net.tensors[name]
        if t.kind == "quant":
            lo, hi = t.qrange()
            srcs.append((t, max(abs(lo), abs(hi))))
        else:
            srcs.append((t, ACC_LIMIT - 1))
    return srcs


def _channel_axis(tensors: list[ir.TensorInfo], where: str) -> int | None:
    axes = {t.channel_axis for t in tensors if t.channel_axis is not None}
    if len(axes) > 1:
        raise PlanError(f"{where}: per-channel parameters along different axes {sorted(axes)}")
    return axes.pop() if axes else None


def prepare_requant(net: ir.Network, step: Step) -> Requant:
    out = net.tensors[step.output]
    srcs = _sources(net, step)
    axis = _channel_axis([t for t, _ in srcs] + [out], f"requantize '{step.name}'")
    channels = out.shape[axis] if axis is not None else 1
    s_out = np.asarray(out.scale_list(channels), dtype=np.float64)
    M = np.zeros((len(srcs), channels))
    B = np.zeros(channels)
    signs_of = _decl(step.kind).source_signs
    signs = signs_of(net, step) if signs_of is not None else [1] * len(srcs)
    for i, ((t, _), sign) in enumerate(zip(srcs, signs)):
        sigma = np.asarray(t.scale_list(channels), dtype=np.float64)
        M[i] = sign * sigma / s_out
        if t.kind == "quant":
            B -= t.zero_point * M[i]
        else:
            B += sign * np.asarray(t.offset_list(channels), dtype=np.float64) / s_out
    where = f"requantize '{step.name}': "
    try:
        m, sh = quantize_multipliers(M, where)
        o = quantize_offset(B, sh)
    except ValueError as exc:
        raise PlanError(str(exc), hint="check the scales of the quantizers around this layer") from None
    bounds = [b for _, b in srcs]
    # make sure sum_s |q_s * m_s| + |o| < 2^63 for every channel (drop mantissa bits if needed)
    for c in range(channels):
        while sum(int(b) * abs(int(v)) for b, v in zip(bounds, m[:, c])) + abs(int(o[c])) >= INT64_LIMIT:
            sh[c] -= 1
            if sh[c] < 1:
                raise PlanError(f"{where}cannot keep the 64-bit requantization sum in range")
            m[:, c] = np.rint(M[:, c] * 2.0 ** int(sh[c])).astype(np.int64)
            o[c] = quantize_offset(B[c:c + 1], sh[c:c + 1])[0]
    lo, hi = out.qrange()
    if step.relu:
        lo = max(lo, out.zero_point)
    return Requant(m=m, sh=sh, o=o, zp=int(out.zero_point), lo=int(lo), hi=int(hi),
                   channel_axis=axis, M=M, B=B)


def weight_acc_bound(net: ir.Network, step: Step) -> np.ndarray:
    """Worst-case |accumulator| per output channel of a weighted step (conv/linear; exact, from the
    integer weights and biases): max|x| * sum_k |w[o, k]| + |bias[o]|."""
    head = net.op_by_name(step.main_op)
    bound = row_abs_sums(net.param(head, "weight")) * input_abs_max(net, step)
    if "bias" in head.params:
        bound = bound + np.abs(net.param(head, "bias").astype(np.int64))
    return bound


def input_abs_max(net: ir.Network, step: Step, i: int = 0) -> int:
    """Largest |q| the step's i-th input can hold (``tensor_abs_max``)."""
    return tensor_abs_max(net, net.op_by_name(step.main_op).inputs[i])


def tensor_abs_max(net: ir.Network, name: str) -> int:
    """Largest |q| tensor ``name`` can hold: a quant tensor's from its bit width and signedness; an
    accumulator's (e.g. the window sums of a global average pool) the worst case its producer's
    declaration proves (``acc_bound``), through views (reshape); 2^31 - 1 when nothing proves less."""
    t = net.tensors[name]
    if t.kind == "quant":
        lo, hi = t.qrange()
        return max(abs(lo), abs(hi))
    op = net.producer_of(name)
    if t.kind != "acc" or op is None:
        return ACC_LIMIT - 1
    decl = _decl(op.type)
    if decl.view:
        return tensor_abs_max(net, op.inputs[0])
    if decl.acc_bound is None or op.outputs[0] != name:
        return ACC_LIMIT - 1
    alone = Step(name=name, kind=op.type, ops=[op.name], inputs=list(op.inputs), output=name,
                 attrs=dict(op.attrs), main_op=op.name)
    return min(int(np.max(decl.acc_bound(net, alone))), ACC_LIMIT - 1)


@dataclass(frozen=True)
class Cost:
    """Work of one step: multiply-accumulates and bytes read / written (activations and parameters)."""

    macs: int
    bytes_in: int
    bytes_params: int
    bytes_out: int

    @property
    def bytes_total(self) -> int:
        return self.bytes_in + self.bytes_params + self.bytes_out


def step_cost(net: ir.Network, step: Step) -> Cost:
    """MACs from the op's declaration; bytes from the tensors and parameters the step touches
    (parameters in their params.bin containers: int8 weights, int32 biases, and the
    requantization's int32 mantissas, uint8 shifts and int64 offsets)."""
    decl = _decl(step.kind)
    macs = int(decl.macs(net, step)) if decl.macs is not None else 0
    head = net.op_by_name(step.main_op)
    elem = {"int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "float32": 4}
    b_in = sum(net.tensors[t].numel * elem[net.tensors[t].dtype] for t in step.inputs)
    out = net.tensors[step.output]
    b_out = out.numel * elem[out.dtype]
    b_par = sum(math.prod(p.shape) * (1 if name == "weight" else 4) for name, p in head.params.items())
    if step.requant is not None:
        b_par += step.requant.m.size * 4 + step.requant.channels * (1 + 8)
    if step.params is not None:
        b_par += step.params.block().nbytes
    return Cost(macs, b_in, b_par, b_out)


def build_plan(net: ir.Network) -> Plan:
    steps = fuse_chains(net)
    check_materializable(net, steps)
    for s in steps:
        decl = _decl(s.kind)
        x = net.tensors[s.inputs[0]]
        wide = decl.wide_input and x.kind == "acc" and not x.per_channel and not any(x.offset_list(1))
        if decl.symmetric_input and not wide and (x.kind != "quant" or x.zero_point):
            raise PlanError(f"{s.kind} '{s.main_op}': its input '{x.name}' must be a quantized tensor with zero point 0 "
                            f"(the integer kernels take no input zero point), got {x.described}"
                            + (f" with zero point {x.zero_point}" if x.kind == "quant" else ""))
        if decl.acc_bound is not None:
            s.acc_bound = np.asarray(decl.acc_bound(net, s), dtype=np.int64)
            worst = int(s.acc_bound.max())
            if worst >= ACC_LIMIT:
                hint = "use fewer input channels per output or lower bit widths"
                if x.kind == "acc":
                    bound = tensor_abs_max(net, x.name)
                    held = f"holds int32 codes up to {bound}" if bound < ACC_LIMIT - 1 \
                        else "is an int32 accumulator without a proved bound"
                    hint = f"its input '{x.name}' {held}: put a QuantIdentity before this layer (or set its input_quant)"
                raise PlanError(f"{s.kind} '{s.main_op}': the int32 accumulator can overflow "
                                f"(worst case {worst} >= 2^31)", hint=hint)
        if net.tensors[s.output].kind == "quant" and decl.requantizes:
            s.requant = prepare_requant(net, s)
        if decl.prepare is not None:
            try:
                s.params = decl.prepare(net, s)
            except ValueError as exc:
                raise PlanError(f"{s.kind} '{s.main_op}': {exc}") from None
    return Plan(net, steps)
