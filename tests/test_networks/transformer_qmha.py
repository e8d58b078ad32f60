"""One transformer block around brevitas.nn.QuantMultiheadAttention, unmodified (its default
quantizers, packed in-projection, batch_first=True, called as mha(x, x, x, need_weights=False)), on the
8x8 digits as 8 tokens of 8 features: an input QuantIdentity, a token embedding QuantLinear, LayerNorm
straight into the attention (its in_proj input quantizer quantizes the LayerNorm), the residual add
quantized by a QuantIdentity, LayerNorm, a GELU MLP, the second residual, the mean over the tokens and
a QuantLinear head."""

import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network

SIZE = 8
T, F_IN, E, H, HID = 8, 8, 16, 2, 32


class TransformerQMHA(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.embed = qnn.QuantLinear(F_IN, E, bias=True, bias_quant=Int32Bias)
        self.embed_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.ln1 = nn.LayerNorm(E)
        self.mha = qnn.QuantMultiheadAttention(E, H, batch_first=True)
        self.res1_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.ln2 = nn.LayerNorm(E)
        self.ln2_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(E, HID, bias=True, bias_quant=Int32Bias)
        self.fc1_q = qnn.QuantIdentity()
        self.gelu = nn.GELU()
        self.gelu_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(HID, E, bias=True, bias_quant=Int32Bias)
        self.res2_q = qnn.QuantIdentity()
        self.mean_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.head = qnn.QuantLinear(E, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        b = x.size(0)
        x = self.embed_q(self.embed(self.quant_in(x).view(b, T, F_IN)))
        h = self.ln1(x)
        a, _ = self.mha(h, h, h, need_weights=False)
        x = self.res1_q(x + a)
        h = self.gelu_q(self.gelu(self.fc1_q(self.fc1(self.ln2_q(self.ln2(x))))))
        x = self.res2_q(x + self.fc2(h))
        return self.head(self.mean_q(x.mean(dim=1)))


create_model, example_input, held_out_data = network("transformer_qmha", TransformerQMHA, size=SIZE, epochs=10,
                                                     lr=4e-3)
