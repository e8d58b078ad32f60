"""Sweep finding: torch.chunk / torch.split / torch.tensor_split / torch.unbind / torch.select of a quantized
activation, the way users split channels into branches (GhostNet / ShuffleNetV2 halves, a gated unit's two halves)
or pick a step of a sequence. Brevitas returns plain tensors for these; each piece goes on to a layer or a cat."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _rand import factories


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(2, 12, 3, padding=1)
        self.r1 = qnn.QuantReLU(return_quant_tensor=True)
        self.branch = nn.Sequential(qnn.QuantConv2d(6, 6, 3, padding=1, groups=6), qnn.QuantReLU())
        self.cat_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.narrow = qnn.QuantConv2d(5, 4, 1)  # the 5-channel piece of split([7, 5])
        self.q2 = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 * 6 + 12, 5)

    def forward(self, x):
        x = self.r1(self.c1(self.qin(x)))                 # [B, 12, 6, 6]
        a, b = torch.chunk(x, 2, dim=1)
        x = self.cat_q(torch.cat([self.branch(a), b], dim=1))
        _, c = torch.split(x, [7, 5], dim=1)
        y = self.q2(self.narrow(c))                       # [B, 4, 6, 6]
        row = torch.select(y, 2, -1)                      # the last row: [B, 4, 6]
        first, _, third = torch.tensor_split(y, 3, dim=3)  # [B, 4, 6, 2] each
        planes = torch.unbind(third, dim=1)               # 4 x [B, 6, 2]
        col = torch.cat([torch.flatten(p[:, :, 0], 1) for p in planes[:2]], dim=1)  # [B, 12]
        return self.fc(torch.cat([torch.flatten(row, 1), col], dim=1))


create_model, example_input, held_out_data = factories(Net, (2, 6, 6), 8)
