"""One transformer block on the 8x8 digits as 8 tokens of 8 features, written as users write it: an
input QuantIdentity, a token embedding QuantLinear over the rows, then a pre-norm block: LayerNorm,
2-head hand-written attention (q / k / v QuantLinear, the head split, q @ k^T / sqrt(D), softmax over
the keys followed by a QuantIdentity, F.dropout (inactive in eval), @ v, the head merge, the output
projection), the residual add quantized by a QuantIdentity, LayerNorm, a GELU MLP, the second residual
quantized the same way, the mean over the tokens and a QuantLinear head."""

import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network
from seqdata.transformer import Block

SIZE = 8
T, F_IN, E = 8, 8, 16


class TransformerSimple(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.embed = qnn.QuantLinear(F_IN, E, bias=True, bias_quant=Int32Bias)
        self.embed_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.block = Block()
        self.mean_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.head = qnn.QuantLinear(E, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        b = x.size(0)
        x = self.embed_q(self.embed(self.quant_in(x).view(b, T, F_IN)))
        x = self.block(x)
        return self.head(self.mean_q(x.mean(dim=1)))


create_model, example_input, held_out_data = network("transformer_simple", TransformerSimple, size=SIZE, epochs=10,
                                                     lr=4e-3)
