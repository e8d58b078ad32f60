"""The selective scan alone (seqdata/mamba.py SelectiveScan): the digits' 8 rows as 8 features over 16
time steps, token-major [B, L, 8]. delta = Softplus(dt_proj(x)), B and C = x_proj(x) (sliced), u = x;
the scan loop with a quantized state (folded into one scan op), then a linear head over the sequence."""

import brevitas.nn as qnn
import torch.nn as nn

from seqdata.mamba import SelectiveScan, kaiming_init, network, qid

L, D, N = 16, 8, 4


class MambaSSM(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qid()
        self.x_proj = qnn.QuantLinear(D, 2 * N, bias=False)
        self.xproj_quant = qid()
        self.dt_proj = qnn.QuantLinear(D, D, bias=True)
        self.dt_quant = qid()
        self.softplus = nn.Softplus()
        self.delta_quant = qid(unsigned=True)
        self.scan = SelectiveScan(D, N)
        self.fc = qnn.QuantLinear(L * D, 10, bias=True)
        kaiming_init(self)

    def forward(self, x):  # [B, 8, L]
        u = self.quant_in(x).transpose(1, 2)  # [B, L, 8]
        p = self.xproj_quant(self.x_proj(u))
        Bm, Cm = p[..., :N], p[..., N:]
        delta = self.delta_quant(self.softplus(self.dt_quant(self.dt_proj(u))))
        y = self.scan(delta, u, Bm, Cm)
        return self.fc(y.flatten(1))


create_model, example_input, held_out_data = network("mamba_ssm", MambaSSM, length=L)
