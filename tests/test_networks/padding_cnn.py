"""Padding CNN on 16x16 digits: three 3x3 QuantConv2d layers with padding 0 (16 -> 14), 1 (7 -> 7)
and 2 (7 -> 9), each followed by a QuantReLU, one max pooling and a linear classifier; exercises
valid, 'same' and enlarging zero padding (the padded border must hold the quantized zero)."""

import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network

SIZE = 16


class PaddingCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 8, 3, padding=0, bias=True, bias_quant=Int32Bias)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = qnn.QuantConv2d(8, 16, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.relu2 = qnn.QuantReLU(return_quant_tensor=True)
        self.conv3 = qnn.QuantConv2d(16, 16, 3, padding=2, bias=True, bias_quant=Int32Bias)
        self.relu3 = qnn.QuantReLU(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(16 * 9 * 9, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.quant_in(x)
        x = self.pool1(self.relu1(self.conv1(x)))  # 14x14 -> 7x7
        x = self.relu2(self.conv2(x))              # 7x7
        x = self.relu3(self.conv3(x))              # 9x9
        x = x.view(x.size(0), -1)
        return self.fc(x)


create_model, example_input, held_out_data = network("padding_cnn", PaddingCNN, size=SIZE)
