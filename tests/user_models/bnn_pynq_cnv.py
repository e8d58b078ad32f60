"""Sweep finding: brevitas_examples' own FINN-style CNV (bnn_pynq, cfg cnv_2w2a: 2-bit weights and activations,
BatchNorm after every layer, a TensorNorm on the logits), loaded the way its users load it, with model_with_cfg.
TensorNorm is user-level code (a module of brevitas_examples, not of brevitas), so it is traced through:
((x - running_mean) / sqrt(running_var + eps)) * weight + bias of the last QuantLinear's accumulator folds into that
accumulator's scale and offset. Calibrated on digits upscaled to 3x32x32 (no training: the test is exactness)."""

import torch
import torch.nn.functional as F


def _digits32(n, start):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images[start:start + n], dtype=torch.float32).unsqueeze(1) / 16.0
    return F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)


def create_model():
    from brevitas.graph.calibrate import calibration_mode
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(0)
    model, _ = model_with_cfg("cnv_2w2a", pretrained=False)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
        norm = model.linear_features[-1]  # the TensorNorm: a negative weight flips the folded scale
        norm.running_mean.fill_(0.3)
        norm.running_var.fill_(2.5)
        norm.weight.fill_(-0.75)
        norm.bias.fill_(0.2)
    model.eval()
    with torch.no_grad(), calibration_mode(model):
        model(_digits32(64, 0))
    return model.eval()


def example_input():
    return _digits32(1, 1500)


def held_out_data():
    return _digits32(16, 1600), torch.zeros(16, dtype=torch.int64)
