"""Clamps of the raw input before its quantizers, as users write them: x.clamp(0, 1), F.hardtanh(x * 2.0),
nn.ReLU6 of F.relu(x) * 4, torch.clip(x, max=0.25).clamp_min(-0.7), and nn.ReLU then an in-place clamp_ and
nn.Hardtanh(-0.5, 0.5); each branch has its own QuantIdentity (plain tensors out, concatenated and requantized). Before, the checker refused them ('unsupported
operation clamp'); they fold into the host-side quantize steps, replayed as torch.clamp in float32."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
import torch.nn.functional as F
from _rand import calibrated, inputs

SHAPE = (2, 6, 6)


class Clamps(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(7)
        self.qs = nn.ModuleList(qnn.QuantIdentity(return_quant_tensor=False) for _ in range(5))
        self.catq = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(10, 4, 3, padding=1, bias=True)
        self.relu6 = nn.ReLU6()
        self.relu = nn.ReLU()
        self.ht = nn.Hardtanh(-0.5, 0.5)
        self.r = qnn.QuantReLU(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 * 36, 3, bias=True)

    def forward(self, x):
        xs = [x.clamp(0, 1), F.hardtanh(x * 2.0), self.relu6(F.relu(x) * 4),
              torch.clip(x, max=0.25).clamp_min(-0.7), self.ht(self.relu(x).clamp_(max=0.8))]
        x = self.catq(torch.cat([q(v) for q, v in zip(self.qs, xs)], dim=1))
        return self.fc(self.r(self.conv(x)).flatten(1))


def create_model():
    return calibrated(Clamps(), SHAPE)


def example_input():
    return inputs(SHAPE, 1, 0) * 1.5


def held_out_data():
    return inputs(SHAPE, 12, 1) * 1.5, torch.zeros(12, dtype=torch.long)
