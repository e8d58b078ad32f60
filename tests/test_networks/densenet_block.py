"""DenseNet-style block on 16x16 digits: each conv's output is concatenated to the running feature
map with torch.cat(dim=1) of QuantTensors that share one QuantReLU module instance (equal scales),
growing the channels 8 -> 16 -> 24 over two concatenations; then AvgPool2d(2) requantized by a
QuantIdentity and a linear classifier; exercises the explicit channel Concat and average pooling."""

import torch
import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network

SIZE = 16
GROWTH = 8


class DenseNetBlockNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv0 = qnn.QuantConv2d(1, GROWTH, 3, padding=1, bias=True, bias_quant=Int32Bias)
        # one module instance quantizes every concatenated feature map -> equal scales
        self.cat_relu = qnn.QuantReLU(return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(GROWTH, GROWTH, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.conv2 = qnn.QuantConv2d(2 * GROWTH, GROWTH, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.pool = nn.AvgPool2d(2)
        self.pool_quant = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(3 * GROWTH * 8 * 8, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.quant_in(x)
        a = self.cat_relu(self.conv0(x))
        b = self.cat_relu(self.conv1(a))
        x1 = torch.cat([a, b], dim=1)
        c = self.cat_relu(self.conv2(x1))
        x2 = torch.cat([x1, c], dim=1)
        out = self.pool_quant(self.pool(x2))
        out = out.view(out.size(0), -1)
        return self.fc(out)


create_model, example_input, held_out_data = network("densenet_block", DenseNetBlockNet, size=SIZE)
