"""Second power-of-two network: per-channel power-of-two weights (a per-channel variant of Int8WeightPerTensorFixedPoint), a
depthwise 3x3 convolution, a channel concatenation of two branches that share one fixed-point
quantizer, max pooling and a linear classifier on 16x16 digits. Every scale is a power of two, so
the INT8 engine, the C code and onnxruntime on the QCDQ export must agree with Brevitas everywhere."""

import torch
import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Int32Bias,
                            Uint8ActPerTensorFixedPoint)

from _common import network

SIZE = 16


class Int8WeightPerChannelFixedPoint(Int8WeightPerTensorFixedPoint):
    """Power-of-two weight scale per output channel (Brevitas ships only the per-tensor variant)."""

    scaling_per_output_channel = True


def conv(cin, cout, k=3, groups=1):
    return qnn.QuantConv2d(cin, cout, k, padding=k // 2, groups=groups, weight_quant=Int8WeightPerChannelFixedPoint,
                           bias=True, bias_quant=Int32Bias)


def relu():
    return qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)


class PoTDwCat(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.conv1 = conv(1, 8)
        self.relu1 = relu()
        self.pool1 = nn.MaxPool2d(2)
        self.dw = conv(8, 8, groups=8)
        self.pw = conv(8, 8, k=1)
        self.cat_quant = relu()  # one quantizer for both concatenated branches: equal scales
        self.pool2 = nn.MaxPool2d(2)
        self.fc = qnn.QuantLinear(16 * 4 * 4, 10, weight_quant=Int8WeightPerChannelFixedPoint, bias=True,
                                  bias_quant=Int32Bias)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(self.quant_in(x))))
        a = self.cat_quant(self.dw(x))
        b = self.cat_quant(self.pw(x))
        x = self.pool2(torch.cat([a, b], dim=1))
        return self.fc(x.view(x.size(0), -1))


create_model, example_input, held_out_data = network("pot_dw_cat", PoTDwCat, size=SIZE)
