"""Sweep finding: global max pooling of a convolution's accumulator written as torch.amax(x, dim=(2, 3)), the conv with
its default float bias and a QuantIdentity (shared by the two branches the cat joins) after the max (max of a positive-scale accumulator is exact), and a
max over the rows kept as an axis (torch.max(x, 2, keepdim=True).values) in a second branch. Digits-trained."""
import brevitas.nn as qnn
import torch
import torch.nn as nn
from _digits import factories


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 8, 3, padding=1)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.conv2 = qnn.QuantConv2d(8, 16, 3, padding=1)
        self.qcat = qnn.QuantIdentity(return_quant_tensor=True)  # one quantizer for both: the cat needs one scale
        self.fc = qnn.QuantLinear(16 + 8 * 8, 10, bias=True)

    def forward(self, x):
        x = self.relu1(self.conv1(self.qin(x)))
        pooled = self.qcat(torch.amax(self.conv2(x), dim=(2, 3)))
        rows = self.qcat(torch.max(x, 2, keepdim=True).values.flatten(1))
        return self.fc(torch.cat([pooled, rows], dim=1))


create_model, example_input, held_out_data = factories(Net)
