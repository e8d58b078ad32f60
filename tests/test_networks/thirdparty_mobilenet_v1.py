"""Third-party MobileNet v1 (brevitas_examples.imagenet_classification.models.mobilenetv1.MobileNet,
used unmodified) at reduced width, 8-bit weights and activations, on 3x64x64 digits: per-channel
weight scales, BatchNorm between every bias-free conv and its QuantReLU (several with per-channel
activation scales), depthwise-separable blocks with stride-2 depthwise convs, a TruncAvgPool2d and
an Int32Bias classifier. The model has no input quantizer (it assumes an 8-bit image), so it is
wrapped as nn.Sequential(QuantIdentity(return_quant_tensor=True), model), the documented fix; its
BatchNorm statistics are warmed up on training data before calibration."""

import torch
import torch.nn as nn
import brevitas.nn as qnn
from brevitas.graph.calibrate import quantization_status_manager
from brevitas_examples.imagenet_classification.models.mobilenetv1 import MobileNet

from _common import example, held_out, split, trained

SIZE = 64
CHANNELS = 3
# the original [[32], [64], [128, 128], [256, 256], [512] * 6, [1024] * 2], narrowed and shortened
WIDTHS = [[8], [16], [32, 32], [64, 64], [128, 128], [256]]
BITS = 8


def warm_up_batchnorm(model, x, batch=64):
    """Set the BatchNorm running statistics from data (float forward pass, quantization off).

    _common.trained() calibrates the activation quantizers in eval mode, where a fresh BatchNorm
    (mean 0, var 1) is an identity; without this the calibrated scales do not match the
    normalised activations seen in training and QAT stalls.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    no_quant = quantization_status_manager(model, disable_act_quant=True, disable_weight_quant=True,
                                           disable_bias_quant=True, is_training=False)
    with torch.no_grad(), no_quant:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the warm-up batches
            bn.train()
        for i in range(0, len(x), batch):
            model(x[i:i + batch])
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum
        bn.eval()
    return model


def build():
    # 64 -> 31 (init block, stride 2, no padding) -> 31 -> 16 -> 8 -> 4 -> 2: final map 2x2
    model = MobileNet(channels=WIDTHS, first_stage_stride=False, act_bit_width=BITS,
                      weight_bit_width=BITS, round_average_pool=True, avg_pool_kernel_size=2,
                      in_channels=CHANNELS, num_classes=10)
    model = nn.Sequential(qnn.QuantIdentity(return_quant_tensor=True), model)
    return warm_up_batchnorm(model, split(SIZE, CHANNELS)[0][0][:256])


def create_model():
    return trained("thirdparty_mobilenet_v1", build, size=SIZE, channels=CHANNELS, epochs=2, batch=32)


def example_input():
    return example(SIZE, CHANNELS)


def held_out_data():
    return held_out(SIZE, CHANNELS)
