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


def factories(net_class, shape, n_held_out: int, classes: int | None = None):
    """(create_model, example_input, held_out_data) of a model file: ``net_class()`` (torch seed 0) calibrated on
    random inputs of ``shape``; one random example input; ``n_held_out`` held-out inputs, labelled ``i % classes``
    (0 without ``classes``)."""

    def create_model():
        torch.manual_seed(0)
        return calibrated(net_class(), shape)

    def held_out_data():
        labels = torch.arange(n_held_out) % classes if classes else torch.zeros(n_held_out, dtype=torch.int64)
        return inputs(shape, n_held_out, 2), labels

    return create_model, (lambda: inputs(shape, 1, 1)), held_out_data
