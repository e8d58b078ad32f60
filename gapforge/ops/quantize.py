"""quantize: the network's float32 input -> integers (runs on the host, never on the device)."""

import numpy as np

import atomic_ops
from atomic_ops.quantize import scaled
from gapforge.ops._base import IROp
from gapforge.ops._shapes import same_shape


def _run(engine, step, inputs):
    t = engine.net.tensors[step.output]
    lo, hi = t.qrange()
    return atomic_ops.get("quantize")(inputs[0], t.scale, t.zero_point, lo, hi, t.channel_axis)


def _exact(engine, step, inputs):
    t = engine.net.tensors[step.output]
    return scaled(inputs[0], t.scale, t.zero_point, t.channel_axis).astype(np.float64)


IR_OP = IROp(
    name="quantize",
    summary="Quantize the float32 network input.",
    semantics="q = clamp(rne(x / s + zp)) with the division and the addition done in float32, exactly as "
              "Brevitas' input quantizer (so +-inf and huge inputs saturate to the range; NaN inputs are "
              "refused); executed by the host when preparing the device's input.",
    inputs="one float tensor (a network input)",
    reference="quantize",
    run=_run,
    exact=_exact,
    host=True,
    infer_shapes=same_shape,
)
# Emitted by the activation-quantizer frontends (see requantize.py) when their input is float.
