"""Indexing of the raw input before its quantizers, as users write it: x.squeeze(1) of a (N, 1, 4, 10) input,
x[:, 0] (the first row) and x[..., 1:, ::2].flatten(1) (the other rows, every second column), each read by its
own QuantIdentity. Before, the checker refused the indexing ('slices an unquantized float tensor'); it folds into
the host-side quantize steps (index steps, the batch axis whole)."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _rand import calibrated, inputs

SHAPE = (1, 4, 10)


class Index(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(9)
        self.qa = qnn.QuantIdentity(return_quant_tensor=True)
        self.qb = qnn.QuantIdentity(return_quant_tensor=True)
        self.fa = qnn.QuantLinear(10, 6, bias=True)
        self.fb = qnn.QuantLinear(15, 6, bias=True)
        self.r = qnn.QuantReLU(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(6, 3, bias=True)

    def forward(self, x):
        x = x.squeeze(1)
        a, b = x[:, 0], x[..., 1:, ::2].flatten(1)
        return self.fc(self.r(self.fa(self.qa(a)) + self.fb(self.qb(b))))


def create_model():
    return calibrated(Index(), SHAPE)


def example_input():
    return inputs(SHAPE, 1, 0)


def held_out_data():
    return inputs(SHAPE, 12, 1), torch.zeros(12, dtype=torch.long)
