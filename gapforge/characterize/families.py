"""Parameterised synthetic networks for the sweeps (tools/sweep.py): one size knob per family.

Each family builds the Brevitas model that goes through the real pipeline (INT8 per-tensor
quantizers, Int32Bias; He-initialised random weights and Brevitas calibration_mode on random
inputs, all from fixed seeds: nothing is trained, the figures measured are independent of the
values) and the float PyTorch model of the same shape (for the FX walker: estimate before
quantizing).

  mlp       width W:    QuantLinear 64 -> W -> W -> 10 with ReLUs                 (params ~ W^2)
  dense     N:          one QuantLinear N -> N                                    (params N^2)
  conv      C x H:      two 3x3 convs C -> C on H x H (a 1 -> C stem first)       (activations C H^2)
  conv3x3   C:          one 3x3 conv C -> C on 16 x 16                            (params 9 C^2)
  resblock  C x H:      stem, conv-ReLU-conv + identity (shared quantizer), ReLU  (both)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FAMILIES = ("mlp", "dense", "conv", "conv3x3", "resblock")
# default sweep sizes: from L1-resident to L3-streaming on GAP9 (see tools/sweep.py)
DEFAULT_SIZES = {
    "mlp": ["16", "32", "64", "128", "256", "512", "768", "1024", "1536", "2048"],
    "dense": ["256", "512", "1024", "1536", "2048", "2560", "4096"],
    "conv": ["8x8", "16x16", "32x16", "32x32", "64x32", "64x64", "32x128", "64x128"],
    "conv3x3": ["8", "16", "32", "64", "128", "192", "256", "384"],
    "resblock": ["8x8", "16x16", "32x16", "32x32", "64x32", "64x48", "64x64"],
}
TINY_SIZES = {"mlp": ["16", "64"], "dense": ["256"], "conv": ["8x8"], "conv3x3": ["8"], "resblock": ["8x8"]}


@dataclass(frozen=True)
class Point:
    family: str
    size: str

    @property
    def name(self) -> str:
        return f"{self.family}_{self.size}"

    def dims(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.size.split("x"))


def parse_size(family: str, size: str) -> Point:
    from gapforge.errors import GapforgeError

    if family not in FAMILIES:
        raise GapforgeError(f"--family {family}: unknown (choose from {', '.join(FAMILIES)})")
    parts = size.lower().split("x")
    want = 2 if family in ("conv", "resblock") else 1
    if len(parts) != want or not all(p.isdigit() and int(p) > 0 for p in parts):
        form = "CxH (channels x spatial size, e.g. 32x16)" if want == 2 else "a positive integer"
        raise GapforgeError(f"--sizes {size}: family {family} takes {form}")
    return Point(family, "x".join(parts))


def input_shape(p: Point) -> tuple[int, ...]:
    d = p.dims()
    return {"mlp": (1, 64), "dense": (1, d[0]), "conv": (1, 1, d[-1], d[-1]), "conv3x3": (1, d[0], 16, 16),
            "resblock": (1, 1, d[-1], d[-1])}[p.family]


def _float_model(p: Point):
    import torch.nn as nn

    d = p.dims()

    class Res(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.stem, self.relu0 = nn.Conv2d(1, c, 3, padding=1), nn.ReLU()
            self.conv1, self.relu1 = nn.Conv2d(c, c, 3, padding=1), nn.ReLU()
            self.conv2, self.relu2 = nn.Conv2d(c, c, 3, padding=1), nn.ReLU()
            self.relu_out = nn.ReLU()

        def forward(self, x):
            x = self.relu0(self.stem(x))
            return self.relu_out(self.relu2(self.conv2(self.relu1(self.conv1(x)))) + x)

    if p.family == "mlp":
        w = d[0]
        return nn.Sequential(nn.Linear(64, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU(), nn.Linear(w, 10))
    if p.family == "dense":
        return nn.Sequential(nn.Linear(d[0], d[0]))
    if p.family == "conv":
        c = d[0]
        return nn.Sequential(nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(c, c, 3, padding=1), nn.ReLU())
    if p.family == "conv3x3":
        return nn.Sequential(nn.Conv2d(d[0], d[0], 3, padding=1))
    return Res(d[0])


def float_model(p: Point):
    """The float PyTorch model of the point (He-initialised, eval mode)."""
    import torch

    torch.manual_seed(0)
    m = _float_model(p)
    for mod in m.modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            torch.nn.init.zeros_(mod.bias)
    return m.eval()


def quant_model(p: Point):
    """The Brevitas model of the point, calibrated (eval mode), and its example input."""
    import brevitas.nn as qnn
    import torch
    import torch.nn as nn
    from brevitas.graph.calibrate import calibration_mode
    from brevitas.quant import Int32Bias

    d = p.dims()

    def qconv(ci, co):
        return qnn.QuantConv2d(ci, co, 3, padding=1, bias=True, bias_quant=Int32Bias)

    def qlin(i, o):
        return qnn.QuantLinear(i, o, bias=True, bias_quant=Int32Bias)

    def relu():
        return qnn.QuantReLU(return_quant_tensor=True)

    class Seq(nn.Module):
        def __init__(self, layers):
            super().__init__()
            self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
            self.layers = nn.Sequential(*layers)

        def forward(self, x):
            return self.layers(self.quant_in(x))

    class Res(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.quant_in = qnn.QuantIdentity(return_quant_tensor=True)
            self.stem = qconv(1, c)
            self.shared_relu = relu()  # quantizes the identity and the branch: equal scales for the add
            self.conv1, self.relu1 = qconv(c, c), relu()
            self.conv2 = qconv(c, c)
            self.relu_out = relu()

        def forward(self, x):
            identity = self.shared_relu(self.stem(self.quant_in(x)))
            out = self.shared_relu(self.conv2(self.relu1(self.conv1(identity))))
            return self.relu_out(out + identity)

    torch.manual_seed(0)
    if p.family == "mlp":
        w = d[0]
        model = Seq([qlin(64, w), relu(), qlin(w, w), relu(), qlin(w, 10)])
    elif p.family == "dense":
        model = Seq([qlin(d[0], d[0])])
    elif p.family == "conv":
        c = d[0]
        model = Seq([qconv(1, c), relu(), qconv(c, c), relu(), qconv(c, c), relu()])
    elif p.family == "conv3x3":
        model = Seq([qconv(d[0], d[0])])
    else:
        model = Res(d[0])
    for mod in model.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            fan_in = math.prod(mod.weight.shape[1:])
            with torch.no_grad():
                mod.weight.mul_(1.0 / math.sqrt(2.0))  # keep activations in range through the stack
            nn.init.uniform_(mod.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
    g = torch.Generator().manual_seed(1)
    shape = input_shape(p)
    calib = torch.rand((16, *shape[1:]), generator=g)
    model.train()
    with torch.no_grad(), calibration_mode(model):
        for batch in calib.split(8):
            model(batch)
    model.eval()
    example = torch.rand(shape, generator=g)
    return model, example


def model_source(p: Point):
    """A gapforge ModelSource for the point (what the pipeline's extractor takes)."""
    import gapforge.characterize.families as mod
    from gapforge.modelsrc import ModelSource

    model, example = quant_model(p)
    return ModelSource(name=p.name, source=mod.__file__, model=model, example_inputs=(example,), module=mod)
