"""a - b written with QuantEltwiseAdd and a negated QuantTensor, self.add(a, -b): the negation is a table into the
shared input quantizer (neg then quantize), the add an ordinary same-scale add."""
import brevitas.nn as qnn
import torch.nn as nn
from _digits import factories


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(1, 4, 3, padding=1, bias=True)
        self.c2 = qnn.QuantConv2d(1, 4, 3, padding=1, bias=True)
        self.q1 = qnn.QuantIdentity(return_quant_tensor=True)
        self.q2 = qnn.QuantIdentity(return_quant_tensor=True)
        self.add = qnn.QuantEltwiseAdd(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 * 64, 10, bias=True)

    def forward(self, x):
        x = self.qin(x)
        return self.fc(self.add(self.q1(self.c1(x)), -self.q2(self.c2(x))).flatten(1))


create_model, example_input, held_out_data = factories(Net)
