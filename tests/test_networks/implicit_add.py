"""Implicit float add on 16x16 digits: two parallel branches end in QuantReLUs with
return_quant_tensor=False and independent (different) scales, so `a + b` adds plain float tensors
(dequantized values) that Brevitas never requantized to a common scale; a QuantReLU requantizes the
sum before further conv layers and a linear classifier; exercises an Add whose operands have
different scales and whose output scale comes from the following quantizer."""

import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network

SIZE = 16


class ImplicitAddNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 8, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.pool1 = nn.MaxPool2d(2)
        self.conv_a = qnn.QuantConv2d(8, 16, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.relu_a = qnn.QuantReLU(return_quant_tensor=False)
        self.conv_b = qnn.QuantConv2d(8, 16, 1, bias=True, bias_quant=Int32Bias)
        self.relu_b = qnn.QuantReLU(return_quant_tensor=False)
        self.relu_sum = qnn.QuantReLU(return_quant_tensor=True)
        self.conv2 = qnn.QuantConv2d(16, 16, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.relu2 = qnn.QuantReLU(return_quant_tensor=True)
        self.pool2 = nn.MaxPool2d(2)
        self.fc = qnn.QuantLinear(16 * 4 * 4, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.quant_in(x)
        x = self.pool1(self.relu1(self.conv1(x)))
        a = self.relu_a(self.conv_a(x))   # float tensor, scale s_a
        b = self.relu_b(self.conv_b(x))   # float tensor, scale s_b != s_a
        z = a + b                         # plain float add
        x = self.relu_sum(z)
        x = self.pool2(self.relu2(self.conv2(x)))
        x = x.view(x.size(0), -1)
        return self.fc(x)


create_model, example_input, held_out_data = network("implicit_add", ImplicitAddNet, size=SIZE)
