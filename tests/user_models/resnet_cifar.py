"""Sweep finding: a ResNet written the way the popular CIFAR code writes it (kuangliu/pytorch-cifar) with Brevitas
layers: the identity shortcut is an empty nn.Sequential(), the projection one a Sequential(conv 1x1, BatchNorm); the
checker refused the empty container as an "unsupported module class Sequential". Digits-trained."""
import brevitas.nn as qnn
import torch.nn as nn
import torch.nn.functional as F
from _digits import factories
from brevitas.quant import Int8ActPerTensorFloat


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = qnn.QuantConv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.conv2 = qnn.QuantConv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(qnn.QuantConv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        self.qadd = qnn.QuantIdentity(return_quant_tensor=True)
        self.relu2 = qnn.QuantReLU(return_quant_tensor=True)

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = self.qadd(out) + self.qadd(self.shortcut(x))
        return self.relu2(out)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.qin = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(1, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.relu = qnn.QuantReLU(return_quant_tensor=True)
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 16, 2))
        self.fc = qnn.QuantLinear(16, 10, bias=True)

    def forward(self, x):
        out = self.relu(self.bn(self.conv(self.qin(x))))
        out = self.layer1(out)
        out = F.adaptive_avg_pool2d(out, 1)
        out = out.view(out.size(0), -1)
        return self.fc(out)


create_model, example_input, held_out_data = factories(Net)
