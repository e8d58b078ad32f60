"""Large-activation CNN on 96x96 digits: 3x3 convs with 16, 16, 32 and 32 channels, QuantReLU, max
pooling (96 -> 24 -> 12 -> 6 -> 3), global average pooling (AdaptiveAvgPool2d(1) requantized by a
QuantIdentity) and a linear classifier; the first activation is 16x96x96 (147,456 bytes at INT8,
more than GAP9's 128 KiB L1), so its convolution and the pooling after it must be tiled even with
the full L1; also a 4x4 max pooling window."""

import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network

SIZE = 96


def kaiming_init(model):
    """He initialisation (no BatchNorm here; PyTorch's default init makes training stall)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


class LargeCNN96(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 16, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.pool1 = nn.MaxPool2d(4)
        self.conv2 = qnn.QuantConv2d(16, 16, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.relu2 = qnn.QuantReLU(return_quant_tensor=True)
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = qnn.QuantConv2d(16, 32, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.relu3 = qnn.QuantReLU(return_quant_tensor=True)
        self.pool3 = nn.MaxPool2d(2)
        self.conv4 = qnn.QuantConv2d(32, 32, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.relu4 = qnn.QuantReLU(return_quant_tensor=True)
        self.pool4 = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.gap_quant = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(32, 10, bias=True, bias_quant=Int32Bias)
        kaiming_init(self)

    def forward(self, x):
        x = self.quant_in(x)
        x = self.pool1(self.relu1(self.conv1(x)))  # 16x96x96 -> 16x24x24
        x = self.pool2(self.relu2(self.conv2(x)))  # 16x24x24 -> 16x12x12
        x = self.pool3(self.relu3(self.conv3(x)))  # 32x12x12 -> 32x6x6
        x = self.pool4(self.relu4(self.conv4(x)))  # 32x6x6 -> 32x3x3
        x = self.gap_quant(self.gap(x))
        x = x.view(x.size(0), -1)
        return self.fc(x)


create_model, example_input, held_out_data = network("large_cnn_96", LargeCNN96, size=SIZE, epochs=3, lr=2e-3, batch=32)
