"""A 1-D keyword-spotting net whose MaxPool1d / F.max_pool1d / AdaptiveAvgPool1d were rewritten as the
checker's former hint said (when 1-D pooling was refused): the 2-D max pooling with kernel (1, k) on
x.unsqueeze(2), then .squeeze(2); the global average over time as x.mean(-1) and a QuantIdentity. 1-D
pooling is supported natively now (tests/user_models/kws_pool1d.py); this rewrite must keep deploying.
Calibrated on random inputs."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
import torch.nn.functional as F


class KWS(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity()
        self.c1 = qnn.QuantConv1d(8, 16, 3, padding=1)
        self.r1 = qnn.QuantReLU()
        self.p1 = nn.MaxPool2d((1, 2))
        self.c2 = qnn.QuantConv1d(16, 16, 3, padding=1)
        self.r2 = qnn.QuantReLU()
        self.qg = qnn.QuantIdentity()
        self.fc = qnn.QuantLinear(16, 10, bias=True)

    def forward(self, x):
        x = self.p1(self.r1(self.c1(self.q(x))).unsqueeze(2)).squeeze(2)
        x = F.max_pool2d(self.r2(self.c2(x)).unsqueeze(2), (1, 2)).squeeze(2)
        return self.fc(self.qg(x.mean(-1)))


def create_model():
    from brevitas.graph.calibrate import calibration_mode

    torch.manual_seed(0)
    model = KWS().eval()
    with torch.no_grad(), calibration_mode(model):
        for _ in range(4):
            model(torch.randn(16, 8, 32))
    return model.eval()


def example_input():
    torch.manual_seed(1)
    return torch.randn(1, 8, 32)


def held_out_data():
    torch.manual_seed(2)
    return torch.randn(16, 8, 32), torch.arange(16) % 10
