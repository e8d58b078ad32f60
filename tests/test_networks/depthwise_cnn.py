"""Depthwise-separable CNN on 16x16 digits: a stem conv, then twice a depthwise 3x3 QuantConv2d
(groups = channels) -> QuantReLU -> pointwise 1x1 QuantConv2d -> QuantReLU -> max pooling, and a
linear classifier; exercises grouped (depthwise) convolution and pointwise convolution."""

import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network

SIZE = 16


def kaiming_init(model):
    """He initialisation (no BatchNorm here; PyTorch's default init makes training stall)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


class DepthwiseCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.stem = qnn.QuantConv2d(1, 16, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.stem_relu = qnn.QuantReLU(return_quant_tensor=True)
        self.dw1 = qnn.QuantConv2d(16, 16, 3, padding=1, groups=16, bias=True, bias_quant=Int32Bias)
        self.dw1_relu = qnn.QuantReLU(return_quant_tensor=True)
        self.pw1 = qnn.QuantConv2d(16, 32, 1, bias=True, bias_quant=Int32Bias)
        self.pw1_relu = qnn.QuantReLU(return_quant_tensor=True)
        self.pool1 = nn.MaxPool2d(2)
        self.dw2 = qnn.QuantConv2d(32, 32, 3, padding=1, groups=32, bias=True, bias_quant=Int32Bias)
        self.dw2_relu = qnn.QuantReLU(return_quant_tensor=True)
        self.pw2 = qnn.QuantConv2d(32, 32, 1, bias=True, bias_quant=Int32Bias)
        self.pw2_relu = qnn.QuantReLU(return_quant_tensor=True)
        self.pool2 = nn.MaxPool2d(2)
        self.fc = qnn.QuantLinear(32 * 4 * 4, 10, bias=True, bias_quant=Int32Bias)
        kaiming_init(self)

    def forward(self, x):
        x = self.stem_relu(self.stem(self.quant_in(x)))
        x = self.pool1(self.pw1_relu(self.pw1(self.dw1_relu(self.dw1(x)))))
        x = self.pool2(self.pw2_relu(self.pw2(self.dw2_relu(self.dw2(x)))))
        x = x.view(x.size(0), -1)
        return self.fc(x)


create_model, example_input, held_out_data = network("depthwise_cnn", DepthwiseCNN, size=SIZE)
