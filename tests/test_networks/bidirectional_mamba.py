"""Bidirectional Mamba (as in Vision Mamba / EEG encoders): one mixer over the sequence and one over
the reversed sequence (torch.flip over the tokens, and back), their outputs summed into one quantizer,
the residual added; the digits' 8 rows as 8 features x 16 time steps, then a linear head."""

import brevitas.nn as qnn
import torch
import torch.nn as nn

from seqdata.mamba import MambaMixer, kaiming_init, network, qid

L = 16


class BidirectionalMamba(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qid()
        self.fwd = MambaMixer(8, d_inner=16, d_state=4, d_conv=4, dt_rank=2)
        self.bwd = MambaMixer(8, d_inner=16, d_state=4, d_conv=4, dt_rank=2)
        self.mix_quant = qid()
        self.res_quant = qid()
        self.fc = qnn.QuantLinear(L * 8, 10, bias=True)
        kaiming_init(self)

    def forward(self, x):  # [B, 8, L]
        x = self.quant_in(x).transpose(1, 2)  # [B, L, 8]
        y = self.mix_quant(self.fwd(x) + torch.flip(self.bwd(torch.flip(x, [1])), [1]))
        return self.fc(self.res_quant(x + y).flatten(1))


create_model, example_input, held_out_data = network("bidirectional_mamba", BidirectionalMamba, length=L)
