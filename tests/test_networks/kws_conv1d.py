"""Keyword-spotting style 1-D CNN over a long spectrogram-like input: the digits' 8 rows as channels,
resampled to 1024 time steps. Exercises QuantConv1d with padding='same', stride, dilation, a causal
depthwise conv written with F.pad(x, (k-1, 0)), Mamba's causal depthwise conv (padding=k-1, then
x[..., :T]), and a sequence long enough that GAP9 must tile over time (and stream at a small L2)."""

import brevitas.nn as qnn
import torch.nn as nn
import torch.nn.functional as F
from brevitas.quant import Int32Bias

from seqdata import network

T = 1024


def kaiming_init(model):
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


class KwsConv1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.c1 = qnn.QuantConv1d(8, 16, 5, padding="same", bias=True, bias_quant=Int32Bias)
        self.r1 = qnn.QuantReLU(return_quant_tensor=True)
        self.c2 = qnn.QuantConv1d(16, 16, 4, stride=4, bias=True, bias_quant=Int32Bias)
        self.r2 = qnn.QuantReLU(return_quant_tensor=True)
        self.causal_dw = qnn.QuantConv1d(16, 16, 3, groups=16, bias=True, bias_quant=Int32Bias)
        self.r3 = qnn.QuantReLU(return_quant_tensor=True)
        self.c3 = qnn.QuantConv1d(16, 32, 3, dilation=2, padding="same", bias=True, bias_quant=Int32Bias)
        self.r4 = qnn.QuantReLU(return_quant_tensor=True)
        self.mamba_dw = qnn.QuantConv1d(32, 32, 4, groups=32, padding=3, bias=True, bias_quant=Int32Bias)
        self.r5 = qnn.QuantReLU(return_quant_tensor=True)
        self.c4 = qnn.QuantConv1d(32, 32, 4, stride=4, bias=True, bias_quant=Int32Bias)
        self.r6 = qnn.QuantReLU(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(32 * (T // 16), 10, bias=True, bias_quant=Int32Bias)
        kaiming_init(self)

    def forward(self, x):
        x = self.r2(self.c2(self.r1(self.c1(self.quant_in(x)))))
        x = self.r3(self.causal_dw(F.pad(x, (2, 0))))  # causal: zeros on the left only
        x = self.r4(self.c3(x))
        t = x.shape[-1]
        x = self.r5(self.mamba_dw(x)[..., :t])  # Mamba: pad k-1 on both sides, keep the first T
        x = self.r6(self.c4(x))
        return self.fc(x.flatten(1))


create_model, example_input, held_out_data = network("kws_conv1d", KwsConv1d, length=T)
