"""From the shared fusion plan to a device program: kernel calls, parameter blob, arena, golden files.

Every decision lives here (kernel choice per step, argument values, buffer offsets, file
layout); the Jinja2 templates in codegen/templates only render the records built here.

Parameter blob (``data/params.bin``): the concatenation of regions, each aligned to 8 bytes:
  <step>.w   int8 weights, PyTorch layout ([O][C/g][KH][KW] or [O][K])
  <step>.b   int32 bias [O]
  <step>.m   int32 requant mantissas [sources][channels]
  <step>.sh  uint8 requant shifts [channels]
  <step>.o   int64 requant offsets [channels]
  <step>.p   int64 parameter block of ops with their own integer parameters (softmax, layernorm)
all little-endian; each region's offset, size and CRC-32 are compiled into the program, which
checks them after loading. Golden tensors are ``data/golden_<index>.bin``: the raw integers of
one step output in C order and the tensor's container type (docs/golden_format.md).
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from codegen.memory import Buffer, MemoryPlan, align, plan_arena
from codegen.packing import pack_rows, packed_bits
from gapforge import ir
from gapforge.errors import GapforgeError
from gapforge.ops import registry
from gapforge.ops._shapes import chw
from gapforge.plan import Plan, Requant, Step, step_cost, tensor_abs_max

DTYPE_ENUM = {"int8": "GF_S8", "uint8": "GF_U8", "int32": "GF_S32"}
ELEM_BYTES = {"int8": 1, "uint8": 1, "int32": 4}


def c_ident(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return s if s and not s[0].isdigit() else f"t_{s}"


@dataclass(frozen=True)
class Region:
    name: str
    offset: int
    size: int
    crc32: int


@dataclass(frozen=True)
class TensorRec:
    name: str
    ident: str
    dtype: str  # GF_S8 / GF_U8 / GF_S32
    elem_bytes: int
    elements: int
    golden: str  # golden file name (data/)
    golden_crc32: int

    @property
    def bytes(self) -> int:
        return self.elements * self.elem_bytes


@dataclass(frozen=True)
class RequantRec:
    m: Region
    sh: Region
    o: Region
    channels: int
    zp: int
    lo: int
    hi: int


@dataclass(frozen=True)
class CallRec:
    index: int
    name: str
    ident: str
    kind: str  # step kind (+relu)
    kernel: str  # C function, or "" for views (reshape) and the host-quantized input
    out: TensorRec
    out_offset: int
    inputs: tuple[TensorRec, ...]
    in_offsets: tuple[int, ...]
    args: tuple[str, ...]  # C argument expressions, in order
    shape: tuple[int, ...] | None = None  # gf_conv_shape_t initializer, referenced as &s_<ident>
    rq: RequantRec | None = None
    macs: int = 0
    w_bits: int = 8  # weight container bits in params.bin (8, or 4 / 2 when packed for gap9)
    w_row_bytes: int = 0  # bytes per output channel of the (packed) weight region
    cat_blocks: tuple[int, ...] | None = None  # concat: bytes per outer block of each input
    perm: tuple[tuple[int, ...], tuple[int, ...]] | None = None  # permute: (shape4, perm4)
    mul_shape: tuple | None = None  # mul: gf_mul_shape_t (shape4, strides of a, strides of b, za, zb)

    @property
    def uses_params(self) -> bool:
        return self.rq is not None or any("P +" in a for a in self.args)


@dataclass
class Program:
    name: str
    calls: list[CallRec]
    regions: list[Region]
    params: bytes
    memory: MemoryPlan
    inputs: list[TensorRec]
    test_case: int
    golden_files: dict[str, bytes] = field(default_factory=dict)
    layout: list[dict] = field(default_factory=list)  # per step: what the compiled program assumes (plan.json)
    outputs: list[str] = field(default_factory=list)  # the network's output tensors (gap9: the inference pass)

    @property
    def arena_bytes(self) -> int:
        return self.memory.arena_size

    @property
    def max_tensor_bytes(self) -> int:
        return max(c.out.bytes for c in self.calls)


class _Blob:
    def __init__(self) -> None:
        self.data = bytearray()
        self.regions: list[Region] = []

    def add(self, name: str, arr: np.ndarray) -> Region:
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        off = len(self.data)
        self.data += raw + b"\0" * (align(len(raw)) - len(raw))
        r = Region(name, off, len(raw), zlib.crc32(raw))
        self.regions.append(r)
        return r


def _inner(t: ir.TensorInfo, axis: int | None) -> int:
    """Elements per channel slice for per-channel element-wise requantization."""
    if axis is None:
        return max(1, t.numel)
    return int(math.prod(t.shape[axis + 1:]))


def build_program(plan: Plan, case_dir: Path, offset_of=None, pack_weights: bool = False) -> Program:
    """Turn ``plan`` into kernel calls; golden tensors come from ``case_dir`` (a test case).

    ``offset_of(tensor)`` overrides the buffer offsets of the single-arena memory plan (the GAP9
    target places buffers in separate L2 and L3 arenas); ``pack_weights`` stores sub-8-bit weights
    packed (codegen/packing.py; the GAP9 executor unpacks them in L1).
    """
    net = plan.net
    meta_dir = case_dir / "intermediate_int8"
    if not meta_dir.is_dir():
        raise GapforgeError(f"{case_dir}: no golden test case here (run tools/generate_golden_outputs.py first)")
    blob = _Blob()
    tensors: dict[str, TensorRec] = {}
    golden_files: dict[str, bytes] = {}
    for i, step in enumerate(plan.steps):
        t = net.tensors[step.output]
        if t.dtype not in DTYPE_ENUM:
            raise GapforgeError(f"tensor '{t.name}': dtype {t.dtype} has no device kernel")
        path = meta_dir / f"{step.output}.bin"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise GapforgeError(f"{path}: golden tensor missing; regenerate the golden outputs") from None
        if len(raw) != t.numel * ELEM_BYTES[t.dtype]:
            raise GapforgeError(f"{path}: {len(raw)} bytes, expected {t.numel * ELEM_BYTES[t.dtype]} "
                                "(golden outputs are stale; regenerate them)")
        gname = f"golden_{i:03d}.bin"
        golden_files[gname] = raw
        tensors[step.output] = TensorRec(step.output, c_ident(step.output), DTYPE_ENUM[t.dtype],
                                         ELEM_BYTES[t.dtype], t.numel, gname, zlib.crc32(raw))
    memory = _plan_memory(plan, tensors)
    offset = offset_of or memory.offset
    calls = [_call(i, step, plan, tensors, offset, blob, pack_weights) for i, step in enumerate(plan.steps)]
    inputs = [tensors[s.output] for s in plan.steps if registry().ir_ops[s.kind].host]
    case = int(case_dir.name.rsplit("_", 1)[-1]) if case_dir.name.startswith("test_case_") else 0
    layout = [step_layout(plan, step, c) for step, c in zip(plan.steps, calls)]
    return Program(net.name, calls, blob.regions, bytes(blob.data), memory, inputs, case, golden_files, layout,
                   list(net.outputs))


def _encoding(t: ir.TensorInfo) -> dict:
    return {"shape": list(t.shape), "dtype": t.dtype, "kind": t.kind, "bit_width": t.bit_width, "signed": t.signed,
            "narrow_range": t.narrow_range, "zero_point": t.zero_point, "per_channel": t.per_channel,
            "channel_axis": t.channel_axis}


def step_layout(plan: Plan, step: Step, call: CallRec) -> dict:
    """What the compiled program assumes about one step (the layout record of plan.json): the fused
    ops, every tensor's shape and integer encoding, the main op's parameters (shape, bit width,
    container bits), the requantization's structure (channels, zero point, clamp), the kernel.
    Scales, weights, multipliers, shifts and offsets are data and not part of it."""
    net = plan.net
    rec: dict = {"name": step.output, "kind": step.kind, "relu": step.relu, "ops": list(step.ops),
                 "kernel": call.kernel or None, "inputs": {t: _encoding(net.tensors[t]) for t in step.inputs},
                 "output": _encoding(net.tensors[step.output])}
    for t, enc in rec["inputs"].items():
        if enc["kind"] == "acc" and step.acc_bound is not None:  # int32 codes read by a weight layer (pool sums)
            enc["abs_max"] = tensor_abs_max(net, t)  # the bound the accumulator check of new weights uses
    if step.main_op:
        op = net.op_by_name(step.main_op)
        rec["attrs"] = {k: v for k, v in sorted(step.attrs.items()) if isinstance(v, (int, float, str, bool, list))}
        rec["params"] = {k: {"shape": list(p.shape), "bit_width": p.bit_width, "signed": p.signed,
                             "narrow_range": p.narrow_range, "per_channel": isinstance(p.scale, list)}
                         for k, p in sorted(op.params.items())}
        if "weight" in op.params and call.w_row_bytes:
            rec["params"]["weight"].update(container_bits=call.w_bits, row_bytes=call.w_row_bytes)
    if step.requant is not None:
        rq = step.requant
        rec["requant"] = {"sources": int(rq.m.shape[0]), "channels": rq.channels, "channel_axis": rq.channel_axis,
                          "zp": rq.zp, "lo": rq.lo, "hi": rq.hi}
    return rec


def _plan_memory(plan: Plan, tensors: dict[str, TensorRec]) -> MemoryPlan:
    last_use: dict[str, int] = {}
    first: dict[str, int] = {}
    views: dict[str, str] = {}
    for i, s in enumerate(plan.steps):
        # the host-quantized inputs all arrive before the run: each has its own region from step 0
        first[s.output] = 0 if registry().ir_ops[s.kind].host else i
        for t in s.inputs:
            last_use[t] = i
    for o in plan.net.outputs:
        last_use[o] = len(plan.steps) - 1
    for s in plan.steps:  # a reshape is a view of its input's buffer
        if registry().ir_ops[s.kind].view:
            views[s.output] = views.get(s.inputs[0], s.inputs[0])
    buffers: dict[str, Buffer] = {}
    for s in plan.steps:
        if s.output in views:
            continue
        buffers[s.output] = Buffer(s.output, tensors[s.output].bytes, first[s.output],
                                   last_use.get(s.output, first[s.output]))
    for view, base in views.items():
        b = buffers[base]
        b.last = max(b.last, last_use.get(view, first[view]))
        b.aliases.append(view)
    return plan_arena(list(buffers.values()), views)


def _requant(blob: _Blob, ident: str, rq: Requant) -> RequantRec:
    return RequantRec(
        m=blob.add(f"{ident}.m", rq.m.astype(np.int32)),
        sh=blob.add(f"{ident}.sh", rq.sh.astype(np.uint8)),
        o=blob.add(f"{ident}.o", rq.o.astype(np.int64)),
        channels=rq.channels, zp=rq.zp, lo=rq.lo, hi=rq.hi)


class CallBuilder:
    """What an op's ``call`` function (its declaration in gapforge/ops) sees while its kernel call is built.

    Kernel arguments are C expressions: ``X[i]`` / ``Y`` the input / output buffers in the arena
    ``A``, ``T[i]`` the inputs' dtypes, ``rq_arg`` the requantization record (or NULL); ``weights()``
    and ``bias()`` add the main op's parameters to the blob (in that order) and return their pointers
    into ``P``. ``call(kernel, args, ...)`` makes the record.
    """

    def __init__(self, i: int, step: Step, plan: Plan, tensors: dict[str, TensorRec], offset, blob: _Blob,
                 pack: bool):
        self.net = plan.net
        self.step = step
        self.attrs = step.attrs
        self.op = self.net.op_by_name(step.main_op)
        self.out_t = self.net.tensors[step.output]
        self.ident = c_ident(step.output)
        self.out = tensors[step.output]
        self.ins = tuple(tensors[t] for t in step.inputs if t in tensors)
        self.in_offsets = tuple(offset(t.name) for t in self.ins)
        self._blob = blob
        self._pack = pack
        # the requantization's regions follow the bias (bias(), else call()): a layer's bias, m, sh and o are then
        # consecutive in the blob, 8-byte aligned like the GAP9 executor's L1 parameter buffer (gf_tiled.c
        # param_layout), which loads them with one DMA command where the tile holds every channel
        self.rq: RequantRec | None = None
        self.rq_arg = f"&rq_{self.ident}" if step.requant is not None else "NULL"
        self.X = [f"A + {o}" for o in self.in_offsets]
        self.Y = f"A + {offset(step.output)}"
        self.T = [t.dtype for t in self.ins]
        self._base = dict(index=i, name=step.output, ident=self.ident, kind=step.kind + ("+relu" if step.relu else ""),
                          out=self.out, out_offset=offset(step.output), inputs=self.ins, in_offsets=self.in_offsets,
                          rq=self.rq, macs=step_cost(self.net, step).macs)
        self._w: dict = {}

    def weights(self) -> str:
        """The main op's weights (packed to 4 / 2 bits per value when packing is on) as a kernel argument."""
        w = self.net.param(self.op, "weight")
        bits = packed_bits(self.op.params["weight"].bit_width) if self._pack else 8
        packed = pack_rows(w, bits, f"op '{self.op.name}' weights")
        region = self._blob.add(f"{self.ident}.w", packed if bits < 8 else w.astype(np.int8))
        self._w = dict(w_bits=bits, w_row_bytes=packed.shape[1])
        return f"(const int8_t *)(P + {region.offset})"

    def bias(self) -> str:
        if "bias" not in self.op.params:
            return "NULL"
        region = self._blob.add(f"{self.ident}.b", self.net.param(self.op, "bias").astype(np.int32))
        self._add_requant()
        return f"(const int32_t *)(P + {region.offset})"

    def _add_requant(self) -> None:
        if self.step.requant is not None and self.rq is None:
            self.rq = _requant(self._blob, self.ident, self.step.requant)
            self._base["rq"] = self.rq

    def param(self, name: str, suffix: str, arr: np.ndarray, ctype: str) -> str:
        """Add ``arr`` (a parameter of the main op, e.g. a lookup table) to the blob as region
        ``<step>.<suffix>``; returns its pointer into ``P`` as a ``ctype`` kernel argument."""
        region = self._blob.add(f"{self.ident}.{suffix}", arr)
        return f"({ctype} *)(P + {region.offset})"
    def param_block(self) -> str:
        """The step's own parameter block (``Step.params.block()``, int64 words) as a kernel argument."""
        region = self._blob.add(f"{self.ident}.p", np.asarray(self.step.params.block(), dtype=np.int64))
        return f"(const int64_t *)(P + {region.offset})"

    def rows_extent(self) -> tuple[str, str]:
        """(rows, elements per row) of a rows step: the last axis (``axes`` trailing axes) is a row."""
        x = self.net.tensors[self.step.inputs[0]]
        n = int(math.prod(x.shape[len(x.shape) - int(self.attrs.get("axes", 1)):]))
        return str(x.numel // n), str(n)

    def window_shape(self) -> tuple[int, ...]:
        """gf_conv_shape_t of a sliding-window step (conv or pooling) over NCHW."""
        x, y, a = self.net.tensors[self.op.inputs[0]], self.net.tensors[self.op.outputs[0]], self.attrs
        c, h, w = chw(x.shape)
        o, oh, ow = chw(y.shape)
        kh, kw = a["kernel_size"]
        sy, sx = a["stride"]
        pt, pl, pb, pr = a["padding"]
        dy, dx = a.get("dilation", [1, 1])
        return (c, h, w, o, oh, ow, kh, kw, sy, sx, pt, pl, pb, pr, dy, dx, a.get("groups", 1))

    def eltwise_extent(self) -> tuple[str, str]:
        """(elements, elements per channel slice) arguments of an element-wise kernel."""
        axis = self.step.requant.channel_axis if self.step.requant is not None else None
        return str(self.out_t.numel), str(_inner(self.out_t, axis))

    def call(self, kernel: str, args: tuple[str, ...], **extra) -> CallRec:
        self._add_requant()
        return CallRec(kernel=kernel, args=tuple(args), **self._w, **extra, **self._base)


def _call(i: int, step: Step, plan: Plan, tensors: dict[str, TensorRec], offset, blob: _Blob,
          pack: bool = False) -> CallRec:
    decl = registry().ir_ops[step.kind]
    cg = CallBuilder(i, step, plan, tensors, offset, blob, pack)
    if decl.host or decl.view:  # the host quantizes the input; a view shares its input's buffer
        return cg.call("", ())
    if decl.call is None:
        raise GapforgeError(f"step '{step.output}' ({step.kind}) has no device kernel")
    return decl.call(cg)
