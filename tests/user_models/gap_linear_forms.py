"""Global average pooling then a QuantLinear without an input quantizer, in the other forms users write:
nn.AvgPool2d over the whole map of a QuantTensor into a QuantLinear with Int32Bias (its bias quantized with the
pool's scale s / 64), and, after a QuantReLU returning a plain tensor, x.mean((2, 3)) into a QuantLinear with an
output quantizer and no bias, F.adaptive_avg_pool2d(x, 1) into a QuantLinear followed by more layers,
F.avg_pool2d(x, x.shape[-1]) into a QuantLinear with bias and output quantizer. Four outputs (the first is the
logits for the accuracy). Not trained: random weights, the quantizers calibrated on scikit-learn's digits."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
import torch.nn.functional as F
from _digits import digits
from brevitas.quant import Int8ActPerTensorFloat, Int32Bias


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv_a = qnn.QuantConv2d(1, 8, 3, padding=1, bias=True)
        self.relu_a = qnn.QuantReLU(return_quant_tensor=True)
        self.conv_b = qnn.QuantConv2d(1, 12, 3, padding=1, bias=True)
        self.relu_b = qnn.QuantReLU()
        self.pool_a = nn.AvgPool2d(8)
        self.fc_a = qnn.QuantLinear(8, 10, bias=True, bias_quant=Int32Bias)
        self.fc_b = qnn.QuantLinear(12, 10, bias=False, output_quant=Int8ActPerTensorFloat)
        self.fc_c1 = qnn.QuantLinear(12, 16, bias=True)
        self.relu_c = qnn.QuantReLU()
        self.fc_c2 = qnn.QuantLinear(16, 10, bias=True)
        self.fc_d = qnn.QuantLinear(12, 10, bias=True, output_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        x = self.quant(x)
        a = self.relu_a(self.conv_a(x))
        b = self.relu_b(self.conv_b(x))
        out_a = self.fc_a(torch.flatten(self.pool_a(a), 1))
        out_b = self.fc_b(b.mean((2, 3)))
        out_c = self.fc_c2(self.relu_c(self.fc_c1(F.adaptive_avg_pool2d(b, 1).flatten(1))))
        out_d = self.fc_d(F.avg_pool2d(b, b.shape[-1]).flatten(1))
        return out_a, out_b, out_c, out_d


def create_model():
    from brevitas.graph.calibrate import calibration_mode

    torch.manual_seed(0)
    model = Net().eval()
    x = digits()[0]
    with torch.no_grad(), calibration_mode(model):
        for i in range(4):
            model(x[i * 64:(i + 1) * 64])
    return model.eval()


def example_input():
    return digits()[2][:1]


def held_out_data():
    _, _, x, y = digits()
    return x[:48], y[:48]
