"""A two-layer bidirectional QuantLSTM with batch_first=False, written the way PyTorch code usually feeds
it (x.transpose(0, 1), the last step y[-1] and the last layer's final states h_n[-2], h_n[-1])."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _rand import calibrated, inputs

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


def create_model():
    torch.manual_seed(0)
    return calibrated(Net(), SHAPE)


def example_input():
    return inputs(SHAPE, 1, 1)


def held_out_data():
    return inputs(SHAPE, 64, 2), torch.arange(64) % 4
