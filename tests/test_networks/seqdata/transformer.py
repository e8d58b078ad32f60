"""Transformer building blocks written the way a Brevitas user writes them: hand-written multi-head
self-attention (QuantLinear projections, the head split, q @ k^T / sqrt(D), softmax into a
QuantIdentity, F.dropout, @ v, the head merge, the output projection) and a pre-norm block (LayerNorm,
attention, a residual add quantized by a QuantIdentity, LayerNorm, a GELU MLP, the second residual).
Shared by the regression networks transformer_simple and transformer_multiblock."""

import math

import torch.nn as nn
import torch.nn.functional as F
import brevitas.nn as qnn
from brevitas.quant import Int32Bias, Uint8ActPerTensorFloat

E, H, HID = 16, 2, 32


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
