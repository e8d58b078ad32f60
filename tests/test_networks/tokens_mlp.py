"""Token MLP on the 8x8 digits as 8 tokens of 8 features: an input QuantIdentity, a token embedding
QuantLinear over the rows, a learned class token (nn.Parameter) concatenated in front of the tokens,
a learned position embedding (nn.Parameter) added, a QuantIdentity, a token-mixing QuantLinear over
the 9 tokens (on the transposed tensor), a QuantLinear + QuantReLU over the features of each token, then the class token (x[:, 0]) and the mean of the other tokens (x[:, 1:].mean(dim=1))
quantized, summed and requantized into a QuantLinear head. Exercises QuantLinear over 3-D inputs,
cat with a constant, add of a constant tensor, token slicing and the mean over tokens."""

import torch
import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network

SIZE = 8
T, F, E = 8, 8, 16


class TokensMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.embed = qnn.QuantLinear(F, E, bias=True, bias_quant=Int32Bias)
        self.embed_q = qnn.QuantIdentity()
        self.cls = nn.Parameter(torch.randn(1, 1, E) * 0.5)
        self.pos = nn.Parameter(torch.randn(1, T + 1, E) * 0.2)
        self.pos_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.mix = qnn.QuantLinear(T + 1, T + 1, bias=True, bias_quant=Int32Bias)
        self.mix_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(E, E, bias=True, bias_quant=Int32Bias)
        self.relu1 = qnn.QuantReLU()
        self.cls_q = qnn.QuantIdentity()
        self.mean_q = qnn.QuantIdentity()
        self.join_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.head = qnn.QuantLinear(E, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        b = x.size(0)
        x = self.quant_in(x).view(b, T, F)
        x = self.embed_q(self.embed(x))
        x = torch.cat([self.cls.expand(b, -1, -1), x], dim=1)
        x = self.pos_q(x + self.pos)
        x = self.mix_q(self.mix(x.transpose(1, 2))).transpose(1, 2)  # token mixing: a linear over the tokens
        x = self.relu1(self.fc1(x))
        c = self.cls_q(x[:, 0])
        m = self.mean_q(x[:, 1:].mean(dim=1))
        return self.head(self.join_q(c + m))


create_model, example_input, held_out_data = network("tokens_mlp", TokensMLP, size=SIZE, epochs=8, lr=4e-3)
