"""From the shared fusion plan to a device program: kernel calls, parameter blob, arena, golden files.

Every decision lives here (kernel choice per step, argument values, buffer offsets, file
layout); the Jinja2 templates in codegen/templates only render the records built here.

Parameter blob (``data/params.bin``): the concatenation of regions, each aligned to 8 bytes:
  <step>.w   int8 weights, PyTorch layout ([O][C/g][KH][KW] or [O][K])
  <step>.b   int32 bias [O]
  <step>.m   int32 requant mantissas [sources][channels]
  <step>.sh  uint8 requant shifts [channels]
  <step>.o   int64 requant offsets [channels]
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
from gapforge.plan import Plan, Requant, Step

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


def _conv_shape(x: ir.TensorInfo, y: ir.TensorInfo, a: dict) -> tuple[int, ...]:
    c, h, w = x.shape[1:4]
    o, oh, ow = y.shape[1:4]
    kh, kw = a["kernel_size"]
    sy, sx = a["stride"]
    pt, pl, pb, pr = a["padding"]
    dy, dx = a.get("dilation", [1, 1])
    return (c, h, w, o, oh, ow, kh, kw, sy, sx, pt, pl, pb, pr, dy, dx, a.get("groups", 1))


def choose_conv_kernel(a: dict, c: int, o: int) -> str:
    """Fast path by geometry; falls back to the general blocked kernel."""
    kh, kw = a["kernel_size"]
    if a["dilation"] == [1, 1] and a["groups"] == c == o:
        return "gf_dwconv2d"
    if a["groups"] != 1 or a["dilation"] != [1, 1]:
        return "gf_conv2d"
    if (kh, kw) == (3, 3) and a["stride"] == [1, 1]:
        return "gf_conv2d_3x3"
    if (kh, kw) == (1, 1) and a["padding"] == [0, 0, 0, 0]:
        return "gf_conv2d_1x1"
    return "gf_conv2d"


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
    inputs = [tensors[s.output] for s in plan.steps if s.kind == "quantize"]
    case = int(case_dir.name.rsplit("_", 1)[-1]) if case_dir.name.startswith("test_case_") else 0
    return Program(net.name, calls, blob.regions, bytes(blob.data), memory, inputs, case, golden_files)


def _plan_memory(plan: Plan, tensors: dict[str, TensorRec]) -> MemoryPlan:
    last_use: dict[str, int] = {}
    first: dict[str, int] = {}
    views: dict[str, str] = {}
    for i, s in enumerate(plan.steps):
        first[s.output] = i
        for t in s.inputs:
            last_use[t] = i
    for o in plan.net.outputs:
        last_use[o] = len(plan.steps) - 1
    for s in plan.steps:  # a reshape is a view of its input's buffer
        if s.kind == "reshape":
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


def _weights(blob: _Blob, ident: str, op, w: np.ndarray, pack: bool) -> tuple[Region, int, int]:
    """The weight region, its container bits and bytes per output channel."""
    bits = packed_bits(op.params["weight"].bit_width) if pack else 8
    packed = pack_rows(w, bits)
    return blob.add(f"{ident}.w", packed if bits < 8 else w.astype(np.int8)), bits, packed.shape[1]


def _call(i: int, step: Step, plan: Plan, tensors: dict[str, TensorRec], offset, blob: _Blob,
          pack: bool = False) -> CallRec:
    net = plan.net
    out_t = net.tensors[step.output]
    ident = c_ident(step.output)
    ins = tuple(tensors[t] for t in step.inputs if t in tensors)
    in_offsets = tuple(offset(t.name) for t in ins)
    rq = _requant(blob, ident, step.requant) if step.requant is not None else None
    rq_arg = f"&rq_{ident}" if rq is not None else "NULL"
    kind = step.kind + ("+relu" if step.relu else "")
    base = dict(index=i, name=step.output, ident=ident, kind=kind, out=tensors[step.output],
                out_offset=offset(step.output), inputs=ins, in_offsets=in_offsets, rq=rq)
    X = [f"A + {o}" for o in in_offsets]
    Y = f"A + {offset(step.output)}"
    T = [t.dtype for t in ins]
    a = step.attrs

    if step.kind == "quantize":  # done by the host: the device receives the golden integers
        return CallRec(kernel="", args=(), **base)
    if step.kind == "reshape":
        return CallRec(kernel="", args=(), **base)
    if step.kind == "conv2d":
        op = net.op_by_name(step.main_op)
        w, wbits, wrow = _weights(blob, ident, op, net.param(op, "weight"), pack)
        b = blob.add(f"{ident}.b", net.param(op, "bias").astype(np.int32)) if "bias" in op.params else None
        x = net.tensors[op.inputs[0]]
        shape = _conv_shape(x, net.tensors[op.outputs[0]], a)
        kernel = choose_conv_kernel(a, shape[0], shape[3])
        macs = out_t.numel * int(np.prod(op.params["weight"].shape[1:]))
        return CallRec(kernel=kernel, shape=shape, macs=macs, w_bits=wbits, w_row_bytes=wrow, args=(
            X[0], T[0], f"(const int8_t *)(P + {w.offset})", f"(const int32_t *)(P + {b.offset})" if b else "NULL",
            f"&s_{ident}", rq_arg, Y), **base)
    if step.kind == "linear":
        op = net.op_by_name(step.main_op)
        wt = net.param(op, "weight")
        w, wbits, wrow = _weights(blob, ident, op, wt, pack)
        b = blob.add(f"{ident}.b", net.param(op, "bias").astype(np.int32)) if "bias" in op.params else None
        k, o = wt.shape[1], wt.shape[0]
        rows = net.tensors[op.inputs[0]].numel // k
        if rows != 1:
            raise GapforgeError(f"linear '{step.main_op}' over {rows} rows: only a single row per sample is "
                                "supported by the device code yet")
        return CallRec(kernel="gf_linear", macs=k * o, w_bits=wbits, w_row_bytes=wrow, args=(
            X[0], T[0], f"(const int8_t *)(P + {w.offset})", f"(const int32_t *)(P + {b.offset})" if b else "NULL",
            str(k), str(o), rq_arg, Y), **base)
    if step.kind in ("maxpool2d", "avgpool2d", "trunc_avgpool2d"):
        x = net.tensors[step.inputs[0]]
        shape = _conv_shape(x, out_t, {**a, "dilation": [1, 1], "groups": 1})
        if step.kind == "maxpool2d":
            args = (X[0], T[0], f"&s_{ident}", Y)
        elif step.kind == "avgpool2d":
            args = (X[0], T[0], f"&s_{ident}", rq_arg, Y)
        else:
            lo, hi = out_t.qrange()
            args = (X[0], T[0], f"&s_{ident}", str(a["shift"]), "1" if a["rounding"] == "floor" else "0",
                    str(lo), str(hi), Y)
        return CallRec(kernel=f"gf_{step.kind}", shape=shape, args=args, **base)
    if step.kind in ("add", "requantize"):
        axis = step.requant.channel_axis if step.requant is not None else None
        n, inner = out_t.numel, _inner(out_t, axis)
        if step.kind == "add":
            args = (X[0], T[0], X[1], T[1], str(n), str(inner), rq_arg, Y)
        else:
            args = (X[0], T[0], str(n), str(inner), rq_arg, Y)
        return CallRec(kernel=f"gf_{step.kind}", args=args, **base)
    if step.kind == "relu":
        return CallRec(kernel="gf_relu", args=(X[0], T[0], str(out_t.numel), str(out_t.zero_code), Y), **base)
    if step.kind == "concat":
        axis = a["axis"]
        outer = int(math.prod(out_t.shape[:axis]))
        blocks = [int(math.prod(net.tensors[t].shape[axis:])) * tensors[t].elem_bytes for t in step.inputs]
        return CallRec(kernel="gf_concat", args=(
            f"cat_in_{ident}", f"cat_bytes_{ident}", str(len(blocks)), str(outer), Y),
            cat_blocks=tuple(blocks), **base)
    if step.kind == "permute":
        x = net.tensors[step.inputs[0]]
        nd = len(x.shape)
        if nd > 4:
            raise GapforgeError(f"permute '{step.output}' of a {nd}-D tensor: the device kernel handles 4-D")
        pad = 4 - nd
        shape4 = [1] * pad + list(x.shape)
        perm4 = list(range(pad)) + [p + pad for p in a["perm"]]
        return CallRec(kernel="gf_permute", args=(X[0], str(tensors[step.output].elem_bytes),
                                                  f"perm_shape_{ident}", f"perm_{ident}", Y),
                       perm=(tuple(shape4), tuple(perm4)), **base)
    raise GapforgeError(f"step '{step.output}' ({step.kind}) has no device kernel")

