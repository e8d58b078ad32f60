"""Sub-byte weight packing (GAP9 target): 4-bit weights two per byte, 2-bit (and 1-bit: unsigned 0 / 1, binary
-1 / +1) four per byte.

Layout: one output channel (row of K weights) after another, each row padded to whole bytes
(``row_bytes = ceil(K / per_byte)``), so any range of output channels is a contiguous byte range
that a tile can fetch. Within a byte, weight j of the group is at bits ``[bits*j, bits*(j+1))``
(least significant first), in two's complement for signed weights. The device unpacks a tile's
rows in L1 (gf_unpack_rows in gf_tiled.c) before computing.
"""

from __future__ import annotations

import math

import numpy as np

from gapforge.errors import GapforgeError


def packed_bits(bit_width: int) -> int:
    """Container bits per weight: 4 for 3-4 bit weights, 2 for 1-2 bit weights, 8 otherwise."""
    if bit_width <= 2:
        return 2
    if bit_width <= 4:
        return 4
    return 8


def row_bytes(k: int, bits: int) -> int:
    return math.ceil(k * bits / 8)


def pack_rows(w: np.ndarray, bits: int, where: str = "weights") -> np.ndarray:
    """Pack ``w`` (rows x K integers that fit ``bits`` bits) into rows x row_bytes uint8.

    The device sign-extends every weight from ``bits`` bits (int8 for ``bits == 8``), so a value
    outside ``[-2^(bits-1), 2^(bits-1) - 1]`` would silently change: refused (GapforgeError naming
    ``where``, e.g. unsigned 8-bit weights above 127).
    """
    rows = w.reshape(w.shape[0], -1).astype(np.int64)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if rows.size and (rows.min() < lo or rows.max() > hi):
        bad = rows[(rows < lo) | (rows > hi)][0]
        raise GapforgeError(f"{where}: weight {bad} does not fit the device's signed {bits}-bit container "
                            f"[{lo}, {hi}]")
    if bits == 8:
        return rows.astype(np.int8).view(np.uint8)
    per = 8 // bits
    k = rows.shape[1]
    rb = row_bytes(k, bits)
    vals = np.zeros((rows.shape[0], rb * per), dtype=np.uint16)
    vals[:, :k] = rows & ((1 << bits) - 1)
    out = np.zeros((rows.shape[0], rb), dtype=np.uint16)
    for j in range(per):
        out |= vals[:, j::per] << (bits * j)
    return out.astype(np.uint8)


def unpack_rows(packed: np.ndarray, k: int, bits: int, signed: bool = True) -> np.ndarray:
    """Inverse of pack_rows (used by the tests)."""
    if bits == 8:
        return packed.view(np.int8)[:, :k].astype(np.int64)
    per = 8 // bits
    mask = (1 << bits) - 1
    vals = np.stack([(packed.astype(np.int64) >> (bits * j)) & mask for j in range(per)], axis=-1)
    vals = vals.reshape(packed.shape[0], -1)[:, :k]
    if signed:
        vals = np.where(vals >= 1 << (bits - 1), vals - (1 << bits), vals)
    return vals
