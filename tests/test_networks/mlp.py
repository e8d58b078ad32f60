"""Multi-layer perceptron on the flat 64-feature 8x8 digits: an input QuantIdentity, three
QuantLinear layers (64-64-32-10, Int32Bias) with QuantReLU in between; exercises fully connected
layers on a 2-D (batch, features) input without any convolution, pooling or reshape."""

import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network

SIZE = 8


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(64, 64, bias=True, bias_quant=Int32Bias)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(64, 32, bias=True, bias_quant=Int32Bias)
        self.relu2 = qnn.QuantReLU(return_quant_tensor=True)
        self.fc3 = qnn.QuantLinear(32, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.quant_in(x)
        x = self.relu1(self.fc1(x))
        x = self.relu2(self.fc2(x))
        return self.fc3(x)


create_model, example_input, held_out_data = network("mlp", MLP, size=SIZE, flat=True)
