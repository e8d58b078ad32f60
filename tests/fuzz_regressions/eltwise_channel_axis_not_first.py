"""Element-wise steps requantized per channel along an axis other than the first were mis-tiled on GAP9.

A token-wise QuantLinear with per-channel weights and a float bias gives an accumulator whose scale
varies along the last axis of [1, T, F] (and of [1, A, B, F] after a reshape); the residual add after
it is requantized per channel along axis 2 (axis 3). Host and rv32 were exact, gap9-emu was not
(110 mismatching elements of `res_quant` in a Mamba block with biased in_proj/out_proj): the GAP9
element-wise tiler (codegen/gap9/tiling.py eltwise_layout, gf_tiled.c tile_geometry) took the
channel axis to be the outermost one ([channels][inner]) and so covered only the first token's
channels with the wrong parameters. Fix: the layout is [outer][channels][inner]; tiles are blocks of
channels of one outer index, whole [channels][inner] blocks (several outer indices, parameters
resident), or runs inside one channel slice.
"""

import brevitas.nn as qnn
import torch.nn as nn
from brevitas.quant import Int8WeightPerChannelFloat

from tools._fuzz_model import fuzz_model_functions

SEED = 5
INPUT_SHAPE = (1, 4, 128)
DATA = "random_signed"
L1_BUDGETS = ("max", "4K", "2K")  # max: one tile; 4K: one outer index a tile; 2K: blocks of 43 channels


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.lin_a = qnn.QuantLinear(128, 128, bias=True, weight_quant=Int8WeightPerChannelFloat)  # float bias
        self.res_a = qnn.QuantIdentity(return_quant_tensor=True)
        self.lin_b = qnn.QuantLinear(128, 128, bias=True, weight_quant=Int8WeightPerChannelFloat)
        self.res_b = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 * 128, 10, bias=True)

    def forward(self, x):
        x = self.quant_in(x)                         # [1, 4, 128]
        x = self.res_a(self.lin_a(x) + x)            # per-channel add along axis 2 (outer 4)
        x4 = x.reshape(x.size(0), 2, 2, 128)
        x4 = self.res_b(self.lin_b(x4) + x4)         # along axis 3 (outer 4)
        return self.fc(x4.reshape(x4.size(0), -1))


create_model, example_input, held_out_data = fuzz_model_functions(Net, SEED, INPUT_SHAPE, DATA)
