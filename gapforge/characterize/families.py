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
  transformer T x E:    one pre-norm transformer block on T tokens of width E     (params ~ 12 E^2,
                        LayerNorm, q / k / v QuantLinear over the rows, H = E / 32 heads (at least 1) of
                        scaled q @ k^T, softmax, @ v; output projection; residual add requantized by a
                        QuantIdentity on the residual stream; LayerNorm, GELU MLP E -> 4E -> E, residual;
                        scores ~ H T^2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FAMILIES = ("mlp", "dense", "conv", "conv3x3", "resblock", "transformer")
# default sweep sizes: from L1-resident to L3-streaming on GAP9 (see tools/sweep.py)
DEFAULT_SIZES = {
    "mlp": ["16", "32", "64", "128", "256", "512", "768", "1024", "1536", "2048"],
    "dense": ["256", "512", "1024", "1536", "2048", "2560", "4096"],
    "conv": ["8x8", "16x16", "32x16", "32x32", "64x32", "64x64", "32x128", "64x128"],
    "conv3x3": ["8", "16", "32", "64", "128", "192", "256", "384"],
    "resblock": ["8x8", "16x16", "32x16", "32x32", "64x32", "64x48", "64x64"],
    "transformer": ["8x32", "16x64", "64x64", "128x64", "256x64", "32x128", "128x128", "16x192", "32x256", "32x512"],
}
TINY_SIZES = {"mlp": ["16", "64"], "dense": ["256"], "conv": ["8x8"], "conv3x3": ["8"], "resblock": ["8x8"],
              "transformer": ["4x16"]}


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
    want = 2 if family in ("conv", "resblock", "transformer") else 1
    if len(parts) != want or not all(p.isdigit() and int(p) > 0 for p in parts):
        form = ("TxE (tokens x width, e.g. 16x64)" if family == "transformer" else
                "CxH (channels x spatial size, e.g. 32x16)") if want == 2 else "a positive integer"
        raise GapforgeError(f"--sizes {size}: family {family} takes {form}")
    if family == "transformer" and int(parts[1]) % heads(int(parts[1])):
        raise GapforgeError(f"--sizes {size}: width {parts[1]} must be a multiple of its {heads(int(parts[1]))} heads")
    return Point(family, "x".join(parts))


def heads(width: int) -> int:
    """Attention heads of a transformer point: one per 32 features, at least one."""
    return max(1, width // 32)


def input_shape(p: Point) -> tuple[int, ...]:
    d = p.dims()
    return {"mlp": (1, 64), "dense": (1, d[0]), "conv": (1, 1, d[-1], d[-1]), "conv3x3": (1, d[0], 16, 16),
            "resblock": (1, 1, d[-1], d[-1]), "transformer": (1, d[0], d[-1])}[p.family]


def _attention(q, k, v, b: int, t: int, h: int, scores_q=None, probs_q=None):
    """softmax(q k^T / sqrt(D)) v over h heads of [b, t, h*D] tensors (quantizers between, if given)."""
    import torch

    d = q.shape[-1] // h
    q, k, v = (z.view(b, t, h, d).transpose(1, 2) for z in (q, k, v))
    s = q @ k.transpose(-2, -1) / math.sqrt(d)
    s = scores_q(s) if scores_q is not None else s
    a = torch.softmax(s, dim=-1)
    a = probs_q(a) if probs_q is not None else a
    return (a @ v).transpose(1, 2).contiguous().view(b, t, h * d)


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

    class Block(nn.Module):
        def __init__(self, t, e):
            super().__init__()
            self.t, self.h = t, heads(e)
            self.ln1, self.ln2 = nn.LayerNorm(e), nn.LayerNorm(e)
            self.q, self.k, self.v, self.proj = (nn.Linear(e, e) for _ in range(4))
            self.fc1, self.gelu, self.fc2 = nn.Linear(e, 4 * e), nn.GELU(), nn.Linear(4 * e, e)

        def forward(self, x):
            y = self.ln1(x)
            x = x + self.proj(_attention(self.q(y), self.k(y), self.v(y), x.shape[0], self.t, self.h))
            return x + self.fc2(self.gelu(self.fc1(self.ln2(x))))

    if p.family == "transformer":
        return Block(d[0], d[1])
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
    from brevitas.quant import Int8ActPerTensorFloat, Int32Bias, Uint8ActPerTensorFloat

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

    def ident(**kw):
        return qnn.QuantIdentity(**kw)

    class Block(nn.Module):
        """Pre-norm block; every tensor between two operators is quantized (the pipeline's contract):
        the residual adds are float adds of two quantized tensors, requantized by a QuantIdentity on
        the residual stream (res1_q, res2_q)."""

        def __init__(self, t, e):
            super().__init__()
            self.t, self.h = t, heads(e)
            self.quant_in = ident(return_quant_tensor=True)
            self.ln1, self.ln1_q = nn.LayerNorm(e), ident(return_quant_tensor=True)
            self.q, self.k, self.v = qlin(e, e), qlin(e, e), qlin(e, e)
            self.q_q, self.k_q, self.v_q = ident(), ident(), ident()
            self.scores_q = ident()
            self.probs_q = ident(act_quant=Uint8ActPerTensorFloat)
            self.ctx_q = ident(return_quant_tensor=True)
            self.proj, self.proj_q = qlin(e, e), ident()
            self.res1_q = ident(return_quant_tensor=True)
            self.ln2, self.ln2_q = nn.LayerNorm(e), ident(return_quant_tensor=True)
            self.fc1 = qnn.QuantLinear(e, 4 * e, bias=True, bias_quant=Int32Bias, output_quant=Int8ActPerTensorFloat,
                                       return_quant_tensor=True)
            self.gelu, self.gelu_q = nn.GELU(), ident(return_quant_tensor=True)
            self.fc2, self.fc2_q = qlin(4 * e, e), ident()
            self.res2_q = ident(return_quant_tensor=True)

        def forward(self, x):
            x = self.quant_in(x)
            y = self.ln1_q(self.ln1(x))
            a = _attention(self.q_q(self.q(y)), self.k_q(self.k(y)), self.v_q(self.v(y)), x.shape[0], self.t, self.h,
                           self.scores_q, self.probs_q)
            x = self.res1_q(x + self.proj_q(self.proj(self.ctx_q(a))))
            y = self.gelu_q(self.gelu(self.fc1(self.ln2_q(self.ln2(x)))))
            return self.res2_q(x + self.fc2_q(self.fc2(y)))

    torch.manual_seed(0)
    if p.family == "transformer":
        model = Block(d[0], d[1])
    elif p.family == "mlp":
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
    return initialised(model, input_shape(p))


def initialised(model, shape: tuple[int, ...]):
    """``model`` with He-initialised weights (scaled by 1/sqrt(2) to keep activations in range through
    a stack), uniform biases, its quantizers calibrated on 16 random inputs of ``shape`` (seed 1); and
    one more random input of ``shape`` as the example. Nothing is trained."""
    import torch
    from brevitas.graph.calibrate import calibration_mode
    from torch import nn

    for mod in model.modules():
        if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            fan_in = math.prod(mod.weight.shape[1:])
            with torch.no_grad():
                mod.weight.mul_(1.0 / math.sqrt(2.0))
            nn.init.uniform_(mod.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
    g = torch.Generator().manual_seed(1)
    calib = torch.rand((16, *shape[1:]), generator=g)
    model.train()
    with torch.no_grad(), calibration_mode(model):
        for batch in calib.split(8):
            model(batch)
    model.eval()
    return model, torch.rand(shape, generator=g)


def model_source(p: Point):
    """A gapforge ModelSource for the point (what the pipeline's extractor takes)."""
    import gapforge.characterize.families as mod
    from gapforge.modelsrc import ModelSource

    model, example = quant_model(p)
    return ModelSource(name=p.name, source=mod.__file__, model=model, example_inputs=(example,), module=mod)
