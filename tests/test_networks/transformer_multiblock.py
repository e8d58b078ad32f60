"""Three transformer blocks (ViT style) on the 8x8 digits as 8 tokens of 8 features: an input
QuantIdentity, a token embedding QuantLinear over the rows, a learned class token concatenated in front
of the tokens (torch.cat of the expanded nn.Parameter), a learned position embedding added and
quantized, three pre-norm blocks (LayerNorm, 2-head hand-written attention with softmax, residual add
quantized by a QuantIdentity, LayerNorm, GELU MLP, residual), a final LayerNorm and a QuantLinear head
on the class token (x[:, 0])."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import brevitas.nn as qnn
from brevitas.quant import Int32Bias, Uint8ActPerTensorFloat

from _common import network

SIZE = 8
T, F_IN, E, H, HID, BLOCKS = 8, 8, 16, 2, 32, 3
D = E // H


class Attention(nn.Module):
    """Multi-head self-attention with QuantLinear projections and a quantizer after every product."""

    def __init__(self, e=E, h=H):
        super().__init__()
        self.h, self.d = h, e // h
        self.q = qnn.QuantLinear(e, e, bias=True, bias_quant=Int32Bias)
        self.k = qnn.QuantLinear(e, e, bias=True, bias_quant=Int32Bias)
        self.v = qnn.QuantLinear(e, e, bias=True, bias_quant=Int32Bias)
        self.q_q = qnn.QuantIdentity()
        self.k_q = qnn.QuantIdentity()
        self.v_q = qnn.QuantIdentity()
        self.attn_q = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)
        self.ctx_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.proj = qnn.QuantLinear(e, e, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        b, t, e = x.shape
        q = self.q_q(self.q(x)).view(b, t, self.h, self.d).transpose(1, 2)
        k = self.k_q(self.k(x)).view(b, t, self.h, self.d).transpose(1, 2)
        v = self.v_q(self.v(x)).view(b, t, self.h, self.d).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d)
        attn = self.attn_q(scores.softmax(dim=-1))
        attn = F.dropout(attn, 0.1, self.training)
        o = self.ctx_q(attn @ v)
        o = o.transpose(1, 2).contiguous().view(b, t, e)
        return self.proj(o)


class Block(nn.Module):
    """Pre-norm block: x = q(x + attn(q(ln1(x)))); x = q(x + fc2(q(gelu(q(fc1(q(ln2(x))))))))."""

    def __init__(self, e=E, h=H, hid=HID):
        super().__init__()
        self.ln1 = nn.LayerNorm(e)
        self.ln1_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.attn = Attention(e, h)
        self.res1_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.ln2 = nn.LayerNorm(e)
        self.ln2_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(e, hid, bias=True, bias_quant=Int32Bias)
        self.fc1_q = qnn.QuantIdentity()
        self.gelu = nn.GELU()
        self.gelu_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(hid, e, bias=True, bias_quant=Int32Bias)
        self.res2_q = qnn.QuantIdentity()

    def forward(self, x):
        x = self.res1_q(x + self.attn(self.ln1_q(self.ln1(x))))
        h = self.gelu_q(self.gelu(self.fc1_q(self.fc1(self.ln2_q(self.ln2(x))))))
        return self.res2_q(x + self.fc2(h))


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
