"""Float preprocessing of the raw input in forward, before the input quantizers, as users write it: the
digits as [N, 8, 8] pixels in [0, 255], x.float(), unsqueeze(1), a transpose of the image, (x / 255.0 - mean) /
std with register_buffer constants, and a second quantizer on 1.0 - x * (2 / 255.0) of the same float tensor.
Before, the checker refused every one ('div: scales an unquantized float tensor', 'unsupported operation
sub'); they fold into the host-side quantize step."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from _digits import digits, factories

_xtr, YTR, _xte, YTE = digits(255.0)
XTR, XTE = _xtr[:, 0].round(), _xte[:, 0].round()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.linspace(0.1, 0.3, 8).reshape(1, 1, 1, 8))
        self.register_buffer("std", torch.full((1, 1, 1, 1), 0.35))
        self.qin = qnn.QuantIdentity(return_quant_tensor=True)
        self.qin2 = qnn.QuantIdentity(return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(1, 4, 3, padding=1, bias=True)
        self.c2 = qnn.QuantConv2d(1, 4, 3, padding=1, bias=True)
        self.r = qnn.QuantReLU(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 * 64, 10, bias=True)

    def forward(self, x):
        x = x.float().unsqueeze(1).transpose(2, 3)
        a = self.qin((x / 255.0 - self.mean) / self.std)
        b = self.qin2(1.0 - x * (2 / 255.0))
        return self.fc(self.r(self.c1(a) + self.c2(b)).flatten(1))


create_model, example_input, held_out_data = factories(Net, (XTR, YTR, XTE, YTE))
