"""Sweep finding: F.relu before a QuantReLU (relu(relu(x)), after a conv and after a residual sum of two
accumulators) was refused by the planner with the misleading "not consumed by exactly one quantizer
-- fix: put a quantizer right after it" although a QuantReLU followed: a head absorbed one relu only.
Calibrated on random inputs."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
import torch.nn.functional as F


class DoubleRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity()
        self.conv1 = qnn.QuantConv2d(4, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu1 = qnn.QuantReLU()
        self.conv2 = qnn.QuantConv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.relu_out = qnn.QuantReLU()

    def forward(self, x):
        x = self.quant_in(x)
        out = self.relu1(F.relu(self.bn1(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        return self.relu_out(F.relu(out + x))


def create_model():
    from brevitas.graph.calibrate import calibration_mode

    torch.manual_seed(0)
    model = DoubleRelu()
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.bias.uniform_(-0.3, 0.3)
    model.eval()
    with torch.no_grad(), calibration_mode(model):
        for _ in range(4):
            model(torch.rand(16, 4, 6, 6) - 0.5)
    return model.eval()


def example_input():
    torch.manual_seed(1)
    return torch.rand(1, 4, 6, 6) - 0.5


def held_out_data():
    torch.manual_seed(2)
    return torch.rand(16, 4, 6, 6) - 0.5, torch.zeros(16, dtype=torch.int64)
