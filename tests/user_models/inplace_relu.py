"""Sweep finding: nn.ReLU(inplace=True) after a BatchNorm (or after ``out += identity``, the torchvision
BasicBlock) was silently dropped from the graph: the capture's copy of the in-place op's output
(the same tensor object as its input) ran under the function mode and was recorded as detach /
clone nodes in the ReLU's place, so the engine, the golden and the C computed conv without ReLU
(teacher-forced: every negative element wrong, up to 128 codes). Calibrated on random inputs."""

import brevitas.nn as qnn
import torch.nn as nn
from _bn_block import calibrated, example_input, held_out_data  # noqa: F401 (the model file's hooks)


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
    return calibrated(InplaceBlock)
