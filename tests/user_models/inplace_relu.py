"""Sweep finding: nn.ReLU(inplace=True) after a BatchNorm (or after ``out += identity``, the torchvision
BasicBlock) was silently dropped from the graph: the capture's copy of the in-place op's output
(the same tensor object as its input) ran under the function mode and was recorded as detach /
clone nodes in the ReLU's place, so the engine, the golden and the C computed conv without ReLU
(teacher-forced: every negative element wrong, up to 128 codes). Calibrated on random inputs."""

import brevitas.nn as qnn
import torch
import torch.nn as nn


class InplaceBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity()
        self.conv1 = qnn.QuantConv2d(4, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)  # one module called twice, as torchvision does
        self.q1 = qnn.QuantIdentity()
        self.conv2 = qnn.QuantConv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.q_out = qnn.QuantIdentity()

    def forward(self, x):
        x = self.quant_in(x)
        identity = x
        out = self.q1(self.relu(self.bn1(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        out += identity
        out = self.relu(out)
        return self.q_out(out)


def create_model():
    from brevitas.graph.calibrate import calibration_mode

    torch.manual_seed(0)
    model = InplaceBlock()
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.bias.uniform_(-0.3, 0.3)
    model.eval()
    with torch.no_grad(), calibration_mode(model):
        for _ in range(4):
            model(torch.rand(16, 4, 6, 6) - 0.5)
    return model.eval()


def example_input():
    torch.manual_seed(1)
    return torch.rand(1, 4, 6, 6) - 0.5


def held_out_data():
    torch.manual_seed(2)
    return torch.rand(16, 4, 6, 6) - 0.5, torch.zeros(16, dtype=torch.int64)
