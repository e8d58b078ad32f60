"""Sweep finding: timm's attention layout qkv.reshape(B, N, 3, H, D).permute(2, 0, 3, 1, 4), then qkv[0],
was refused with 'moves the batch axis or is not a permutation' (no hint), and a QuantLinear with a float
bias reshaped so (an accumulator with per-channel offset) with 'splits the per-channel axis' (no fix).
Both refusals now name the tensor and the fix. LAYOUT selects the form: 'timm' (refused), 'float_bias'
(refused), 'indexed' (the rewrite the hint gives: deploys)."""

import math

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _rand import calibrated, inputs
from brevitas.quant import Uint8ActPerTensorFloat

SHAPE = (5, 8)  # 5 tokens, 8 features
D, H = 8, 2
LAYOUT = "indexed"


class Attn(nn.Module):
    def __init__(self, layout):
        super().__init__()
        self.layout = layout
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.qkv = qnn.QuantLinear(D, 3 * D, bias=True)
        self.q_qkv = qnn.QuantIdentity()
        self.q_q, self.q_k, self.q_v = qnn.QuantIdentity(), qnn.QuantIdentity(), qnn.QuantIdentity()
        self.q_s = qnn.QuantIdentity()
        self.q_att = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)
        self.q_o = qnn.QuantIdentity()

    def forward(self, x):
        B, T, _ = x.shape
        h = self.qkv(self.qin(x))
        if self.layout == "float_bias":
            qkv = h.reshape(B, T, 3, H, D // H)
        else:
            qkv = self.q_qkv(h).reshape(B, T, 3, H, D // H)
        if self.layout == "timm":
            qkv = qkv.permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
        else:
            q, k, v = (qkv[:, :, i].permute(0, 2, 1, 3) for i in range(3))
        q, k, v = self.q_q(q), self.q_k(k), self.q_v(v)
        s = self.q_s(torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(D // H))
        a = self.q_att(torch.softmax(s, dim=-1))
        return self.q_o(torch.matmul(a, v).transpose(1, 2).contiguous().view(B, T, D))


def create_model():
    torch.manual_seed(0)
    return calibrated(Attn(LAYOUT), SHAPE)


def example_input():
    return inputs(SHAPE, 1, 1)


def held_out_data():
    return inputs(SHAPE, 16, 2), torch.zeros(16, dtype=torch.int64)
