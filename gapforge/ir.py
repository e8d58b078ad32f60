"""network_info.json: the intermediate representation every later stage reads.

The file format is documented in docs/network_info.md and validated by
gapforge/schema/network_info.schema.json. This module holds the in-memory form
(plain dataclasses), and the only code that reads or writes the file.

Tensor kinds (``TensorInfo.kind``), with the real value each integer stands for:

* ``float``: an unquantized float32 tensor (only the network input before its quantizer).
* ``quant``: integers ``q`` of ``bit_width`` bits in an int8/uint8 container,
  ``real = scale[c] * (q - zero_point)``.
* ``acc``: an int32 accumulator (conv/linear output, pooling sums, same-scale adds),
  ``real = scale[c] * q + offset[c]``; ``offset`` carries float biases and folded BatchNorm.
* ``real``: a value that has no integer encoding of its own (e.g. the sum of two tensors with
  different scales, a ReLU of an accumulator with an offset). It only ever lives inside a fused
  group that ends in a requantize; the fusion planner enforces that.

``scale`` / ``offset`` are a number (per-tensor) or a list along ``channel_axis`` (per-channel).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from gapforge.errors import GapforgeError

SCHEMA_VERSION = 1
FORMAT_NAME = "gapforge-network-info"
SCHEMA_PATH = Path(__file__).with_name("schema") / "network_info.schema.json"

TENSOR_KINDS = ("float", "quant", "acc", "real")


def container_dtype(bit_width: int, signed: bool) -> str:
    """Smallest numpy integer dtype holding ``bit_width``-bit values (sub-8-bit stays in 8 bits)."""
    if bit_width <= 8:
        return "int8" if signed else "uint8"
    if bit_width <= 16:
        return "int16" if signed else "uint16"
    if bit_width <= 32:
        return "int32"
    raise GapforgeError(f"bit width {bit_width} is wider than 32 bits")


def is_binary(bit_width: int | None, signed: bool | None) -> bool:
    """A 1-bit signed encoding is binary (Brevitas' BinaryQuant / ClampedBinaryQuant): codes -1 and +1, value
    ``scale * code``; 0 never occurs (docs/integer_contract.md, section 1)."""
    return bit_width == 1 and bool(signed)


def int_range(bit_width: int, signed: bool, narrow_range: bool = False) -> tuple[int, int]:
    """Inclusive integer range of a quantizer; [-1, 1] bounds a binary one (codes -1, +1), narrow or not."""
    if is_binary(bit_width, signed):
        return -1, 1
    if signed:
        lo, hi = -(2 ** (bit_width - 1)), 2 ** (bit_width - 1) - 1
        return (lo + 1 if narrow_range else lo), hi
    return 0, 2**bit_width - 1 - (1 if narrow_range else 0)


@dataclass
class TensorInfo:
    name: str
    kind: str
    shape: list[int]
    dtype: str
    scale: float | list[float] | None = None
    zero_point: int | None = None
    bit_width: int | None = None
    signed: bool | None = None
    narrow_range: bool | None = None
    channel_axis: int | None = None
    offset: float | list[float] | None = None

    # -- derived helpers --------------------------------------------------------------
    @property
    def per_channel(self) -> bool:
        return isinstance(self.scale, list)

    @property
    def numel(self) -> int:
        return int(math.prod(self.shape))

    @property
    def described(self) -> str:
        """The tensor's kind as a message says it: 'a quantized tensor', 'an int32 accumulator', ..."""
        return {"quant": "a quantized tensor", "acc": "an int32 accumulator",
                "float": "an unquantized float tensor", "real": "an unquantized float result"}.get(
            self.kind, "a " + self.kind + " tensor")

    @property
    def materializable(self) -> bool:
        return self.kind in ("quant", "acc", "float")

    @property
    def zero_code(self) -> int:
        """The integer that encodes real 0: the zero point of a quant tensor, 0 for an acc tensor (without offset)."""
        return int(self.zero_point or 0)

    def qrange(self) -> tuple[int, int]:
        return int_range(self.bit_width, self.signed, bool(self.narrow_range))

    @property
    def binary(self) -> bool:
        return self.kind == "quant" and is_binary(self.bit_width, self.signed)

    def scale_array(self, ndim: int | None = None) -> np.ndarray:
        """Scale broadcastable against the tensor (float64)."""
        return _broadcast(self.scale, self.channel_axis, ndim or len(self.shape))

    def offset_array(self, ndim: int | None = None) -> np.ndarray:
        return _broadcast(self.offset if self.offset is not None else 0.0, self.channel_axis,
                          ndim or len(self.shape))

    def scale_list(self, channels: int) -> list[float]:
        """Scale as one value per channel (per-tensor scales are repeated)."""
        return list(self.scale) if self.per_channel else [float(self.scale)] * channels

    def offset_list(self, channels: int) -> list[float]:
        """Offset as one value per channel (0 where there is none)."""
        if self.offset is None:
            return [0.0] * channels
        return list(self.offset) if isinstance(self.offset, list) else [float(self.offset)] * channels

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "shape": list(self.shape), "dtype": self.dtype}
        for key in ("scale", "zero_point", "bit_width", "signed", "narrow_range", "channel_axis", "offset"):
            val = getattr(self, key)
            if val is not None:
                d[key] = val
        return d

    @classmethod
    def from_json(cls, name: str, d: dict[str, Any]) -> TensorInfo:
        return cls(name=name, **d)


def _broadcast(value, axis, ndim) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return arr
    shape = [1] * ndim
    shape[axis] = arr.size
    return arr.reshape(shape)


@dataclass
class ParamInfo:
    """A constant operand of an op (weights, biases) stored in ``weights/<file>.npy``."""

    file: str
    shape: list[int]
    dtype: str
    bit_width: int
    signed: bool
    narrow_range: bool = False
    scale: float | list[float] | None = None
    zero_point: int | None = None
    channel_axis: int | None = None

    def to_json(self) -> dict[str, Any]:
        d = {"file": self.file, "shape": list(self.shape), "dtype": self.dtype,
             "bit_width": self.bit_width, "signed": self.signed, "narrow_range": self.narrow_range}
        for key in ("scale", "zero_point", "channel_axis"):
            val = getattr(self, key)
            if val is not None:
                d[key] = val
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ParamInfo:
        return cls(**d)


@dataclass
class OpInfo:
    name: str
    type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, ParamInfo] = field(default_factory=dict)
    module: str | None = None  # module path in the PyTorch model ("" = root), None for functional ops
    source: str = ""  # what it was lowered from, e.g. "QuantConv2d" or "torch.cat at model.py:42"
    folded: list[str] = field(default_factory=list)  # modules folded into this op (BatchNorm ...)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.type, "inputs": list(self.inputs),
                             "outputs": list(self.outputs), "attrs": self.attrs,
                             "params": {k: p.to_json() for k, p in self.params.items()},
                             "source": self.source}
        if self.module is not None:
            d["module"] = self.module
        if self.folded:
            d["folded"] = list(self.folded)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> OpInfo:
        d = dict(d)
        d["params"] = {k: ParamInfo.from_json(p) for k, p in d.get("params", {}).items()}
        return cls(**d)


@dataclass
class Network:
    name: str
    tensors: dict[str, TensorInfo]
    ops: list[OpInfo]
    inputs: list[str]
    outputs: list[str]
    producer: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    directory: Path | None = None  # where network_info.json lives; weights are relative to it
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # param file -> array (lazy)

    # -- queries ----------------------------------------------------------------------
    def op_by_name(self, name: str) -> OpInfo:
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(name)

    def producer_of(self, tensor: str) -> OpInfo | None:
        for op in self.ops:
            if tensor in op.outputs:
                return op
        return None

    def consumers_of(self, tensor: str) -> list[OpInfo]:
        return [op for op in self.ops if tensor in op.inputs]

    def param(self, op: OpInfo, name: str) -> np.ndarray:
        """Load (and cache) the array of a param; checks its shape and dtype against the JSON."""
        info = op.params[name]
        arr = self.arrays.get(info.file)
        if arr is None:
            if self.directory is None:
                raise GapforgeError(f"op '{op.name}': param '{name}' has no array and no directory to load it from")
            path = self.directory / info.file
            try:
                arr = np.load(path, allow_pickle=False)
            except FileNotFoundError:
                raise GapforgeError(f"{path}: missing weight file of op '{op.name}' param '{name}'") from None
            except Exception as exc:
                raise GapforgeError(f"{path}: unreadable weight file ({type(exc).__name__}: {exc})") from None
            if list(arr.shape) != list(info.shape) or str(arr.dtype) != info.dtype:
                raise GapforgeError(
                    f"{path}: shape {list(arr.shape)} dtype {arr.dtype} does not match network_info.json "
                    f"(ops[{op.name}].params.{name}: shape {info.shape} dtype {info.dtype})")
            lo, hi = int_range(info.bit_width, info.signed, info.narrow_range)
            bad = np.flatnonzero((arr < lo) | (arr > hi)) if arr.size else ()
            if len(bad):
                idx = [int(i) for i in np.unravel_index(bad[0], arr.shape)]
                kind = ("signed" if info.signed else "unsigned") + (" narrow" if info.narrow_range else "")
                raise GapforgeError(
                    f"{path}: value {arr.flat[bad[0]]} at index {idx} is outside the {info.bit_width}-bit {kind} "
                    f"range [{lo}, {hi}] declared by network_info.json (ops[{op.name}].params.{name}); "
                    f"{len(bad)} of {arr.size} values are outside")
            arr.setflags(write=False)  # shared by every user of the network (and cached by atomic_ops._gemm)
            self.arrays[info.file] = arr
        return arr

    # -- (de)serialisation ------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "schema_version": SCHEMA_VERSION,
            "producer": self.producer,
            "network": {"name": self.name, "source": self.source},
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "tensors": {n: t.to_json() for n, t in self.tensors.items()},
            "ops": [op.to_json() for op in self.ops],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], directory: Path | None = None) -> Network:
        return cls(
            name=d["network"]["name"],
            source=d["network"].get("source", ""),
            tensors={n: TensorInfo.from_json(n, t) for n, t in d["tensors"].items()},
            ops=[OpInfo.from_json(o) for o in d["ops"]],
            inputs=list(d["inputs"]),
            outputs=list(d["outputs"]),
            producer=d.get("producer", {}),
            directory=directory,
        )


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return json.load(fh)


def _json_path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<root>"


def validate(doc: Any, where: str = "network_info.json") -> None:
    """Validate against the JSON Schema and the cross-references the schema cannot express.

    Raises GapforgeError with a one-line message naming the file and the field.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: (len(list(e.absolute_path)), list(map(str, e.absolute_path))))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        msg = " ".join(err.message.split())
        if len(msg) > 200:
            msg = msg[:200] + "..."
        raise GapforgeError(f"{where}: field '{_json_path(err.absolute_path)}': {msg}")
    from gapforge.ops import registry  # the op declarations define each op's attributes

    ir_ops = registry().ir_ops
    for i, op in enumerate(doc["ops"]):
        decl = ir_ops.get(op["type"])
        if decl is None:
            raise GapforgeError(f"{where}: field 'ops[{i}].type': unknown op type '{op['type']}' "
                                f"(known: {', '.join(sorted(ir_ops))})")
        err = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(decl.attrs_schema()).iter_errors(op["attrs"]))
        if err is not None:
            path = ".".join(str(p) for p in err.absolute_path)
            raise GapforgeError(f"{where}: field 'ops[{i}].attrs{('.' + path) if path else ''}' "
                                f"({op['type']}): {' '.join(err.message.split())}")
        for pname in op["params"]:
            if pname not in decl.params:
                raise GapforgeError(f"{where}: field 'ops[{i}].params.{pname}': {op['type']} has no param '{pname}'")
    tensors = doc["tensors"]
    produced: set[str] = set(doc["inputs"])
    for name in doc["inputs"]:
        if name not in tensors:
            raise GapforgeError(f"{where}: field 'inputs': tensor '{name}' is not declared in 'tensors'")
    seen_ops: set[str] = set()
    for i, op in enumerate(doc["ops"]):
        if op["name"] in seen_ops:
            raise GapforgeError(f"{where}: field 'ops[{i}].name': duplicate op name '{op['name']}'")
        seen_ops.add(op["name"])
        for j, t in enumerate(op["inputs"]):
            if t not in tensors:
                raise GapforgeError(f"{where}: field 'ops[{i}].inputs[{j}]': tensor '{t}' is not declared in 'tensors'")
            if t not in produced:
                raise GapforgeError(
                    f"{where}: field 'ops[{i}].inputs[{j}]': tensor '{t}' is used before it is produced "
                    "(ops must be in topological order)")
        for j, t in enumerate(op["outputs"]):
            if t not in tensors:
                raise GapforgeError(f"{where}: field 'ops[{i}].outputs[{j}]': tensor '{t}' is not declared in 'tensors'")
            if t in produced:
                raise GapforgeError(f"{where}: field 'ops[{i}].outputs[{j}]': tensor '{t}' is produced twice")
            produced.add(t)
    for j, t in enumerate(doc["outputs"]):
        if t not in produced or t in doc["inputs"]:
            raise GapforgeError(f"{where}: field 'outputs[{j}]': tensor '{t}' is not produced by any op")
    for name, t in tensors.items():
        _check_encoding(t, f"{where}: field 'tensors.{name}", tensor=True)
    _check_ops(doc, where, ir_ops)


def _numbers(value) -> list[float]:
    return value if isinstance(value, list) else [value]


def _check_per_channel(d: dict[str, Any], key: str, at: str) -> None:
    """``d[key]`` (scale or offset): finite, and per-channel lists as long as the channel axis."""
    for i, v in enumerate(_numbers(d[key])):
        if not math.isfinite(v):
            idx = f"[{i}]" if isinstance(d[key], list) else ""
            raise GapforgeError(f"{at}.{key}{idx}': {v} is not a finite number")
    if isinstance(d[key], list):
        axis = d.get("channel_axis")
        if axis is None:
            raise GapforgeError(f"{at}.channel_axis': required with a per-channel {key}")
        if d["shape"][axis] != len(d[key]):
            raise GapforgeError(f"{at}.{key}': {len(d[key])} values for {d['shape'][axis]} channels "
                                f"(axis {axis} of shape {d['shape']})")


def _check_encoding(d: dict[str, Any], at: str, tensor: bool) -> None:
    """Scale, zero point, bit width, dtype and signedness of a tensor (``tensor``) or a param agree.

    ``at`` is the message prefix up to the field path (``<file>: field 'tensors.x``).
    """
    kind = d.get("kind", "param")
    axis = d.get("channel_axis")
    if axis is not None and axis >= len(d["shape"]):
        raise GapforgeError(f"{at}.channel_axis': axis {axis} of a {len(d['shape'])}-D shape {d['shape']}")
    for key in ("scale", "offset"):
        if key in d:
            _check_per_channel(d, key, at)
    if kind in ("quant", "param") and "scale" in d and min(_numbers(d["scale"])) <= 0:
        raise GapforgeError(f"{at}.scale': scales must be positive, got {min(_numbers(d['scale']))}")
    if kind == "acc" and "offset" not in d and 0.0 in _numbers(d["scale"]):
        # a zero channel scale is a folded BatchNorm with gamma 0: the channel is its constant offset
        raise GapforgeError(f"{at}.scale': an accumulator scale of 0 without an offset (only a folded "
                            "BatchNorm with gamma 0 gives one)")
    if kind == "acc" and (d["bit_width"], d["signed"]) != (32, True):
        raise GapforgeError(f"{at}.bit_width': accumulators are signed 32-bit, got bit_width {d['bit_width']} "
                            f"signed {str(d['signed']).lower()}")
    if kind not in ("quant", "param"):
        return
    bw, signed, narrow = d["bit_width"], d["signed"], d["narrow_range"]
    lo, hi = int_range(bw, signed, narrow)
    if lo > hi:
        raise GapforgeError(f"{at}.narrow_range': a {bw}-bit {'signed' if signed else 'unsigned'} narrow "
                            "range holds no value")
    info = np.iinfo(d["dtype"])
    if (info.min < 0) != signed and (tensor or info.bits == 8):
        raise GapforgeError(f"{at}.signed': dtype {d['dtype']} with signed {str(signed).lower()} "
                            f"({'a signed' if signed else 'an unsigned'} {bw}-bit {'tensor' if tensor else 'param'} "
                            f"is stored as {container_dtype(bw, signed)})")
    if (tensor and d["dtype"] != container_dtype(bw, signed)) or lo < info.min or hi > info.max:
        raise GapforgeError(f"{at}.bit_width': {bw}-bit values [{lo}, {hi}] in dtype {d['dtype']} "
                            f"(expected {container_dtype(bw, signed)})")
    zp = d.get("zero_point")
    if zp is not None and not tensor and zp != 0:
        raise GapforgeError(f"{at}.zero_point': weights are symmetric (zero point 0), got {zp}")
    if zp is not None and not lo <= zp <= hi:
        raise GapforgeError(f"{at}.zero_point': {zp} is outside the {bw}-bit "
                            f"{'signed' if signed else 'unsigned'} range [{lo}, {hi}]")


def _check_ops(doc: dict[str, Any], where: str, ir_ops) -> None:
    """Params, shapes (each op's shape rule against every declared shape) and where float tensors go."""
    from gapforge.ops._shapes import ShapeError

    tensors = doc["tensors"]
    for name in doc["inputs"]:
        if tensors[name]["kind"] != "float":
            raise GapforgeError(f"{where}: field 'tensors.{name}.kind': the network input must be a float tensor "
                                f"(quantized by a quantize op), got {tensors[name]['kind']}")
    for i, op in enumerate(doc["ops"]):
        at = f"{where}: field 'ops[{i}]"
        what = f"({op['type']} '{op['name']}')"
        for pname, p in op["params"].items():
            _check_encoding(p, f"{at}.params.{pname}", tensor=False)
        for j, t in enumerate(op["inputs"]):
            if (tensors[t]["kind"] == "float") != (op["type"] == "quantize"):
                raise GapforgeError(f"{at}.inputs[{j}]' {what}: " + (
                    "a quantize op takes the float network input, not a " + tensors[t]["kind"] + " tensor"
                    if op["type"] == "quantize" else "the float network input must be quantized first"))
        for j, t in enumerate(op["outputs"]):
            if tensors[t]["kind"] == "float":
                raise GapforgeError(f"{at}.outputs[{j}]' {what}: only network inputs are float tensors")
        rule = ir_ops[op["type"]].infer_shapes
        if rule is None:
            continue
        try:
            shapes = rule([list(tensors[t]["shape"]) for t in op["inputs"]], op["attrs"],
                          {k: list(p["shape"]) for k, p in op["params"].items()})
        except ShapeError as exc:
            raise GapforgeError(f"{at}.{exc.field}' {what}: {exc}") from None
        if len(shapes) != len(op["outputs"]):
            raise GapforgeError(f"{at}.outputs' {what}: {op['type']} has {len(shapes)} output"
                                f"{'s' if len(shapes) > 1 else ''}, got {len(op['outputs'])}")
        for t, shape in zip(op["outputs"], shapes):
            if list(tensors[t]["shape"]) != list(shape):
                raise GapforgeError(f"{where}: field 'tensors.{t}.shape': declared {tensors[t]['shape']}, but "
                                    f"ops[{i}] {what} gives {shape}")


def load(path: str | os.PathLike) -> Network:
    """Load and validate ``network_info.json`` (a file or the directory holding it)."""
    p = Path(path)
    if p.is_dir():
        p = p / "network_info.json"
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GapforgeError(f"{p}: no such file (run tools/pytorch_extractor.py first)") from None
    except OSError as exc:
        raise GapforgeError(f"{p}: cannot read ({exc.strerror})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GapforgeError(f"{p}: not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg}); "
                            "the file may be truncated") from None
    validate(doc, str(p))
    net = Network.from_json(doc, directory=p.parent)
    for op in net.ops:  # every weight file is read and range-checked before any work
        for name in op.params:
            net.param(op, name)
    return net


def dumps(net: Network) -> str:
    doc = net.to_json()
    validate(doc, f"network '{net.name}' (internal)")
    return compact_json(doc)


def compact_json(obj: Any, indent: int = 1, _level: int = 0) -> str:
    """JSON with one line per object member, but lists of scalars on a single line.

    Floats are written with repr (shortest round-trip form), so scales survive exactly.
    """
    pad = " " * (indent * (_level + 1))
    end = " " * (indent * _level)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}{json.dumps(k)}: {compact_json(v, indent, _level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        items = [pad + compact_json(v, indent, _level + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + end + "]"
    return json.dumps(obj, allow_nan=False)
