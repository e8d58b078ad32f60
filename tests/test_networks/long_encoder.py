"""Long-sequence encoder on the digits read as sequences (tests/test_networks/seqdata: 8 channels, the rows,
over 256 time steps, the columns resampled), i.e. 256 tokens of 8 features: an input QuantIdentity, the
transpose to tokens x features, a token embedding QuantLinear (8-16) over the rows, a learned
position embedding (256 x 16) added, then one pre-norm encoder block of width 16 with 2 heads of 8: LayerNorm,
q / k / v QuantLinear over the tokens, the head split, scores q @ k^T / sqrt(8) over all 256 tokens (2 x 256 x
256 per sample) quantized, softmax over the last axis with a Uint8 QuantIdentity, the weighted sum @ v, the
head merge, the output projection, a residual add of two quantized tensors (a plain add
requantized by a QuantIdentity on the residual stream), LayerNorm, a GELU
MLP (16-32-16), a second residual, the mean over the tokens and a QuantLinear head.

The scores and softmax rows (64 KiB per head, 128 KiB per sample) do not fit GAP9's 128 KiB L1 whole, so they
are tiled over tokens; with a small L2 budget (tests/test_gap9.py) the parameters and the large activations
live in L3 and stream through L2."""

import math

import brevitas.nn as qnn
import torch
import torch.nn as nn
from brevitas.quant import Int32Bias, Uint8ActPerTensorFloat

from seqdata import network

T, F, E, H, M = 256, 8, 16, 2, 32
D = E // H


def _linear(i: int, o: int) -> qnn.QuantLinear:
    return qnn.QuantLinear(i, o, bias=True, bias_quant=Int32Bias)


class LongEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.embed = _linear(F, E)
        self.embed_q = qnn.QuantIdentity()
        self.pos = nn.Parameter(torch.randn(1, T, E) * 0.2)
        self.res0 = qnn.QuantIdentity()
        self.ln1 = nn.LayerNorm(E)
        self.ln1_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.q, self.k, self.v = _linear(E, E), _linear(E, E), _linear(E, E)
        self.q_q, self.k_q, self.v_q = qnn.QuantIdentity(), qnn.QuantIdentity(), qnn.QuantIdentity()
        self.scores_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.softmax = nn.Softmax(dim=-1)
        self.attn_q = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)
        self.ctx_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.proj = _linear(E, E)
        self.proj_q = qnn.QuantIdentity()
        self.res1 = qnn.QuantIdentity()
        self.ln2 = nn.LayerNorm(E)
        self.ln2_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc1 = _linear(E, M)
        self.fc1_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.gelu = nn.GELU()
        self.gelu_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc2 = _linear(M, E)
        self.fc2_q = qnn.QuantIdentity()
        self.res2 = qnn.QuantIdentity()
        self.mean_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.head = _linear(E, 10)

    def forward(self, x):
        b = x.size(0)
        x = self.quant_in(x).transpose(1, 2)
        x = self.res0(self.embed_q(self.embed(x)) + self.pos)
        h = self.ln1_q(self.ln1(x))
        q = self.q_q(self.q(h)).view(b, T, H, D).transpose(1, 2)
        k = self.k_q(self.k(h)).view(b, T, H, D).transpose(1, 2)
        v = self.v_q(self.v(h)).view(b, T, H, D).transpose(1, 2)
        s = self.scores_q(q @ k.transpose(-2, -1) / math.sqrt(D))
        a = self.attn_q(self.softmax(s))
        o = self.ctx_q(a @ v).transpose(1, 2).contiguous().view(b, T, E)
        x = self.res1(x + self.proj_q(self.proj(o)))
        h = self.ln2_q(self.ln2(x))
        h = self.gelu_q(self.gelu(self.fc1_q(self.fc1(h))))
        x = self.res2(x + self.fc2_q(self.fc2(h)))
        return self.head(self.mean_q(x.mean(dim=1)))


create_model, example_input, held_out_data = network("long_encoder", LongEncoder, length=T, epochs=3, lr=6e-3)
