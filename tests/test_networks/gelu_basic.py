"""MLP with GELU between QuantLinear layers on the flat 64-feature 8x8 digits: an input
QuantIdentity, QuantLinear 64-64 with an output quantizer, nn.GELU (erf), a QuantIdentity,
QuantLinear 64-32 with an output quantizer, F.gelu(approximate="tanh"), a QuantIdentity, and the
QuantLinear 32-10 head; exercises the float-function tables (lut) of both GELU forms."""

import torch.nn as nn
import torch.nn.functional as F
import brevitas.nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int32Bias

from _common import network

SIZE = 8


class GeluMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(64, 64, bias=True, bias_quant=Int32Bias, output_quant=Int8ActPerTensorFloat,
                                   return_quant_tensor=True)
        self.gelu1 = nn.GELU()
        self.q1 = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(64, 32, bias=True, bias_quant=Int32Bias, output_quant=Int8ActPerTensorFloat,
                                   return_quant_tensor=True)
        self.q2 = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc3 = qnn.QuantLinear(32, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.quant_in(x)
        x = self.q1(self.gelu1(self.fc1(x)))
        x = self.q2(F.gelu(self.fc2(x), approximate="tanh"))
        return self.fc3(x)


create_model, example_input, held_out_data = network("gelu_basic", GeluMLP, size=SIZE, flat=True)
