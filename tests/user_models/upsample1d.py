"""A 1-D decoder on (batch, channels, time): QuantConv1d, QuantReLU, nn.Upsample(scale_factor=3) and
F.interpolate(x, scale_factor=2) of a QuantIdentity(return_quant_tensor=False) output, QuantConv1d."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
import torch.nn.functional as F
from _rand import calibrated, inputs

SHAPE = (3, 10)


class Decoder1d(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(6)
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.c1 = qnn.QuantConv1d(3, 5, 3, padding=1, bias=True)
        self.r1 = qnn.QuantReLU(return_quant_tensor=True)
        self.up = nn.Upsample(scale_factor=3)
        self.c2 = qnn.QuantConv1d(5, 4, 3, stride=2, bias=True)
        self.q2 = qnn.QuantIdentity(return_quant_tensor=False)
        self.c3 = qnn.QuantConv1d(4, 2, 5, stride=3, bias=True)

    def forward(self, x):
        x = self.up(self.r1(self.c1(self.qin(x))))   # [N, 5, 30]
        x = self.q2(self.c2(x))                       # [N, 4, 14]
        return self.c3(F.interpolate(x, scale_factor=2))  # [N, 4, 28] -> [N, 2, 8]


def create_model():
    return calibrated(Decoder1d(), SHAPE)


def example_input():
    return inputs(SHAPE, 1, 0)


def held_out_data():
    return inputs(SHAPE, 8, 1), torch.zeros(8, dtype=torch.long)
