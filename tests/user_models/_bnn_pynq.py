"""Shared by the bnn_pynq model files of this directory: brevitas_examples' FINN-style binarized networks
(cfg *_1w1a: binary weights and activations, codes -1 / +1) loaded the way their users load them, with
model_with_cfg(cfg, pretrained=False) and seed 0. No training: the tests are exactness, so the BatchNorm and
TensorNorm statistics are made random (means inside the accumulators' range, some gammas negative, which flips
a binary activation's step) to give every channel its own threshold. Inputs: digits upscaled to the model's
input size (FC: 1 x 28 x 28; CNV: 3 x 32 x 32)."""

import torch
import torch.nn.functional as F


def digits(n: int, start: int, size: int, channels: int):
    """(images, labels): ``n`` digits from ``start``, (n, channels, size, size) float32 in [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images[start:start + n], dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).repeat(1, channels, 1, 1)
    return x, torch.tensor(d.target[start:start + n], dtype=torch.int64)


def hooks(cfg: str, size: int, channels: int):
    """(create_model, example_input, held_out_data) of bnn_pynq's ``cfg``."""

    def create_model():
        from brevitas.graph.calibrate import calibration_mode
        from brevitas_examples.bnn_pynq.models import model_with_cfg

        torch.manual_seed(0)
        model, _ = model_with_cfg(cfg, pretrained=False)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                    m.running_mean.uniform_(-6.0, 6.0)
                    m.running_var.uniform_(0.5, 20.0)
                    m.weight.uniform_(-1.0, 1.0)
                    m.bias.uniform_(-0.5, 0.5)
                elif type(m).__name__ == "TensorNorm":
                    m.running_mean.fill_(0.3)
                    m.running_var.fill_(2.5)
                    m.weight.fill_(0.75)
                    m.bias.fill_(0.2)
        model.eval()
        with torch.no_grad(), calibration_mode(model):  # binary quantizers have constant scales: a no-op for them
            model(digits(16, 0, size, channels)[0])
        return model.eval()

    def example_input():
        return digits(1, 1500, size, channels)[0]

    def held_out_data():  # untrained: the labels only make the accuracy report well defined
        return digits(16, 1600, size, channels)

    return create_model, example_input, held_out_data
