"""Element-wise float activations between quantizers on 12x12 digits: nn.SiLU, F.hardswish,
a squeeze-and-excitation gate (global average pooling, torch.sigmoid, and the product x * gate
broadcast over [N, C, H, W] * [N, C, 1, 1]), torch.tanh, LeakyReLU(0.1) into a per-channel
quantizer (one table per channel), ELU of that per-channel tensor (per-channel tables again),
x * x.sigmoid() written by hand on a plain tensor and Softplus, each followed by a quantizer;
exercises the lut op (per tensor and per channel) and the mul op (broadcast gating)."""

import torch
import torch.nn as nn
import torch.nn.functional as F
import brevitas.nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int32Bias, Uint8ActPerTensorFloat

from _common import network

SIZE = 12
C = 8


class Int8ActPerChannelFloat(Int8ActPerTensorFloat):
    """Signed 8-bit activations with one scale per channel (axis 1)."""

    scaling_per_output_channel = True
    per_channel_broadcastable_shape = (1, C, 1, 1)
    scaling_stats_permute_dims = (1, 0, 2, 3)


def conv(cin, cout):
    return qnn.QuantConv2d(cin, cout, 3, padding=1, bias=True, bias_quant=Int32Bias,
                           output_quant=Int8ActPerTensorFloat, return_quant_tensor=True)


def quant(act_quant=Int8ActPerTensorFloat):
    return qnn.QuantIdentity(act_quant=act_quant, return_quant_tensor=True)


class ActivationsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = quant()
        self.conv1 = conv(1, C)
        self.silu = nn.SiLU()
        self.q_silu = quant()
        self.conv2 = conv(C, C)
        self.q_hswish = quant()
        self.pool_gate = nn.AdaptiveAvgPool2d(1)
        self.q_pool = quant()
        self.q_gate = quant(Uint8ActPerTensorFloat)
        self.q_gated = quant()
        self.conv3 = conv(C, C)
        self.q_tanh = quant()
        self.conv4 = conv(C, C)
        self.leaky = nn.LeakyReLU(0.1)
        self.q_leaky = quant(Int8ActPerChannelFloat)
        self.elu = nn.ELU()
        self.q_elu = qnn.QuantIdentity(return_quant_tensor=False)  # a plain tensor: Tensor methods
        self.q_swish = quant()
        self.conv5 = conv(C, C)
        self.softplus = nn.Softplus()
        self.q_softplus = quant(Uint8ActPerTensorFloat)
        self.pool = nn.MaxPool2d(2)
        self.fc = qnn.QuantLinear(C * 6 * 6, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.quant_in(x)
        x = self.q_silu(self.silu(self.conv1(x)))
        x = self.q_hswish(F.hardswish(self.conv2(x)))
        g = self.q_gate(torch.sigmoid(self.q_pool(self.pool_gate(x))))
        x = self.q_gated(x * g)
        x = self.q_tanh(torch.tanh(self.conv3(x)))
        x = self.q_leaky(self.leaky(self.conv4(x)))
        x = self.q_elu(self.elu(x))
        x = self.q_swish(x * x.sigmoid())
        x = self.q_softplus(self.softplus(self.conv5(x)))
        x = self.pool(x)
        return self.fc(x.reshape(x.shape[0], -1))


create_model, example_input, held_out_data = network("activations_cnn", ActivationsCNN, size=SIZE, epochs=6)
