"""One full residual Mamba block (seqdata/mamba.py MambaBlock): in_proj, depthwise causal QuantConv1d,
SiLU, x_proj, dt_proj, Softplus, the selective scan with a quantized state, gating y * SiLU(z), out_proj
and the residual, over the digits' 8 rows as 8 features x 16 time steps; then a linear head."""

import brevitas.nn as qnn
import torch.nn as nn

from seqdata.mamba import MambaBlock, kaiming_init, network, qid

L = 16


class MambaBlockNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qid()
        self.block = MambaBlock(8, d_inner=16, d_state=4, d_conv=4, dt_rank=2)
        self.fc = qnn.QuantLinear(L * 8, 10, bias=True)
        kaiming_init(self)

    def forward(self, x):  # [B, 8, L]
        x = self.quant_in(x).transpose(1, 2)  # [B, L, 8]
        return self.fc(self.block(x).flatten(1))


create_model, example_input, held_out_data = network("mamba_block", MambaBlockNet, length=L)
