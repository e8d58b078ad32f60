"""ResNet-18-style network on 3x32x32 digits (grey replicated to 3 channels): a 3x3 stem conv (16
channels), 4 stages x 2 basic blocks of widths 16/32/64/128, stride 2 with a 1x1 stride-2
QuantConv2d projection shortcut at the start of stages 2-4, residual adds of QuantTensors whose
operands both pass through the block's shared add quantizer (equal scales), a QuantReLU after each
add, global average pooling requantized by a QuantIdentity and a linear classifier; exercises a
deep network (21 weight layers, 8 adds) with Int32Bias convolutions and no BatchNorm."""

import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network

SIZE = 32
CHANNELS = 3


def kaiming_init(model):
    """He initialisation (no BatchNorm here; PyTorch's default init makes training stall)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


def conv(cin, cout, k, stride=1):
    return qnn.QuantConv2d(cin, cout, k, stride=stride, padding=k // 2, bias=True, bias_quant=Int32Bias)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = conv(cin, cout, 3, stride)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.conv2 = conv(cout, cout, 3)
        self.proj = conv(cin, cout, 1, stride) if stride != 1 or cin != cout else None
        # shared by both add operands -> equal scales
        self.add_quant = qnn.QuantIdentity(return_quant_tensor=True)
        self.relu_out = qnn.QuantReLU(return_quant_tensor=True)

    def forward(self, x):
        out = self.conv2(self.relu1(self.conv1(x)))
        shortcut = x if self.proj is None else self.proj(x)
        out = self.add_quant(out) + self.add_quant(shortcut)
        return self.relu_out(out)


class ResNet18(nn.Module):
    def __init__(self, widths=(16, 32, 64, 128), num_classes=10):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.stem = conv(CHANNELS, widths[0], 3)
        self.stem_relu = qnn.QuantReLU(return_quant_tensor=True)
        blocks = []
        cin = widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlock(cin, w, 1 if i == 0 else 2))
            blocks.append(BasicBlock(w, w, 1))
            cin = w
        self.layers = nn.Sequential(*blocks)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.gap_quant = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(cin, num_classes, bias=True, bias_quant=Int32Bias)
        kaiming_init(self)

    def forward(self, x):
        x = self.stem_relu(self.stem(self.quant_in(x)))
        x = self.layers(x)
        x = self.gap_quant(self.gap(x))
        x = x.view(x.size(0), -1)
        return self.fc(x)


create_model, example_input, held_out_data = network("resnet18", ResNet18, size=SIZE, channels=CHANNELS, epochs=2, batch=32)
