"""A 1-D upsampler (an audio decoder's shape): QuantConv1d, then QuantConvTranspose1d k=5 s=3 p=2
output_padding=1 (per-channel weights, Int32Bias) followed by a QuantIdentity, then a depthwise
QuantConvTranspose1d k=4 s=2 p=1 (groups = channels, no bias) followed by QuantReLU, and a grouped one
k=2 s=2 (groups=2, Int32Bias) as the last layer."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _rand import calibrated, inputs
from brevitas.quant import Int8WeightPerChannelFloat, Int32Bias


class Up1d(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv = qnn.QuantConv1d(3, 4, 3, padding=1, bias=True)
        self.r0 = qnn.QuantReLU(return_quant_tensor=True)
        self.up1 = qnn.QuantConvTranspose1d(4, 4, 5, stride=3, padding=2, output_padding=1,
                                            weight_quant=Int8WeightPerChannelFloat, bias_quant=Int32Bias)
        self.q1 = qnn.QuantIdentity(return_quant_tensor=True)
        self.dw = qnn.QuantConvTranspose1d(4, 4, 4, stride=2, padding=1, groups=4, bias=False)
        self.r2 = qnn.QuantReLU(return_quant_tensor=True)
        self.up3 = qnn.QuantConvTranspose1d(4, 6, 2, stride=2, groups=2, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.q1(self.up1(self.r0(self.conv(self.qin(x)))))
        return self.up3(self.r2(self.dw(x)))


def create_model():
    return calibrated(Up1d(), (3, 7))


def example_input():
    return inputs((3, 7), 1, 0)


def held_out_data():
    return inputs((3, 7), 8, 1), torch.zeros(8, dtype=torch.long)
