"""QuantRNN whose hidden-to-hidden weight has its own weight quantizer (Brevitas shares one with the
input-to-hidden weight by default), so the two products of a step have different scales: two linears and
an add (two sources, one rounding) instead of one linear over [x, h]."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _rand import factories
from brevitas.nn.quant_rnn import GateWeight
from brevitas.quant import Int8WeightPerTensorFloat

SHAPE = (6, 4)  # [time, features]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.rnn = qnn.QuantRNN(4, 8, batch_first=True)
        gates = self.rnn.layers[0][0].gate_params
        gates.hidden_weight = GateWeight(8, 8, Int8WeightPerTensorFloat, None, None)
        with torch.no_grad():
            gates.hidden_weight.weight.mul_(0.1)
        self.fc = qnn.QuantLinear(8, 3, bias=True)

    def forward(self, x):
        y, _ = self.rnn(self.q(x))
        return self.fc(y[:, -1])


create_model, example_input, held_out_data = factories(Net, SHAPE, 64, classes=3)
