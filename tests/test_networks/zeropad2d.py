"""Asymmetric zero padding before 2-D convolutions: nn.ZeroPad2d((left, right, top, bottom)),
nn.ConstantPad2d(..., 0.0) and F.pad with zeros, each folded into the following QuantConv2d's padding
(exact: the convolution's input has zero point 0, so the padded real zero is the code 0)."""

import brevitas.nn as qnn
import torch.nn as nn
import torch.nn.functional as F
from brevitas.quant import Int32Bias

from _common import network

SIZE = 12


def kaiming_init(model):
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


class ZeroPad2dCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.pad1 = nn.ZeroPad2d((1, 2, 0, 1))  # left, right, top, bottom ("same" for an even kernel)
        self.conv1 = qnn.QuantConv2d(1, 16, (2, 4), bias=True, bias_quant=Int32Bias)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.pad2 = nn.ConstantPad2d((0, 1, 0, 1), 0.0)  # TF-style "same" before a stride-2 conv
        self.conv2 = qnn.QuantConv2d(16, 16, 3, stride=2, bias=True, bias_quant=Int32Bias)
        self.relu2 = qnn.QuantReLU(return_quant_tensor=True)
        self.conv3 = qnn.QuantConv2d(16, 16, 3, groups=16, padding=1, bias=True, bias_quant=Int32Bias)
        self.relu3 = qnn.QuantReLU(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(16 * 6 * 8, 10, bias=True, bias_quant=Int32Bias)
        kaiming_init(self)

    def forward(self, x):
        x = self.relu1(self.conv1(self.pad1(self.quant_in(x))))
        x = self.relu2(self.conv2(self.pad2(x)))
        x = self.relu3(self.conv3(F.pad(x, (2, 0, 0, 0))))  # extra zeros on the left, added to padding=1
        return self.fc(x.flatten(1))


create_model, example_input, held_out_data = network("zeropad2d", ZeroPad2dCNN, size=SIZE)
