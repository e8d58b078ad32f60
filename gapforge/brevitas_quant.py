"""Reading quantizer parameters from Brevitas modules, exactly and without stale values.

Every number here comes from the model's calibrated eval-mode state (quantizer proxies,
``quant_weight()``), is cross-checked against what the same quantizer produced in the
captured forward pass, and is rejected with an explicit error when it cannot be trusted
(uncalibrated statistics, dynamic scales, non-integer bit widths or zero points).
See docs/brevitas-notes in the README and ../shared/docs/brevitas-integer-semantics.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gapforge.capture import QuantMeta
from gapforge.errors import GapforgeError
from gapforge.ir import int_range


class QuantReadError(GapforgeError):
    pass


@dataclass
class QParams:
    """Quantization of one tensor: ``real = scale[c] * (q - zero_point)``, q in ``int_range``."""

    scale: float | list[float]
    zero_point: int
    bit_width: int
    signed: bool
    narrow_range: bool
    channel_axis: int | None = None

    def same_encoding(self, other: QParams) -> bool:
        return (self.scale == other.scale and self.zero_point == other.zero_point
                and self.bit_width == other.bit_width and self.signed == other.signed
                and self.channel_axis == other.channel_axis)

    def qrange(self) -> tuple[int, int]:
        return int_range(self.bit_width, self.signed, self.narrow_range)


def _as_int(t: torch.Tensor | float, what: str, where: str) -> int:
    vals = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
    if vals.numel() == 0 or not torch.all(vals == vals[0]):
        raise QuantReadError(f"{where}: {what} differs across channels ({vals.tolist()[:4]}...); "
                             "only a per-tensor value is supported")
    v = float(vals[0])
    if v != round(v):
        raise QuantReadError(f"{where}: {what} is {v}, not an integer")
    return int(round(v))


def scale_from_tensor(scale: torch.Tensor, ndim: int, where: str) -> tuple[float | list[float], int | None]:
    """(per-tensor float, None) or (per-channel list, channel axis) from a broadcastable scale."""
    s = scale.detach().to(torch.float32)
    if s.numel() == 1:
        val = float(s.reshape(()))
        _check_scale(val, where)
        return val, None
    dims = [i for i, d in enumerate(s.shape) if d != 1]
    if len(dims) != 1:
        raise QuantReadError(f"{where}: scale of shape {tuple(s.shape)} is not per-tensor or per-channel")
    axis = dims[0] + (ndim - s.dim())  # right-aligned broadcasting
    vals = [float(v) for v in s.reshape(-1)]
    for v in vals:
        _check_scale(v, where)
    return vals, axis


def _check_scale(v: float, where: str) -> None:
    if not np.isfinite(v) or v <= 0:
        raise QuantReadError(f"{where}: scale {v} is not a positive finite number")


def check_calibrated(proxy: torch.nn.Module, where: str) -> None:
    """Refuse activation quantizers whose runtime statistics were never collected.

    An uncalibrated ``ParameterFromRuntimeStatsScaling`` silently yields a default scale
    (1/128 for 8-bit signed), which would give a golden model of a network nobody trained.
    """
    for m in proxy.modules():
        counter = getattr(m, "counter", None)
        steps = getattr(m, "collect_stats_steps", None)
        if isinstance(counter, int) and isinstance(steps, int) and counter == 0:
            raise QuantReadError(
                f"{where}: activation quantizer was never calibrated (its statistics counter is 0, "
                "so its scale is Brevitas' default)",
                hint="run brevitas.graph.calibrate.calibration_mode(model) over representative data "
                     "(or train the model), then model.eval()")


def act_quant_params(proxy, ndim: int, where: str, observed: QuantMeta | None = None) -> QParams:
    """Parameters of an activation quantizer proxy (``act_quant``, ``input_quant``, ``output_quant``)."""
    if type(proxy).__name__.startswith("DynamicActQuantProxy"):
        raise QuantReadError(f"{where}: dynamic (input-dependent) activation scales cannot be deployed")
    check_calibrated(proxy, where)
    with torch.no_grad():
        scale_t = proxy.scale()
        zp_t = proxy.zero_point()
        bw_t = proxy.bit_width()
    if scale_t is None:
        raise QuantReadError(f"{where}: quantizer has no scale")
    scale, axis = scale_from_tensor(scale_t, ndim, where)
    zp = _as_int(zp_t, "zero point", where)
    bw = _as_int(bw_t, "bit width", where)
    signed = bool(proxy.is_signed)
    narrow = bool(proxy.is_narrow_range)
    if bw > 8:
        raise QuantReadError(f"{where}: {bw}-bit activations are not supported (at most 8 bits)")
    _check_integer_range(bw, signed, narrow, where, "activation", is_binary_quant(proxy))
    qp = QParams(scale, zp, bw, signed, narrow, axis)
    if observed is not None:
        _cross_check(qp, observed, ndim, where)
    return qp


def _cross_check(qp: QParams, observed: QuantMeta, ndim: int, where: str) -> None:
    """The proxy's state must equal what the quantizer used in the captured forward pass."""
    obs_scale, _ = scale_from_tensor(observed.scale, ndim, where)
    if obs_scale != qp.scale or int(round(observed.bit_width)) != qp.bit_width or observed.signed != qp.signed:
        raise QuantReadError(
            f"{where}: quantizer state (scale {_short(qp.scale)}, {qp.bit_width} bit) differs from what it "
            f"used in the forward pass (scale {_short(obs_scale)}, {observed.bit_width:g} bit); a cached "
            "value is stale",
            hint="re-run calibration in eval mode or disable cache_inference_quant_act")


def _short(s) -> str:
    return f"{s:.6g}" if isinstance(s, float) else f"[{s[0]:.6g}, ...]"


def is_binary_quant(proxy) -> bool:
    """The proxy quantizes with Brevitas' BinaryQuant / ClampedBinaryQuant (QuantType.BINARY): ``sign(x) * s``."""
    from brevitas.core.quant.binary import BinaryQuant, ClampedBinaryQuant

    return proxy is not None and any(isinstance(m, (BinaryQuant, ClampedBinaryQuant)) for m in proxy.modules())


def _check_integer_range(bw: int, signed: bool, narrow: bool, where: str, what: str, binary: bool) -> None:
    """A binary quantizer (codes -1, +1: gapforge.ir.is_binary) is 1-bit signed; every other quantizer needs a
    non-empty integer range, and a 1-bit signed *integer* quantizer (codes [-1, 0], or none with narrow range)
    would be read as binary: refused."""
    if binary:
        if (bw, signed) != (1, True):
            raise QuantReadError(f"{where}: binary {what} quantizer with {bw} bit, "
                                 f"{'signed' if signed else 'unsigned'} (Brevitas' binary quantizers are 1-bit signed)")
        return
    lo, hi = int_range(bw, signed, narrow)
    if hi - lo < 1 or (signed and bw < 2):
        raise QuantReadError(f"{where}: 1-bit signed integer {what} quantizers are not supported "
                             f"({bw} bit, {'signed' if signed else 'unsigned'}"
                             f"{', narrow range' if narrow else ''}: codes {'[-1, 0]' if not narrow else 'none'})",
                             hint="use a binary quantizer (SignedBinaryActPerTensorConst / "
                                  "SignedBinaryWeightPerTensorConst: codes -1, +1), 2-bit signed or 1-bit unsigned")


def weight_params(layer, where: str) -> tuple[np.ndarray, QParams]:
    """Integer weights and their quantization from ``layer.quant_weight()``."""
    if not layer.weight_quant.is_quant_enabled:
        raise QuantReadError(f"{where}: weights are not quantized (weight_quant=None)",
                             hint="use a Brevitas weight quantizer such as Int8WeightPerTensorFloat")
    with torch.no_grad():
        qw = layer.quant_weight()
    value = qw.value.detach()
    scale, axis = scale_from_tensor(qw.scale, value.dim(), f"{where} weight")
    zp = _as_int(qw.zero_point, "weight zero point", where)
    if zp != 0:
        raise QuantReadError(f"{where}: asymmetric weight quantization (zero point {zp}) is not supported")
    bw = _as_int(qw.bit_width, "weight bit width", where)
    if bw > 8:
        raise QuantReadError(f"{where}: {bw}-bit weights are not supported (at most 8 bits)")
    signed = bool(qw.signed)
    narrow = bool(layer.weight_quant.is_narrow_range)
    _check_integer_range(bw, signed, narrow, where, "weight", is_binary_quant(layer.weight_quant))
    # value = int * scale in float32; dividing back is exact to far below 0.5 for |int| < 2^24
    q = value.double() / qw.scale.double()
    qi = torch.round(q)
    if float((q - qi).abs().max()) > 1e-3:
        raise QuantReadError(f"{where}: quant_weight() values are not integer multiples of the scale")
    lo, hi = int_range(bw, signed, narrow)
    if float(qi.min()) < lo or float(qi.max()) > hi:
        raise QuantReadError(f"{where}: integer weights outside [{lo}, {hi}]")
    return qi.numpy().astype(np.int8 if signed else np.uint8), QParams(scale, 0, bw, signed, narrow, axis)


def const_bit_width(proxy: torch.nn.Module, where: str) -> int:
    """Bit width of a quantizer whose width is a constant (bias and truncation quantizers)."""
    for sub in proxy.modules():
        impl = getattr(sub, "msb_clamp_bit_width_impl", None)
        if impl is not None:
            with torch.no_grad():
                return _as_int(impl(), "bit width", where)
    raise QuantReadError(f"{where}: cannot determine the quantizer's bit width (not a constant)")


def int_bias(layer, acc_scale_f32: torch.Tensor, where: str) -> tuple[np.ndarray, int]:
    """Integer bias exactly as Brevitas' ``Int32Bias`` computes it.

    ``b_int = clamp(rne(fl32(b) / fl32(s_in * s_w)))`` with the division in float32 (the
    value Brevitas rounds); ``acc_scale_f32`` is ``s_in * s_w`` computed in float32.
    Returns (int32 array, bias bit width).
    """
    proxy = layer.bias_quant
    bw = const_bit_width(proxy, where)
    if bw > 32:
        raise QuantReadError(f"{where}: {bw}-bit bias is wider than the 32-bit accumulator")
    b = layer.bias.detach().to(torch.float32)
    q = torch.round(b / acc_scale_f32.reshape(-1).to(torch.float32))
    lo, hi = int_range(bw, True, bool(proxy.is_narrow_range))
    q = torch.clamp(q, lo, hi)
    return q.double().numpy().astype(np.int64).astype(np.int32), bw


def static_problems(module) -> list[tuple[str, str | None]]:
    """Problems of a module's quantizers that do not depend on its input (for nodes the checker
    cannot lower because an upstream construct is unsupported)."""
    problems = []
    if getattr(module, "weight_quant", None) is not None and getattr(module.weight_quant, "is_quant_enabled", False):
        try:
            weight_params(module, "weights")
        except GapforgeError as err:
            problems.append((str(err), err.hint))
    for attr in ("act_quant", "input_quant", "output_quant"):
        proxy = getattr(module, attr, None)
        if proxy is None or not getattr(proxy, "is_quant_enabled", False):
            continue
        try:
            with torch.no_grad():
                bw = _as_int(proxy.bit_width(), "bit width", attr)
            _check_integer_range(bw, bool(proxy.is_signed), bool(proxy.is_narrow_range), f"quantizer {attr}",
                                 "activation", is_binary_quant(proxy))
            check_calibrated(proxy, f"quantizer {attr}")
        except GapforgeError as err:
            problems.append((str(err), err.hint))
        except Exception:  # an exotic quantizer: the full check will report it once reachable
            continue
    return problems
