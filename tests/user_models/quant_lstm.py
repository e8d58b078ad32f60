"""QuantLSTM with Brevitas' defaults (every state and gate quantized) over T = 6 steps, batch first, its last
step classified: was refused as a recurrent layer with a float state; it is integer arithmetic between
quantizers, unrolled by gapforge/ops/rnn.py."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _rand import calibrated, inputs

SHAPE = (6, 4)  # [time, features]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.lstm = qnn.QuantLSTM(4, 8, batch_first=True)
        self.fc = qnn.QuantLinear(8, 3, bias=True)

    def forward(self, x):
        y, _ = self.lstm(self.q(x))
        return self.fc(y[:, -1])


def create_model():
    torch.manual_seed(0)
    return calibrated(Net(), SHAPE)


def example_input():
    return inputs(SHAPE, 1, 1)


def held_out_data():
    return inputs(SHAPE, 64, 2), torch.arange(64) % 3
