"""Sweep finding: a CNN written the functional way, F.max_pool2d(F.relu(self.conv(x)), 2), on QuantConv2d layers with
their default float bias and a QuantIdentity after the pooling: the ReLU of an accumulator with a bias offset is a float
result, and max pooling it was refused; max commutes with ReLU, so the accumulator is pooled and the ReLU follows.
Digits-trained."""
import brevitas.nn as qnn
import torch.nn as nn
import torch.nn.functional as F
from _digits import factories
from brevitas.quant import Int8ActPerTensorFloat


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.qin = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 8, 3, padding=1)
        self.q1 = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv2 = qnn.QuantConv2d(8, 16, 3, padding=1)
        self.q2 = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(16 * 2 * 2, 10, bias=True)

    def forward(self, x):
        x = self.qin(x)
        x = self.q1(F.max_pool2d(F.relu(self.conv1(x)), 2))
        x = self.q2(F.max_pool2d(F.relu(self.conv2(x)), 2))
        x = x.view(x.size(0), -1)
        return self.fc(x)


create_model, example_input, held_out_data = factories(Net)
