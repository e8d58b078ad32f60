"""A two-layer bidirectional QuantLSTM with batch_first=False, written the way PyTorch code usually feeds
it (x.transpose(0, 1), the last step y[-1] and the last layer's final states h_n[-2], h_n[-1])."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _rand import factories

SHAPE = (5, 3)  # [time, features]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity()
        self.lstm = qnn.QuantLSTM(3, 6, num_layers=2, bidirectional=True)
        self.fc = qnn.QuantLinear(24, 4, bias=True)

    def forward(self, x):
        y, (h, c) = self.lstm(self.q(x).transpose(0, 1))
        return self.fc(torch.cat([y[-1], h[-2], h[-1]], dim=1))


create_model, example_input, held_out_data = factories(Net, SHAPE, 64, classes=4)
