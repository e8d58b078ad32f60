"""ShuffleNet's channel shuffle as users write it: x.view(b, g, c // g, h, w), torch.transpose(x, 1, 2)
.contiguous(), x.view(b, -1, h, w) between a grouped 1x1 convolution and a depthwise one (a 5-D
permute that is a 3-axis move on the device)."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _rand import calibrated, inputs


def channel_shuffle(x, groups):
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(b, -1, h, w)


class Shuffle(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(8)
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.gc = qnn.QuantConv2d(3, 6, 1, groups=3, bias=True)
        self.r = qnn.QuantReLU(return_quant_tensor=True)
        self.dw = qnn.QuantConv2d(6, 6, 3, padding=1, groups=6, bias=True)

    def forward(self, x):
        return self.dw(channel_shuffle(self.r(self.gc(self.qin(x))), 3))


def create_model():
    return calibrated(Shuffle(), (3, 5, 5))


def example_input():
    return inputs((3, 5, 5), 1, 0)


def held_out_data():
    return inputs((3, 5, 5), 8, 1), torch.zeros(8, dtype=torch.long)
