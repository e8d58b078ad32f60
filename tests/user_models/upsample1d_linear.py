"""A 1-D decoder on (batch, channels, time) with linear upsampling: nn.Upsample(scale_factor=3, mode='linear')
of a QuantReLU output into a QuantConv1d's input quantizer, F.interpolate(x, scale_factor=2, mode='linear',
align_corners=True) of a QuantIdentity(return_quant_tensor=False) output, a QuantIdentity, QuantConv1d."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
import torch.nn.functional as F
from _rand import calibrated, inputs
from brevitas.quant import Int8ActPerTensorFloat

SHAPE = (3, 10)


class Decoder1dLinear(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(8)
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.c1 = qnn.QuantConv1d(3, 5, 3, padding=1, bias=True)
        self.r1 = qnn.QuantReLU(return_quant_tensor=True)
        self.up = nn.Upsample(scale_factor=3, mode="linear")
        self.c2 = qnn.QuantConv1d(5, 4, 3, stride=2, bias=True, input_quant=Int8ActPerTensorFloat)
        self.q2 = qnn.QuantIdentity(return_quant_tensor=False)
        self.q3 = qnn.QuantIdentity(return_quant_tensor=True)
        self.c3 = qnn.QuantConv1d(4, 2, 5, stride=3, bias=True)

    def forward(self, x):
        x = self.up(self.r1(self.c1(self.qin(x))))   # [N, 5, 30]
        x = self.q2(self.c2(x))                       # [N, 4, 14]
        x = self.q3(F.interpolate(x, scale_factor=2, mode="linear", align_corners=True))  # [N, 4, 28]
        return self.c3(x)                             # [N, 2, 8]


def create_model():
    return calibrated(Decoder1dLinear(), SHAPE)


def example_input():
    return inputs(SHAPE, 1, 0)


def held_out_data():
    return inputs(SHAPE, 8, 1), torch.zeros(8, dtype=torch.long)
