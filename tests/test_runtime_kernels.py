"""The C runtime (codegen/runtime) against the numpy reference (atomic_ops), bit for bit.

Test vectors for every kernel and variant are generated here with atomic_ops and written in the
binary format read by codegen/runtime/tests/kernel_check.c; the driver is built with
codegen.toolchains and run on the host, on the host under AddressSanitizer/UBSan, and on RV32
under QEMU (skipped, with the reason, only if that toolchain is missing). The requantization
arithmetic is also checked with hypothesis (random int64 values, shifts 1..62, exact ties).
"""

from __future__ import annotations

import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atomic_ops import groupnorm as np_groupnorm
from atomic_ops import layernorm as np_layernorm
from atomic_ops import lincomb as np_lincomb
from atomic_ops import rmsnorm as np_rmsnorm
from atomic_ops import scan as np_scan
from atomic_ops import softmax as np_softmax
from atomic_ops._fixedpoint import quantize_multipliers, quantize_offset, rne_shift
from atomic_ops.add import add as np_add
from atomic_ops.avgpool2d import avgpool2d as np_avgpool2d
from atomic_ops.conv2d import conv2d as np_conv2d
from atomic_ops.edge_pad import MODES as PAD_MODES
from atomic_ops.edge_pad import edge_pad as np_edge_pad
from atomic_ops.flip import flip as np_flip
from atomic_ops.linear import linear as np_linear
from atomic_ops.lut import lut as np_lut
from atomic_ops.matmul import matmul as np_matmul
from atomic_ops.maxpool2d import maxpool2d as np_maxpool2d
from atomic_ops.maxpool2d import pooled_size
from atomic_ops.mul import mul as np_mul
from atomic_ops.pad import pad as np_pad
from atomic_ops.relu import relu as np_relu
from atomic_ops.requantize import requantize as np_requantize
from atomic_ops.slice import slice as np_slice
from atomic_ops.thresholds import thresholds as np_thresholds
from atomic_ops.trunc_avgpool2d import trunc_avgpool2d as np_trunc_avgpool2d
from atomic_ops.upsample import upsample as np_upsample
from atomic_ops.upsample import upsample_linear as np_upsample_linear
from codegen import toolchains
from codegen.targets import hal_sources

REPO = Path(__file__).resolve().parents[1]
RUNTIME = REPO / "codegen" / "runtime"
KERNEL_SOURCES = sorted(RUNTIME.glob("*.c"))
DRIVER = RUNTIME / "tests" / "kernel_check.c"

K_CONV, K_CONV3X3, K_CONV1X1, K_DWCONV, K_CONV_REF = 1, 2, 3, 4, 5
K_LINEAR, K_LINEAR_REF, K_MAXPOOL, K_AVGPOOL, K_TRUNC = 6, 7, 8, 9, 10
K_ADD, K_REQUANTIZE, K_RELU, K_CONCAT, K_PERMUTE, K_RNE = 11, 12, 13, 14, 15, 16
K_LUT, K_MUL, K_SOFTMAX, K_LAYERNORM = 17, 18, 19, 20
K_RMSNORM, K_GROUPNORM = 25, 26
K_MATMUL, K_LINEAR_ROWS, K_SLICE, K_PAD = 21, 22, 23, 24
K_SCAN, K_SCAN_SPLIT, K_FLIP = 27, 28, 29
K_THRESHOLDS = 34
K_UPSAMPLE, K_UPSAMPLE_LINEAR = 35, 36
K_EDGE_PAD = 37
K_CONV_SIMD, K_CONV1X1_SIMD, K_DWCONV_SIMD, K_MM_SIMD = 30, 31, 32, 33  # gf_simd.c (33: linear and matmul)

DT = {"s8": 0, "u8": 1, "s32": 2}
NP_DT = {"s8": np.int8, "u8": np.uint8, "s32": np.int32}
KIND = {np.dtype(np.int8): 0, np.dtype(np.uint8): 1, np.dtype(np.int32): 2, np.dtype(np.int64): 3}
RANGES = {"s8": (-128, 127), "u8": (0, 255)}

# ---------------------------------------------------------------------------------------------
# Binary format (see kernel_check.c)


class CaseSet:
    def __init__(self) -> None:
        self.blobs: list[bytes] = []
        self.names: list[str] = []

    def add(self, kid: int, name: str, params: list[int], arrays: list[np.ndarray]) -> None:
        assert len(name) <= 48, name
        body = struct.pack(f"<II{len(params)}i", kid, len(params), *[int(p) for p in params])
        body += name.encode().ljust(48, b"\0")
        body += struct.pack("<I", len(arrays))
        for a in arrays:
            a = np.ascontiguousarray(a)
            kind = KIND.get(a.dtype, 4)
            raw = a.tobytes()
            body += struct.pack("<II", kind, len(raw)) + raw + b"\0" * (-len(raw) % 4)
        blob = struct.pack("<II", 0x434B4647, 8 + len(body)) + body
        self.blobs.append(blob)
        self.names.append(name)

    def write(self, directory: Path, prefix: str = "kc") -> None:
        data = b"".join(self.blobs)
        (directory / f"{prefix}_cases.bin").write_bytes(data)
        (directory / f"{prefix}_manifest.bin").write_bytes(struct.pack("<III", 0x4D4B4647, len(self.blobs), len(data)))


def out_bytes(y: np.ndarray, lo: int) -> np.ndarray:
    """Requantized outputs as the C kernels store them: one byte, the low 8 bits."""
    assert y.size == 0 or y.min() >= lo
    return y.astype(np.int8 if lo < 0 else np.uint8)


# ---------------------------------------------------------------------------------------------
# Requantization parameters


class RQ:
    """Requantization parameters (m int32 sources x channels, sh uint8, o int64)."""

    def __init__(self, m, sh, o, zp, lo, hi):
        self.m = np.asarray(m, dtype=np.int64).reshape(-1, np.asarray(sh).size)
        self.sh = np.asarray(sh, dtype=np.int64)
        self.o = np.asarray(o, dtype=np.int64)
        self.zp, self.lo, self.hi = int(zp), int(lo), int(hi)

    @property
    def channels(self) -> int:
        return self.sh.size

    def params(self) -> list[int]:
        return [1, self.channels, self.zp, self.lo, self.hi]

    def arrays(self) -> list[np.ndarray]:
        return [self.m.astype(np.int32).ravel(), self.sh.astype(np.uint8), self.o.astype(np.int64)]

    def apply(self, sources: list[np.ndarray], channel_axis: int = 1) -> np.ndarray:
        axis = channel_axis if self.channels > 1 else None
        return np_requantize(sources, self.m, self.sh, self.o, self.zp, self.lo, self.hi, axis)


NO_RQ_PARAMS = [0, 1, 0, 0, 0]
NO_RQ_ARRAYS = [np.zeros(0, np.int32), np.zeros(0, np.uint8), np.zeros(0, np.int64)]


def make_rq(rng, channels: int, scale: float, *, sources: int = 1, out: str = "s8", relu: bool = False,
            negative: bool = False, offset_lsb: float = 40.0, zp: int | None = None) -> RQ:
    """Random real multipliers around ``scale`` (per channel x 2^U(-1, 1)), quantized as the planner does."""
    M = scale * np.exp2(rng.uniform(-1.0, 1.0, size=(sources, channels)))
    if negative:
        M *= np.where(rng.random((sources, channels)) < 0.5, -1.0, 1.0)
    m, sh = quantize_multipliers(M)
    lo, hi = RANGES[out]
    if zp is None:
        zp = 0 if out == "s8" else int(rng.integers(0, 40))
    if relu:
        lo = max(lo, zp)
    B = rng.uniform(-offset_lsb, offset_lsb, size=channels)
    return RQ(m, sh, quantize_offset(B, sh), zp, lo, hi)


def acc_scale(acc: np.ndarray) -> float:
    """A multiplier mapping the accumulator spread onto roughly +-100 output steps."""
    return 100.0 / (float(np.std(acc)) + 1.0)


# ---------------------------------------------------------------------------------------------
# Case generators


def rand_act(rng, dt: str, shape, mode: str = "rand") -> np.ndarray:
    lo, hi = RANGES[dt] if dt != "s32" else (-(2**20), 2**20)
    if mode == "extreme":
        return rng.choice(np.array([lo, hi], dtype=np.int64), size=shape).astype(NP_DT[dt])
    return rng.integers(lo, hi + 1, size=shape).astype(NP_DT[dt])


def rand_w(rng, shape, mode: str = "rand") -> np.ndarray:
    if mode == "extreme":
        return rng.choice(np.array([-128, -127, 127], dtype=np.int64), size=shape).astype(np.int8)
    return rng.integers(-128, 128, size=shape).astype(np.int8)


def conv_case(cs: CaseSet, rng, kid: int, name: str, *, C, H, W, Co, k=(3, 3), stride=(1, 1), pad=(1, 1, 1, 1),
              dil=(1, 1), groups=1, in_t="s8", rq="channel", out="s8", xmode="rand", wmode="rand",
              bias="rand", negative=False, relu=False):
    kh, kw = k
    x = rand_act(rng, in_t, (1, C, H, W), xmode)
    w = rand_w(rng, (Co, C // groups, kh, kw), wmode)
    worst = np.abs(w.astype(np.int64)).reshape(Co, -1).sum(axis=1) * (255 if in_t == "u8" else 128)
    if bias == "large":  # as large as the planner's accumulator bound allows
        room = (2**31 - 1) - worst
        b = (rng.choice([-1, 1], size=Co) * rng.integers(room // 2, room + 1)).astype(np.int32)
    elif bias == "none":
        b = np.zeros(Co, np.int32)
    else:
        b = rng.integers(-5000, 5001, size=Co).astype(np.int32)
    assert np.all(worst + np.abs(b.astype(np.int64)) < 2**31)
    acc = np_conv2d(x.astype(np.int64), w.astype(np.int64), b.astype(np.int64), stride, list(pad), dil, groups)
    _, _, oh, ow = acc.shape
    if rq is None:
        y, rqp = acc.astype(np.int32), None
    else:
        rqp = make_rq(rng, Co if rq == "channel" else 1, acc_scale(acc), out=out, negative=negative, relu=relu)
        y = out_bytes(rqp.apply([acc]), rqp.lo)
    shape = [C, H, W, Co, oh, ow, kh, kw, stride[0], stride[1], *pad, dil[0], dil[1], groups]
    params = [DT[in_t], *shape, *(rqp.params() if rqp else NO_RQ_PARAMS), int(bias != "none")]
    cs.add(kid, name, params, [x, w, b, *(rqp.arrays() if rqp else NO_RQ_ARRAYS), y])


def wide_codes(rng, w: np.ndarray, shape, mode: str = "rand") -> np.ndarray:
    """int32 input codes of a linear layer (the sums of a global average pool) as large as the planner's
    bound allows: |x| <= (2^31 - 1 - 5000) / max_o sum_k |w[o, k]| (5000: the largest random bias), so
    every partial sum stays in int32."""
    lim = (2**31 - 1 - 5000) // max(1, int(np.abs(w.astype(np.int64)).sum(axis=1).max()))
    if mode == "extreme":
        return (rng.choice([-1, 1], size=shape) * lim).astype(np.int32)
    return rng.integers(-lim, lim + 1, size=shape).astype(np.int32)


def linear_case(cs: CaseSet, rng, kid: int, name: str, *, K, Co, in_t="s8", rq="channel", out="s8",
                xmode="rand", wmode="rand", bias="rand", negative=False):
    w = rand_w(rng, (Co, K), wmode)
    x = rand_act(rng, in_t, (1, K), xmode) if in_t != "s32" else wide_codes(rng, w, (1, K), xmode)
    worst = np.abs(w.astype(np.int64)).sum(axis=1) * (255 if in_t == "u8" else 128 if in_t == "s8" else
                                                      int(np.abs(x.astype(np.int64)).max()))
    if bias == "large":
        room = (2**31 - 1) - worst
        b = (rng.choice([-1, 1], size=Co) * rng.integers(room // 2, room + 1)).astype(np.int32)
    else:
        b = rng.integers(-5000, 5001, size=Co).astype(np.int32)
    acc = np_linear(x.astype(np.int64), w.astype(np.int64), b.astype(np.int64))
    if rq is None:
        y, rqp = acc.astype(np.int32), None
    else:
        rqp = make_rq(rng, Co if rq == "channel" else 1, acc_scale(acc), out=out, negative=negative)
        y = out_bytes(rqp.apply([acc], channel_axis=1), rqp.lo)
    params = [DT[in_t], K, Co, *(rqp.params() if rqp else NO_RQ_PARAMS), 1]
    cs.add(kid, name, params, [x, w, b, *(rqp.arrays() if rqp else NO_RQ_ARRAYS), y])


def matmul_case(cs: CaseSet, rng, name: str, *, G, M, K, N, a_t="s8", b_t="s8", za=0, zb=0, rq="tensor",
                out="s8", mode="rand", kid=K_MATMUL):
    a = rand_act(rng, a_t, (G, M, K), mode)
    b = rand_act(rng, b_t, (G, K, N), mode)
    acc = np_matmul(a, b, za, zb)
    if rq is None:
        y, rqp = acc.astype(np.int32), None
    else:
        rqp = make_rq(rng, N if rq == "channel" else 1, acc_scale(acc), out=out, negative=rq == "channel")
        y = out_bytes(rqp.apply([acc], channel_axis=2), rqp.lo)
    params = [DT[a_t], za, DT[b_t], zb, G, M, K, N, *(rqp.params() if rqp else NO_RQ_PARAMS)]
    cs.add(kid, name, params, [a, b, *(rqp.arrays() if rqp else NO_RQ_ARRAYS), y])


def add_simd_cases(cs: CaseSet, rng) -> None:
    """The SIMD kernels (gf_simd.c) against the same numpy reference as the portable ones: random
    shapes whose dot-product length K = c/groups*kh*kw (conv) or k (linear, matmul) is a multiple of
    4 or leaves a tail of 1..3, output channels / columns in blocks of 4 and a remainder, and pixel
    counts that leave a partial im2col pass; both input types, with and without requantization."""
    for in_t in ("s8", "u8"):
        for n, (C, H, W, Co, k, stride, pad, dil, g) in enumerate([
                (3, 7, 9, 5, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),     # K = 27: tail 3
                (4, 6, 7, 8, (3, 3), (2, 2), (1, 0, 1, 2), (1, 1), 1),     # K = 36
                (5, 9, 8, 7, (3, 3), (1, 2), (2, 2, 2, 2), (2, 2), 1),     # K = 45: tail 1, dilation
                (6, 8, 9, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2),     # groups 2, K = 27
                (2, 11, 13, 9, (5, 5), (2, 2), (2, 2, 2, 2), (1, 1), 1),   # K = 50: tail 2
                (7, 1, 23, 5, (1, 5), (1, 1), (0, 4, 0, 0), (1, 1), 1),    # conv1d, K = 35
                (1, 8, 10, 9, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),    # K = 9: weights in registers
                (3, 4, 5, 10, (2, 2), (1, 1), (0, 0, 0, 0), (1, 1), 1),    # K = 12, 12 pixels: split over 8 cores
                (8, 5, 5, 12, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),    # K = 72, 9 pixels: 4 x 4 loop, split
                (3, 5, 6, 6, (3, 3), (1, 1), (1, 4, 2, 5), (1, 1), 1),     # windows wholly in the padding (left, right, below)
                (2, 4, 6, 5, (2, 5), (1, 1), (0, 6, 3, 7), (1, 1), 1)]):   # the same for a kernel row wider than a word
            conv_case(cs, rng, K_CONV_SIMD, f"simd_conv_{in_t}_{n}", C=C, H=H, W=W, Co=Co, k=k, stride=stride, pad=pad,
                      dil=dil, groups=g, in_t=in_t, rq=None if n == 1 else "channel", out="u8" if n == 2 else "s8")
        # (the 4-pixel word gather: rows of 5 to 11 pixels, K = 7 with a tail, row stride 2)
        for n, (C, H, W, Co, stride) in enumerate([(16, 5, 6, 8, 1), (13, 4, 5, 6, 1), (10, 7, 7, 9, 2), (3, 3, 3, 4, 1),
                                                   (7, 6, 11, 5, (2, 1))]):
            conv_case(cs, rng, K_CONV1X1_SIMD, f"simd_1x1_{in_t}_{n}", C=C, H=H, W=W, Co=Co, k=(1, 1),
                      stride=stride if isinstance(stride, tuple) else (stride, stride), pad=(0, 0, 0, 0), in_t=in_t,
                      rq="tensor" if n == 3 else "channel")
        # depthwise (multiplier 1: the sliding-window kernel; 2: im2col): kernels 3x3, 5x5 and others
        # (generic rows), strides 1-2 (also unequal), no / symmetric / asymmetric padding, dilated
        # rows, channel counts not a multiple of 4, widths that leave every input-word alignment
        for n, (C, H, W, stride, k, mult, pad, dil) in enumerate([
                (5, 7, 9, 1, (3, 3), 1, None, (1, 1)), (6, 8, 7, 2, (3, 3), 1, None, (1, 1)),
                (3, 6, 6, 1, (5, 5), 1, None, (1, 1)), (4, 5, 7, 1, (3, 3), 2, None, (1, 1)),
                (7, 11, 13, 2, (5, 5), 1, None, (1, 1)), (9, 6, 10, 1, (3, 3), 1, (0, 0, 0, 0), (1, 1)),
                (3, 9, 5, 1, (3, 3), 1, (2, 0, 1, 3), (1, 1)), (10, 8, 8, 1, (3, 3), 1, None, (1, 1)),
                (5, 7, 12, (2, 1), (3, 3), 1, (1, 1, 0, 0), (1, 1)), (2, 9, 9, 1, (7, 7), 1, None, (1, 1)),
                (3, 8, 11, 1, (3, 2), 1, (1, 0, 1, 1), (1, 1)), (4, 9, 8, 1, (3, 3), 1, (2, 1, 2, 1), (2, 1))]):
            sy, sx = stride if isinstance(stride, tuple) else (stride, stride)
            conv_case(cs, rng, K_DWCONV_SIMD, f"simd_dw_{in_t}_{n}", C=C, H=H, W=W, Co=C * mult, k=k,
                      stride=(sy, sx), pad=pad or (k[0] // 2, k[1] // 2, k[0] // 2, k[1] // 2), dil=dil, groups=C,
                      in_t=in_t, rq=None if n in (2, 6) else "channel")
        for n, (K, Co) in enumerate([(64, 12), (37, 9), (3, 5), (130, 4), (1, 1)]):
            linear_case(cs, rng, K_MM_SIMD, f"simd_linear_{in_t}_{n}", K=K, Co=Co, in_t=in_t,
                        rq=None if n == 2 else "channel")
        # K % 4 == 0, at least 8 outputs requantized per tensor (blocks of 8 requantized from registers, the last one
        # overlapping the previous where 8 does not divide the outputs; the clamp p.clipu where lo == 0, u8) or at
        # least 4 int32 outputs (blocks of 8, the rest one block of 4 or 8 ending at the last output)
        for n, (K, Co, rq, out) in enumerate([(64, 12, "tensor", "s8"), (32, 10, None, "s8"), (16, 8, "tensor", "u8"),
                                              (20, 27, "tensor", "u8"), (64, 16, None, "s8"), (4, 9, "tensor", "s8"),
                                              (32, 5, None, "s8"), (12, 12, None, "s8"), (8, 13, None, "s8"),
                                              (16, 7, None, "s8"), (4, 4, None, "s8"), (64, 11, "tensor", "u8")]):
            linear_case(cs, rng, K_MM_SIMD, f"simd_linear8_{in_t}_{n}", K=K, Co=Co, in_t=in_t, rq=rq, out=out,
                        negative=n == 3)
    for n, (K, Co, rq) in enumerate([(37, 9, "channel"), (8, 5, None), (64, 6, "tensor")]):  # int32 codes
        linear_case(cs, rng, K_MM_SIMD, f"simd_linear_s32_{n}", K=K, Co=Co, in_t="s32", rq=rq)
    for n, (G, M, K, N, a_t, b_t, za, zb, rq) in enumerate([
            (1, 5, 16, 8, "s8", "s8", 0, 0, "tensor"), (2, 3, 13, 7, "u8", "s8", 3, 0, "channel"),
            (1, 4, 10, 5, "s8", "u8", 0, 128, "tensor"), (2, 6, 9, 6, "u8", "u8", 17, 200, None),
            (1, 2, 3, 3, "s8", "s8", -5, 7, "channel")]):
        matmul_case(cs, rng, f"simd_matmul_{n}", G=G, M=M, K=K, N=N, a_t=a_t, b_t=b_t, za=za, zb=zb, rq=rq,
                    kid=K_MM_SIMD)


def linear_rows_case(cs: CaseSet, rng, name: str, *, R, K, Co, in_t="s8", rq="channel", out="s8"):
    w = rand_w(rng, (Co, K))
    x = rand_act(rng, in_t, (R, K)) if in_t != "s32" else wide_codes(rng, w, (R, K))
    b = rng.integers(-5000, 5001, size=Co).astype(np.int32)
    acc = np_linear(x.astype(np.int64), w.astype(np.int64), b.astype(np.int64))
    if rq is None:
        y, rqp = acc.astype(np.int32), None
    else:
        rqp = make_rq(rng, Co if rq == "channel" else 1, acc_scale(acc), out=out)
        y = out_bytes(rqp.apply([acc], channel_axis=1), rqp.lo)
    params = [DT[in_t], R, K, Co, *(rqp.params() if rqp else NO_RQ_PARAMS), 1]
    cs.add(K_LINEAR_ROWS, name, params, [x, w, b, *(rqp.arrays() if rqp else NO_RQ_ARRAYS), y])


def pool_shape(C, H, W, oh, ow, k, s, pad):
    return [C, H, W, C, oh, ow, k[0], k[1], s[0], s[1], *pad, 1, 1, 1]


def maxpool_case(cs, rng, name, *, t, C, H, W, k, s, pad, ceil=False):
    x = rand_act(rng, t, (1, C, H, W))
    y = np_maxpool2d(x.astype(np.int64), k, s, list(pad), ceil).astype(NP_DT[t])
    oh, ow = y.shape[2:]
    assert oh == pooled_size(H, k[0], s[0], pad[0], pad[2], ceil)
    cs.add(K_MAXPOOL, name, [DT[t], *pool_shape(C, H, W, oh, ow, k, s, pad)], [x, y])


def _ceil_pad(H, W, k, s, pad):
    """Extra bottom/right zero padding so that the avgpool reference produces ceil-mode sizes."""
    oh = pooled_size(H, k[0], s[0], pad[0], pad[2], True)
    ow = pooled_size(W, k[1], s[1], pad[1], pad[3], True)
    pb = max(pad[2], (oh - 1) * s[0] + k[0] - H - pad[0])
    pr = max(pad[3], (ow - 1) * s[1] + k[1] - W - pad[1])
    return [pad[0], pad[1], pb, pr]


def avgpool_case(cs, rng, name, *, t, C, H, W, k, s, pad, rq="channel", out="s8", ceil=False):
    x = rand_act(rng, t, (1, C, H, W))
    p = _ceil_pad(H, W, k, s, pad) if ceil else list(pad)
    acc = np_avgpool2d(x.astype(np.int64), k, s, p)
    oh, ow = acc.shape[2:]
    if rq is None:
        y, rqp = acc.astype(np.int32), None
    else:
        rqp = make_rq(rng, C if rq == "channel" else 1, 1.0 / (k[0] * k[1]) * (1.0 if t != "s32" else 2**-12),
                      out=out, negative=False)
        y = out_bytes(rqp.apply([acc]), rqp.lo)
    params = [DT[t], *pool_shape(C, H, W, oh, ow, k, s, p), *(rqp.params() if rqp else NO_RQ_PARAMS)]
    cs.add(K_AVGPOOL, name, params, [x, *(rqp.arrays() if rqp else NO_RQ_ARRAYS), y])


def trunc_case(cs, rng, name, *, t, C, H, W, k, s, pad, shift, rounding, lo, hi):
    x = rand_act(rng, t, (1, C, H, W)) if t != "s32" else rng.integers(-3000, 3000, (1, C, H, W)).astype(np.int32)
    y = np_trunc_avgpool2d(x.astype(np.int64), k, s, list(pad), shift, rounding, lo, hi)
    oh, ow = y.shape[2:]
    params = [DT[t], *pool_shape(C, H, W, oh, ow, k, s, pad), shift, int(rounding == "floor"), lo, hi]
    cs.add(K_TRUNC, name, params, [x, out_bytes(y, lo)])


def add_case(cs, rng, name, *, a_t, b_t, C, H, W, rq="channel", out="s8", negative=True):
    a = rand_act(rng, a_t, (1, C, H, W))
    b = rand_act(rng, b_t, (1, C, H, W))
    n, inner = C * H * W, H * W
    if rq is None:
        y = np_add(a, b).astype(np.int32)
        cs.add(K_ADD, name, [DT[a_t], DT[b_t], n, inner, *NO_RQ_PARAMS], [a, b, *NO_RQ_ARRAYS, y])
        return
    scale = 0.5 if a_t != "s32" and b_t != "s32" else 2**-14
    rqp = make_rq(rng, C if rq == "channel" else 1, scale, sources=2, out=out, negative=negative, offset_lsb=20)
    y = out_bytes(rqp.apply([a.astype(np.int64), b.astype(np.int64)]), rqp.lo)
    cs.add(K_ADD, name, [DT[a_t], DT[b_t], n, inner, *rqp.params()], [a, b, *rqp.arrays(), y])


def lut_case(cs, rng, name, *, in_t, bits, out, shape, per_channel):
    """Random tables [channels, 2^bits] over random codes of ``bits`` bits (channel axis 1)."""
    signed = in_t == "s8"
    base = -(1 << (bits - 1)) if signed else 0
    x = rng.integers(base, base + (1 << bits), size=shape).astype(NP_DT[in_t])
    chans = shape[1] if per_channel else 1
    lo, hi = RANGES[out]
    table = rng.integers(lo, hi + 1, size=(chans, 1 << bits)).astype(NP_DT[out])
    y = np_lut(x, table, base, 1 if per_channel else None).astype(NP_DT[out])
    inner = int(np.prod(shape[2:])) if per_channel else x.size
    cs.add(K_LUT, name, [DT[in_t], 1 << bits, base, chans, x.size, inner], [x.ravel(), table.ravel(), y.ravel()])


def thresholds_case(cs, rng, name, *, n, out, shape, per_channel):
    """Random sorted int32 thresholds [channels, n] (with duplicates and INT32_MAX padding) and codes over
    random accumulators around them and at the int32 extremes (channel axis 1)."""
    from gapforge.ops.thresholds import pack_tables, table_bytes

    chans = shape[1] if per_channel else 1
    lo, hi = RANGES[out]
    thr = np.sort(rng.integers(-2000, 2000, size=(chans, n)), axis=1)
    thr[:, -2:] = 2**31 - 1
    thr[0, 1] = thr[0, 0]  # a repeated threshold: an empty interval
    codes = rng.integers(lo, hi + 1, size=(chans, n + 1)).astype(NP_DT[out])
    x = rng.integers(-2100, 2100, size=shape).astype(np.int32)
    x.flat[0], x.flat[-1] = -(2**31), 2**31 - 2
    y = np_thresholds(x, thr.astype(np.int32), codes, 1 if per_channel else None).astype(NP_DT[out])
    inner = int(np.prod(shape[2:])) if per_channel else x.size
    cs.add(K_THRESHOLDS, name, [n, table_bytes(n), chans, x.size, inner],
           [x.ravel(), pack_tables(thr, codes).ravel(), y.ravel()])


def _mul_strides(shape, out):
    shape = [1] * (len(out) - len(shape)) + list(shape)
    st, acc = [0] * len(out), 1
    for d in range(len(out) - 1, -1, -1):
        st[d] = acc if shape[d] != 1 else 0
        acc *= shape[d]
    return [0] * (4 - len(out)) + st


def mul_case(cs, rng, name, *, a_t, b_t, a_shape, b_shape, za=0, zb=0, rq="channel", out="s8", j0=0, n=None,
             tiled=(False, False)):
    """Product of two broadcast operands; ``j0``/``n`` select a run of output elements, ``tiled`` passes a
    full-shape operand as that run only (a_org = j0), as a GAP9 tile does."""
    a = rand_act(rng, a_t, a_shape)
    b = rand_act(rng, b_t, b_shape)
    acc = np_mul(a, za, b, zb)
    oshape = list(acc.shape)
    n = acc.size - j0 if n is None else n
    shape4 = [1] * (4 - len(oshape)) + oshape
    ops, orgs = [], []
    for x, t in ((a, tiled[0]), (b, tiled[1])):
        if t:
            assert x.size == acc.size
            ops.append(np.ascontiguousarray(x.ravel()[j0:j0 + n]))
            orgs.append(j0)
        else:
            ops.append(x.ravel())
            orgs.append(0)
    geo = [*shape4, *_mul_strides(a.shape, oshape), *_mul_strides(b.shape, oshape), za, zb]
    flat = acc.ravel()[j0:j0 + n]
    if rq is None:
        cs.add(K_MUL, name, [DT[a_t], DT[b_t], *geo, j0, n, *orgs, n, *NO_RQ_PARAMS],
               [*ops, *NO_RQ_ARRAYS, flat.astype(np.int32)])
        return
    chans = oshape[1] if rq == "channel" else 1
    inner = int(np.prod(oshape[2:])) if rq == "channel" else n
    assert rq != "channel" or j0 % inner == 0
    rqp = make_rq(rng, chans, acc_scale(acc), out=out, negative=True, offset_lsb=20)
    ch = ((np.arange(n) // inner) % chans) if rq == "channel" else np.zeros(n, np.int64)
    y = np.clip(rne_shift(rqp.o[ch] + flat * rqp.m[0][ch], rqp.sh[ch]) + rqp.zp, rqp.lo, rqp.hi)
    cs.add(K_MUL, name, [DT[a_t], DT[b_t], *geo, j0, n, *orgs, inner, *rqp.params()],
           [*ops, *rqp.arrays(), out_bytes(y, rqp.lo)])


def requantize_case(cs, rng, name, x: np.ndarray, t: str, rqp: RQ, inner: int):
    """x flat (n,), channel of element i = (i // inner) % channels."""
    n = x.size
    ch = (np.arange(n) // inner) % rqp.channels
    acc = rqp.o[ch] + x.astype(np.int64) * rqp.m[0][ch]
    y = np.clip(rne_shift(acc, rqp.sh[ch]) + rqp.zp, rqp.lo, rqp.hi)
    cs.add(K_REQUANTIZE, name, [DT[t], n, inner, *rqp.params()], [x, *rqp.arrays(), out_bytes(y, rqp.lo)])


def softmax_case(cs, rng, name, *, t, rows, n, s_in, s_out, out="u8", zp=0, relu=False, mode="rand",
                 mask=None, row0=0):
    """Softmax rows of an int8/uint8 quant tensor or an int32 accumulator (``t`` s32); ``mask``: a period
    P (random allowed keys, one at least per row; "causal": a causal [n, n] pattern), the rows starting at
    absolute row ``row0`` (a tile's)."""
    x = rand_act(rng, t, (rows, n))
    if mode == "extreme":  # the whole range: d up to 2^32 - 1 for accumulators
        lo_x, hi_x = RANGES[t] if t != "s32" else (-(2**31), 2**31 - 1)
        x = rng.choice(np.array([lo_x, hi_x, lo_x + 1, hi_x - 1], np.int64), size=(rows, n)).astype(NP_DT[t])
    if mode == "ties":  # many equal maxima and constant rows
        x[:, : n // 2] = x[:, :1]
        x[-1] = x[-1, 0]
    lo, hi = RANGES[out]
    if relu:
        lo = max(lo, zp)
    m = None
    if mask == "causal":
        m = np.tril(np.ones((n, n), dtype=bool))
    elif mask is not None:
        m = rng.random((mask, n)) < 0.5
        m[np.arange(mask), rng.integers(0, n, mask)] = True
    p = np_softmax.prepare(s_in, RANGES[t] if t != "s32" else None, s_out, zp, lo, hi, n, m)
    y = np_softmax.softmax(x, p)
    if m is not None:  # the tile's rows: absolute rows row0 .. row0 + rows - 1
        shifted = np_softmax.SoftmaxParams(**{**p.__dict__, "mask": np.roll(m, -row0, axis=0)})
        y = np_softmax.softmax(x, shifted)
    cs.add(K_SOFTMAX, name, [DT[t], rows, n, row0], [x, p.block(), out_bytes(y, lo)])


def layernorm_case(cs, rng, name, *, t, rows, n, s_in, s_out, eps=1e-5, affine=True, out="s8", zp=0, relu=False,
                   mode="rand"):
    x = rand_act(rng, t, (rows, n))
    if mode == "extreme":
        x = rng.choice(np.array(RANGES[t], np.int64), size=(rows, n)).astype(NP_DT[t])
    if mode == "ties":  # constant rows and a row of one outlier
        x[0] = x[0, 0]
        x[-1] = RANGES[t][0]
        x[-1, 0] = RANGES[t][1]
    gamma = rng.normal(1.0, 0.5, n).astype(np.float32) if affine else np.ones(n, np.float32)
    beta = rng.normal(0.0, 0.5, n).astype(np.float32) if affine else np.zeros(n, np.float32)
    lo, hi = RANGES[out]
    if relu:
        lo = max(lo, zp)
    p = np_layernorm.prepare(s_in, RANGES[t], eps, gamma, beta, s_out, zp, lo, hi)
    y = np_layernorm.layernorm(x, p)
    cs.add(K_LAYERNORM, name, [DT[t], rows, n], [x, p.block(), out_bytes(y, lo)])


def rmsnorm_case(cs, rng, name, *, t, rows, n, s_in, s_out, zin=0, eps=1e-6, affine=True, out="s8", zp=0,
                 relu=False, mode="rand"):
    x = rand_act(rng, t, (rows, n))
    if mode == "extreme":
        x = rng.choice(np.array(RANGES[t], np.int64), size=(rows, n)).astype(NP_DT[t])
    if mode == "ties":  # a row at the zero point (V = 0) and a row of one outlier
        x[0] = zin
        x[-1] = zin
        x[-1, 0] = RANGES[t][1]
    gamma = rng.normal(1.0, 0.5, n).astype(np.float32) if affine else np.ones(n, np.float32)
    lo, hi = RANGES[out]
    if relu:
        lo = max(lo, zp)
    p = np_rmsnorm.prepare(s_in, RANGES[t], zin, eps, gamma, s_out, zp, lo, hi)
    y = np_rmsnorm.rmsnorm(x, p)
    cs.add(K_RMSNORM, name, [DT[t], rows, n], [x, p.block(), out_bytes(y, lo)])


def groupnorm_case(cs, rng, name, *, t, n_batch, c, g, spatial, s_in, s_out, row0=0, eps=1e-5, affine=True,
                   out="s8", zp=0):
    rows = n_batch * g
    n = c // g * spatial
    x = rand_act(rng, t, (rows, n))
    gamma = rng.normal(1.0, 0.5, c).astype(np.float32) if affine else np.ones(c, np.float32)
    beta = rng.normal(0.0, 0.5, c).astype(np.float32) if affine else np.zeros(c, np.float32)
    lo, hi = RANGES[out]
    p = np_groupnorm.prepare(s_in, RANGES[t], g, spatial, eps, gamma, beta, s_out, zp, lo, hi)
    y = np_layernorm.norm_rows(x, p, row0)
    cs.add(K_GROUPNORM, name, [DT[t], row0, rows, n, 0], [x, p.block(), out_bytes(y, lo)])


def lincomb_case(cs, rng, name, *, t, rows, n, period, s_in, s_out, row0=0, zin=0, out="s8", zp=0):
    x = rand_act(rng, t, (rows, n))
    half = n // 2
    rot = np.concatenate([np.arange(half, n), np.arange(half)])
    ang = rng.uniform(-3, 3, (period, n))
    coef = np.stack([np.cos(ang).astype(np.float32), (np.sin(ang) * np.where(np.arange(n) < half, -1, 1))
                     .astype(np.float32)]).astype(np.float64)
    gather = np.stack([np.arange(n), rot])
    lo, hi = RANGES[out]
    p = np_lincomb.prepare(s_in, RANGES[t], zin, gather, coef, s_out, zp, lo, hi)
    y = np_lincomb.lincomb(x, p, row0)
    cs.add(K_GROUPNORM, name, [DT[t], row0, rows, n, 1], [x, p.block(), out_bytes(y, lo)])


def add_row_cases(cs: CaseSet, rng) -> None:
    for t in ("s8", "u8"):
        softmax_case(cs, rng, f"sm_{t}_8x8", t=t, rows=8, n=8, s_in=0.05, s_out=1 / 255)
        softmax_case(cs, rng, f"sm_{t}_odd", t=t, rows=3, n=37, s_in=0.11, s_out=0.6 / 255, zp=3, out="u8")
        softmax_case(cs, rng, f"sm_{t}_signed_out", t=t, rows=5, n=16, s_in=0.02, s_out=1 / 128, out="s8")
        softmax_case(cs, rng, f"sm_{t}_ties", t=t, rows=4, n=12, s_in=0.3, s_out=1 / 255, mode="ties")
        softmax_case(cs, rng, f"sm_{t}_extreme", t=t, rows=3, n=9, s_in=0.5, s_out=0.25 / 255, mode="extreme")
        softmax_case(cs, rng, f"sm_{t}_n1", t=t, rows=2, n=1, s_in=0.05, s_out=1 / 255)
        softmax_case(cs, rng, f"sm_{t}_long", t=t, rows=1, n=300, s_in=0.07, s_out=0.05 / 255)
        softmax_case(cs, rng, f"sm_{t}_causal", t=t, rows=24, n=8, s_in=0.05, s_out=1 / 255, mask="causal")
        softmax_case(cs, rng, f"sm_{t}_causal_row0", t=t, rows=5, n=8, s_in=0.05, s_out=1 / 255, mask="causal",
                     row0=11)
        softmax_case(cs, rng, f"sm_{t}_mask_words", t=t, rows=7, n=130, s_in=0.1, s_out=0.5 / 255, zp=2,
                     mask=3, row0=4)
        layernorm_case(cs, rng, f"ln_{t}_8x8", t=t, rows=8, n=8, s_in=0.05, s_out=0.03)
        layernorm_case(cs, rng, f"ln_{t}_noaffine", t=t, rows=4, n=24, s_in=0.02, s_out=0.05, affine=False)
        layernorm_case(cs, rng, f"ln_{t}_u8out", t=t, rows=3, n=17, s_in=0.1, s_out=0.02, out="u8", zp=100)
        layernorm_case(cs, rng, f"ln_{t}_relu", t=t, rows=3, n=10, s_in=0.1, s_out=0.02, out="u8", zp=0, relu=True)
        layernorm_case(cs, rng, f"ln_{t}_ties", t=t, rows=4, n=16, s_in=0.01, s_out=0.05, mode="ties", eps=1e-2)
        layernorm_case(cs, rng, f"ln_{t}_extreme", t=t, rows=3, n=64, s_in=0.2, s_out=0.04, mode="extreme")
        layernorm_case(cs, rng, f"ln_{t}_n1", t=t, rows=3, n=1, s_in=0.2, s_out=0.04)
        layernorm_case(cs, rng, f"ln_{t}_wide", t=t, rows=2, n=512, s_in=0.01, s_out=0.03, eps=1e-6)
        layernorm_case(cs, rng, f"ln_{t}_eps0", t=t, rows=2, n=8, s_in=0.01, s_out=0.03, eps=0.0)
        rmsnorm_case(cs, rng, f"rms_{t}_8x16", t=t, rows=8, n=16, s_in=0.05, s_out=0.03)
        rmsnorm_case(cs, rng, f"rms_{t}_zp", t=t, rows=4, n=24, s_in=0.02, s_out=0.05, zin=7 if t == "s8" else 120,
                     affine=False)
        rmsnorm_case(cs, rng, f"rms_{t}_u8out", t=t, rows=3, n=17, s_in=0.1, s_out=0.02, out="u8", zp=100)
        rmsnorm_case(cs, rng, f"rms_{t}_relu", t=t, rows=3, n=10, s_in=0.1, s_out=0.02, out="u8", zp=0, relu=True)
        rmsnorm_case(cs, rng, f"rms_{t}_ties", t=t, rows=4, n=16, s_in=0.01, s_out=0.05, mode="ties", eps=1e-2,
                     zin=3)
        rmsnorm_case(cs, rng, f"rms_{t}_extreme", t=t, rows=3, n=64, s_in=0.2, s_out=0.04, mode="extreme")
        rmsnorm_case(cs, rng, f"rms_{t}_n1", t=t, rows=3, n=1, s_in=0.2, s_out=0.04)
        rmsnorm_case(cs, rng, f"rms_{t}_wide", t=t, rows=2, n=512, s_in=0.01, s_out=0.03, eps=0.0)
        groupnorm_case(cs, rng, f"gn_{t}_g4", t=t, n_batch=2, c=8, g=4, spatial=9, s_in=0.05, s_out=0.03)
        groupnorm_case(cs, rng, f"gn_{t}_g1", t=t, n_batch=1, c=6, g=1, spatial=5, s_in=0.02, s_out=0.05,
                       affine=False)
        groupnorm_case(cs, rng, f"gn_{t}_gc_row0", t=t, n_batch=1, c=5, g=5, spatial=7, s_in=0.1, s_out=0.02,
                       row0=3, out="u8", zp=90)
        lincomb_case(cs, rng, f"lc_{t}_rope", t=t, rows=16, n=8, period=8, s_in=0.05, s_out=0.04)
        lincomb_case(cs, rng, f"lc_{t}_row0", t=t, rows=5, n=6, period=3, s_in=0.02, s_out=0.03, row0=4,
                     zin=-5 if t == "s8" else 130, out="u8", zp=128)
    softmax_case(cs, rng, "sm_s32_logits", t="s32", rows=4, n=10, s_in=2e-5, s_out=1 / 255)
    softmax_case(cs, rng, "sm_s32_wide_scale", t="s32", rows=3, n=20, s_in=3e-9, s_out=1 / 255)
    softmax_case(cs, rng, "sm_s32_extreme", t="s32", rows=3, n=8, s_in=1e-6, s_out=1 / 255, mode="extreme")
    softmax_case(cs, rng, "sm_s32_ties", t="s32", rows=3, n=8, s_in=1e-4, s_out=1 / 128, out="s8", mode="ties")
    softmax_case(cs, rng, "sm_s32_causal", t="s32", rows=6, n=6, s_in=1e-4, s_out=1 / 255, mask="causal",
                 row0=2, mode="extreme")


# ---------------------------------------------------------------------------------------------
# The case set


def scan_case(cs: CaseSet, rng, name, *, L, D, N, types=("u8", "s8", "s8", "s8"), zps=(0, 0, 0, 0), z_h=0,
              h_t="s8", out="s8", z_y=0, skip=True, mode="rand", split=None):
    """gf_scan (or gf_scan_channels over [0, split) and [split, D)) against atomic_ops/scan.py."""
    arrs = []
    for t, n in zip(types, (D, D, N, N)):
        a = rand_act(rng, t, (L, n), "extreme" if mode == "extreme" else "rand")
        arrs.append(a)
    dt = types[0]
    entries = 256
    base = -128 if dt == "s8" else 0
    a_lo, a_hi = (0, 255) if mode != "signed_a" else (-128, 127)
    table = rng.integers(a_lo, a_hi + 1, size=(D * N, entries)).astype(np.int16)
    if mode == "decay":  # A_bar close to 1 (the state keeps its value): long recurrences near saturation
        table[:] = 250
    s = {"a": 1 / 255, "d": 0.02, "u": 0.05, "b": 0.04, "c": 0.03, "h": 0.01, "y": 0.08}
    if mode == "extreme":
        s.update(h=0.001, y=0.002)
    h_rng = RANGES[h_t]
    y_lo, y_hi = RANGES[out]
    p = np_scan.prepare(D=D, N=N, L=L, table=table, base=base, s_a=s["a"], s_d=s["d"], s_u=s["u"], s_b=s["b"],
                        s_c=s["c"], s_h=s["h"], s_y=s["y"], Dvec=rng.normal(1.0, 0.5, D) if skip else None,
                        zps={"d": zps[0], "u": zps[1], "b": zps[2], "c": zps[3], "h": z_h, "y": z_y},
                        h_range=h_rng, y_range=(y_lo, y_hi), y_signed=out == "s8")
    y = np_scan.scan(*arrs, p)
    prm = [DT[t] for t in types]
    if split is None:
        cs.add(K_SCAN, name, prm, [*arrs, p.block(), out_bytes(y, y_lo)])
    else:
        cs.add(K_SCAN_SPLIT, name, prm + [split], [*arrs, p.block(), out_bytes(y, y_lo)])


def flip_case(cs: CaseSet, rng, name, *, shape, axis, t="s8"):
    x = rand_act(rng, t, shape)
    outer, n, inner = int(np.prod(shape[:axis])), shape[axis], int(np.prod(shape[axis + 1:]))
    cs.add(K_FLIP, name, [np.dtype(NP_DT[t]).itemsize, outer, n, inner], [x, np_flip(x, axis)])


def upsample_case(cs: CaseSet, rng, name, *, shape, factors, t="s8"):
    """gf_upsample against atomic_ops/upsample.py: (N, C, T) is the map of height 1 (h = 1, fh = 1)."""
    x = rand_act(rng, t, shape)
    spatial = [1, *shape[2:]] if len(shape) == 3 else list(shape[2:])
    fh, fw = ([1] + list(factors)) if len(shape) == 3 else list(factors)
    cs.add(K_UPSAMPLE, name, [np.dtype(NP_DT[t]).itemsize, shape[0] * shape[1], *spatial, fh, fw],
           [x, np_upsample(x, factors)])


def upsample_linear_case(cs: CaseSet, rng, name, *, shape, factors, ac, t="s8", zp=0, mode="rand"):
    """gf_upsample_linear against atomic_ops/upsample.py upsample_linear (int32 accumulators)."""
    x = rand_act(rng, t, shape, mode)
    spatial = [1, *shape[2:]] if len(shape) == 3 else list(shape[2:])
    fh, fw = ([1] + list(factors)) if len(shape) == 3 else list(factors)
    cs.add(K_UPSAMPLE_LINEAR, name, [int(t == "s8"), zp, shape[0] * shape[1], *spatial, fh, fw, int(ac)],
           [x, np_upsample_linear(x, zp, factors, ac)])


def add_upsample_cases(cs: CaseSet, rng) -> None:
    upsample_case(cs, rng, "up_2x2_s8", shape=(1, 4, 5, 7), factors=(2, 2))
    upsample_case(cs, rng, "up_3x1_u8_batch", shape=(2, 3, 4, 6), factors=(3, 1), t="u8")
    upsample_case(cs, rng, "up_1x4_s8", shape=(1, 2, 3, 3), factors=(1, 4))
    upsample_case(cs, rng, "up_2x3_acc_s32", shape=(1, 5, 3, 2), factors=(2, 3), t="s32")
    upsample_case(cs, rng, "up_1d_3_s8", shape=(1, 6, 9), factors=(3,))
    upsample_case(cs, rng, "up_1d_2_acc_s32", shape=(2, 3, 5), factors=(2,), t="s32")
    upsample_case(cs, rng, "up_1x1_copy_u8", shape=(1, 3, 4, 4), factors=(1, 1), t="u8")
    upsample_case(cs, rng, "up_pixel_5x2", shape=(1, 1, 1, 1), factors=(5, 2))
    for ac in (False, True):
        tag = "ac" if ac else "hp"  # align_corners / half-pixel centres
        upsample_linear_case(cs, rng, f"bilin_2x2_s8_{tag}", shape=(1, 4, 5, 7), factors=(2, 2), ac=ac)
        upsample_linear_case(cs, rng, f"bilin_2x2_u8_zp_{tag}", shape=(2, 3, 4, 4), factors=(2, 2), ac=ac, t="u8",
                             zp=17)
        upsample_linear_case(cs, rng, f"bilin_3x2_s8_zp_{tag}", shape=(1, 2, 3, 5), factors=(3, 2), ac=ac, zp=-5)
        upsample_linear_case(cs, rng, f"bilin_1x4_u8_{tag}", shape=(1, 3, 1, 6), factors=(1, 4), ac=ac, t="u8")
        upsample_linear_case(cs, rng, f"bilin_extreme_u8_{tag}", shape=(1, 2, 6, 6), factors=(4, 4), ac=ac, t="u8",
                             mode="extreme", zp=255)
        upsample_linear_case(cs, rng, f"linear_1d_2_s8_{tag}", shape=(1, 6, 9), factors=(2,), ac=ac, zp=3)
        upsample_linear_case(cs, rng, f"linear_1d_5_u8_{tag}", shape=(2, 3, 4), factors=(5,), ac=ac, t="u8", zp=128)


def edge_pad_case(cs: CaseSet, rng, name, *, shape, axis, before, after, mode, t="s8"):
    x = rand_act(rng, t, shape)
    outer, n, inner = int(np.prod(shape[:axis])), shape[axis], int(np.prod(shape[axis + 1:]))
    cs.add(K_EDGE_PAD, name, [np.dtype(NP_DT[t]).itemsize, outer, n, before, after, inner, PAD_MODES.index(mode)],
           [x, np_edge_pad(x, axis, before, after, mode)])


def add_edge_pad_cases(cs: CaseSet, rng) -> None:
    """gf_edge_pad against atomic_ops/edge_pad.py: each mode at its widest padding, one side only, both axes of a
    map, int32 elements, a one-element axis."""
    for mode in PAD_MODES:
        edge_pad_case(cs, rng, f"epad_{mode}_w_s8", shape=(1, 3, 5, 7), axis=3, before=2, after=1, mode=mode)
        edge_pad_case(cs, rng, f"epad_{mode}_h_u8", shape=(2, 2, 6, 4), axis=2, before=1, after=3, mode=mode, t="u8")
        edge_pad_case(cs, rng, f"epad_{mode}_1d_widest", shape=(1, 4, 4), axis=2, before=3, after=3 + (mode != "reflect"),
                      mode=mode)
        edge_pad_case(cs, rng, f"epad_{mode}_left_acc_s32", shape=(1, 3, 9), axis=2, before=2, after=0, mode=mode,
                      t="s32")
    edge_pad_case(cs, rng, "epad_replicate_one", shape=(1, 2, 1), axis=2, before=4, after=2, mode="replicate")
    edge_pad_case(cs, rng, "epad_circular_one", shape=(1, 2, 1), axis=2, before=1, after=1, mode="circular")


def add_scan_cases(cs: CaseSet, rng) -> None:
    scan_case(cs, rng, "scan_16x16x4", L=16, D=16, N=4)
    scan_case(cs, rng, "scan_zero_points", L=9, D=5, N=3, types=("u8", "u8", "s8", "u8"), zps=(3, 128, -2, 100),
              z_h=5, out="u8", z_y=7)
    scan_case(cs, rng, "scan_signed_delta_noskip", L=7, D=6, N=5, types=("s8", "s8", "u8", "s8"), skip=False)
    scan_case(cs, rng, "scan_signed_table_uint_state", L=6, D=3, N=2, mode="signed_a", h_t="u8", z_h=128)
    scan_case(cs, rng, "scan_extreme_saturating", L=12, D=4, N=8, mode="extreme")
    scan_case(cs, rng, "scan_decay_long", L=300, D=2, N=6, mode="decay")
    scan_case(cs, rng, "scan_L1_N1", L=1, D=3, N=1)
    scan_case(cs, rng, "scan_N64", L=5, D=2, N=64)
    for split in (0, 3, 7):
        scan_case(cs, rng, f"scan_split_{split}", L=10, D=7, N=4, split=split)
    flip_case(cs, rng, "flip_tokens_s8", shape=(1, 16, 8), axis=1)
    flip_case(cs, rng, "flip_last_u8", shape=(1, 3, 5, 7), axis=3, t="u8")
    flip_case(cs, rng, "flip_acc_s32", shape=(1, 9, 4), axis=1, t="s32")
    flip_case(cs, rng, "flip_one", shape=(1, 1, 6), axis=1)


def build_cases() -> CaseSet:
    rng = np.random.default_rng(20240611)
    cs = CaseSet()

    # conv2d_3x3: stride 1, any padding, odd sizes, channel tails (O % 3), both signednesses
    for in_t in ("s8", "u8"):
        conv_case(cs, rng, K_CONV3X3, f"c3x3_{in_t}_16x16_p1", C=16, H=16, W=16, Co=16, in_t=in_t)
        conv_case(cs, rng, K_CONV3X3, f"c3x3_{in_t}_odd_p1_tensor", C=3, H=7, W=9, Co=5, in_t=in_t, rq="tensor")
        conv_case(cs, rng, K_CONV3X3, f"c3x3_{in_t}_p0_i32", C=5, H=9, W=11, Co=7, pad=(0, 0, 0, 0), in_t=in_t, rq=None)
        conv_case(cs, rng, K_CONV3X3, f"c3x3_{in_t}_p2", C=4, H=6, W=13, Co=6, pad=(2, 2, 2, 2), in_t=in_t)
        conv_case(cs, rng, K_CONV3X3, f"c3x3_{in_t}_asym", C=6, H=8, W=10, Co=4, pad=(0, 1, 2, 0), in_t=in_t)
        conv_case(cs, rng, K_CONV3X3, f"c3x3_{in_t}_asym2", C=2, H=5, W=7, Co=3, pad=(2, 0, 1, 2), in_t=in_t,
                  out="u8", relu=True)
        conv_case(cs, rng, K_CONV3X3, f"c3x3_{in_t}_tiny", C=3, H=1, W=2, Co=2, pad=(1, 1, 1, 1), in_t=in_t)
        conv_case(cs, rng, K_CONV3X3, f"c3x3_{in_t}_extreme", C=8, H=6, W=8, Co=6, in_t=in_t, xmode="extreme",
                  wmode="extreme", bias="large", negative=True)
        conv_case(cs, rng, K_CONV3X3, f"c3x3_{in_t}_nobias_neg", C=7, H=5, W=12, Co=8, in_t=in_t, bias="none",
                  negative=True, out="u8")
    # conv2d_1x1: no padding, any stride
    for in_t in ("s8", "u8"):
        conv_case(cs, rng, K_CONV1X1, f"c1x1_{in_t}_32to64", C=32, H=8, W=8, Co=64, k=(1, 1), pad=(0, 0, 0, 0),
                  in_t=in_t)
        conv_case(cs, rng, K_CONV1X1, f"c1x1_{in_t}_odd_tails", C=5, H=7, W=9, Co=6, k=(1, 1), pad=(0, 0, 0, 0),
                  in_t=in_t, rq="tensor")
        conv_case(cs, rng, K_CONV1X1, f"c1x1_{in_t}_s2", C=7, H=9, W=11, Co=8, k=(1, 1), stride=(2, 2),
                  pad=(0, 0, 0, 0), in_t=in_t)
        conv_case(cs, rng, K_CONV1X1, f"c1x1_{in_t}_s3_i32", C=9, H=10, W=10, Co=5, k=(1, 1), stride=(3, 3),
                  pad=(0, 0, 0, 0), in_t=in_t, rq=None)
        conv_case(cs, rng, K_CONV1X1, f"c1x1_{in_t}_s21", C=4, H=6, W=7, Co=4, k=(1, 1), stride=(2, 1),
                  pad=(0, 0, 0, 0), in_t=in_t)
        conv_case(cs, rng, K_CONV1X1, f"c1x1_{in_t}_bigC_fallback", C=300, H=3, W=5, Co=5, k=(1, 1),
                  pad=(0, 0, 0, 0), in_t=in_t)
        conv_case(cs, rng, K_CONV1X1, f"c1x1_{in_t}_extreme", C=16, H=4, W=4, Co=8, k=(1, 1), pad=(0, 0, 0, 0),
                  in_t=in_t, xmode="extreme", wmode="extreme", bias="large", negative=True)
    # depthwise
    for in_t in ("s8", "u8"):
        for sx in (1, 2):
            conv_case(cs, rng, K_DWCONV, f"dw3_{in_t}_s{sx}_16x16", C=8, H=16, W=16, Co=8, stride=(sx, sx),
                      groups=8, in_t=in_t)
            conv_case(cs, rng, K_DWCONV, f"dw3_{in_t}_s{sx}_odd", C=3, H=7, W=11, Co=3, stride=(sx, sx), groups=3,
                      in_t=in_t, rq="tensor")
            conv_case(cs, rng, K_DWCONV, f"dw3_{in_t}_s{sx}_p0_i32", C=4, H=9, W=19, Co=4, stride=(sx, sx),
                      pad=(0, 0, 0, 0), groups=4, in_t=in_t, rq=None)
            conv_case(cs, rng, K_DWCONV, f"dw3_{in_t}_s{sx}_p2", C=2, H=6, W=21, Co=2, stride=(sx, sx),
                      pad=(2, 2, 2, 2), groups=2, in_t=in_t)
            conv_case(cs, rng, K_DWCONV, f"dw3_{in_t}_s{sx}_asym", C=3, H=8, W=17, Co=3, stride=(sx, sx),
                      pad=(0, 0, 1, 1), groups=3, in_t=in_t, out="u8", relu=True)
            conv_case(cs, rng, K_DWCONV, f"dw5_{in_t}_s{sx}_p2", C=3, H=9, W=12, Co=3, k=(5, 5), stride=(sx, sx),
                      pad=(2, 2, 2, 2), groups=3, in_t=in_t)
        conv_case(cs, rng, K_DWCONV, f"dw3_{in_t}_tiny", C=2, H=1, W=2, Co=2, groups=2, in_t=in_t)
        conv_case(cs, rng, K_DWCONV, f"dw3_{in_t}_s3", C=2, H=10, W=10, Co=2, stride=(3, 3), groups=2, in_t=in_t)
        conv_case(cs, rng, K_DWCONV, f"dw3_{in_t}_s12", C=2, H=7, W=9, Co=2, stride=(1, 2), groups=2, in_t=in_t)
        conv_case(cs, rng, K_DWCONV, f"dw1x3_{in_t}", C=3, H=5, W=9, Co=3, k=(1, 3), pad=(0, 1, 0, 1), groups=3,
                  in_t=in_t)
        conv_case(cs, rng, K_DWCONV, f"dw3_{in_t}_extreme", C=4, H=6, W=10, Co=4, groups=4, in_t=in_t,
                  xmode="extreme", wmode="extreme", bias="large", negative=True)
        # conv1d as the map of height 1: Mamba's causal depthwise conv (k 4, left padding 3), 'same', strided
        conv_case(cs, rng, K_DWCONV, f"dw1d_{in_t}_causal_k4", C=6, H=1, W=37, Co=6, k=(1, 4), pad=(0, 3, 0, 0),
                  groups=6, in_t=in_t)
        conv_case(cs, rng, K_DWCONV, f"dw1d_{in_t}_same_k4_s2", C=3, H=1, W=20, Co=3, k=(1, 4), stride=(1, 2),
                  pad=(0, 1, 0, 2), groups=3, in_t=in_t, out="u8", relu=True)
    # general gf_conv2d: dilation, strides, groups, odd kernels, and the dispatch to specialized kernels
    for in_t in ("s8", "u8"):
        conv_case(cs, rng, K_CONV, f"conv_{in_t}_dil2", C=4, H=11, W=12, Co=6, pad=(2, 2, 2, 2), dil=(2, 2),
                  in_t=in_t)
        conv_case(cs, rng, K_CONV, f"conv_{in_t}_dil21_s2", C=3, H=10, W=13, Co=5, pad=(1, 2, 0, 1), dil=(2, 1),
                  stride=(2, 2), in_t=in_t, rq="tensor")
        conv_case(cs, rng, K_CONV, f"conv_{in_t}_5x5_s2", C=3, H=13, W=15, Co=8, k=(5, 5), stride=(2, 2),
                  pad=(2, 2, 2, 2), in_t=in_t)
        conv_case(cs, rng, K_CONV, f"conv_{in_t}_7x7_s2_i32", C=2, H=15, W=17, Co=4, k=(7, 7), stride=(2, 2),
                  pad=(3, 3, 3, 3), in_t=in_t, rq=None)
        conv_case(cs, rng, K_CONV, f"conv_{in_t}_s3", C=3, H=12, W=14, Co=5, stride=(3, 3), in_t=in_t)
        conv_case(cs, rng, K_CONV, f"conv_{in_t}_pad_only", C=2, H=4, W=6, Co=5, k=(2, 5), pad=(3, 6, 3, 7),
                  in_t=in_t)  # windows wholly in the padding on every side
        conv_case(cs, rng, K_CONV, f"conv_{in_t}_3x3_s2", C=4, H=11, W=16, Co=8, stride=(2, 2), in_t=in_t)
        conv_case(cs, rng, K_CONV, f"conv_{in_t}_groups2", C=8, H=7, W=9, Co=6, groups=2, stride=(1, 1),
                  k=(3, 3), pad=(1, 1, 1, 1), dil=(2, 2), in_t=in_t)
        conv_case(cs, rng, K_CONV, f"conv_{in_t}_groups4", C=8, H=9, W=10, Co=12, groups=4, stride=(2, 1),
                  in_t=in_t)
        conv_case(cs, rng, K_CONV, f"conv_{in_t}_dw_mult2", C=4, H=8, W=9, Co=8, groups=4, in_t=in_t)
        conv_case(cs, rng, K_CONV, f"conv_{in_t}_1x3_asym", C=5, H=6, W=11, Co=4, k=(1, 3), pad=(0, 2, 0, 1),
                  in_t=in_t)
        conv_case(cs, rng, K_CONV, f"conv_{in_t}_1x1_pad1", C=4, H=5, W=6, Co=8, k=(1, 1), pad=(1, 1, 1, 1),
                  in_t=in_t)
        conv_case(cs, rng, K_CONV, f"conv1d_{in_t}_k5_causal", C=5, H=1, W=33, Co=7, k=(1, 5), pad=(0, 4, 0, 0),
                  in_t=in_t)
        conv_case(cs, rng, K_CONV, f"conv1d_{in_t}_dil3_s2", C=4, H=1, W=29, Co=6, k=(1, 3), stride=(1, 2),
                  pad=(0, 3, 0, 3), dil=(1, 3), in_t=in_t, rq="tensor")
        conv_case(cs, rng, K_CONV, f"conv1d_{in_t}_dw", C=4, H=1, W=16, Co=4, k=(1, 4), pad=(0, 3, 0, 0), groups=4,
                  dil=(1, 2), in_t=in_t)
        conv_case(cs, rng, K_CONV, f"conv_{in_t}_disp_3x3", C=4, H=6, W=9, Co=5, in_t=in_t)
        conv_case(cs, rng, K_CONV, f"conv_{in_t}_disp_1x1", C=6, H=5, W=5, Co=8, k=(1, 1), pad=(0, 0, 0, 0),
                  in_t=in_t)
        conv_case(cs, rng, K_CONV, f"conv_{in_t}_disp_dw", C=5, H=6, W=7, Co=5, groups=5, stride=(2, 2),
                  in_t=in_t)
        conv_case(cs, rng, K_CONV, f"conv_{in_t}_extreme", C=4, H=7, W=8, Co=6, k=(5, 3), stride=(2, 1),
                  pad=(1, 2, 2, 0), in_t=in_t, xmode="extreme", wmode="extreme", bias="large", negative=True)
        conv_case(cs, rng, K_CONV_REF, f"ref_{in_t}_3x3", C=4, H=6, W=7, Co=5, in_t=in_t)
        conv_case(cs, rng, K_CONV_REF, f"ref_{in_t}_groups_dil", C=4, H=9, W=9, Co=4, groups=2, dil=(2, 2),
                  pad=(2, 1, 2, 1), stride=(1, 2), in_t=in_t, rq="tensor")
        conv_case(cs, rng, K_CONV_REF, f"ref_{in_t}_i32", C=3, H=5, W=5, Co=2, in_t=in_t, rq=None)
    # linear
    for in_t in ("s8", "u8"):
        linear_case(cs, rng, K_LINEAR, f"lin_{in_t}_256x64", K=256, Co=64, in_t=in_t)
        linear_case(cs, rng, K_LINEAR, f"lin_{in_t}_odd", K=37, Co=13, in_t=in_t, rq="tensor", out="u8")
        linear_case(cs, rng, K_LINEAR, f"lin_{in_t}_i32", K=101, Co=10, in_t=in_t, rq=None)
        linear_case(cs, rng, K_LINEAR, f"lin_{in_t}_1x1", K=1, Co=1, in_t=in_t)
        linear_case(cs, rng, K_LINEAR, f"lin_{in_t}_extreme", K=64, Co=9, in_t=in_t, xmode="extreme",
                    wmode="extreme", bias="large", negative=True)
        linear_case(cs, rng, K_LINEAR_REF, f"linref_{in_t}", K=33, Co=7, in_t=in_t)
        linear_case(cs, rng, K_LINEAR_REF, f"linref_{in_t}_i32", K=20, Co=3, in_t=in_t, rq=None)
    # linear on int32 codes (the sums of a global average pool), up to the planner's int32 bound
    linear_case(cs, rng, K_LINEAR, "lin_s32_40x10", K=40, Co=10, in_t="s32")
    linear_case(cs, rng, K_LINEAR, "lin_s32_odd_tensor", K=37, Co=13, in_t="s32", rq="tensor", out="u8")
    linear_case(cs, rng, K_LINEAR, "lin_s32_i32", K=9, Co=11, in_t="s32", rq=None)
    linear_case(cs, rng, K_LINEAR, "lin_s32_extreme", K=64, Co=9, in_t="s32", xmode="extreme", wmode="extreme",
                negative=True)
    linear_case(cs, rng, K_LINEAR_REF, "linref_s32", K=33, Co=7, in_t="s32")
    # maxpool
    for t in ("s8", "u8", "s32"):
        maxpool_case(cs, rng, f"max_{t}_2x2s2", t=t, C=3, H=8, W=10, k=(2, 2), s=(2, 2), pad=(0, 0, 0, 0))
        maxpool_case(cs, rng, f"max_{t}_3x3s2p1_ceil", t=t, C=2, H=7, W=9, k=(3, 3), s=(2, 2), pad=(1, 1, 1, 1),
                     ceil=True)
        maxpool_case(cs, rng, f"max_{t}_3x3s1p1", t=t, C=2, H=5, W=6, k=(3, 3), s=(1, 1), pad=(1, 1, 1, 1))
        maxpool_case(cs, rng, f"max_{t}_2x3_ceil", t=t, C=2, H=6, W=8, k=(2, 3), s=(2, 2), pad=(0, 1, 0, 1),
                     ceil=True)
    # avgpool (window sums + requantize), ceil-mode-sized outputs with padding, global
    for t in ("s8", "u8", "s32"):
        avgpool_case(cs, rng, f"avg_{t}_2x2s2", t=t, C=3, H=8, W=6, k=(2, 2), s=(2, 2), pad=(0, 0, 0, 0))
        avgpool_case(cs, rng, f"avg_{t}_3x3s2p1_ceil", t=t, C=2, H=7, W=8, k=(3, 3), s=(2, 2), pad=(1, 1, 1, 1),
                     ceil=True, rq="tensor", out="u8")
        avgpool_case(cs, rng, f"avg_{t}_global", t=t, C=4, H=5, W=7, k=(5, 7), s=(1, 1), pad=(0, 0, 0, 0))
        avgpool_case(cs, rng, f"avg_{t}_i32", t=t, C=2, H=6, W=6, k=(3, 3), s=(1, 1), pad=(1, 1, 1, 1), rq=None)
    # trunc_avgpool2d: positive, zero and negative shift, both roundings
    for t in ("s8", "u8", "s32"):
        for shift in (3, 0, -2):
            for rounding in ("half_even", "floor"):
                lo, hi = (-128, 127) if t != "u8" else (0, 255)
                trunc_case(cs, rng, f"trunc_{t}_sh{shift}_{rounding[:5]}", t=t, C=2, H=6, W=8, k=(2, 2), s=(2, 2),
                           pad=(0, 0, 0, 0), shift=shift, rounding=rounding, lo=lo, hi=hi)
        trunc_case(cs, rng, f"trunc_{t}_3x3p1_lowbit", t=t, C=2, H=7, W=7, k=(3, 3), s=(2, 2), pad=(1, 1, 1, 1),
                   shift=4, rounding="half_even", lo=-8 if t != "u8" else 0, hi=7 if t != "u8" else 15)
    # add: per-source multipliers (negative too), int32 sums, mixed types
    for a_t, b_t in (("s8", "s8"), ("u8", "s8"), ("s8", "u8"), ("u8", "u8"), ("s32", "s8"), ("s32", "s32")):
        add_case(cs, rng, f"add_{a_t}_{b_t}_ch", a_t=a_t, b_t=b_t, C=3, H=5, W=7)
        add_case(cs, rng, f"add_{a_t}_{b_t}_tensor", a_t=a_t, b_t=b_t, C=2, H=3, W=5, rq="tensor", out="u8")
        add_case(cs, rng, f"add_{a_t}_{b_t}_i32", a_t=a_t, b_t=b_t, C=2, H=4, W=3, rq=None)
    # requantize: per tensor / per channel, all input types, extreme parameters
    for t in ("s8", "u8", "s32"):
        x = rand_act(rng, t, (4 * 15,)).ravel()
        requantize_case(cs, rng, f"rq_{t}_ch", x, t, make_rq(rng, 4, 0.7 if t != "s32" else 2**-14), inner=15)
        requantize_case(cs, rng, f"rq_{t}_tensor", x, t, make_rq(rng, 1, 0.3 if t != "s32" else 2**-13, out="u8"),
                        inner=60)
        requantize_case(cs, rng, f"rq_{t}_ch_wrap", x, t, make_rq(rng, 3, 0.9 if t != "s32" else 2**-12), inner=7)
    q = np.concatenate([rng.integers(-(2**31), 2**31, 40), [-(2**31), 2**31 - 1, 0, 1, -1, 2**30, -(2**30)]])
    q = q.astype(np.int32)
    n = q.size
    specials = {
        "rq_sh1": (np.full(n, 2**29 + 12345), np.full(n, 1), np.zeros(n)),
        "rq_sh62": (rng.integers(2**30, 2**31, n), np.full(n, 62), rng.integers(-(2**61), 2**61, n)),
        "rq_m_near_2p31": (np.full(n, 2**31 - 1) * rng.choice([-1, 1], n), rng.integers(30, 63, n),
                           rng.integers(-(2**40), 2**40, n)),
        "rq_neg_m": (-rng.integers(1, 2**31, n), rng.integers(33, 50, n), rng.integers(-(2**45), 2**45, n)),
        "rq_big_offset": (rng.integers(-(2**31) + 1, 2**31, n), rng.integers(34, 63, n),
                          rng.choice([-1, 1], n) * rng.integers(2**60, 2**62, n)),
        "rq_small_sh": (rng.integers(-(2**31) + 1, 2**31, n), rng.integers(1, 34, n),
                        rng.integers(-(2**40), 2**40, n)),
    }
    for name, (m, sh, o) in specials.items():
        for out in ("s8", "u8"):
            lo, hi = RANGES[out]
            zp = 0 if out == "s8" else 17
            rqp = RQ(np.asarray(m, np.int64)[None, :], np.asarray(sh, np.int64), np.asarray(o, np.int64), zp, lo, hi)
            requantize_case(cs, rng, f"{name}_{out}", q, "s32", rqp, inner=1)
    # relu, concat, permute
    for t in ("s8", "u8", "s32"):
        x = rand_act(rng, t, (37,))
        zp = {"s8": -3, "u8": 12, "s32": -100}[t]
        for inplace in (0, 1):
            cs.add(K_RELU, f"relu_{t}_{'inplace' if inplace else 'copy'}", [DT[t], 37, zp, inplace],
                   [x, np_relu(x, zp).astype(NP_DT[t])])
    # lut: every input bit width, signedness, per tensor and per channel, both output types
    for bits in range(2, 9):
        for in_t in ("s8", "u8"):
            for pc in (False, True):
                out = "u8" if (bits + pc) % 2 else "s8"
                lut_case(cs, rng, f"lut_{in_t}{bits}_{'pc' if pc else 'pt'}_{out}", in_t=in_t, bits=bits, out=out,
                         shape=(1, 3, 5, 7), per_channel=pc)
    lut_case(cs, rng, "lut_s8_2d_pc", in_t="s8", bits=8, out="s8", shape=(1, 37), per_channel=True)
    lut_case(cs, rng, "lut_u8_odd_n", in_t="u8", bits=8, out="u8", shape=(1, 1, 1, 13), per_channel=False)
    # thresholds: per tensor and per channel, both output types, 3 .. 255 thresholds
    for n in (3, 7, 255):
        for pc in (False, True):
            out = "u8" if (n // 4 + pc) % 2 else "s8"
            thresholds_case(cs, rng, f"thresholds_{n}_{'pc' if pc else 'pt'}_{out}", n=n, out=out, shape=(2, 3, 5, 7),
                            per_channel=pc)
    thresholds_case(cs, rng, "thresholds_2d_pc", n=11, out="s8", shape=(1, 37), per_channel=True)
    # mul: same shapes, broadcast gates, zero points, int32 output, tile runs
    for a_t, b_t in (("s8", "s8"), ("s8", "u8"), ("u8", "s8"), ("u8", "u8")):
        za = 0 if a_t == "s8" else 7
        zb = -3 if b_t == "s8" else 0
        mul_case(cs, rng, f"mul_same_{a_t}{b_t}", a_t=a_t, b_t=b_t, a_shape=(1, 4, 3, 5), b_shape=(1, 4, 3, 5),
                 za=za, zb=zb, rq="tensor")
        mul_case(cs, rng, f"mul_gate_{a_t}{b_t}", a_t=a_t, b_t=b_t, a_shape=(1, 4, 3, 5), b_shape=(1, 4, 1, 1),
                 za=za, zb=zb, rq="channel")
    mul_case(cs, rng, "mul_gate_first", a_t="u8", b_t="s8", a_shape=(1, 3, 1, 1), b_shape=(1, 3, 4, 4), za=5)
    mul_case(cs, rng, "mul_token_gate", a_t="s8", b_t="s8", a_shape=(1, 6, 10), b_shape=(1, 6, 1), rq="tensor",
             out="u8")
    mul_case(cs, rng, "mul_feature_gate", a_t="s8", b_t="u8", a_shape=(1, 6, 10), b_shape=(10,), rq="tensor")
    mul_case(cs, rng, "mul_outer", a_t="s8", b_t="s8", a_shape=(1, 2, 5, 1), b_shape=(1, 1, 1, 7), rq="tensor")
    mul_case(cs, rng, "mul_flat_acc", a_t="s8", b_t="s8", a_shape=(1, 33), b_shape=(1, 33), za=-128, zb=127, rq=None)
    mul_case(cs, rng, "mul_gate_acc", a_t="u8", b_t="u8", a_shape=(1, 4, 3, 3), b_shape=(1, 4, 1, 1), za=255,
             zb=255, rq=None)
    mul_case(cs, rng, "mul_tile_run", a_t="s8", b_t="u8", a_shape=(1, 4, 3, 5), b_shape=(1, 4, 1, 1), j0=17, n=26,
             rq="tensor", tiled=(True, False))
    mul_case(cs, rng, "mul_tile_planes", a_t="s8", b_t="s8", a_shape=(1, 4, 3, 5), b_shape=(1, 4, 3, 5), j0=15,
             n=30, rq="channel", tiled=(True, True))
    mul_case(cs, rng, "mul_tile_gate_second", a_t="u8", b_t="s8", a_shape=(1, 4, 1, 1), b_shape=(1, 4, 3, 5),
             j0=30, n=30, rq="channel", tiled=(False, True))
    xs = [rand_act(rng, "s8", (1, c, 3, 4)) for c in (2, 1, 3)]
    cs.add(K_CONCAT, "concat_ch_s8", [3, 1, *[a.nbytes for a in xs]], [*xs, np.concatenate(xs, axis=1)])
    xs = [rand_act(rng, "s32", (1, 2, h, 3)) for h in (1, 4)]
    cs.add(K_CONCAT, "concat_h_s32", [2, 2, *[a.nbytes // 2 for a in xs]], [*xs, np.concatenate(xs, axis=2)])
    for esz, t in ((1, "u8"), (4, "s32")):
        for perm in ((0, 2, 3, 1), (0, 3, 1, 2), (3, 2, 1, 0), (1, 0, 3, 2), (0, 1, 2, 3)):
            shape = (2, 3, 4, 5)
            x = rand_act(rng, t, shape)
            cs.add(K_PERMUTE, f"perm_{t}_{''.join(map(str, perm))}", [esz, *shape, *perm],
                   [x, np.ascontiguousarray(np.transpose(x, perm))])
    # matmul (attention products), linear over rows, token slices and pads
    for a_t, b_t in (("s8", "s8"), ("u8", "s8"), ("s8", "u8"), ("u8", "u8")):
        matmul_case(cs, rng, f"mm_{a_t}{b_t}_2x8x8x8", G=2, M=8, K=8, N=8, a_t=a_t, b_t=b_t)
        matmul_case(cs, rng, f"mm_{a_t}{b_t}_odd_zp", G=3, M=5, K=13, N=11, a_t=a_t, b_t=b_t,
                    za=-3 if a_t == "s8" else 7, zb=5 if b_t == "s8" else 120, out="u8")
    matmul_case(cs, rng, "mm_i32", G=2, M=4, K=9, N=6, rq=None)
    matmul_case(cs, rng, "mm_channel", G=1, M=7, K=16, N=10, rq="channel")
    matmul_case(cs, rng, "mm_extreme", G=1, M=3, K=64, N=17, mode="extreme", za=0, zb=0)
    matmul_case(cs, rng, "mm_1x1", G=1, M=1, K=1, N=1)
    for in_t in ("s8", "u8"):
        linear_rows_case(cs, rng, f"linrows_{in_t}_9x16x16", R=9, K=16, Co=16, in_t=in_t)
        linear_rows_case(cs, rng, f"linrows_{in_t}_odd_tensor", R=5, K=37, Co=13, in_t=in_t, rq="tensor", out="u8")
    linear_rows_case(cs, rng, "linrows_i32", R=3, K=20, Co=7, rq=None)
    linear_rows_case(cs, rng, "linrows_s32_codes", R=4, K=19, Co=9, in_t="s32")
    for t, esz in (("s8", 1), ("s32", 4)):
        x = rand_act(rng, t, (1, 9, 16))
        for start, stop, step in ((0, 1, 1), (1, 9, 1), (0, 9, 2), (4, 7, 3)):
            y = np_slice(x, 1, start, stop, step)
            cs.add(K_SLICE, f"slice_{t}_{start}_{stop}_{step}", [esz, 1, 9, start, step, y.shape[1], 16], [x, y])
        x4 = rand_act(rng, t, (1, 2, 6, 5))
        y = np_slice(x4, 2, 1, 6, 2)
        cs.add(K_SLICE, f"slice_{t}_inner", [esz, 2, 6, 1, 2, y.shape[2], 5], [x4, y])
    for t, value in (("s8", -3), ("u8", 200)):
        x = rand_act(rng, t, (1, 3, 8, 4))
        for before, after in ((1, 0), (0, 2), (2, 3)):
            y = np_pad(x, 2, before, after, value)
            cs.add(K_PAD, f"pad_{t}_{before}_{after}", [3, 8, before, after, 4, value], [x, y])
    # rne_shift edge values
    v = np.array([0, 1, -1, 2, -2, 3, -3, 2**62, -(2**62), 2**63 - 1, -(2**63), 5, -5, 6, -6, 7, -7] * 4, np.int64)
    sh = np.array([1] * 17 + [2] * 17 + [61] * 17 + [62] * 17, np.int64)
    cs.add(K_RNE, "rne_edges", [v.size], [v, sh.astype(np.uint8), rne_shift(v, sh).astype(np.int64)])
    add_row_cases(cs, rng)
    add_scan_cases(cs, rng)
    add_upsample_cases(cs, rng)
    add_edge_pad_cases(cs, rng)
    add_simd_cases(cs, rng)
    return cs


# ---------------------------------------------------------------------------------------------
# Builds and runs

VARIANTS = {"host": ("host", False), "host-asan": ("host", True), "rv32": ("rv32", False)}
# The sanitizer build uses -O1 (the usual setting for AddressSanitizer runs; -O2 with both
# sanitizers triples the compile time of the unrolled kernels without finding more).
VARIANT_OPT = {"host": "-O2", "host-asan": "-O1", "rv32": "-O2"}


def _build_variant(root: Path, variant: str) -> Path:
    target, sanitize = VARIANTS[variant]
    return toolchains.build(target, [DRIVER, *KERNEL_SOURCES, *hal_sources(target)],
                            [RUNTIME, RUNTIME / "hal"], root / f"kernel_check_{variant}",
                            opt=VARIANT_OPT[variant], sanitize=sanitize)


@pytest.fixture(scope="module")
def drivers(tmp_path_factory):
    """variant -> built kernel_check executable; the available variants are built in parallel the
    first time one is needed, a missing toolchain skips the tests of its variant."""
    root = tmp_path_factory.mktemp("kernel_check")
    futures: dict = {}
    pool = ThreadPoolExecutor(max_workers=len(VARIANTS))

    def start():
        for variant, (target, _) in VARIANTS.items():
            if toolchains.available(target)[0]:
                futures[variant] = pool.submit(_build_variant, root, variant)

    def get(variant: str) -> Path:
        if not futures:
            start()
        target = VARIANTS[variant][0]
        ok, why = toolchains.available(target)
        if not ok:
            pytest.skip(f"{variant}: {why}")
        return futures[variant].result()

    yield get
    pool.shutdown(wait=True)


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("kc_cases")
    cs = build_cases()
    cs.write(d)
    return d, cs


def run_driver(variant: str, exe: Path, cwd: Path, prefix: str = "kc", timeout: float = 120.0):
    target = VARIANTS[variant][0]
    res = toolchains.run(target, exe, cwd=cwd, args=[prefix], timeout=timeout)
    return res


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_kernels_match_reference(drivers, case_dir, variant):
    directory, cs = case_dir
    exe = drivers(variant)
    res = run_driver(variant, exe, directory)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("case ")]
    bad = [ln for ln in lines if not ln.endswith("instructions)") or ": ok (" not in ln]
    assert res.returncode == 0 and not bad and len(lines) == len(cs.names), (
        f"{variant}: exit {res.returncode}, {len(lines)}/{len(cs.names)} cases reported\n"
        + "\n".join(bad[:20]) + "\n" + res.stdout[-2000:] + res.stderr[-2000:])
    assert f"{len(cs.names)} cases, 0 failed" in res.stdout


def test_case_set_covers_every_kernel():
    cs = build_cases()
    kinds = {struct.unpack_from("<I", b, 8)[0] for b in cs.blobs}
    assert kinds == set(range(1, 27)) | {K_SCAN, K_SCAN_SPLIT, K_FLIP, K_CONV_SIMD, K_CONV1X1_SIMD, K_DWCONV_SIMD,
                                         K_MM_SIMD, K_THRESHOLDS, K_UPSAMPLE,
                                         K_UPSAMPLE_LINEAR, K_EDGE_PAD}
    assert len(cs.names) == len(set(cs.names)) >= 200


def test_driver_reports_mismatch(drivers, tmp_path):
    """A wrong expected value must be reported and give a non-zero exit status."""
    cs = CaseSet()
    rng = np.random.default_rng(1)
    linear_case(cs, rng, K_LINEAR, "lin_wrong", K=16, Co=8)
    blob = bytearray(cs.blobs[0])
    blob[-8] ^= 1  # flip a bit of the expected output (last array, before padding)
    cs.blobs[0] = bytes(blob)
    cs.write(tmp_path)
    res = run_driver("host", drivers("host"), tmp_path)
    assert res.returncode == 1 and "MISMATCH 1 of 8" in res.stdout, res.stdout


def test_runtime_compiles_pedantic():
    """The runtime is portable C99: gcc -std=c99 -pedantic -Wall -Wextra -Werror accepts every file
    (front-end check; the optimizing builds above use -Werror as well, for the host and rv32)."""
    ok, why = toolchains.available("host")
    if not ok:
        pytest.skip(why)
    sources = [*KERNEL_SOURCES, *hal_sources("host"), DRIVER]
    cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only", f"-I{RUNTIME}",
           f"-I{RUNTIME / 'hal'}", *map(str, sources)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    ok, why = toolchains.available("rv32")
    if not ok:
        pytest.skip(why)
    cmd = [toolchains.RV32_CC, *toolchains.RV32_CFLAGS, "-pedantic", "-fsyntax-only", f"-I{RUNTIME}",
           f"-I{RUNTIME / 'hal'}", *map(str, hal_sources("rv32"))]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------------------------------------
# Requantization arithmetic with hypothesis (through the driver)

I32 = st.integers(-(2**31), 2**31 - 1)
M31 = st.integers(-(2**31) + 1, 2**31 - 1)
OUT_RANGES = [(-128, 127, 0), (0, 255, 0), (0, 255, 128), (-8, 7, 0), (0, 15, 3), (0, 127, 0)]


@st.composite
def requant_element(draw):
    """(q, m, sh, o, range index): typical planner values, extreme ones, and exact ties +-1."""
    sh = draw(st.integers(1, 62))
    mode = draw(st.sampled_from(["typical", "random", "tie"]))
    q = draw(st.one_of(st.integers(-(2**20), 2**20), I32))
    if mode == "typical":
        m = draw(st.integers(2**30, 2**31 - 1)) * draw(st.sampled_from([1, -1]))
        o = draw(st.integers(-(2**min(sh + 9, 61)), 2**min(sh + 9, 61)))
    elif mode == "random":
        m = draw(M31)
        o = draw(st.integers(-(2**62) + 1, 2**62 - 1))
    else:  # o chosen so that q*m + o is exactly a tie (or one off), with the result near 0
        m = draw(M31)
        j = draw(st.integers(-300, 300))
        delta = draw(st.sampled_from([-1, 0, 1]))
        o = j * 2**sh + 2 ** (sh - 1) - q * m + delta
        if abs(o) >= 2**62:
            o = (o % 2**61) * (1 if o > 0 else -1)
    rng_idx = draw(st.integers(0, len(OUT_RANGES) - 1))
    return q, m, sh, o, rng_idx


def _requant_expected(q, m, sh, o, zp, lo, hi):
    return np.clip(rne_shift(o + q.astype(np.int64) * m, sh) + zp, lo, hi)


def _run_small(drivers, variant, tmp_path, cs: CaseSet):
    sub = tmp_path / variant
    sub.mkdir(exist_ok=True)
    cs.write(sub)
    res = run_driver(variant, drivers(variant), sub, timeout=60)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert f"{len(cs.names)} cases, 0 failed" in res.stdout


@pytest.mark.parametrize("variant", list(VARIANTS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(1, 62)), min_size=1, max_size=40),
       elems=st.lists(requant_element(), min_size=1, max_size=40))
def test_requant_arithmetic_hypothesis(drivers, tmp_path, variant, values, elems):
    cs = CaseSet()
    v = np.array([a for a, _ in values], np.int64)
    sh = np.array([b for _, b in values], np.int64)
    cs.add(K_RNE, "rne_hyp", [v.size], [v, sh.astype(np.uint8), rne_shift(v, sh).astype(np.int64)])
    # one gf_requantize case per output range; every element has its own channel (inner = 1)
    for idx, (lo, hi, zp) in enumerate(OUT_RANGES):
        sel = [e for e in elems if e[4] == idx]
        if not sel:
            continue
        q = np.array([e[0] for e in sel], np.int64).astype(np.int32)
        m = np.array([e[1] for e in sel], np.int64)
        shs = np.array([e[2] for e in sel], np.int64)
        o = np.array([e[3] for e in sel], np.int64)
        assert np.all(np.abs(o) < 2**62) and np.all(np.abs(m) < 2**31)
        rqp = RQ(m[None, :], shs, o, zp, lo, hi)
        y = _requant_expected(q, m, shs, o, zp, lo, hi)
        cs.add(K_REQUANTIZE, f"rq_hyp_{idx}", [DT["s32"], q.size, 1, *rqp.params()],
               [q, *rqp.arrays(), out_bytes(y, lo)])
    _run_small(drivers, variant, tmp_path, cs)


# gf_add with requantization: every element its own channel (inner = 1), 8-bit and 32-bit inputs, against the
# contract in Python integers (the 8-bit inputs take gf_add's 32-bit fast path where it applies: shifts 11..62,
# offsets within 2^(sh+29), |zp| < 2^30; the others its exact 64-bit path)
ADD_RANGES = OUT_RANGES + [(-128, 127, 2**30 - 1), (0, 255, -(2**30) + 1), (-128, 127, 2**30), (0, 255, -(2**30))]
ADD_TYPES = [("s8", "s8"), ("u8", "s8"), ("s8", "u8"), ("u8", "u8"), ("s32", "s8"), ("u8", "s32")]
_ADD_Q = {"s8": (-128, 127), "u8": (0, 255), "s32": (-(2**20), 2**20)}


def _add_expected(qa, qb, ma, mb, sh, o, zp, lo, hi) -> list[int]:
    out = []
    for a, b, x, y, s, c in zip(qa, qb, ma, mb, sh, o):
        acc = int(c) + int(a) * int(x) + int(b) * int(y)
        f, r = acc >> int(s), acc & ((1 << int(s)) - 1)
        half = 1 << (int(s) - 1)
        v = f + (1 if r > half or (r == half and f & 1) else 0) + zp
        out.append(min(max(v, lo), hi))
    return out


def _add_case_of(cs: CaseSet, name, a_t, b_t, qa, qb, ma, mb, sh, o, rng_idx):
    lo, hi, zp = ADD_RANGES[rng_idx]
    n = len(qa)
    rqp = RQ(np.array([ma, mb], np.int64), np.array(sh, np.int64), np.array(o, np.int64), zp, lo, hi)
    y = np.array(_add_expected(qa, qb, ma, mb, sh, o, zp, lo, hi), np.int64)
    a = np.array(qa, np.int64).astype(NP_DT[a_t])
    b = np.array(qb, np.int64).astype(NP_DT[b_t])
    cs.add(K_ADD, name, [DT[a_t], DT[b_t], n, 1, *rqp.params()], [a, b, *rqp.arrays(), out_bytes(y, lo)])


@st.composite
def add_element(draw, a_t, b_t):
    """(qa, qb, ma, mb, sh, o): typical planner values, extreme ones, exact ties +-1, offsets at the fast path's
    bound 2^(sh+29)."""
    qa = draw(st.integers(*_ADD_Q[a_t]))
    qb = draw(st.integers(*_ADD_Q[b_t]))
    mode = draw(st.sampled_from(["typical", "random", "tie", "bound"]))
    sh = draw(st.integers(1, 62))
    if mode == "typical":
        ma = draw(st.integers(2**30, 2**31 - 1)) * draw(st.sampled_from([1, -1]))
        mb = draw(st.integers(2**30, 2**31 - 1)) * draw(st.sampled_from([1, -1]))
        sh = draw(st.integers(8, 40))
        o = draw(st.integers(-(2 ** min(sh + 9, 61)), 2 ** min(sh + 9, 61)))
    else:
        ma, mb = draw(M31), draw(M31)
        if mode == "random":
            o = draw(st.integers(-(2**62) + 1, 2**62 - 1))
        elif mode == "tie":
            j = draw(st.integers(-300, 300))
            o = j * 2**sh + 2 ** (sh - 1) - qa * ma - qb * mb + draw(st.sampled_from([-1, 0, 1]))
        else:
            o = draw(st.sampled_from([1, -1])) * 2 ** min(sh + 29, 62) - 2 ** (sh - 1) + draw(st.integers(-3, 3))
        if abs(o) >= 2**62:
            o = (abs(o) % 2**61) * (1 if o > 0 else -1)
    return qa, qb, ma, mb, sh, o


@pytest.mark.parametrize("variant", list(VARIANTS))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_add_requant_hypothesis(drivers, tmp_path, variant, data):
    cs = CaseSet()
    for ti, (a_t, b_t) in enumerate(ADD_TYPES):
        elems = data.draw(st.lists(add_element(a_t, b_t), min_size=1, max_size=30))
        rng_idx = data.draw(st.integers(0, len(ADD_RANGES) - 1))
        _add_case_of(cs, f"add_hyp_{ti}", a_t, b_t, *zip(*elems), rng_idx)
    _run_small(drivers, variant, tmp_path, cs)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_add_requant_random(drivers, tmp_path, variant):
    """Many random elements per input type pair and output range: shifts 1..62, typical and extreme multipliers
    and offsets, exact ties and their neighbours."""
    rng = np.random.default_rng(1234)
    cs = CaseSet()
    for ti, (a_t, b_t) in enumerate(ADD_TYPES):
        for ri in range(len(ADD_RANGES)):
            n = 400
            qa = [int(v) for v in rng.integers(_ADD_Q[a_t][0], _ADD_Q[a_t][1] + 1, n)]
            qb = [int(v) for v in rng.integers(_ADD_Q[b_t][0], _ADD_Q[b_t][1] + 1, n)]
            qa[:4] = [_ADD_Q[a_t][0], _ADD_Q[a_t][1], _ADD_Q[a_t][0], _ADD_Q[a_t][1]]
            qb[:4] = [_ADD_Q[b_t][0], _ADD_Q[b_t][1], _ADD_Q[b_t][1], _ADD_Q[b_t][0]]
            sh = [int(v) for v in rng.integers(1, 63, n)]
            big = rng.random(n) < 0.3
            ma = [int(v) for v in np.where(big, rng.choice([-1, 1], n) * rng.integers(2**30, 2**31, n),
                                           rng.integers(-(2**31) + 1, 2**31, n))]
            mb = [int(v) for v in rng.integers(-(2**31) + 1, 2**31, n)]
            o = []
            for i in range(n):
                s, mode = sh[i], i % 4
                if mode == 0:  # near the result 0: offsets of the size of the products
                    v = int(rng.integers(-(2**40), 2**40)) >> max(0, 40 - s - 9)
                elif mode == 1:  # anywhere
                    v = int(rng.integers(-(2**62) + 1, 2**62))
                elif mode == 2:  # exact ties and neighbours
                    v = int(rng.integers(-50, 50)) * 2**s + 2 ** (s - 1) - qa[i] * ma[i] - qb[i] * mb[i] + int(
                        rng.integers(-1, 2))
                else:  # the fast path's bound
                    v = int(rng.choice([-1, 1])) * 2 ** min(s + 29, 62) - 2 ** (s - 1) + int(rng.integers(-2, 3))
                if abs(v) >= 2**62:
                    v = (abs(v) % 2**61) * (1 if v > 0 else -1)
                o.append(v)
            _add_case_of(cs, f"add_rand_{ti}_{ri}", a_t, b_t, qa, qb, ma, mb, sh, o, ri)
    _run_small(drivers, variant, tmp_path, cs)
