"""Sub-pixel upsampling as users write it (ESPCN): a QuantConv2d to r^2 * C channels, nn.PixelShuffle(2)
after its QuantReLU, a QuantConv2d, then F.pixel_unshuffle back (space to depth) before the last
QuantConv2d."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
import torch.nn.functional as F
from _rand import calibrated, inputs


class SubPixel(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(2, 12, 3, padding=1, bias=True)
        self.r1 = qnn.QuantReLU(return_quant_tensor=True)
        self.shuffle = nn.PixelShuffle(2)
        self.c2 = qnn.QuantConv2d(3, 4, 3, padding=1, bias=True)
        self.q2 = qnn.QuantIdentity(return_quant_tensor=True)
        self.c3 = qnn.QuantConv2d(16, 3, 1, bias=True)

    def forward(self, x):
        x = self.q2(self.c2(self.shuffle(self.r1(self.c1(self.qin(x))))))
        return self.c3(F.pixel_unshuffle(x, 2))


def create_model():
    return calibrated(SubPixel(), (2, 4, 5))


def example_input():
    return inputs((2, 4, 5), 1, 0)


def held_out_data():
    return inputs((2, 4, 5), 8, 1), torch.zeros(8, dtype=torch.long)
