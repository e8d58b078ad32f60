"""Third-party ResNet-18 (brevitas_examples.bnn_pynq.models.resnet.QuantResNet with QuantBasicBlock,
used unmodified, as built by quant_resnet18 for the resnet18_4w4a config) with 2-bit weights and
activations (first conv and classifier 8-bit weights), on 3x32x32 digits: 64..512 channels,
per-channel weight scales, BatchNorm between bias-free convs and QuantReLUs, residual adds of
QuantTensors sharing the previous block's output quantizer, 1x1 stride-2 downsampling shortcuts
with their own BatchNorm + QuantReLU, a TruncAvgPool2d(4) truncating to 8 bits (FLOOR) and an
Int32Bias classifier. The model has no input quantizer (it assumes an 8-bit image), so it is
wrapped as nn.Sequential(QuantIdentity(return_quant_tensor=True), model), the documented fix; its
BatchNorm and activation-range statistics are warmed up on training data instead of calibration,
and (11M parameters) it is trained for a few optimizer steps only."""

from _common import network
from _thirdparty import RESNET_SIZE, RESNET_CHANNELS, bnn_pynq_resnet18


def build():
    return bnn_pynq_resnet18(2)


create_model, example_input, held_out_data = network(
    "thirdparty_resnet18_2w2a", build, size=RESNET_SIZE, channels=RESNET_CHANNELS, epochs=1, batch=32, lr=2e-3, calib_batches=0, max_steps=24)
