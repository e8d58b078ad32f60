"""Packed sub-byte weights on gap9 for the layout probe: 2-bit weights (four per byte) on fc1,
4-bit weights (two per byte) on fc2, with an odd row length (61 inputs: rows padded to whole bytes).
Calibrated, not trained (the probe needs a layout, not accuracy)."""
import brevitas.nn as qnn
import torch
import torch.nn as nn
from brevitas.graph.calibrate import calibration_mode
from brevitas.quant import Int32Bias


class LowBitMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(61, 24, bias=True, bias_quant=Int32Bias, weight_bit_width=2)
        self.relu1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(24, 10, bias=True, bias_quant=Int32Bias, weight_bit_width=4)

    def forward(self, x):
        return self.fc2(self.relu1(self.fc1(self.quant_in(x))))


def _data():
    return torch.randn(64, 61, generator=torch.Generator().manual_seed(1))


def create_model():
    torch.manual_seed(0)
    model = LowBitMLP().eval()
    with torch.no_grad(), calibration_mode(model):
        model(_data())
    return model.eval()


def example_input():
    return _data()[:1]


def held_out_data():
    x = _data()[:8]
    return x, torch.zeros(len(x), dtype=torch.int64)
