"""Sweep finding: brevitas.nn.QuantHardSwish (a QuantNLAL like QuantSigmoid / QuantTanh: [input_quant],
then nn.Hardswish inside its activation quantizer's proxy) was refused as 'unsupported module class'. It is
one table (lut); its default unsigned quantizer clamps the negative part of hardswish to 0, as Brevitas."""

import brevitas.nn as qnn
import torch.nn as nn
from _rand import factories
from brevitas.quant import Int8ActPerTensorFloat

SHAPE = (2, 6, 6)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(2, 4, 3, padding=1, bias=True)
        self.hs = qnn.QuantHardSwish(input_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.c2 = qnn.QuantConv2d(4, 4, 3, padding=1, bias=True)
        self.q2 = qnn.QuantIdentity()
        self.hs2 = qnn.QuantHardSwish(act_quant=Int8ActPerTensorFloat)  # signed output: keeps the negative part

    def forward(self, x):
        x = self.hs(self.c1(self.qin(x)))
        return self.hs2(self.q2(self.c2(x)))


create_model, example_input, held_out_data = factories(Net, SHAPE, 16)
