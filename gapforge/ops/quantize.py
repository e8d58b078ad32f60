"""quantize: the network's float32 input -> integers (runs on the host, never on the device)."""

from gapforge.ops._base import IROp
from gapforge.ops._shapes import same_shape

IR_OP = IROp(
    name="quantize",
    summary="Quantize the float32 network input.",
    semantics="q = clamp(rne(x / s + zp)) with the division and the addition done in float32, exactly as "
              "Brevitas' input quantizer (so +-inf and huge inputs saturate to the range; NaN inputs are "
              "refused); executed by the host when preparing the device's input.",
    inputs="one float tensor (a network input)",
    reference="quantize",
    infer_shapes=same_shape,
)
# Emitted by the activation-quantizer frontends (see requantize.py) when their input is float.
