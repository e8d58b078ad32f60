"""QuantLSTM with Brevitas' defaults (every state and gate quantized) over T = 6 steps, batch first, its last
step classified: was refused as a recurrent layer with a float state; it is integer arithmetic between
quantizers, unrolled by gapforge/ops/rnn.py."""

import brevitas.nn as qnn
import torch.nn as nn
from _rand import factories

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


create_model, example_input, held_out_data = factories(Net, SHAPE, 64, classes=3)
