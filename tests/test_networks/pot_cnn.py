"""Power-of-two scales on 16x16 digits: every weight (Int8WeightPerTensorFixedPoint) and activation
(Int8ActPerTensorFixedPoint / Uint8ActPerTensorFixedPoint) scale is a power of two, biases Int32Bias;
the network has a max pooling, a residual add whose operands share one fixed-point QuantIdentity
(equal scales) and an AvgPool2d(2) requantized by a QuantIdentity; exercises requantization that
reduces to pure shifts."""

import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Int32Bias,
                            Uint8ActPerTensorFixedPoint)

from _common import network

SIZE = 16


def conv(cin, cout):
    return qnn.QuantConv2d(cin, cout, 3, padding=1, weight_quant=Int8WeightPerTensorFixedPoint,
                           bias=True, bias_quant=Int32Bias)


def relu():
    return qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)


def ident():
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)


class PoTCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = ident()
        self.conv1 = conv(1, 16)
        self.relu1 = relu()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = conv(16, 16)
        self.relu2 = relu()
        self.conv3 = conv(16, 16)
        self.add_quant = ident()  # shared by both add operands
        self.relu3 = relu()
        self.pool2 = nn.AvgPool2d(2)
        self.pool_quant = ident()
        self.fc = qnn.QuantLinear(16 * 4 * 4, 10, weight_quant=Int8WeightPerTensorFixedPoint,
                                  bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.quant_in(x)
        identity = self.pool1(self.relu1(self.conv1(x)))
        out = self.conv3(self.relu2(self.conv2(identity)))
        out = self.add_quant(out) + self.add_quant(identity)
        out = self.pool_quant(self.pool2(self.relu3(out)))
        out = out.view(out.size(0), -1)
        return self.fc(out)


create_model, example_input, held_out_data = network("pot_cnn", PoTCNN, size=SIZE)
