"""Sub-8-bit quantization on 16x16 digits: a signed 8-bit input QuantIdentity, then 4-bit weights
(weight_bit_width=4) on every conv and the linear layer, 4-bit QuantReLU activations and one 2-bit
QuantReLU; exercises narrow integer ranges (weights in [-7, 7], activations in [0, 15] / [0, 3])
stored in INT8 containers."""

import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network

SIZE = 16
WBITS = 4


class LowBitCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 16, 3, padding=1, weight_bit_width=WBITS, bias=True, bias_quant=Int32Bias)
        self.relu1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = qnn.QuantConv2d(16, 16, 3, padding=1, weight_bit_width=WBITS, bias=True, bias_quant=Int32Bias)
        self.relu2 = qnn.QuantReLU(bit_width=2, return_quant_tensor=True)
        self.conv3 = qnn.QuantConv2d(16, 16, 3, padding=1, weight_bit_width=WBITS, bias=True, bias_quant=Int32Bias)
        self.relu3 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.pool2 = nn.MaxPool2d(2)
        self.fc = qnn.QuantLinear(16 * 4 * 4, 10, weight_bit_width=WBITS, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.quant_in(x)
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.relu2(self.conv2(x))
        x = self.pool2(self.relu3(self.conv3(x)))
        x = x.view(x.size(0), -1)
        return self.fc(x)


create_model, example_input, held_out_data = network("lowbit_cnn", LowBitCNN, size=SIZE)
