"""Shared by the BatchNorm block models of this directory: random BatchNorm statistics, a short brevitas
calibration on random inputs, and the example / held-out inputs (4 channels, 6 x 6)."""

import torch

SHAPE = (4, 6, 6)


def calibrated(model_class):
    from brevitas.graph.calibrate import calibration_mode

    torch.manual_seed(0)
    model = model_class()
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.bias.uniform_(-0.3, 0.3)
    model.eval()
    with torch.no_grad(), calibration_mode(model):
        for _ in range(4):
            model(torch.rand(16, *SHAPE) - 0.5)
    return model.eval()


def example_input():
    torch.manual_seed(1)
    return torch.rand(1, *SHAPE) - 0.5


def held_out_data():
    torch.manual_seed(2)
    return torch.rand(16, *SHAPE) - 0.5, torch.zeros(16, dtype=torch.int64)
