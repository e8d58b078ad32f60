"""ResNet-style basic block on 16x16 digits: two stem convs with max pooling (16 -> 8 -> 4), then a
basic block conv-ReLU-conv whose output is added to the block input as QuantTensors with equal
scales (one QuantReLU module instance is shared: it quantizes both the stem output, i.e. the
identity, and the branch's second conv, as in Brevitas' QuantResNet), a QuantReLU on the sum,
global average pooling (AdaptiveAvgPool2d(1)) requantized by a QuantIdentity, and a linear
classifier; exercises the explicit residual Add and global average pooling."""

import torch.nn as nn
import brevitas.nn as qnn
from brevitas.quant import Int32Bias

from _common import network

SIZE = 16
WIDTH = 32


def kaiming_init(model):
    """He initialisation (no BatchNorm here; PyTorch's default init makes training stall)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


class ResNetBlockNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.stem1 = qnn.QuantConv2d(1, 16, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.stem_relu = qnn.QuantReLU(return_quant_tensor=True)
        self.pool1 = nn.MaxPool2d(2)
        self.stem2 = qnn.QuantConv2d(16, WIDTH, 3, padding=1, bias=True, bias_quant=Int32Bias)
        # shared: quantizes the block input (identity) and the residual branch -> equal scales
        self.shared_relu = qnn.QuantReLU(return_quant_tensor=True)
        self.pool2 = nn.MaxPool2d(2)
        self.conv1 = qnn.QuantConv2d(WIDTH, WIDTH, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.conv2 = qnn.QuantConv2d(WIDTH, WIDTH, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.relu_out = qnn.QuantReLU(return_quant_tensor=True)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.gap_quant = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(WIDTH, 10, bias=True, bias_quant=Int32Bias)
        kaiming_init(self)

    def forward(self, x):
        x = self.quant_in(x)
        x = self.pool1(self.stem_relu(self.stem1(x)))                 # 16x8x8
        identity = self.pool2(self.shared_relu(self.stem2(x)))        # 32x4x4
        out = self.relu1(self.conv1(identity))
        out = self.shared_relu(self.conv2(out))
        out = out + identity
        out = self.relu_out(out)
        out = self.gap_quant(self.gap(out))
        out = out.view(out.size(0), -1)
        return self.fc(out)


create_model, example_input, held_out_data = network("resnet_block", ResNetBlockNet, size=SIZE, lr=5e-3, batch=32)
