"""Hand-written attention core on the 8x8 digits as 8 tokens of 8 features: an input QuantIdentity,
a token embedding QuantLinear over the rows (tokens x features), q / k / v QuantLinear projections,
the head split (view(B, T, H, D).transpose(1, 2)), scores q @ k^T scaled by 1/sqrt(D) and quantized
(a QuantReLU between the two products, no softmax), the weighted sum @ v, the head merge
(transpose(1, 2).contiguous().view(B, T, H*D)), the output projection over the rows, then the
flattened tokens into a QuantLinear head. Exercises matmul, permute, reshape, constant scaling and
QuantLinear over 3-D inputs."""

import math

import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network

SIZE = 8
T, F, E, H = 8, 8, 16, 2
D = E // H


class AttentionCore(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.embed = qnn.QuantLinear(F, E, bias=True, bias_quant=Int32Bias)
        self.embed_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.q = qnn.QuantLinear(E, E, bias=True, bias_quant=Int32Bias)
        self.k = qnn.QuantLinear(E, E, bias=True, bias_quant=Int32Bias)
        self.v = qnn.QuantLinear(E, E, bias=True, bias_quant=Int32Bias)
        self.q_q = qnn.QuantIdentity()
        self.k_q = qnn.QuantIdentity()
        self.v_q = qnn.QuantIdentity()
        self.scores_q = qnn.QuantReLU()
        self.ctx_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.proj = qnn.QuantLinear(E, E, bias=True, bias_quant=Int32Bias)
        self.proj_q = qnn.QuantReLU(return_quant_tensor=True)
        self.head = qnn.QuantLinear(T * E, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        b = x.size(0)
        x = self.quant_in(x).view(b, T, F)
        x = self.embed_q(self.embed(x))
        q = self.q_q(self.q(x)).view(b, T, H, D).transpose(1, 2)
        k = self.k_q(self.k(x)).view(b, T, H, D).transpose(1, 2)
        v = self.v_q(self.v(x)).view(b, T, H, D).transpose(1, 2)
        s = self.scores_q(q @ k.transpose(-2, -1) / math.sqrt(D))
        o = self.ctx_q(s @ v)
        o = o.transpose(1, 2).contiguous().view(b, T, E)
        o = self.proj_q(self.proj(o))
        return self.head(o.view(b, T * E))


create_model, example_input, held_out_data = network("attention_core", AttentionCore, size=SIZE, epochs=8, lr=4e-3)
