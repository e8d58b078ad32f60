"""Mamba's front half (seqdata/mamba.py CausalConvSiLU): the digits' 8 rows as 8 features over 16 time
steps, token-major [B, L, 8]; in_proj (QuantLinear over tokens) split into (x, z) by slicing, x through
the depthwise causal QuantConv1d (padding=k-1, then [..., :L]) and SiLU, gated by SiLU(z), then a
linear head over the flattened sequence."""

import brevitas.nn as qnn
import torch.nn as nn

from seqdata.mamba import CausalConvSiLU, kaiming_init, network, qid

L = 16


class MambaConv1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qid()
        self.front = CausalConvSiLU(8, 16, d_conv=4)
        self.z_act = nn.SiLU()
        self.z_quant = qid()
        self.gate_quant = qid()
        self.fc = qnn.QuantLinear(L * 16, 10, bias=True)
        kaiming_init(self)

    def forward(self, x):  # [B, 8, L]
        x = self.quant_in(x).transpose(1, 2)  # [B, L, 8]
        u, z = self.front(x)
        y = self.gate_quant(u * self.z_quant(self.z_act(z)))
        return self.fc(y.flatten(1))


create_model, example_input, held_out_data = network("mamba_conv1d", MambaConv1d, length=L)
