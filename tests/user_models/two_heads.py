"""Sweep finding: a model with two outputs (a multi-task net returning a tuple of logits) was
extracted with both outputs, then deploy.py stopped at the fidelity stage with exit 3
(AttributeError: 'tuple' object has no attribute 'detach'). One backbone, a 10-class head and a
2-class head, returned as (cls, parity). Calibrated on random inputs, not trained."""

import brevitas.nn as qnn
import torch
import torch.nn as nn


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(1, 8, 3, padding=1)
        self.relu = qnn.QuantReLU(return_quant_tensor=True)
        self.pool = nn.MaxPool2d(2)
        self.head_cls = qnn.QuantLinear(8 * 4 * 4, 10, bias=True)
        self.head_par = qnn.QuantLinear(8 * 4 * 4, 2, bias=True)

    def forward(self, x):
        f = self.pool(self.relu(self.conv(self.quant_in(x)))).flatten(1)
        return self.head_cls(f), self.head_par(f)


def create_model():
    from brevitas.graph.calibrate import calibration_mode

    torch.manual_seed(0)
    model = TwoHeads().eval()
    with torch.no_grad(), calibration_mode(model):
        for _ in range(4):
            model(torch.rand(32, 1, 8, 8))
    return model.eval()


def example_input():
    torch.manual_seed(1)
    return torch.rand(1, 1, 8, 8)


def held_out_data():
    torch.manual_seed(2)
    return torch.rand(24, 1, 8, 8), torch.arange(24) % 10
