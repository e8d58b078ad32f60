"""The 1-D forms of global average pooling into a QuantLinear without an input quantizer, after a QuantConv1d:
nn.AdaptiveAvgPool1d(1) of a QuantTensor (QuantReLU(return_quant_tensor=True)) into a QuantLinear with bias,
x.mean(2) of a plain tensor into a QuantLinear with output quantizer, F.avg_pool1d(x, x.shape[-1]) into a
QuantLinear without bias. Three outputs. Not trained: random weights, the quantizers calibrated on
scikit-learn's digits, each 8x8 image read as one channel of 64 time steps."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
import torch.nn.functional as F
from _digits import digits
from brevitas.quant import Int8ActPerTensorFloat


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv_a = qnn.QuantConv1d(1, 8, 5, padding=2, bias=True)
        self.relu_a = qnn.QuantReLU(return_quant_tensor=True)
        self.conv_b = qnn.QuantConv1d(1, 6, 3, padding=1, bias=True)
        self.relu_b = qnn.QuantReLU()
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.fc_a = qnn.QuantLinear(8, 10, bias=True)
        self.fc_b = qnn.QuantLinear(6, 10, bias=True, output_quant=Int8ActPerTensorFloat)
        self.fc_c = qnn.QuantLinear(6, 10, bias=False)

    def forward(self, x):
        x = self.quant(x)
        a = self.relu_a(self.conv_a(x))
        b = self.relu_b(self.conv_b(x))
        out_a = self.fc_a(torch.flatten(self.gap(a), 1))
        out_b = self.fc_b(b.mean(2))
        out_c = self.fc_c(F.avg_pool1d(b, b.shape[-1]).flatten(1))
        return out_a, out_b, out_c


def _series():
    xtr, ytr, xte, yte = digits()
    return xtr.reshape(-1, 1, 64), ytr, xte.reshape(-1, 1, 64), yte


def create_model():
    from brevitas.graph.calibrate import calibration_mode

    torch.manual_seed(0)
    model = Net().eval()
    x = _series()[0]
    with torch.no_grad(), calibration_mode(model):
        for i in range(4):
            model(x[i * 64:(i + 1) * 64])
    return model.eval()


def example_input():
    return _series()[2][:1]


def held_out_data():
    _, _, x, y = _series()
    return x[:48], y[:48]
