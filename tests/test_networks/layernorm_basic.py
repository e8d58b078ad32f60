"""LayerNorm between quantized layers on the 8x8 digits read as 8 tokens of 8 features: an input
QuantIdentity, LayerNorm over the features of every token (elementwise affine), a QuantLinear over
the flattened tokens (64-64, Int32Bias) with QuantReLU, LayerNorm over the last two axes without
affine (the whole 8x8 map of a sample), F.layer_norm with a bias-free affine over the features, and
the classifier. Every LayerNorm is followed by a quantizer; exercises signed and unsigned inputs."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
import torch.nn.functional as F
from brevitas.quant import Int32Bias

from _common import network

SIZE = 8


class LayerNormBasic(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.ln1 = nn.LayerNorm(8)
        self.q1 = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(64, 64, bias=True, bias_quant=Int32Bias)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.ln2 = nn.LayerNorm([8, 8], elementwise_affine=False, eps=1e-3)
        self.q2 = qnn.QuantIdentity(return_quant_tensor=True)
        self.ln3_weight = nn.Parameter(torch.ones(8))
        self.q3 = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(64, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        b = x.shape[0]
        x = self.quant_in(x).view(b, 8, 8)
        x = self.q1(self.ln1(x))
        x = self.relu1(self.fc1(x.flatten(1))).view(b, 8, 8)
        x = self.q2(self.ln2(x))
        x = self.q3(F.layer_norm(x, (8,), self.ln3_weight, None, 1e-4))
        return self.fc2(x.flatten(1))


create_model, example_input, held_out_data = network("layernorm_basic", LayerNormBasic, size=SIZE, epochs=4)
