"""Padding with the image's own values, the way image-to-image and small vision CNNs write it: a QuantConv2d with
padding_mode='reflect', an nn.ReplicationPad2d before a strided convolution, and a depthwise QuantConv2d with
padding_mode='circular' (a wrap-around map, as for panoramas). Each becomes edge_pad ops (one per padded axis)
before a convolution with no padding. Digits-trained."""
import brevitas.nn as qnn
import torch
import torch.nn as nn
from _digits import factories


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 8, 3, padding=1, padding_mode="reflect")
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.pad = nn.ReplicationPad2d((1, 1, 2, 0))
        self.conv2 = qnn.QuantConv2d(8, 16, 3, stride=2)
        self.relu2 = qnn.QuantReLU(return_quant_tensor=True)
        self.dw = qnn.QuantConv2d(16, 16, 3, padding=(1, 2), padding_mode="circular", groups=16, dilation=(1, 2))
        self.relu3 = qnn.QuantReLU(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(16 * 4 * 4, 10, bias=True)

    def forward(self, x):
        x = self.relu1(self.conv1(self.qin(x)))
        x = self.relu2(self.conv2(self.pad(x)))
        x = self.relu3(self.dw(x))
        return self.fc(torch.flatten(x, 1))


create_model, example_input, held_out_data = factories(Net)
