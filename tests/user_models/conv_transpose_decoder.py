"""A small convolutional decoder as users write one: a strided QuantConv2d encoder, then three
QuantConvTranspose2d upsamplers (k=3 s=2 p=1 output_padding=1 with per-channel weights and an Int32Bias,
followed by QuantReLU; k=4 s=2 p=1 without bias and with its own output quantizer; k=2 s=2 with the
default float bias as the last layer, so the network returns its accumulator)."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _rand import calibrated, inputs
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Int32Bias


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.enc = qnn.QuantConv2d(2, 6, 3, stride=2, padding=1, bias=True)
        self.r0 = qnn.QuantReLU(return_quant_tensor=True)
        self.up1 = qnn.QuantConvTranspose2d(6, 5, 3, stride=2, padding=1, output_padding=1,
                                            weight_quant=Int8WeightPerChannelFloat, bias_quant=Int32Bias)
        self.r1 = qnn.QuantReLU(return_quant_tensor=True)
        self.up2 = qnn.QuantConvTranspose2d(5, 4, 4, stride=2, padding=1, bias=False,
                                            output_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.up3 = qnn.QuantConvTranspose2d(4, 2, 2, stride=2)

    def forward(self, x):
        x = self.r0(self.enc(self.qin(x)))
        return self.up3(self.up2(self.r1(self.up1(x))))


def create_model():
    return calibrated(Decoder(), (2, 6, 5))


def example_input():
    return inputs((2, 6, 5), 1, 0)


def held_out_data():
    return inputs((2, 6, 5), 8, 1), torch.zeros(8, dtype=torch.long)
