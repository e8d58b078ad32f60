"""Sweep finding: global max pooling over time written as torch.max(x, dim=2)[0] (its values; the indices unused),
the way 1-D audio / sensor classifiers and PointNet-style models write it, after a QuantConv1d + QuantReLU; the rows
of each digit are the channels and its columns the time steps. Digits-trained."""
import brevitas.nn as qnn
import torch
import torch.nn as nn
from _digits import factories


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv1 = qnn.QuantConv1d(8, 16, 3, padding=1)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.conv2 = qnn.QuantConv1d(16, 24, 3, padding=1)
        self.relu2 = qnn.QuantReLU(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(24, 10, bias=True)

    def forward(self, x):
        x = self.qin(x.view(x.size(0), 8, 8))
        x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        x = torch.max(x, dim=2)[0]
        return self.fc(x)


create_model, example_input, held_out_data = factories(Net)
