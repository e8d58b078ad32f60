"""Fuzzer finding: fidelity demanded exact equality of a power-of-two network whose average pooling is not.

Every quantizer and weight scale is a power of two, but AdaptiveAvgPool2d(2) of a 10x8 map averages
5x4 = 20 values: the requantize multiplier s_in / (20 s_out) is not a power of two, so Brevitas'
float32 rounding flips near-ties (5 of 512 elements, all within the near-tie window). The fidelity
check classified the network as power-of-two from its quant tensors only and failed it. Fix:
is_power_of_two_network also requires power-of-two accumulator scales (which carry the divisor).
"""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from brevitas.quant import (
    Int8ActPerTensorFixedPoint,
    Int8WeightPerTensorFixedPoint,
    Int32Bias,
    Uint8ActPerTensorFixedPoint,
)

from tools._fuzz_model import fuzz_model_functions

SEED = 1507260017
INPUT_SHAPE = (1, 1, 8, 12)
DATA = "random"


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=4, return_quant_tensor=True)
        self.conv0 = qnn.QuantConv2d(1, 6, (3, 5), padding=(1, 0), weight_quant=Int8WeightPerTensorFixedPoint,
                                     weight_bit_width=6, bias=False)
        self.quant0 = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(6, 16, (3, 1), padding=(2, 0), weight_quant=Int8WeightPerTensorFixedPoint,
                                     weight_bit_width=6, bias=False)
        self.relu0 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.pool0 = nn.AdaptiveAvgPool2d(2)
        self.quant1 = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(64, 10, weight_quant=Int8WeightPerTensorFixedPoint, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.relu0(self.conv1(self.quant0(self.conv0(self.quant_in(x)))))  # 16 x 10 x 8
        x = self.quant1(self.pool0(x))                                          # 5x4 windows
        return self.fc(torch.flatten(x, 1))


create_model, example_input, held_out_data = fuzz_model_functions(Net, SEED, INPUT_SHAPE, DATA)
