"""1x1 bottleneck residual block on 16x16 digits: a stem conv, then 1x1 reduce (32 -> 8) -> 3x3 ->
1x1 expand (8 -> 32), added to the block input; one shared QuantIdentity module instance quantizes
both the expanded branch and the identity (equal scales) before the QuantTensor add, followed by a
QuantReLU, max pooling and a linear classifier; exercises pointwise convolutions and the residual
Add where the identity operand is requantized."""

import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network

SIZE = 16


class Bottleneck1x1Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.stem = qnn.QuantConv2d(1, 32, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.stem_relu = qnn.QuantReLU(return_quant_tensor=True)
        self.pool1 = nn.MaxPool2d(2)
        self.reduce = qnn.QuantConv2d(32, 8, 1, bias=True, bias_quant=Int32Bias)
        self.relu_r = qnn.QuantReLU(return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(8, 8, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.relu_c = qnn.QuantReLU(return_quant_tensor=True)
        self.expand = qnn.QuantConv2d(8, 32, 1, bias=True, bias_quant=Int32Bias)
        # shared: applied to both add operands -> equal scales
        self.add_quant = qnn.QuantIdentity(return_quant_tensor=True)
        self.relu_out = qnn.QuantReLU(return_quant_tensor=True)
        self.pool2 = nn.MaxPool2d(2)
        self.fc = qnn.QuantLinear(32 * 4 * 4, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.quant_in(x)
        identity = self.pool1(self.stem_relu(self.stem(x)))
        out = self.relu_r(self.reduce(identity))
        out = self.relu_c(self.conv(out))
        out = self.expand(out)
        out = self.add_quant(out) + self.add_quant(identity)
        out = self.pool2(self.relu_out(out))
        out = out.view(out.size(0), -1)
        return self.fc(out)


create_model, example_input, held_out_data = network("bottleneck_1x1", Bottleneck1x1Net, size=SIZE)
