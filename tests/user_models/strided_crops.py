"""Convolutions whose windows leave the last input rows or columns unread (issue 15, whole input planes): a
depthwise 3x3 stride 2 without padding over an even map (20 -> 9: rows and columns 0-18 read), a (1, 2) kernel
of column stride 2 over an odd width (9 -> 4: columns 0-7, every row), a 2x2 stride 2 over an odd height
(9 -> 4: rows 0-7, every column), and a 1x1 stride 2 over an even map (4 x 4 -> 2 x 2: rows and columns 0-2),
each followed by a QuantReLU, then a linear classifier. As one tile each, the GAP9 tiler loads whole input
planes instead of the crops (codegen/gap9/tiling.py TilePlan.in_plane). Calibrated on random inputs (_rand.factories)."""

import brevitas.nn as qnn
import torch.nn as nn
from _rand import factories
from brevitas.quant import Int32Bias

SHAPE = (4, 20, 20)


class StridedCrops(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.dw = qnn.QuantConv2d(4, 4, 3, stride=2, padding=0, groups=4, bias=True, bias_quant=Int32Bias)
        self.relu0 = qnn.QuantReLU(return_quant_tensor=True)
        self.cols = qnn.QuantConv2d(4, 8, (1, 2), stride=(1, 2), padding=0, bias=True, bias_quant=Int32Bias)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.rows = qnn.QuantConv2d(8, 16, 2, stride=2, padding=0, bias=True, bias_quant=Int32Bias)
        self.relu2 = qnn.QuantReLU(return_quant_tensor=True)
        self.pw = qnn.QuantConv2d(16, 16, 1, stride=2, bias=True, bias_quant=Int32Bias)
        self.relu3 = qnn.QuantReLU(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(16 * 2 * 1, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.quant_in(x)
        x = self.relu0(self.dw(x))  # 4 x 9 x 9
        x = self.relu1(self.cols(x))  # 8 x 9 x 4
        x = self.relu2(self.rows(x))  # 16 x 4 x 2
        x = self.relu3(self.pw(x))  # 16 x 2 x 1
        x = x.view(x.size(0), -1)
        return self.fc(x)


create_model, example_input, held_out_data = factories(StridedCrops, SHAPE, 16)
