"""Shared by the small random-calibrated models of this directory: a short brevitas calibration on random
inputs of a given shape, and the example / held-out inputs."""

import torch


def calibrated(model, shape):
    from brevitas.graph.calibrate import calibration_mode

    model.eval()
    with torch.no_grad(), calibration_mode(model):
        for i in range(4):
            torch.manual_seed(10 + i)
            model(torch.rand(16, *shape) * 2 - 1)
    return model.eval()


def inputs(shape, n, seed):
    torch.manual_seed(seed)
    return torch.rand(n, *shape) * 2 - 1
