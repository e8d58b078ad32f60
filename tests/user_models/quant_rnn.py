"""QuantRNN (relu, no bias) over T = 5 steps, every step's output classified, and the final state through
h_n.squeeze(0): an Elman RNN whose state is quantized (io_quant) is deployed exactly."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _rand import factories

SHAPE = (5, 4)  # [time, features]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.rnn = qnn.QuantRNN(4, 8, nonlinearity="relu", bias=False, batch_first=True)
        self.rnn2 = qnn.QuantRNN(8, 8, batch_first=True)
        self.fc = qnn.QuantLinear(5 * 8 + 8, 3, bias=True)

    def forward(self, x):
        y, _ = self.rnn(self.q(x))
        y2, h = self.rnn2(y)
        return self.fc(torch.cat([y2.flatten(1), h.squeeze(0)], dim=1))


create_model, example_input, held_out_data = factories(Net, SHAPE, 64, classes=3)
