"""Sweep finding: a model that fails in eval mode in Brevitas itself (torch.cat of two QuantTensors with
different scales: 'Scaling factors are different'; calibration and training in train mode pass) was
reported as 'the forward pass failed: RuntimeError: Scaling factors are different' with no place: the
statement at the model's top level was not named. The message now names the file, line and source line."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _rand import calibrated, inputs

SHAPE = (2, 4, 4)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.c = qnn.QuantConv2d(2, 4, 3, padding=1, bias=True)
        self.qa = qnn.QuantIdentity(return_quant_tensor=True)
        self.qb = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(2 * 4 * 16, 3, bias=True)

    def forward(self, x):
        x = self.c(self.qin(x))
        a, b = self.qa(x).flatten(1), self.qb(x * 2.0).flatten(1)
        return self.fc(torch.cat([a, b], dim=1))


def create_model():
    torch.manual_seed(0)
    model = Net()
    with torch.no_grad():
        model.train()
        model(inputs(SHAPE, 4, 3))  # train mode: Brevitas does not compare the scales
    return calibrated(model, SHAPE)


def example_input():
    return inputs(SHAPE, 1, 1)
