"""The model-file functions of every network the fuzzer writes (tools/fuzz_networks.py).

A generated model file holds its network class and, copied verbatim from this module, these
functions (so that it runs anywhere on its own); the fixed reproducers in tests/fuzz_regressions/
import them instead. Nothing is trained: the weights are PyTorch's random initialisation with the
magnitude of each output channel varied, BatchNorm statistics are random, and the activation
quantizers are calibrated with Brevitas' calibration_mode on N_CALIB inputs, all from fixed seeds.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from brevitas.graph.calibrate import calibration_mode

N_CALIB, N_HELD_OUT = 32, 8


def fuzz_inputs(shape: tuple, data: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """N_CALIB calibration inputs followed by N_HELD_OUT held-out inputs of ``shape`` (batch 1 first), and labels.

    ``data``: ``digits`` (scikit-learn's bundled 8x8 digits, resized to H x W and repeated over the
    channels, or the first F pixels for a flat input), ``random`` (uniform in [0, 1), random labels)
    or ``random_signed`` (uniform in [-1, 1)).
    """
    n = N_CALIB + N_HELD_OUT
    g = torch.Generator().manual_seed(seed)
    if data == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.tensor(d.images[:n], dtype=torch.float32).unsqueeze(1) / 16.0
        y = torch.tensor(d.target[:n], dtype=torch.int64)
        if len(shape) == 2:
            return x.flatten(1)[:, :shape[1]].contiguous(), y
        x = F.interpolate(x, size=tuple(shape[2:]), mode="bilinear", align_corners=False)
        return x.repeat(1, shape[1], 1, 1).contiguous(), y
    x = torch.rand((n, *shape[1:]), generator=g)
    if data == "random_signed":
        x = 2 * x - 1
    return x, torch.randint(0, 3, (n,), generator=g)


def fuzz_model_functions(net_class, seed: int, shape: tuple, data: str):
    """``create_model``, ``example_input`` and ``held_out_data`` of a model file for ``net_class``."""

    def create_model() -> nn.Module:
        torch.manual_seed(seed)
        model = net_class()
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    scale_shape = (m.weight.shape[0],) + (1,) * (m.weight.dim() - 1)
                    m.weight.mul_(torch.exp(0.5 * torch.randn(scale_shape, generator=g)))
                elif isinstance(m, nn.BatchNorm2d):
                    c = m.num_features
                    m.running_mean.copy_(0.3 * torch.randn(c, generator=g))
                    m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=g))
                    sign = torch.where(torch.rand(c, generator=g) < 0.1, -1.0, 1.0)
                    m.weight.copy_(sign * (0.5 + torch.rand(c, generator=g)))
                    m.bias.copy_(0.2 * torch.randn(c, generator=g))
        x, _ = fuzz_inputs(shape, data, seed)
        model.eval()
        with torch.no_grad(), calibration_mode(model):
            for batch in x[:N_CALIB].split(16):
                model(batch)
        return model.eval()

    def example_input() -> torch.Tensor:
        return fuzz_inputs(shape, data, seed)[0][N_CALIB:N_CALIB + 1].clone()

    def held_out_data():
        x, y = fuzz_inputs(shape, data, seed)
        return x[N_CALIB:], y[N_CALIB:]

    return create_model, example_input, held_out_data
