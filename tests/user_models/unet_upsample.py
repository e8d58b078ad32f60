"""A small UNet / FPN decoder as users write it: nn.Upsample(scale_factor=2) then torch.cat with the skip
connection (one shared QuantIdentity on both branches, as Brevitas' cat requires), F.interpolate(size=...)
of a QuantReLU(return_quant_tensor=False) output added to a lateral convolution, nn.UpsamplingNearest2d,
a per-axis factor (2, 1), and an upsampled accumulator (a convolution's float output) before its quantizer."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
import torch.nn.functional as F
from _rand import calibrated, inputs

SHAPE = (2, 8, 8)


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.enc1 = qnn.QuantConv2d(2, 4, 3, padding=1, bias=True)
        self.r1 = qnn.QuantReLU(return_quant_tensor=True)
        self.pool = nn.MaxPool2d(2)
        self.enc2 = qnn.QuantConv2d(4, 6, 3, padding=1, bias=True)
        self.r2 = qnn.QuantReLU(return_quant_tensor=True)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.catq = qnn.QuantIdentity(return_quant_tensor=True)
        self.dec = qnn.QuantConv2d(10, 4, 3, padding=1, bias=True)
        self.r3 = qnn.QuantReLU(return_quant_tensor=False)
        self.lat = qnn.QuantConv2d(4, 4, 1, bias=True)
        self.r4 = qnn.QuantReLU(return_quant_tensor=True)
        self.up2 = nn.UpsamplingNearest2d(scale_factor=2)
        self.head = qnn.QuantConv2d(4, 3, 3, stride=2, padding=1, bias=True)
        self.qacc = qnn.QuantIdentity(return_quant_tensor=True)
        self.out = qnn.QuantConv2d(3, 2, (1, 3), stride=(2, 1), bias=True)

    def forward(self, x):
        skip = self.r1(self.enc1(self.qin(x)))                      # [N, 4, 8, 8]
        deep = self.r2(self.enc2(self.pool(skip)))                  # [N, 6, 4, 4]
        x = torch.cat([self.catq(self.up(deep)), self.catq(skip)], dim=1)
        top = self.r3(self.dec(x))                                  # float tensor on the grid
        top = F.interpolate(F.max_pool2d(top, 2), size=(8, 8))      # back to 8 x 8
        x = self.r4(top + self.lat(skip))
        x = self.head(self.up2(x))                                  # 16 x 16 -> 8 x 8, float accumulator
        x = self.qacc(F.interpolate(x, scale_factor=(2, 1)))        # the accumulator upsampled: [N, 3, 16, 8]
        return self.out(x)


def create_model():
    return calibrated(UNet(), SHAPE)


def example_input():
    return inputs(SHAPE, 1, 0)


def held_out_data():
    return inputs(SHAPE, 8, 1), torch.zeros(8, dtype=torch.long)
