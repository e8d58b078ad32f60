"""Three transformer blocks (ViT style) on the 8x8 digits as 8 tokens of 8 features: an input
QuantIdentity, a token embedding QuantLinear over the rows, a learned class token concatenated in front
of the tokens (torch.cat of the expanded nn.Parameter), a learned position embedding added and
quantized, three pre-norm blocks (LayerNorm, 2-head hand-written attention with softmax, residual add
quantized by a QuantIdentity, LayerNorm, GELU MLP, residual), a final LayerNorm and a QuantLinear head
on the class token (x[:, 0])."""

import torch
import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network
from seqdata.transformer import Block

SIZE = 8
T, F_IN, E, BLOCKS = 8, 8, 16, 3


class TransformerMultiblock(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.embed = qnn.QuantLinear(F_IN, E, bias=True, bias_quant=Int32Bias)
        self.embed_q = qnn.QuantIdentity()
        self.cls = nn.Parameter(torch.randn(1, 1, E) * 0.5)
        self.pos = nn.Parameter(torch.randn(1, T + 1, E) * 0.2)
        self.pos_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.blocks = nn.Sequential(*[Block() for _ in range(BLOCKS)])
        self.norm = nn.LayerNorm(E)
        self.norm_q = qnn.QuantIdentity()
        self.cls_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.head = qnn.QuantLinear(E, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        b = x.size(0)
        x = self.embed_q(self.embed(self.quant_in(x).view(b, T, F_IN)))
        x = torch.cat([self.cls.expand(b, -1, -1), x], dim=1)
        x = self.pos_q(x + self.pos)
        x = self.blocks(x)
        x = self.norm_q(self.norm(x))
        return self.head(self.cls_q(x[:, 0]))


create_model, example_input, held_out_data = network("transformer_multiblock", TransformerMultiblock, size=SIZE,
                                                     epochs=8, lr=4e-3)
