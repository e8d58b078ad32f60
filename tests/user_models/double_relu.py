"""Sweep finding: F.relu before a QuantReLU (relu(relu(x)), after a conv and after a residual sum of two
accumulators) was refused by the planner with the misleading "not consumed by exactly one quantizer
-- fix: put a quantizer right after it" although a QuantReLU followed: a head absorbed one relu only.
Calibrated on random inputs."""

import brevitas.nn as qnn
import torch.nn as nn
import torch.nn.functional as F
from _bn_block import calibrated, example_input, held_out_data  # noqa: F401 (the model file's hooks)


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
    return calibrated(DoubleRelu)
