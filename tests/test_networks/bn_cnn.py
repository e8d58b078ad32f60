"""BatchNorm CNN on 16x16 digits: twice QuantConv2d(bias=False) -> nn.BatchNorm2d -> QuantReLU, then a
QuantConv2d with an unquantized float bias -> nn.BatchNorm2d -> plain nn.ReLU -> QuantIdentity, and a
linear classifier; exercises folding BatchNorm (trained running statistics) and float biases into
the integer requantization between quantizers."""

import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network

SIZE = 16


class BNCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = qnn.QuantConv2d(8, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.relu2 = qnn.QuantReLU(return_quant_tensor=True)
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = qnn.QuantConv2d(16, 16, 3, padding=1, bias=True)  # float bias
        self.bn3 = nn.BatchNorm2d(16)
        self.relu3 = nn.ReLU()
        self.quant3 = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(16 * 4 * 4, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.quant_in(x)
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))
        x = self.quant3(self.relu3(self.bn3(self.conv3(x))))
        x = x.view(x.size(0), -1)
        return self.fc(x)


create_model, example_input, held_out_data = network("bn_cnn", BNCNN, size=SIZE, epochs=3)
