"""Third-party MobileNet v1 (brevitas_examples.imagenet_classification.models.mobilenetv1.MobileNet,
used unmodified) at reduced width, 8-bit weights and activations, on 3x64x64 digits: per-channel
weight scales, BatchNorm between every bias-free conv and its QuantReLU (several with per-channel
activation scales), depthwise-separable blocks with stride-2 depthwise convs, a TruncAvgPool2d and
an Int32Bias classifier. The model has no input quantizer (it assumes an 8-bit image), so it is
wrapped as nn.Sequential(QuantIdentity(return_quant_tensor=True), model), the documented fix; its
BatchNorm statistics are warmed up on training data before calibration."""

from _common import network
from _thirdparty import MOBILENET_SIZE, MOBILENET_CHANNELS, mobilenet_v1


def build():
    return mobilenet_v1(8)


create_model, example_input, held_out_data = network(
    "thirdparty_mobilenet_v1", build, size=MOBILENET_SIZE, channels=MOBILENET_CHANNELS, epochs=2, batch=32)
