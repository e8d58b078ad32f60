"""GroupNorm in a CNN on 8x8 digits: QuantConv2d, nn.GroupNorm with 4 groups of 2 channels (affine)
and a QuantReLU, max pooling, a second QuantConv2d, nn.GroupNorm with 1 group (no affine: LayerNorm
over C x H x W), the map viewed as (N, C, T) and F.group_norm with one group per channel (affine
parameters), then the classifier. Every GroupNorm reads a quantized tensor and goes to a quantizer."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
import torch.nn.functional as F
from brevitas.quant import Int32Bias

from _common import network

SIZE = 8


class GroupNormCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 8, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.conv1_q = qnn.QuantIdentity()
        self.gn1 = nn.GroupNorm(4, 8)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = qnn.QuantConv2d(8, 16, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.conv2_q = qnn.QuantIdentity()
        self.gn2 = nn.GroupNorm(1, 16, affine=False, eps=1e-3)
        self.relu2 = qnn.QuantReLU()
        self.gn3_weight = nn.Parameter(torch.ones(16))
        self.gn3_bias = nn.Parameter(torch.zeros(16))
        self.gn3_q = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc = qnn.QuantLinear(16 * 16, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        b = x.size(0)
        x = self.relu1(self.gn1(self.conv1_q(self.conv1(self.quant_in(x)))))
        x = self.pool(x)
        x = self.relu2(self.gn2(self.conv2_q(self.conv2(x))))
        x = self.gn3_q(F.group_norm(x.view(b, 16, 16), 16, self.gn3_weight, self.gn3_bias))
        return self.fc(x.flatten(1))


create_model, example_input, held_out_data = network("groupnorm_cnn", GroupNormCNN, size=SIZE, epochs=6, lr=4e-3)
