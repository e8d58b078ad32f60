"""Sweep finding: nn.PReLU (one learned slope per channel) straight on a QuantConv2d's output and on a quantized
tensor, each followed by a QuantIdentity, the way face / speech models use it; the slopes differ per channel, so the
step function of the accumulator and the table of the quantized tensor are per channel. Digits-trained."""
import brevitas.nn as qnn
import torch
import torch.nn as nn
from _digits import factories


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 8, 3, padding=1)
        self.prelu1 = nn.PReLU(8)
        self.q1 = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv2 = qnn.QuantConv2d(8, 8, 3, padding=1, stride=2)
        self.q2 = qnn.QuantIdentity(return_quant_tensor=True)
        self.prelu2 = nn.PReLU(8)
        self.q3 = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(8 * 4 * 4, 10, bias=True)
        with torch.no_grad():  # distinct slopes per channel (training moves them a little)
            self.prelu1.weight.copy_(torch.linspace(-0.3, 0.6, 8))
            self.prelu2.weight.copy_(torch.linspace(0.05, 0.5, 8))

    def forward(self, x):
        x = self.q1(self.prelu1(self.conv1(self.qin(x))))
        x = self.q3(self.prelu2(self.q2(self.conv2(x))))
        return self.fc(torch.flatten(x, 1))


create_model, example_input, held_out_data = factories(Net)
