"""Global average pooling of a large map (32 x 32) of 256 uint8 channels straight into a QuantLinear without an
input quantizer: the window sums reach 1024 * 255, and the linear's worst-case accumulator exceeds 2^31, so the
planner cannot prove the int32 accumulation and refuses it in one line, asking for a quantizer before the
layer (a QuantIdentity after the pool gives 8-bit codes again). Random weights, calibrated on random inputs."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _rand import calibrated, inputs

SHAPE = (1, 32, 32)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(1, 256, 1, bias=True)
        self.relu = qnn.QuantReLU(return_quant_tensor=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = qnn.QuantLinear(256, 10, bias=True)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(self.quant(x)))), 1))


def create_model():
    torch.manual_seed(0)
    return calibrated(Net(), SHAPE)


def example_input():
    return inputs(SHAPE, 1, 3)
