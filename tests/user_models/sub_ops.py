"""Subtraction as users write it: QuantTensor - QuantTensor through one shared quantizer (Brevitas requires
equal scales), x - number and number - x on a quantized activation, torch.sub of two float layer outputs
(different scales), Tensor.sub of a constant tensor, sigmoid(x) - 0.5 (part of a table); each followed by a
quantizer. Before, every one was refused ('unsupported operation sub')."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _digits import factories


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(1, 4, 3, padding=1, bias=True)
        self.c2 = qnn.QuantConv2d(1, 4, 3, padding=1, bias=True)
        self.shared = qnn.QuantIdentity(return_quant_tensor=True)
        self.q1 = qnn.QuantReLU(return_quant_tensor=True)
        self.q2 = qnn.QuantIdentity()
        self.q3 = qnn.QuantIdentity()
        self.q4 = qnn.QuantIdentity()
        self.q5 = qnn.QuantIdentity()
        self.q6 = qnn.QuantIdentity(return_quant_tensor=True)
        self.register_buffer("mid", torch.linspace(-0.5, 0.5, 8).reshape(1, 1, 1, 8))
        self.fc = qnn.QuantLinear(4 * 64 * 4, 10, bias=True)

    def forward(self, x):
        x = self.qin(x)
        a, b = self.shared(self.c1(x)), self.shared(self.c2(x))
        d = self.q1(a - b)  # QuantTensor - QuantTensor (one scale)
        e = self.q2(d - 0.25)  # QuantTensor - number
        f = self.q3(1.0 - e)  # number - tensor
        g = self.q4(torch.sub(self.c1(x), self.c2(x)))  # two float conv outputs: different scales
        h = self.q5(g.sub(self.mid))  # Tensor.sub of a constant tensor
        k = self.q5(torch.sigmoid(h) - 0.5)  # a float function minus a number: one table
        return self.fc(self.q6(torch.cat([f, g, h, k], 1)).flatten(1))


create_model, example_input, held_out_data = factories(Net)
