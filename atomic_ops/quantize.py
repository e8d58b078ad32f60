"""quantize: float32 network input -> integers (host side only)."""

from __future__ import annotations

import operator

import numpy as np


def scaled(x: np.ndarray, scale, zero_point: int, channel_axis: int | None = None) -> np.ndarray:
    """``fl32(fl32(x) / fl32(scale)) + fl32(zp)``: the float32 value Brevitas' quantizer rounds.

    Brevitas (IntQuant.to_int) computes ``round(x / s + zp)`` in float32, so the division and the
    addition of the zero point are both float32 operations here too (``x * (1/s)``, a float64
    division or adding zp after rounding would differ on rare inputs). ``+-inf`` and finite values
    beyond float32 overflow to ``+-inf`` exactly as in torch.
    """
    x = np.asarray(x, dtype=np.float32)
    s = np.asarray(scale, dtype=np.float32)
    if s.ndim and channel_axis is not None:
        shape = [1] * x.ndim
        shape[channel_axis] = s.size
        s = s.reshape(shape)
    with np.errstate(over="ignore"):
        return x / s + np.float32(zero_point)


def binarize(x: np.ndarray) -> np.ndarray:
    """Brevitas' binary quantizer (BinaryQuant, ClampedBinaryQuant): code +1 where ``fl32(x) >= 0`` (so 0 and -0.0
    give +1, as ``binary_sign``), else -1; the scale only multiplies the code (clamping to [-s, s] first keeps the
    sign). NaN has no code: ValueError. Returns int64."""
    x = np.asarray(x, dtype=np.float32)
    if np.isnan(x).any():
        raise ValueError("quantize: NaN input has no integer value")
    return np.where(x >= 0, 1, -1).astype(np.int64)


def quantize(x: np.ndarray, scale, zero_point: int, lo: int, hi: int, channel_axis: int | None = None) -> np.ndarray:
    """``q = clamp(rne(fl32(x) / fl32(scale) + zp), lo, hi)``, as Brevitas' activation quantizer.

    rne is round half to even (numpy rint, torch.round). The clamp is applied to the float value
    before the conversion to integers, so ``+inf``, ``-inf`` and any huge finite input saturate to
    ``hi`` / ``lo`` (measured with Brevitas 0.13: a QuantIdentity maps inf and 1e30 to 127, -inf and
    -1e30 to -128). NaN has no integer: ValueError (the tools refuse NaN inputs before this). Returns int64.
    """
    y = scaled(x, scale, zero_point, channel_axis)
    if np.isnan(y).any():
        raise ValueError("quantize: NaN input has no integer value")
    return np.clip(np.rint(y), lo, hi).astype(np.int64)


_ARITH = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}


def index_key(key) -> tuple:
    """The Python index of an ``index`` preprocessing step's key (integers and [start, stop, step] slices)."""
    return tuple(slice(*k) if isinstance(k, list) else int(k) for k in key)


def preprocess(x: np.ndarray, steps: list | None) -> np.ndarray:
    """The model's float32 preprocessing of its input before the input quantizer (``x / 255.0 - 0.5``,
    ``(x - mean) / std``, ``x.permute(0, 3, 1, 2)``, ...), replayed with the same torch operations on the
    same float32 operands, so the values equal the model's bit for bit (host side only; the device receives
    the quantized result). ``steps``: the quantize op's ``preprocess`` attribute (gapforge/ops/quantize.py)."""
    if not steps:
        return x
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    for s in steps:
        op = s["op"]
        if op in _ARITH:
            c = s["operand"]
            if isinstance(c, dict):
                c = torch.tensor(c["values"], dtype=torch.float32).reshape(c["shape"])
            # the Python operator as the model wrote it (c - x: Tensor.__rsub__ for a number, as in the model)
            t = _ARITH[op](c, t) if s.get("reversed") else _ARITH[op](t, c)
        elif op == "neg":
            t = -t
        elif op == "clamp":  # torch.clamp in float32 (F.relu / F.hardtanh / F.relu6 are clamps in torch)
            t = torch.clamp(t, min=s.get("min"), max=s.get("max"))
        elif op == "index":  # x[:, 0], x[:, 1:]: integers and [start, stop, step] slices per axis
            t = t[index_key(s["key"])]
        elif op == "permute":
            t = t.permute(*s["dims"])
        elif op == "reshape":
            t = t.reshape(t.shape[0], *s["shape"])
        else:
            raise ValueError(f"preprocess: unknown step {op!r}")
    return t.contiguous().numpy()
