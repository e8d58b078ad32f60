"""The data manifest (``data/manifest.bin``) and the layout hash of a generated project.

A generated program is split into what is compiled (the *layout*: steps, kernels, shapes, bit
widths, offsets, region sizes, tiling, placement) and what it loads (the *data*: ``params.bin``,
the golden files and this manifest). Everything that a retrained model of the same architecture
changes is data, so one compiled program runs any such model (tools/update_weights.py).

The layout hash (64 bits) is the SHA-256 of the project's layout record (plan.json without its
CRCs) and of the rendered program sources; it is compiled into the program (``GF_LAYOUT_HASH_LO``
/ ``_HI`` in network.h) and written into the manifest. The program loads the manifest first and
refuses data whose layout hash, version, region offsets/sizes or golden sizes differ from its own.

``manifest.bin``: little-endian uint32 words

  word 0      magic 0x4D444647 ("GFDM")
  word 1      version (1)
  words 2, 3  layout hash, low and high 32 bits
  word 4      flags (bit 0: print every step's output values, ``GF VALUES`` lines)
  word 5      number of parameter regions R
  word 6      number of steps S
  word 7      params.bin bytes
  word 8      CRC-32 of the whole params.bin (gaps included)
  R x 3       per region: offset, size, CRC-32
  S x 2       per step (plan order): golden file bytes, CRC-32 of the golden file (golden_NNN.bin)
  last word   CRC-32 of all the words before it

so ``bytes = 4 * (10 + 3 R + 2 S)``. CRC-32 is zlib's (IEEE 802.3).
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass

from gapforge.errors import GapforgeError

MAGIC = 0x4D444647
VERSION = 1
FLAG_PRINT_VALUES = 1
HEADER_WORDS = 9
HASH_PLACEHOLDER = "0" * 16  # the hash the sources are hashed with
MANIFEST_FILE = "manifest.bin"


def manifest_words(n_regions: int, n_steps: int) -> int:
    return HEADER_WORDS + 3 * n_regions + 2 * n_steps + 1


@dataclass
class Manifest:
    layout_hash: int
    flags: int
    params_bytes: int
    params_crc32: int
    regions: list[tuple[int, int, int]]  # offset, size, crc32
    goldens: list[tuple[int, int]]  # bytes, crc32 (one per step)

    def to_bytes(self) -> bytes:
        words = [MAGIC, VERSION, self.layout_hash & 0xFFFFFFFF, self.layout_hash >> 32, self.flags,
                 len(self.regions), len(self.goldens), self.params_bytes, self.params_crc32]
        for r in self.regions:
            words += list(r)
        for g in self.goldens:
            words += list(g)
        body = struct.pack(f"<{len(words)}I", *words)
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def from_bytes(cls, raw: bytes, where: str = "manifest.bin") -> Manifest:
        if len(raw) < 4 * (HEADER_WORDS + 1) or len(raw) % 4:
            raise GapforgeError(f"{where}: {len(raw)} bytes, not a gapforge data manifest")
        words = struct.unpack(f"<{len(raw) // 4}I", raw)
        if words[0] != MAGIC:
            raise GapforgeError(f"{where}: not a gapforge data manifest (magic 0x{words[0]:08x})")
        if words[1] != VERSION:
            raise GapforgeError(f"{where}: manifest version {words[1]}, this gapforge reads version {VERSION}")
        if zlib.crc32(raw[:-4]) != words[-1]:
            raise GapforgeError(f"{where}: checksum failed (the manifest is corrupt)")
        nr, ns = words[5], words[6]
        if len(words) != manifest_words(nr, ns):
            raise GapforgeError(f"{where}: {len(words)} words for {nr} regions and {ns} steps")
        base = HEADER_WORDS
        regions = [tuple(words[base + 3 * i: base + 3 * i + 3]) for i in range(nr)]
        base += 3 * nr
        goldens = [tuple(words[base + 2 * i: base + 2 * i + 2]) for i in range(ns)]
        return cls(words[2] | (words[3] << 32), words[4], words[7], words[8], regions, goldens)


def build_manifest(layout_hash: int, params: bytes, regions, golden_files: list[bytes], flags: int = 0) -> Manifest:
    """The manifest of ``params`` (regions: objects with offset / size) and the golden files in step order."""
    out = []
    for r in regions:
        out.append((r.offset, r.size, zlib.crc32(params[r.offset:r.offset + r.size])))
    return Manifest(layout_hash, flags, len(params), zlib.crc32(params), out,
                    [(len(g), zlib.crc32(g)) for g in golden_files])


# -- layout ------------------------------------------------------------------------------
DATA_KEYS = {"golden_crc32", "crc32", "layout_hash"}  # plan.json fields that are data, not layout
VOLATILE_TOP = {"data"}  # plan.json sections that describe the data files


def strip_data(doc):
    """plan.json without its data fields (CRCs, the data section): the layout record."""
    if isinstance(doc, dict):
        return {k: strip_data(v) for k, v in doc.items() if k not in DATA_KEYS}
    if isinstance(doc, list):
        return [strip_data(v) for v in doc]
    return doc


def layout_hash(plan_doc: dict, sources: dict[str, str]) -> int:
    """64-bit layout hash of plan.json's layout and the program sources (rendered with HASH_PLACEHOLDER)."""
    layout = strip_data({k: v for k, v in plan_doc.items() if k not in VOLATILE_TOP})
    h = hashlib.sha256(json.dumps(layout, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(sources):
        h.update(b"\0" + name.encode() + b"\0" + sources[name].encode())
    return int.from_bytes(h.digest()[:8], "little")


def hash_hex(h: int) -> str:
    return f"{h:016x}"
