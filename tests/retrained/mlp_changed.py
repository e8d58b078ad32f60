"""Architecture changes of the mlp regression network, each refused by tools/update_weights.py.

``MLP_CHANGE`` (environment) picks one: ``width`` (fc1 64 -> 48 outputs), ``bits`` (4-bit weights on
fc2) or ``layer`` (an extra 32 -> 32 QuantLinear + QuantReLU). Trained like the original (cached).
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test_networks"))

import brevitas.nn as qnn  # noqa: E402
import torch.nn as nn  # noqa: E402
from _common import network  # noqa: E402
from brevitas.quant import Int32Bias  # noqa: E402

CHANGE = os.environ.get("MLP_CHANGE", "width")
if CHANGE not in ("width", "bits", "layer"):
    raise ValueError(f"MLP_CHANGE={CHANGE!r}: choose width, bits or layer")


class ChangedMLP(nn.Module):
    def __init__(self):
        super().__init__()
        hidden = 48 if CHANGE == "width" else 64
        self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(64, hidden, bias=True, bias_quant=Int32Bias)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(hidden, 32, bias=True, bias_quant=Int32Bias,
                                   weight_bit_width=4 if CHANGE == "bits" else 8)
        self.relu2 = qnn.QuantReLU(return_quant_tensor=True)
        self.extra = nn.Sequential(qnn.QuantLinear(32, 32, bias=True, bias_quant=Int32Bias),
                                   qnn.QuantReLU(return_quant_tensor=True)) if CHANGE == "layer" else nn.Identity()
        self.fc3 = qnn.QuantLinear(32, 10, bias=True, bias_quant=Int32Bias)

    def forward(self, x):
        x = self.quant_in(x)
        x = self.relu1(self.fc1(x))
        x = self.extra(self.relu2(self.fc2(x)))
        return self.fc3(x)


create_model, example_input, held_out_data = network(f"mlp_changed_{CHANGE}", ChangedMLP, size=8, flat=True)
