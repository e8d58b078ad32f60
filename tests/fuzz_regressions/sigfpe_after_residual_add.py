"""Fuzzer finding (issue 13's SIGFPE): bit-exact on host and rv32, SIGFPE on gap9-emu "at a residual add + requantize".

A QuantEltwiseAdd residual block, then a strided 1x1 QuantConv2d with padding 1 (as users write
for a shortcut), average pooling and a classifier. The first output row of the 1x1 conv reads only
padding: its window [-1, 0) ends exactly at the input, so the tile's input box had 0 rows and the
cluster program divided by its size (box_segments: GF_DMA_MAX / 0). The GF LAYER line of the
residual step was still in the stdout buffer when the process died, which is why the crash looked
like it happened at the add. Fix: the tile's input box is never empty (gf_tiled.c rows_of,
codegen/gap9/tiling.py _rows), and the generated programs flush stdout after every step.
Found with `tools/fuzz_networks.py --count 150 --seed 2 --targets gap9-emu` on the code before the
fix (network 31), then reduced by hand.
"""

import brevitas.nn as qnn
import torch.nn as nn
from brevitas.quant import Int32Bias

from tools._fuzz_model import fuzz_model_functions

SEED = 1704031507
INPUT_SHAPE = (1, 2, 20, 20)
DATA = "random"


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv0 = qnn.QuantConv2d(2, 4, 5, padding=4, dilation=2, bias=True, bias_quant=Int32Bias)
        self.quant0 = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(4, 4, 5, padding=2, bias=True, bias_quant=Int32Bias)
        self.add0 = qnn.QuantEltwiseAdd(return_quant_tensor=True)
        self.shortcut = qnn.QuantConv2d(4, 16, 1, stride=3, padding=1, bias=True, bias_quant=Int32Bias)
        self.relu0 = qnn.QuantReLU(return_quant_tensor=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.pool_quant = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(16, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.quant0(self.conv0(self.quant_in(x)))
        x = self.add0(self.conv1(x), x)              # residual add + requantize
        x = self.relu0(self.shortcut(x))             # 16 x 8 x 8: output row 0 reads only padding
        x = self.pool_quant(self.pool(x))
        return self.fc(x.view(x.size(0), -1))


create_model, example_input, held_out_data = fuzz_model_functions(Net, SEED, INPUT_SHAPE, DATA)
