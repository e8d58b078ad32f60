"""Builders of the third-party models from ``brevitas_examples`` (used unmodified).

Both families assume an 8-bit image input and have no input quantizer, so they are wrapped as
``nn.Sequential(QuantIdentity(return_quant_tensor=True), model)``: the fix the compatibility checker
proposes. Their BatchNorm statistics must come from data before ``_common.trained`` calibrates and
trains (a fresh BatchNorm is an identity in eval mode), which each builder does in its own way.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import brevitas.nn as qnn
from brevitas.graph.calibrate import quantization_status_manager

from _common import split


def _batchnorms(model):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def warm_up_batchnorm(model, x, batch=64):
    """Set the BatchNorm running statistics from data (float forward pass, quantization off).

    Without this the activation quantizers are calibrated on un-normalised activations and QAT
    stalls.
    """
    bns = _batchnorms(model)
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


def warm_up_train_mode(model, x, batch=32):
    """Train-mode forward passes without gradients (for models calibration_mode cannot run).

    They set the BatchNorm running statistics and collect the activation quantizers' initial range
    statistics. QuantBasicBlock asserts that it adds QuantTensors, and calibration_mode disables
    quantization, so these models are trained with calib_batches=0 (the empty calibration turns the
    statistics gathered here into the learned scales). The BatchNorm momentum is then raised to 0.5
    so that after a few training steps the running statistics match the final weights (with the
    default 0.1 they lag behind and the eval-mode accuracy collapses).
    """
    bns = _batchnorms(model)
    for bn in bns:
        bn.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            model(x[i:i + batch])
    for bn in bns:
        bn.momentum = 0.5
    return model.eval()


def with_input_quant(model: nn.Module) -> nn.Module:
    return nn.Sequential(qnn.QuantIdentity(return_quant_tensor=True), model)


# MobileNet v1 at reduced width on 3x64x64 digits: the original
# [[32], [64], [128, 128], [256, 256], [512] * 6, [1024] * 2], narrowed and shortened.
MOBILENET_WIDTHS = [[8], [16], [32, 32], [64, 64], [128, 128], [256]]
MOBILENET_SIZE, MOBILENET_CHANNELS = 64, 3


def mobilenet_v1(bits: int, edge_bits: int | None = None) -> nn.Module:
    """brevitas_examples MobileNet; ``edge_bits`` for the first and last layer (default: ``bits``)."""
    from brevitas_examples.imagenet_classification.models.mobilenetv1 import MobileNet

    edge = edge_bits or bits
    # 64 -> 31 (init block, stride 2, no padding) -> 31 -> 16 -> 8 -> 4 -> 2: final map 2x2
    model = MobileNet(channels=MOBILENET_WIDTHS, first_stage_stride=False, act_bit_width=bits,
                      weight_bit_width=bits, first_layer_bit_width=edge, last_layer_bit_width=edge,
                      round_average_pool=True, avg_pool_kernel_size=2, in_channels=MOBILENET_CHANNELS,
                      num_classes=10)
    model = with_input_quant(model)
    return warm_up_batchnorm(model, split(MOBILENET_SIZE, MOBILENET_CHANNELS)[0][0][:256])


RESNET_SIZE, RESNET_CHANNELS = 32, 3


def bnn_pynq_resnet18(bits: int) -> nn.Module:
    """brevitas_examples.bnn_pynq QuantResNet-18 with ``bits``-bit weights and activations."""
    from brevitas_examples.bnn_pynq.models.resnet import QuantBasicBlock, QuantResNet

    model = QuantResNet(block_impl=QuantBasicBlock, num_blocks=[2, 2, 2, 2], num_classes=10,
                        weight_bit_width=bits, act_bit_width=bits)
    return warm_up_train_mode(with_input_quant(model), split(RESNET_SIZE, RESNET_CHANNELS)[0][0][:64])
