"""Binary quantizers around quantized tensors (not after an accumulator): an 8-bit QuantIdentity, then a binary
QuantIdentity of it (a table from the 8-bit codes to -1 / +1), a float function of the binary tensor into an
8-bit quantizer (a table of the binary input: 2-bit layout, codes -1 and +1 read), and a binary-weight
QuantLinear with a binary output quantizer on the 8-bit codes (a one-step thresholds op per feature); both
branches are concatenated after an 8-bit QuantIdentity of the second."""

import brevitas.nn as qnn
import torch
import torch.nn as nn
from brevitas.quant import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.b = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
        self.t = qnn.QuantIdentity()
        self.fc = qnn.QuantLinear(16, 8, bias=True, weight_quant=SignedBinaryWeightPerTensorConst,
                                  output_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
        self.o = qnn.QuantIdentity()

    def forward(self, x):
        x = self.q(x)
        a = self.t(torch.sigmoid(self.b(x)))
        return torch.cat([a, self.o(self.fc(x))], dim=1)


def create_model():
    from brevitas.graph.calibrate import calibration_mode

    torch.manual_seed(0)
    m = Net().eval()
    with torch.no_grad(), calibration_mode(m):
        m(torch.randn(64, 16))
    return m.eval()


def example_input():
    torch.manual_seed(1)
    return torch.randn(1, 16)


def held_out_data():
    torch.manual_seed(2)
    return torch.randn(32, 16), torch.zeros(32, dtype=torch.int64)
