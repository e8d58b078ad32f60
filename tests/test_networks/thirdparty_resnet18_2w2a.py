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

import torch
import torch.nn as nn
import brevitas.nn as qnn
from brevitas_examples.bnn_pynq.models.resnet import QuantBasicBlock, QuantResNet

from _common import example, held_out, split, trained

SIZE = 32
CHANNELS = 3
BITS = 2
STEPS = 24  # 2-bit needs more steps than 4-bit
LR = 2e-3


def warm_up(model, x, batch=32):
    """Train-mode forward passes without gradients, before _common.trained() calibrates.

    They set the BatchNorm running statistics (a fresh BatchNorm is an identity in eval mode) and
    collect the activation quantizers' initial range statistics. The usual calibration pass cannot
    be used: QuantBasicBlock asserts that it adds QuantTensors, and calibration_mode disables
    quantization (so calib_batches=0; the empty calibration then turns the statistics gathered here
    into the learned scales). The BatchNorm momentum is then raised to 0.5 so that after the few
    training steps the running statistics match the final weights (with the default 0.1 they lag
    behind and the eval-mode accuracy collapses).
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.momentum = None  # cumulative average over the warm-up batches
    model.train()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            model(x[i:i + batch])
    for bn in bns:
        bn.momentum = 0.5
    return model.eval()


def build():
    model = QuantResNet(block_impl=QuantBasicBlock, num_blocks=[2, 2, 2, 2], num_classes=10,
                        weight_bit_width=BITS, act_bit_width=BITS)
    model = nn.Sequential(qnn.QuantIdentity(return_quant_tensor=True), model)
    return warm_up(model, split(SIZE, CHANNELS)[0][0][:64])


def create_model():
    return trained("thirdparty_resnet18_2w2a", build, size=SIZE, channels=CHANNELS, epochs=1, batch=32,
                   lr=LR, calib_batches=0, max_steps=STEPS)


def example_input():
    return example(SIZE, CHANNELS)


def held_out_data():
    return held_out(SIZE, CHANNELS)
