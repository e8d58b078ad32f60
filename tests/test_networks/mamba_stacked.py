"""Two residual Mamba blocks stacked (seqdata/mamba.py MambaBlock) over the digits' 8 rows as 8
features x 16 time steps, then a linear head: two scans, two causal convs, two gates (trained 6 epochs)."""

import brevitas.nn as qnn
import torch
import torch.nn as nn

from seqdata.mamba import MambaBlock, kaiming_init, network, qid

L, BLOCKS = 16, 2


class MambaStacked(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qid()
        self.blocks = nn.Sequential(*[MambaBlock(8, d_inner=16, d_state=4, d_conv=4, dt_rank=2)
                                      for _ in range(BLOCKS)])
        self.fc = qnn.QuantLinear(L * 8, 10, bias=True)
        kaiming_init(self)
        with torch.no_grad():  # as Mamba: each residual branch scaled down by 1/sqrt(blocks) at init
            for b in self.blocks:
                b.mixer.out_proj.weight /= BLOCKS ** 0.5

    def forward(self, x):  # [B, 8, L]
        x = self.quant_in(x).transpose(1, 2)  # [B, L, 8]
        return self.fc(self.blocks(x).flatten(1))


create_model, example_input, held_out_data = network("mamba_stacked", MambaStacked, length=L, epochs=6)
