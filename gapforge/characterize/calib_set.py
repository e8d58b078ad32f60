"""Synthetic calibration networks: the kernel variants the cost model's instruction fit must see.

The regression networks leave kernel paths out that other networks use (3x3 convolutions whose
pixels mostly take the per-pixel border path: padding 0 / 2 on small maps; 1x1 convolutions with
few input channels or an output-channel tail; the general kernel: 5x5, stride 2, dilation 2,
groups; 2x2 / 3x3 average pooling; sub-8-bit weights, unpacked in L1 on GAP9). Each network here
is a short chain of such layers with He-initialised random weights and Brevitas calibration on
random inputs, all from fixed seeds (as gapforge/characterize/families.py): nothing is trained, the
instruction counts measured are independent of the values. tools/profile_suite.py --synthetic runs
them; tools/calibrate_cost_model.py fits on their measured layers with the regression networks'.

Layer specs (tuples): ("c", in, out, k, stride, pad, dilation, groups, wbits) a QuantConv2d +
QuantReLU; ("avg", k, stride) AvgPool2d + QuantIdentity; ("max", k, stride) MaxPool2d;
("gavg",) global average pooling + QuantIdentity; ("flat",); ("fc", in, out, wbits) QuantLinear
(+ QuantReLU unless last); ("c1", in, out, k, stride, pad, dilation, groups) a QuantConv1d + QuantReLU.
"""

from __future__ import annotations

# name: (input shape, layers)
NETWORKS: dict[str, tuple[tuple[int, ...], list[tuple]]] = {
    "calib_conv3x3_pad": ((1, 3, 14, 14), [
        ("c", 3, 8, 3, 1, 0, 1, 1, 8), ("c", 8, 16, 3, 1, 2, 1, 1, 8), ("c", 16, 5, 3, 1, 1, 1, 1, 8),
        ("c", 5, 12, 3, 1, 2, 1, 1, 8)]),
    "calib_conv3x3_small": ((1, 8, 6, 6), [
        ("c", 8, 16, 3, 1, 2, 1, 1, 8), ("c", 16, 16, 3, 1, 0, 1, 1, 8), ("c", 16, 32, 3, 1, 1, 1, 1, 8),
        ("c", 32, 8, 3, 1, 2, 1, 1, 8), ("c", 8, 24, 3, 1, 0, 1, 1, 8)]),
    "calib_conv1x1": ((1, 8, 8, 8), [
        ("c", 8, 16, 1, 1, 0, 1, 1, 8), ("c", 16, 6, 1, 1, 0, 1, 1, 8), ("c", 6, 32, 1, 2, 0, 1, 1, 8),
        ("c", 32, 8, 1, 1, 0, 1, 1, 8), ("c", 8, 3, 1, 1, 0, 1, 1, 8), ("c", 3, 12, 1, 1, 0, 1, 1, 8)]),
    "calib_conv_general": ((1, 4, 12, 12), [
        ("c", 4, 8, 5, 1, 2, 1, 1, 8), ("c", 8, 16, 3, 2, 1, 1, 1, 8), ("c", 16, 16, 3, 1, 2, 2, 1, 8),
        ("c", 16, 16, 3, 1, 1, 1, 2, 8), ("c", 16, 16, 3, 1, 1, 1, 16, 8), ("c", 16, 8, 2, 2, 0, 1, 1, 8)]),
    "calib_pool": ((1, 4, 24, 24), [
        ("c", 4, 8, 3, 1, 1, 1, 1, 8), ("max", 3, 2), ("avg", 2, 2), ("c", 8, 16, 1, 1, 0, 1, 1, 8),
        ("avg", 3, 1), ("gavg",)]),
    "calib_pool_wide": ((1, 16, 12, 12), [
        ("avg", 2, 2), ("c", 16, 24, 3, 1, 1, 1, 1, 8), ("avg", 3, 3), ("c", 24, 8, 1, 1, 0, 1, 1, 8),
        ("max", 2, 2), ("flat",), ("fc", 8, 10, 8)]),
    "calib_conv1d": ((1, 8, 96), [
        ("c1", 8, 16, 5, 1, 2, 1, 1), ("c1", 16, 16, 3, 1, 2, 1, 16), ("c1", 16, 24, 3, 2, 1, 1, 1),
        ("c1", 24, 24, 4, 1, 3, 1, 24), ("c1", 24, 16, 3, 1, 2, 2, 1), ("c1", 16, 16, 5, 1, 2, 1, 16)]),
    "calib_dw_generic": ((1, 12, 10, 10), [
        ("c", 12, 12, 5, 1, 2, 1, 12, 8), ("c", 12, 12, 3, 1, 2, 1, 12, 8), ("c", 12, 24, 1, 1, 0, 1, 1, 8),
        ("c", 24, 24, 3, 2, 1, 1, 24, 8), ("c", 24, 24, 1, 1, 0, 1, 24, 8)]),
    "calib_pool_big": ((1, 16, 16, 16), [
        ("avg", 3, 1), ("c", 16, 32, 1, 1, 0, 1, 1, 8), ("avg", 2, 2), ("max", 3, 2), ("gavg",)]),
    "calib_lowbit": ((1, 4, 10, 10), [
        ("c", 4, 16, 3, 1, 1, 1, 1, 4), ("c", 16, 16, 3, 1, 1, 1, 1, 2), ("max", 2, 2),
        ("c", 16, 24, 1, 1, 0, 1, 1, 4), ("flat",), ("fc", 600, 32, 4), ("fc", 32, 10, 2)]),
}


def names() -> list[str]:
    return list(NETWORKS)


def _build(name: str):
    import brevitas.nn as qnn
    import torch.nn as nn
    from brevitas.quant import Int32Bias

    shape, specs = NETWORKS[name]
    layers: list = [qnn.QuantIdentity(return_quant_tensor=True)]
    for i, s in enumerate(specs):
        last = i == len(specs) - 1
        if s[0] == "c":
            _, ci, co, k, st, pad, dil, g, wb = s
            layers += [qnn.QuantConv2d(ci, co, k, stride=st, padding=pad, dilation=dil, groups=g,
                                       weight_bit_width=wb, bias=True, bias_quant=Int32Bias),
                       qnn.QuantReLU(return_quant_tensor=True)]
        elif s[0] == "c1":
            _, ci, co, k, st, pad, dil, g = s
            layers += [qnn.QuantConv1d(ci, co, k, stride=st, padding=pad, dilation=dil, groups=g, bias=True,
                                       bias_quant=Int32Bias), qnn.QuantReLU(return_quant_tensor=True)]
        elif s[0] == "avg":
            layers += [nn.AvgPool2d(s[1], s[2]), qnn.QuantIdentity(return_quant_tensor=True)]
        elif s[0] == "max":
            layers.append(nn.MaxPool2d(s[1], s[2]))
        elif s[0] == "gavg":
            layers += [nn.AdaptiveAvgPool2d(1), qnn.QuantIdentity(return_quant_tensor=True)]
        elif s[0] == "flat":
            layers.append(nn.Flatten())
        elif s[0] == "fc":
            layers.append(qnn.QuantLinear(s[1], s[2], weight_bit_width=s[3], bias=True, bias_quant=Int32Bias))
            if not last:
                layers.append(qnn.QuantReLU(return_quant_tensor=True))
    return nn.Sequential(*layers), shape


def quant_model(name: str):
    """The Brevitas model of the synthetic network, calibrated (eval mode), and its example input."""
    import torch

    from gapforge.characterize.families import initialised

    torch.manual_seed(0)
    model, shape = _build(name)
    return initialised(model, shape)


def model_source(name: str):
    """A gapforge ModelSource for the synthetic network (what the pipeline's extractor takes)."""
    import gapforge.characterize.calib_set as mod
    from gapforge.errors import GapforgeError
    from gapforge.modelsrc import ModelSource

    if name not in NETWORKS:
        raise GapforgeError(f"--synthetic {name}: unknown (available: {', '.join(NETWORKS)}, or all)")
    model, example = quant_model(name)
    return ModelSource(name=name, source=mod.__file__, model=model, example_inputs=(example,), module=mod)
