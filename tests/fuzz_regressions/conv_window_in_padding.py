"""Fuzzer finding: a conv whose first and last output rows read only padding crashed on gap9-emu.

QuantConv2d 1x1 with padding 2 (and a 3x3 one with padding 3): the windows of some output rows
lie wholly in the zero padding. The tiler counted -1 input rows for such a tile (so the planner
even preferred one-row tiles: "negative DMA bytes") and the cluster program issued a 64 KiB DMA
into a 12-byte L1 buffer ("GF EMU ERROR pi_cl_dma_cmd: ... not inside one live L1 allocation").
Host and rv32 were bit-exact. Fix: the tile's input box is never empty (gf_tiled.c rows_of,
codegen/gap9/tiling.py _rows).
"""

import brevitas.nn as qnn
import torch.nn as nn
from brevitas.quant import Int32Bias

from tools._fuzz_model import fuzz_model_functions

SEED = 5
INPUT_SHAPE = (1, 2, 7, 6)
DATA = "random"
L1_BUDGETS = ("max", "16K", "2K")  # 2 KiB: one-row tiles, several of them wholly in the padding


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(2, 16, 1, stride=2, padding=2, bias=True, bias_quant=Int32Bias)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.conv2 = qnn.QuantConv2d(16, 8, 3, padding=3, bias=True, bias_quant=Int32Bias)
        self.relu2 = qnn.QuantReLU(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(8 * 10 * 9, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.relu1(self.conv1(self.quant_in(x)))  # 16 x 6 x 5: rows 0 and 5 read only padding
        x = self.relu2(self.conv2(x))                  # 8 x 10 x 9: the outer rows read only padding
        return self.fc(x.view(x.size(0), -1))


create_model, example_input, held_out_data = fuzz_model_functions(Net, SEED, INPUT_SHAPE, DATA)
