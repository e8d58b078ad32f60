"""A tiny decoder block as users write it: QuantLinear q / k / v, torch.matmul(q, k.transpose(-2, -1)) * scale,
a causal mask from a registered buffer (scores.masked_fill(mask, float('-inf'))), softmax, QuantIdentity,
matmul with v, the output projection. FORM selects the mask: 'buffer' (the default), 'finfo' (built in forward
with torch.tril, filled with torch.finfo.min), 'additive' (scores + a 0 / -inf float buffer), 'mha'
(QuantMultiheadAttention(attn_mask=...)); refused: 'dynamic' (a mask computed from the input), 'full_row'
(a query row with every key masked), 'not_softmax' (the masked scores go to a quantizer)."""

import math

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _rand import calibrated, inputs
from brevitas.quant import Uint8ActPerTensorFloat

T, E, H = 6, 16, 2
SHAPE = (T, E)
FORM = "buffer"


class CausalBlock(nn.Module):
    def __init__(self, form):
        super().__init__()
        self.form = form
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        if form == "mha":
            self.mha = qnn.QuantMultiheadAttention(E, H, batch_first=True)
        else:
            self.q, self.k, self.v = (qnn.QuantLinear(E, E, bias=True) for _ in range(3))
            self.q_q, self.q_k, self.q_v = qnn.QuantIdentity(), qnn.QuantIdentity(), qnn.QuantIdentity()
            self.q_s = qnn.QuantIdentity()
            self.q_att = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)
            self.q_ctx = qnn.QuantIdentity(return_quant_tensor=True)
            self.proj = qnn.QuantLinear(E, E, bias=True)
        self.scale = 1.0 / math.sqrt(E // H)
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        if form == "full_row":
            causal[2] = True
        self.register_buffer("mask", causal)
        self.register_buffer("additive", torch.zeros(T, T).masked_fill(causal, float("-inf")))

    def forward(self, x):
        B = x.shape[0]
        x = self.qin(x)
        if self.form == "mha":
            return self.mha(x, x, x, attn_mask=self.mask, need_weights=False)[0]

        def heads(t):
            return t.view(B, T, H, E // H).transpose(1, 2)

        q, k, v = heads(self.q_q(self.q(x))), heads(self.q_k(self.k(x))), heads(self.q_v(self.v(x)))
        s = torch.matmul(q, k.transpose(-2, -1)) * self.scale
        if self.form == "finfo":
            keep = torch.tril(torch.ones(T, T, dtype=torch.bool))
            s = s.masked_fill(~keep, torch.finfo(torch.float32).min)
        elif self.form == "additive":
            s = s + self.additive
        elif self.form == "dynamic":
            s = s.masked_fill(s < 0, float("-inf"))
        elif self.form == "not_softmax":
            s = self.q_s(s.masked_fill(self.mask, 0.0))
        else:
            s = s.masked_fill(self.mask, float("-inf"))
        a = self.q_att(torch.softmax(s, dim=-1))
        o = self.q_ctx(torch.matmul(a, v).transpose(1, 2).reshape(B, T, E))
        return self.proj(o)


def create_model():
    torch.manual_seed(0)
    return calibrated(CausalBlock(FORM), SHAPE)


def example_input():
    return inputs(SHAPE, 1, 1)


def held_out_data():
    return inputs(SHAPE, 16, 2), torch.zeros(16, dtype=torch.int64)
