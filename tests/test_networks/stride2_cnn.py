"""Strided CNN on 16x16 digits: downsampling only by stride-2 QuantConv2d layers (no pooling): a 3x3
stride-2 conv with padding 1 (16 -> 8), a 3x3 stride-2 conv without padding (8 -> 3) and a 1x1
stride-2 conv (3 -> 2), each followed by a QuantReLU, then a linear classifier; exercises strided
convolution output-size arithmetic with and without padding."""

import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network

SIZE = 16


class Stride2CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 16, 3, stride=2, padding=1, bias=True, bias_quant=Int32Bias)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.conv2 = qnn.QuantConv2d(16, 32, 3, stride=2, padding=0, bias=True, bias_quant=Int32Bias)
        self.relu2 = qnn.QuantReLU(return_quant_tensor=True)
        self.conv3 = qnn.QuantConv2d(32, 32, 1, stride=2, bias=True, bias_quant=Int32Bias)
        self.relu3 = qnn.QuantReLU(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(32 * 2 * 2, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.quant_in(x)
        x = self.relu1(self.conv1(x))   # 8x8
        x = self.relu2(self.conv2(x))   # 3x3
        x = self.relu3(self.conv3(x))   # 2x2
        x = x.view(x.size(0), -1)
        return self.fc(x)


create_model, example_input, held_out_data = network("stride2_cnn", Stride2CNN, size=SIZE)
