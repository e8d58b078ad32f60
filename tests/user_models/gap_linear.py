"""The most common classifier head, written as users write it: QuantReLU(return_quant_tensor=True), global
average pooling (nn.AdaptiveAvgPool2d(1)), torch.flatten, then a QuantLinear with its default quantizers (no
input quantizer, a float bias, no output quantizer). It was refused ('its input is an int32 accumulator');
the linear now reads the int32 window sums (the 1/64 in the scale). Trained briefly on scikit-learn's digits."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _digits import factories


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 8, 3, padding=1, bias=True)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.conv2 = qnn.QuantConv2d(8, 16, 3, padding=1, bias=True)
        self.relu2 = qnn.QuantReLU(return_quant_tensor=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = qnn.QuantLinear(16, 10, bias=True)

    def forward(self, x):
        x = self.relu2(self.conv2(self.relu1(self.conv1(self.quant(x)))))
        x = self.pool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


create_model, example_input, held_out_data = factories(Net)
