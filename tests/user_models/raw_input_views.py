"""The float input reshaped and permuted before its quantizer, as users write it: flat (1, T*F) features
viewed as (1, T, F) by nn.Unflatten and transposed to (1, F, T) for a dilated QuantConv1d; the forward returns a dict
(logits first)."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _rand import calibrated, inputs

T, F = 24, 3


class RawViews(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.unflat = nn.Unflatten(1, (T, F))
        self.inp = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv = qnn.QuantConv1d(F, 5, 3, dilation=2, padding=2, bias=True)
        self.relu = qnn.QuantReLU(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(5 * T, 4, bias=True)

    def forward(self, x):  # x: (N, T * F) flat features
        x = self.unflat(x).transpose(1, 2)  # (N, F, T)
        y = self.relu(self.conv(self.inp(x)))
        logits = self.fc(torch.flatten(y, 1))
        return {"logits": logits, "features": y}


def create_model():
    return calibrated(RawViews(), (T * F,))


def example_input():
    return inputs((T * F,), 1, 0)


def held_out_data():
    return inputs((T * F,), 12, 1), torch.zeros(12, dtype=torch.long)
