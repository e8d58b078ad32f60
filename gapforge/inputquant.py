"""``--input-quant``: put an input quantizer in front of a model whose first layer takes float input.

Many Brevitas models (brevitas_examples' imagenet MobileNet, the bnn_pynq ResNets) assume an
8-bit image and have no input quantizer, so their first QuantConv2d receives the float input and
gapforge cannot deploy them. ``--input-quant KIND[:SCALE]`` wraps such a model as
``WithInputQuant(QuantIdentity(...), model)`` without editing it:

* ``int8`` / ``uint8``: an ``Int8ActPerTensorFloat`` / ``Uint8ActPerTensorFloat`` QuantIdentity whose
  scale is calibrated (``brevitas.graph.calibrate.calibration_mode``) on the model file's
  held-out inputs, or on its example input when it has no ``held_out_data()``;
* ``int8:S`` / ``uint8:S``: the same quantizer with the constant scale ``S`` (float32), e.g.
  ``uint8:0.00392156862745098`` for images in [0, 1].

Every later stage (checker, extractor, fidelity, golden, device) sees the wrapped model, so
fidelity is measured against it; each tool's report says that the quantizer was inserted.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from gapforge.errors import GapforgeError

KINDS = ("int8", "uint8")
FLAG_HELP = ("insert an input quantizer before a model whose first layer takes the float input: int8 or uint8, "
             "scale calibrated on the model file's held-out (else example) inputs, or given as int8:S / uint8:S")


class WithInputQuant(nn.Module):
    """``model`` fed by ``input_quant`` (the quantizer --input-quant inserted); other inputs pass through."""

    def __init__(self, input_quant: nn.Module, model: nn.Module):
        super().__init__()
        self.input_quant = input_quant
        self.model = model

    def forward(self, x, *rest):
        return self.model(self.input_quant(x), *rest)


def parse(text: str) -> tuple[str, float | None]:
    """``"int8"`` -> ("int8", None); ``"uint8:0.0078125"`` -> ("uint8", 0.0078125)."""
    kind, sep, scale = text.partition(":")
    if kind not in KINDS:
        raise GapforgeError(f"--input-quant '{text}': expected {' or '.join(KINDS)}, optionally with a scale "
                            "(e.g. int8, uint8:0.0078125)")
    if not sep:
        return kind, None
    try:
        value = float(scale)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0 or not math.isfinite(float(np.float32(value))) \
            or np.float32(value) == 0:
        raise GapforgeError(f"--input-quant '{text}': the scale must be a positive finite number")
    return kind, value


def _quantizer(kind: str, scale: float | None):
    from brevitas.inject.enum import ScalingImplType
    from brevitas.quant import Int8ActPerTensorFloat, Uint8ActPerTensorFloat

    base = Int8ActPerTensorFloat if kind == "int8" else Uint8ActPerTensorFloat
    if scale is None:
        return base
    s = float(np.float32(scale))
    levels = 128 if kind == "int8" else 255  # Brevitas' scale = threshold / levels for these quantizers
    return type(f"Const{base.__name__}", (base,), {
        "scaling_impl_type": ScalingImplType.CONST, "max_val": s * levels,
        "min_val": -s * levels if kind == "int8" else 0.0})


def _already_quantized(src) -> str | None:
    """The quantizer that already takes the model's float input, if the graph shows one."""
    from gapforge.extract import capture_model, lower_graph

    try:
        _, low = lower_graph(capture_model(src), src.name, src.source, strict=False)
    except GapforgeError:
        return None  # the checker / extractor report what is wrong with the model
    net_input = next(iter(low.tensors), None)
    for op in low.ops:
        if op.type == "quantize" and op.inputs == [net_input]:
            return f"{op.source} '{op.module or op.name}'"
    return None


def calibration_inputs(src) -> tuple[torch.Tensor, str]:
    """The held-out inputs of the model file, else its example input (checked for NaN / complex)."""
    from gapforge.extract import model_inputs

    arrays = model_inputs(src)
    held = arrays.get("inputs/held_out_x.npy")
    if held is not None:
        return torch.from_numpy(held), f"{len(held)} held-out inputs"
    return src.example_inputs[0], "the example input"


def insert(src, spec: str):
    """``src`` with its model wrapped by the input quantizer ``spec``; a note in ``src.notes`` says so."""
    from brevitas.graph.calibrate import calibration_mode
    from brevitas.nn import QuantIdentity

    kind, scale = parse(spec)
    if len(src.example_inputs) > 1:
        raise GapforgeError(f"{src.source}: --input-quant {spec}: the model has {len(src.example_inputs)} inputs; "
                            "the flag quantizes a single input", hint="put a QuantIdentity on each input in the model")
    already = _already_quantized(src)
    if already is not None:
        raise GapforgeError(f"{src.source}: --input-quant {spec}: the model already quantizes its input "
                            f"({already}); drop the flag")
    q = QuantIdentity(act_quant=_quantizer(kind, scale), return_quant_tensor=True)
    if scale is None:
        x, how = calibration_inputs(src)
        with torch.no_grad(), calibration_mode(q):
            for i in range(0, len(x), 64):
                q(x[i:i + 64])
        how = f"calibrated on {how}"
    else:
        how = "given"
    q.eval()
    with torch.no_grad():
        got = float(q.act_quant.scale())
    if scale is not None and got != float(np.float32(scale)):
        raise GapforgeError(f"--input-quant {spec}: Brevitas made the constant scale {got!r}, not {scale!r}")
    if not math.isfinite(got) or got <= 0:
        raise GapforgeError(f"{src.source}: --input-quant {spec}: calibration gave the scale {got} "
                            "(are the inputs all zero?); give the scale, e.g. int8:0.0078125")
    src.model = WithInputQuant(q, src.model).eval()
    src.notes.append(f"--input-quant {spec}: inserted QuantIdentity({kind}, scale {got!r} {how}) before the "
                     "model's first layer (module 'input_quant'; the model is 'model'); fidelity is measured "
                     "against this wrapped model")
    return src
