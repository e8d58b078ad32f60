"""A small UNet / FPN decoder with bilinear upsampling, as users write it: nn.Upsample(scale_factor=2,
mode='bilinear') then torch.cat with the skip (one shared QuantIdentity on both branches), F.interpolate(
mode='bilinear', align_corners=True) of a QuantReLU(return_quant_tensor=False) output added to a lateral
convolution (FPN) before a QuantReLU, nn.UpsamplingBilinear2d into a QuantConv2d's own input quantizer, and
a per-axis factor (3, 2) with a zero-point quantizer before it."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
import torch.nn.functional as F
from _rand import calibrated, inputs
from brevitas.quant import Int8ActPerTensorFloat, ShiftedUint8ActPerTensorFloat

SHAPE = (2, 8, 8)


class UNetBilinear(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(7)
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.enc1 = qnn.QuantConv2d(2, 4, 3, padding=1, bias=True)
        self.r1 = qnn.QuantReLU(return_quant_tensor=True)
        self.pool = nn.MaxPool2d(2)
        self.enc2 = qnn.QuantConv2d(4, 6, 3, padding=1, bias=True)
        self.r2 = qnn.QuantReLU(return_quant_tensor=True)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.catq = qnn.QuantIdentity(return_quant_tensor=True)
        self.dec = qnn.QuantConv2d(10, 4, 3, padding=1, bias=True)
        self.r3 = qnn.QuantReLU(return_quant_tensor=False)
        self.lat = qnn.QuantConv2d(4, 4, 1, bias=True)
        self.r4 = qnn.QuantReLU(return_quant_tensor=True)
        self.up2 = nn.UpsamplingBilinear2d(scale_factor=2)
        self.head = qnn.QuantConv2d(4, 3, 3, stride=2, padding=1, bias=True, input_quant=Int8ActPerTensorFloat)
        self.qz = qnn.QuantIdentity(ShiftedUint8ActPerTensorFloat, return_quant_tensor=True)
        self.qup = qnn.QuantIdentity(return_quant_tensor=True)
        self.out = qnn.QuantConv2d(3, 2, 3, stride=(3, 2), bias=True)

    def forward(self, x):
        skip = self.r1(self.enc1(self.qin(x)))                      # [N, 4, 8, 8]
        deep = self.r2(self.enc2(self.pool(skip)))                  # [N, 6, 4, 4]
        x = torch.cat([self.catq(self.up(deep)), self.catq(skip)], dim=1)
        top = self.r3(self.dec(x))                                  # plain float tensor on the grid
        top = F.interpolate(F.max_pool2d(top, 2), scale_factor=2, mode="bilinear", align_corners=True)
        x = self.r4(top + self.lat(skip))                           # FPN: upsampled + lateral, [N, 4, 8, 8]
        x = self.qz(self.head(self.up2(x)))                         # 16 x 16 -> 8 x 8, zero point != 0
        x = self.qup(F.interpolate(x, scale_factor=(3, 2), mode="bilinear"))  # [N, 3, 24, 16]
        return self.out(x)


def create_model():
    return calibrated(UNetBilinear(), SHAPE)


def example_input():
    return inputs(SHAPE, 1, 0)


def held_out_data():
    return inputs(SHAPE, 8, 1), torch.zeros(8, dtype=torch.long)
