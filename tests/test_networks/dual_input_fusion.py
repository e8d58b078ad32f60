"""Two model inputs fused (two sensors): the top and bottom halves of each digit's rows, each a
(4 channels x 8 steps) sequence through its own QuantConv1d branch, concatenated over channels,
then a shared conv and a linear head. example_input() / held_out_data() return a pair of tensors."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from brevitas.quant import Int32Bias

from seqdata import network


def kaiming_init(model):
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


class DualInputFusion(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_a = qnn.QuantIdentity(return_quant_tensor=True)
        self.quant_b = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv_a = qnn.QuantConv1d(4, 16, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.conv_b = qnn.QuantConv1d(4, 16, 3, padding=1, bias=True, bias_quant=Int32Bias)
        # one output quantizer shared by both branches: the cat needs one scale
        self.relu = qnn.QuantReLU(return_quant_tensor=True)
        self.fuse = qnn.QuantConv1d(32, 32, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.fuse_relu = qnn.QuantReLU(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(32 * 8, 10, bias=True, bias_quant=Int32Bias)
        kaiming_init(self)

    def forward(self, top, bottom):
        a = self.relu(self.conv_a(self.quant_a(top)))
        b = self.relu(self.conv_b(self.quant_b(bottom)))
        x = self.fuse_relu(self.fuse(torch.cat([a, b], dim=1)))
        return self.fc(x.flatten(1))


create_model, example_input, held_out_data = network("dual_input_fusion", DualInputFusion, halves=True)
