"""The data of a generated project, with its layout map: read and write parameters and golden files.

A generated program loads ``data/params.bin``, the golden files and ``data/manifest.bin``
(codegen/manifest.py) and compiles nothing of their contents, so the same program runs new
weights, new inputs and new expected outputs once they are written here. ``ProjectData`` is the
one place that knows where each value lives:

* ``param_offset(layer, kind, *index)``: the byte (and bit) of one value of a layer's parameter
  region, for every layout the code generator emits: PyTorch order for int8 weights
  (``[O][C/groups][KH][KW]`` / ``[O][K]``: row ``o`` at ``o * K``), packed 4- or 2-bit weights on
  gap9 (codegen/packing.py: row ``o`` at ``o * row_bytes``, value ``k`` in byte ``k * bits // 8``
  at bit ``k * bits % 8``), and the same bytes when the gap9 program streams them from L3 in
  chunks of whole output rows (each tile's rows are one contiguous byte range); biases (int32),
  requantization mantissas (int32 ``[sources][channels]``), shifts (uint8) and offsets (int64).
* ``read_param`` / ``write_param`` / ``write_element``: values in their logical shape; a write is
  refused (GapforgeError naming the layer) if a value does not fit the parameter's bit width or the
  device container, or if it could overflow the layer's int32 accumulator or 64-bit requantization
  sum (the bounds the planner guarantees for generated data).
* ``golden`` / ``write_golden``: the integers of a step's golden file (the quantized input is the
  golden file of the first step: writing it changes the program's input).
* ``save()``: params.bin, the golden files and a new manifest (same layout hash) replace ``data/``
  in one directory rename; plan.json's CRCs follow.
"""

from __future__ import annotations

import json
import math
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codegen import manifest as mf
from codegen.packing import pack_rows, unpack_rows
from codegen.program import c_ident
from gapforge.errors import GapforgeError
from gapforge.fsutil import atomic_write_text, replace_directory, temporary_sibling
from gapforge.ir import int_range

ACC_LIMIT = 2**31
INT64_LIMIT = 2**63
KINDS = {"w": "weight", "b": "bias", "m": "requantization mantissas", "sh": "requantization shifts",
         "o": "requantization offsets"}
ELEM = {"b": np.dtype("<i4"), "m": np.dtype("<i4"), "sh": np.dtype("u1"), "o": np.dtype("<i8")}
GOLDEN_DTYPES = {"GF_S8": np.dtype("i1"), "GF_U8": np.dtype("u1"), "GF_S32": np.dtype("<i4")}


@dataclass(frozen=True)
class Location:
    """Where one parameter value lives in params.bin: ``byte`` (absolute), and for packed weights
    the ``bit`` within that byte and the container ``bits`` (8 = a whole int8 / the element type)."""

    byte: int
    bit: int
    bits: int
    size: int  # bytes of one element (1 for weights, 4 / 1 / 8 for the others)


class ProjectData:
    def __init__(self, project: str | Path):
        self.project = Path(project)
        path = self.project / "plan.json"
        try:
            self.plan = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GapforgeError(f"{path}: not a generated project (run tools/generate_c_code.py)") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise GapforgeError(f"{path}: unreadable ({exc})") from None
        if "data" not in self.plan or "layout" not in self.plan:
            raise GapforgeError(f"{path}: generated before data manifests existed; regenerate the project "
                                "(tools/generate_c_code.py)")
        self.data_dir = self.project / self.plan["build"]["data_dir"]
        self.params = bytearray(self._read("params.bin"))
        self.manifest = mf.Manifest.from_bytes(self._read(mf.MANIFEST_FILE), str(self.data_dir / mf.MANIFEST_FILE))
        want = self.plan["data"]["layout_hash"]
        if mf.hash_hex(self.manifest.layout_hash) != want:
            raise GapforgeError(f"{self.data_dir / mf.MANIFEST_FILE}: layout {mf.hash_hex(self.manifest.layout_hash)}, "
                                f"plan.json says {want} (data of another build)")
        self.steps = self.plan["steps"]
        self.layout = {s["name"]: s for s in self.plan["layout"]["steps"]}
        self.regions = {r["name"]: r for r in self.plan["params"]["regions"]}
        self._golden: dict[int, bytearray] = {}
        self.flags = self.manifest.flags

    def _read(self, name: str) -> bytes:
        try:
            return (self.data_dir / name).read_bytes()
        except OSError as exc:
            raise GapforgeError(f"{self.data_dir / name}: cannot read ({exc.strerror})") from None

    # -- layout map ------------------------------------------------------------------------
    def layers(self) -> list[str]:
        """Steps with a weight region, in plan order."""
        return [s["name"] for s in self.steps if f"{c_ident(s['name'])}.w" in self.regions]

    def step_index(self, layer: str) -> int:
        for s in self.steps:
            if s["name"] == layer:
                return s["index"]
        raise GapforgeError(f"layer '{layer}': no such step in {self.project / 'plan.json'} "
                            f"(steps: {', '.join(s['name'] for s in self.steps)})")

    def region(self, layer: str, kind: str) -> dict:
        self.step_index(layer)
        if kind not in KINDS:
            raise GapforgeError(f"region kind '{kind}': choose from {', '.join(KINDS)}")
        r = self.regions.get(f"{c_ident(layer)}.{kind}")
        if r is None:
            raise GapforgeError(f"layer '{layer}' has no {KINDS[kind]} region "
                                f"(its regions: {', '.join(sorted(k for k in self.regions if k.startswith(c_ident(layer) + '.')))}"
                                f" or none)")
        return r

    def shape(self, layer: str, kind: str) -> tuple[int, ...]:
        """Logical shape of a region: the weight / bias tensor, [sources][channels] mantissas, [channels]."""
        rec = self.layout[layer]
        if kind in ("w", "b"):
            return tuple(rec["params"]["weight" if kind == "w" else "bias"]["shape"])
        rq = rec.get("requant")
        if rq is None:
            raise GapforgeError(f"layer '{layer}' has no requantization")
        return (rq["sources"], rq["channels"]) if kind == "m" else (rq["channels"],)

    def weight_format(self, layer: str) -> tuple[int, int]:
        """(container bits, bytes per output row) of a layer's weight region."""
        w = self.layout[layer]["params"]["weight"]
        return w.get("container_bits", 8), w.get("row_bytes", int(math.prod(w["shape"][1:])))

    def layout_kind(self, layer: str) -> str:
        bits, _ = self.weight_format(layer)
        kind = "int8 PyTorch order" if bits == 8 else f"packed {bits}-bit rows"
        if self.plan.get("gap9", {}).get("params_level") == "L3":
            kind += ", streamed from L3 in row chunks"
        return kind

    def param_offset(self, layer: str, kind: str, *index: int) -> Location:
        shape = self.shape(layer, kind)
        if len(index) != len(shape) or any(not 0 <= i < n for i, n in zip(index, shape)):
            raise GapforgeError(f"layer '{layer}' {KINDS[kind]}: index {list(index)} outside shape {list(shape)}")
        r = self.region(layer, kind)
        if kind != "w":
            flat = int(np.ravel_multi_index(index, shape))
            size = ELEM[kind].itemsize
            return Location(r["offset"] + flat * size, 0, 8 * size, size)
        bits, rb = self.weight_format(layer)
        k = int(np.ravel_multi_index(index[1:], shape[1:])) if len(shape) > 1 else 0
        return Location(r["offset"] + index[0] * rb + (k * bits) // 8, (k * bits) % 8, bits, 1)

    # -- values ----------------------------------------------------------------------------
    def read_param(self, layer: str, kind: str) -> np.ndarray:
        r, shape = self.region(layer, kind), self.shape(layer, kind)
        raw = np.frombuffer(bytes(self.params[r["offset"]:r["offset"] + r["size"]]), dtype=np.uint8)
        if kind != "w":
            return raw.view(ELEM[kind]).astype(np.int64).reshape(shape)
        bits, rb = self.weight_format(layer)
        k = int(math.prod(shape[1:]))
        return unpack_rows(raw.reshape(shape[0], rb), k, bits).reshape(shape)

    def _check_range(self, layer: str, kind: str, v: np.ndarray) -> None:
        p = self.layout[layer]["params"]["weight" if kind == "w" else "bias"]
        lo, hi = int_range(p["bit_width"], p["signed"], p["narrow_range"])
        if v.size and (v.min() < lo or v.max() > hi):
            bad = v[(v < lo) | (v > hi)].flat[0]
            raise GapforgeError(f"layer '{layer}' {KINDS[kind]}: value {bad} outside the {p['bit_width']}-bit "
                                f"{'signed' if p['signed'] else 'unsigned'} range [{lo}, {hi}] of this layout")

    def _check_bounds(self, layer: str, w: np.ndarray, b: np.ndarray | None) -> None:
        # the int32 accumulator and the 64-bit requantization sum must stay in range (plan.py's bounds)
        enc = next(iter(self.layout[layer]["inputs"].values()))
        if not enc["bit_width"]:
            return
        xlo, xhi = int_range(enc["bit_width"], enc["signed"], enc["narrow_range"])
        xmax = int(enc.get("abs_max", max(abs(xlo), abs(xhi))))  # abs_max: int32 codes (plan.tensor_abs_max)
        bound = np.abs(w.reshape(w.shape[0], -1)).sum(axis=1) * xmax
        if b is not None:
            bound = bound + np.abs(b)
        worst = int(bound.max()) if bound.size else 0
        if worst >= ACC_LIMIT:
            raise GapforgeError(f"layer '{layer}' weights: the accumulator could reach {worst} >= 2^31 "
                                "(int32 overflow on the device); use smaller weights")
        if self.layout[layer].get("requant"):
            m, o = self.read_param(layer, "m"), self.read_param(layer, "o")
            total = worst * np.abs(m).max(axis=0) + np.abs(o)
            if int(total.max()) >= INT64_LIMIT:
                raise GapforgeError(f"layer '{layer}' weights: the 64-bit requantization sum could overflow "
                                    "with these weights")

    def write_param(self, layer: str, kind: str, values) -> None:
        shape = self.shape(layer, kind)
        v = np.asarray(values)
        if v.shape != shape:
            raise GapforgeError(f"layer '{layer}' {KINDS[kind]}: shape {list(v.shape)}, the region holds {list(shape)}")
        if not np.issubdtype(v.dtype, np.integer):
            if not np.array_equal(v, np.rint(v)):
                raise GapforgeError(f"layer '{layer}' {KINDS[kind]}: values must be integers")
            v = v.astype(np.int64)
        v = v.astype(np.int64)
        r = self.region(layer, kind)
        if kind in ("w", "b"):
            self._check_range(layer, kind, v)
            has_b = "bias" in self.layout[layer]["params"]
            if kind == "w":
                self._check_bounds(layer, v, self.read_param(layer, "b") if has_b else None)
            else:
                self._check_bounds(layer, self.read_param(layer, "w"), v)
        if kind == "w":
            bits, _ = self.weight_format(layer)
            raw = pack_rows(v, bits, f"layer '{layer}' weights").tobytes()
        else:
            lo, hi = (1, 62) if kind == "sh" else (int(np.iinfo(ELEM[kind]).min), int(np.iinfo(ELEM[kind]).max))
            if v.size and (v.min() < lo or v.max() > hi):
                raise GapforgeError(f"layer '{layer}' {KINDS[kind]}: values outside [{lo}, {hi}]")
            raw = v.astype(ELEM[kind]).tobytes()
        if len(raw) != r["size"]:
            raise GapforgeError(f"layer '{layer}' {KINDS[kind]}: {len(raw)} bytes for a {r['size']}-byte region")
        self.params[r["offset"]:r["offset"] + r["size"]] = raw

    def write_element(self, layer: str, kind: str, index, value: int) -> Location:
        v = self.read_param(layer, kind).copy()
        v[tuple(index)] = int(value)
        self.write_param(layer, kind, v)
        return self.param_offset(layer, kind, *index)

    # -- golden files ------------------------------------------------------------------------
    def _golden_raw(self, i: int) -> bytearray:
        if i not in self._golden:
            self._golden[i] = bytearray(self._read(self.steps[i]["golden"]))
        return self._golden[i]

    def golden(self, step: int | str) -> np.ndarray:
        i = step if isinstance(step, int) else self.step_index(step)
        s = self.steps[i]
        return np.frombuffer(bytes(self._golden_raw(i)), dtype=GOLDEN_DTYPES[s["dtype"]]).astype(np.int64).reshape(
            self.layout[s["name"]]["output"]["shape"])

    def write_golden(self, step: int | str, values) -> None:
        i = step if isinstance(step, int) else self.step_index(step)
        s = self.steps[i]
        dt = GOLDEN_DTYPES[s["dtype"]]
        v = np.asarray(values).astype(np.int64)
        shape = tuple(self.layout[s["name"]]["output"]["shape"])
        if v.size != math.prod(shape):
            raise GapforgeError(f"step '{s['name']}': {v.size} values for a tensor of shape {list(shape)}")
        enc = self.layout[s["name"]]["output"]
        lo, hi = (int_range(enc["bit_width"], enc["signed"], enc["narrow_range"]) if enc["kind"] == "quant"
                  else (np.iinfo(dt).min, np.iinfo(dt).max))
        if v.size and (v.min() < lo or v.max() > hi):
            raise GapforgeError(f"step '{s['name']}': values outside [{lo}, {hi}]")
        self._golden[i] = bytearray(v.astype(dt).tobytes())

    # -- saving ------------------------------------------------------------------------------
    def build_manifest(self) -> mf.Manifest:
        goldens = [bytes(self._golden_raw(i)) for i in range(len(self.steps))]
        return mf.build_manifest(self.manifest.layout_hash, bytes(self.params),
                                 [_Reg(r["offset"], r["size"]) for r in self.plan["params"]["regions"]], goldens,
                                 self.flags)

    def save(self) -> None:
        """Write params.bin, the golden files and the manifest as a new ``data/`` (one rename), then plan.json."""
        man = self.build_manifest()
        tmp = temporary_sibling(self.data_dir)
        try:
            for f in self.data_dir.iterdir():  # files the data set does not own (none today) are kept
                if f.is_file():
                    shutil.copy2(f, tmp / f.name)
            (tmp / "params.bin").write_bytes(bytes(self.params))
            for i in range(len(self.steps)):
                (tmp / self.steps[i]["golden"]).write_bytes(bytes(self._golden_raw(i)))
            (tmp / mf.MANIFEST_FILE).write_bytes(man.to_bytes())
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise GapforgeError(f"{tmp}: cannot write the data files ({exc.strerror})") from None
        replace_directory(tmp, self.data_dir)
        self.manifest = man
        for r, (_, _, crc) in zip(self.plan["params"]["regions"], man.regions):
            r["crc32"] = crc
        for s, (_, crc) in zip(self.steps, man.goldens):
            s["golden_crc32"] = crc
        self.plan["data"].update(flags=man.flags, params_crc32=man.params_crc32)
        atomic_write_text(self.project / "plan.json", json.dumps(self.plan, indent=1) + "\n")


@dataclass(frozen=True)
class _Reg:
    offset: int
    size: int


def data_files_crc(project: Path) -> dict[str, int]:
    """CRC-32 of every file of a project's data directory (tests, reports)."""
    d = Path(project) / "data"
    return {f.name: zlib.crc32(f.read_bytes()) for f in sorted(d.iterdir()) if f.is_file()}
