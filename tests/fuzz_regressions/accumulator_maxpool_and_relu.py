"""Fuzzer finding: max pooling of an accumulator and a ReLU on an accumulator were reported deployable, then refused.

conv -> BatchNorm -> MaxPool2d -> QuantReLU (pooling before the quantizer) and relu(conv_a(x)) +
conv_b(x) -> QuantReLU (a float ReLU on one operand of a residual sum of two accumulators). The
operator declarations, the lowering and the C kernels support both (max pooling commutes with a
positive per-channel scale; a ReLU on an accumulator without offset is max(q, 0)), but the fusion
planner refused them ("not supported yet", "not followed by a quantizer"), after the checker had
said deployable. Fix: the planner accepts them (they become int32 steps) and the checker runs the
planner.
"""

import brevitas.nn as qnn
import torch.nn as nn
import torch.nn.functional as F
from brevitas.quant import Int8WeightPerChannelFloat, Int32Bias

from tools._fuzz_model import fuzz_model_functions

SEED = 11
INPUT_SHAPE = (1, 2, 12, 12)
DATA = "digits"
L1_BUDGETS = ("max", "16K", "2K")  # 2 KiB: the int32 max pooling is tiled too


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv0 = qnn.QuantConv2d(2, 6, 3, padding=1, weight_quant=Int8WeightPerChannelFloat, bias=False)
        self.bn0 = nn.BatchNorm2d(6)
        self.pool0 = nn.MaxPool2d(2)
        self.relu0 = qnn.QuantReLU(return_quant_tensor=True)
        self.conv_a = qnn.QuantConv2d(6, 6, 3, padding=1, bias=False)
        self.conv_b = qnn.QuantConv2d(6, 6, 1, bias=False)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(6 * 6 * 6, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.relu0(self.pool0(self.bn0(self.conv0(self.quant_in(x)))))  # max pooling of the accumulator
        x = self.relu1(F.relu(self.conv_a(x)) + self.conv_b(x))             # ReLU on one accumulator of a sum
        return self.fc(x.view(x.size(0), -1))


create_model, example_input, held_out_data = fuzz_model_functions(Net, SEED, INPUT_SHAPE, DATA)
