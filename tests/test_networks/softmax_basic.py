"""Softmax between quantized layers on the 8x8 digits read as 8 tokens of 8 features: a QuantLinear
(64-64, Int32Bias) whose int32 accumulator, viewed as 8 rows of 8, goes through a softmax over the
last axis and a Uint8 QuantIdentity; then a QuantLinear (64-32) with a signed QuantIdentity, a
softmax over the features of each of 4 rows of a quantized tensor (F.softmax, dim=-1) with a Uint8
QuantIdentity, and the classifier."""

import brevitas.nn as qnn
import torch.nn as nn
import torch.nn.functional as F
from brevitas.quant import Int32Bias, Uint8ActPerTensorFloat

from _common import network

SIZE = 8


class SoftmaxBasic(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(64, 64, bias=True, bias_quant=Int32Bias)
        self.softmax1 = nn.Softmax(dim=-1)
        self.q1 = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(64, 32, bias=True, bias_quant=Int32Bias)
        self.q2 = qnn.QuantIdentity(return_quant_tensor=True)
        self.q3 = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.fc3 = qnn.QuantLinear(32, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        b = x.shape[0]
        x = self.fc1(self.quant_in(x).flatten(1))
        x = self.q1(self.softmax1(x.view(b, 8, 8)))
        x = self.q2(self.fc2(x.flatten(1)))
        x = self.q3(F.softmax(x.view(b, 4, 8), dim=-1))
        return self.fc3(x.flatten(1))


create_model, example_input, held_out_data = network("softmax_basic", SoftmaxBasic, size=SIZE, epochs=6, lr=4e-3)
