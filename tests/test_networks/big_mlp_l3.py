"""MLP whose weights (1.68 MB) exceed GAP9's 1.5 MB L2: QuantLinear 64 -> 1536 -> 1024 -> 10 on the
flattened 8x8 digits. On the gap9 target its parameters must live in L3 and be streamed tile by tile
through L2 bounce buffers into L1."""

import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network


class BigMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(64, 1536, bias=True, bias_quant=Int32Bias)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(1536, 1024, bias=True, bias_quant=Int32Bias)
        self.relu2 = qnn.QuantReLU(return_quant_tensor=True)
        self.fc3 = qnn.QuantLinear(1024, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.relu1(self.fc1(self.quant_in(x)))
        x = self.relu2(self.fc2(x))
        return self.fc3(x)


create_model, example_input, held_out_data = network("big_mlp_l3", BigMLP, flat=True, epochs=2, lr=1e-3)
