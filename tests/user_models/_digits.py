"""Shared by the digits-trained models of this directory: scikit-learn's bundled digits (no download), a
Brevitas calibration and a short deterministic QAT loop (about a second per model; one torch thread while it trains, so the weights are the same on every machine)."""

import torch
import torch.nn.functional as F


def digits(scale: float = 1.0):
    """(train x, train y, held-out x, held-out y): 8x8 digits as (N, 1, 8, 8) float32 in [0, scale]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0 * scale
    y = torch.tensor(d.target, dtype=torch.int64)
    return x[:1400], y[:1400], x[1400:], y[1400:]


def trained(model, x, y, epochs: int = 1, lr: float = 2e-3, bs: int = 64):
    """``model`` calibrated on 4 batches of ``x``, then trained ``epochs`` epochs, in eval mode."""
    from brevitas.graph.calibrate import calibration_mode

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the float sums of training do not depend on the machine's core count
    try:
        model.eval()
        with torch.no_grad(), calibration_mode(model):
            for i in range(4):
                model(x[i * bs:(i + 1) * bs])
        torch.manual_seed(0)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(len(x))
            for i in range(0, len(x), bs):
                idx = perm[i:i + bs]
                out = model(x[idx])
                loss = F.cross_entropy(getattr(out, "value", out), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def factories(net_class, data=None, n_held_out: int = 48):
    """(create_model, example_input, held_out_data) of a model file: ``net_class()`` trained on ``data`` (train x,
    train y, held-out x, held-out y; default the digits)."""
    xtr, ytr, xte, yte = digits() if data is None else data

    def create_model():
        torch.manual_seed(0)
        return trained(net_class(), xtr, ytr)

    return create_model, (lambda: xte[:1]), (lambda: (xte[:n_held_out], yte[:n_held_out]))
