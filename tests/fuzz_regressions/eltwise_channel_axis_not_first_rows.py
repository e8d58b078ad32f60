"""Element-wise steps requantized per channel along the last axis, tiled by several outer indices at once.

The companion of eltwise_channel_axis_not_first.py (same bug, same fix) with 16 tokens of 32
features: at a 2 KiB L1 the residual adds are cut into tiles of 3 whole tokens (every channel's
parameters resident in L1, the cores splitting the tokens), the third tile shape of the GAP9
element-wise tiler.
"""

import brevitas.nn as qnn
import torch.nn as nn
from brevitas.quant import Int8WeightPerChannelFloat

from tools._fuzz_model import fuzz_model_functions

SEED = 6
INPUT_SHAPE = (1, 16, 32)
DATA = "random_signed"
TARGETS = ("host", "gap9-emu")
L1_BUDGETS = ("2K",)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.lin_a = qnn.QuantLinear(32, 32, bias=True, weight_quant=Int8WeightPerChannelFloat)  # float bias
        self.res_a = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(16 * 32, 10, bias=True)

    def forward(self, x):
        x = self.quant_in(x)                         # [1, 16, 32]
        x = self.res_a(self.lin_a(x) + x)            # per-channel add along axis 2 (outer 16)
        return self.fc(x.reshape(x.size(0), -1))


create_model, example_input, held_out_data = fuzz_model_functions(Net, SEED, INPUT_SHAPE, DATA)
