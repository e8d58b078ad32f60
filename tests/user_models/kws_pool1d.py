"""A 1-D keyword-spotting net with native 1-D pooling after its QuantConv1d layers, written as a user
writes it: nn.MaxPool1d(2), F.avg_pool1d and F.max_pool1d (stride, padding), nn.AdaptiveAvgPool1d(1),
each average followed by a QuantIdentity, flatten, QuantLinear. The sweep found these refused; they now
lower to the 2-D pooling ops over the map of height 1 (gapforge/ops/maxpool2d.py, avgpool2d.py).

Not trained: random weights, the quantizers calibrated (Brevitas calibration_mode) on scikit-learn's
bundled digits, each 8x8 image read as one channel of 64 time steps."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
import torch.nn.functional as F

HELD_OUT = 1500  # the digits from here on are the held-out inputs


class KWSPool1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity()
        self.c1 = qnn.QuantConv1d(1, 8, 5, padding=2)
        self.r1 = qnn.QuantReLU()
        self.pool1 = nn.MaxPool1d(2)
        self.c2 = qnn.QuantConv1d(8, 16, 3, padding=1)
        self.r2 = qnn.QuantReLU()
        self.q_avg = qnn.QuantIdentity()
        self.c3 = qnn.QuantConv1d(16, 16, 3, padding=1)
        self.r3 = qnn.QuantReLU()
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.q_gap = qnn.QuantIdentity()
        self.fc = qnn.QuantLinear(16, 10, bias=True)

    def forward(self, x):
        x = self.pool1(self.r1(self.c1(self.quant_in(x))))           # 64 -> 32
        x = self.q_avg(F.avg_pool1d(self.r2(self.c2(x)), 2))         # 32 -> 16
        x = F.max_pool1d(self.r3(self.c3(x)), 3, stride=2, padding=1)  # 16 -> 8
        x = self.q_gap(self.gap(x))                                  # 8 -> 1
        return self.fc(torch.flatten(x, 1))


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32).reshape(-1, 1, 64) / 16.0
    return x, torch.tensor(d.target, dtype=torch.int64)


def create_model():
    from brevitas.graph.calibrate import calibration_mode

    torch.manual_seed(0)
    model = KWSPool1d().eval()
    x = _digits()[0]
    with torch.no_grad(), calibration_mode(model):
        for i in range(0, 400, 100):
            model(x[i:i + 100])
    return model.eval()


def example_input():
    return _digits()[0][HELD_OUT:HELD_OUT + 1]


def held_out_data():
    x, y = _digits()
    return x[HELD_OUT:HELD_OUT + 96], y[HELD_OUT:HELD_OUT + 96]
