"""A small Llama-style block on the 8x8 digits read as 8 tokens of 8 features: an input QuantIdentity,
a token embedding QuantLinear (the residual stream, quantized), torch.nn.RMSNorm, q / k / v
QuantLinear projections split into 2 heads, rotary position embeddings as users write them
(q * cos + rotate_half(q) * sin with register_buffer tables; rotate_half by slicing, negation and
torch.cat), scores q @ k^T / sqrt(D), softmax and a uint8 quantizer, @ v, the head merge and the
output projection, a residual sum requantized by a QuantIdentity, the hand-written RMSNorm of Llama
code (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight), a SwiGLU feed-forward
(silu(w1 x) * w3 x, then w2) with its residual sum, and a QuantLinear head over the flattened tokens.
Every float computation between quantizers is followed by a quantizer."""

import math

import brevitas.nn as qnn
import torch
import torch.nn as nn
import torch.nn.functional as F
from brevitas.quant import Int32Bias, Uint8ActPerTensorFloat

from _common import network

SIZE = 8
T, F_IN, E, H, HID = 8, 8, 16, 2, 32
D = E // H


class RMSNorm(nn.Module):
    """RMSNorm as written in Llama code (gapforge recognises the pattern)."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat((-x[..., d:], x[..., :d]), dim=-1)


def linear(i, o):
    return qnn.QuantLinear(i, o, bias=True, bias_quant=Int32Bias)


class LlamaBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.embed = linear(F_IN, E)
        self.embed_q = qnn.QuantIdentity()
        self.norm1 = nn.RMSNorm(E, eps=1e-5)
        self.norm1_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.wq, self.wk, self.wv = linear(E, E), linear(E, E), linear(E, E)
        self.q_q, self.k_q, self.v_q = qnn.QuantIdentity(), qnn.QuantIdentity(), qnn.QuantIdentity()
        pos = torch.arange(T, dtype=torch.float32)[:, None]
        freq = 1.0 / (100.0 ** (torch.arange(D // 2, dtype=torch.float32) / (D // 2)))
        angles = torch.cat([pos * freq, pos * freq], dim=-1)  # [T, D]
        self.register_buffer("cos", angles.cos())
        self.register_buffer("sin", angles.sin())
        self.rope_q, self.rope_k = qnn.QuantIdentity(), qnn.QuantIdentity()
        self.attn_q = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)
        self.ctx_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.wo = linear(E, E)
        self.wo_q = qnn.QuantIdentity()
        self.res1 = qnn.QuantIdentity()
        self.norm2 = RMSNorm(E)
        self.norm2_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.w1, self.w3 = linear(E, HID), linear(E, HID)
        self.a_q, self.b_q, self.silu_q = qnn.QuantIdentity(), qnn.QuantIdentity(), qnn.QuantIdentity()
        self.gate_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.w2 = linear(HID, E)
        self.ff_q = qnn.QuantIdentity()
        self.res2 = qnn.QuantIdentity(return_quant_tensor=True)
        self.head = linear(T * E, 10)

    def rope(self, x):
        return x * self.cos + rotate_half(x) * self.sin

    def forward(self, x):
        b = x.size(0)
        h = self.embed_q(self.embed(self.quant_in(x).view(b, T, F_IN)))
        n = self.norm1_q(self.norm1(h))
        q = self.q_q(self.wq(n)).view(b, T, H, D).transpose(1, 2)
        k = self.k_q(self.wk(n)).view(b, T, H, D).transpose(1, 2)
        v = self.v_q(self.wv(n)).view(b, T, H, D).transpose(1, 2)
        q, k = self.rope_q(self.rope(q)), self.rope_k(self.rope(k))
        a = self.attn_q(F.softmax(q @ k.transpose(-2, -1) / math.sqrt(D), dim=-1))
        o = self.ctx_q(a @ v).transpose(1, 2).contiguous().view(b, T, E)
        h = self.res1(h + self.wo_q(self.wo(o)))
        n = self.norm2_q(self.norm2(h))
        g = self.gate_q(self.silu_q(F.silu(self.a_q(self.w1(n)))) * self.b_q(self.w3(n)))
        h = self.res2(h + self.ff_q(self.w2(g)))
        return self.head(h.view(b, T * E))


create_model, example_input, held_out_data = network("llama_block", LlamaBlock, size=SIZE, epochs=8, lr=4e-3)
