"""Registry of operator declarations, discovered from the modules of this package.

Each ``gapforge/ops/<op>.py`` may define ``IR_OP`` (an ``IROp``) and ``FRONTENDS`` (a list of
``Frontend``). Adding an operator means adding one file here (plus its numpy reference in
``atomic_ops/`` and its C kernel); no list elsewhere needs editing.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from torch import nn

from gapforge.ops._base import Attr, Frontend, IROp  # noqa: F401  (re-exported)

_SEQUENCE_ALTERNATIVES = ("a causal (depthwise) QuantConv1d stack over time, or a Mamba selective scan with a "
                          "QuantIdentity on its state (tests/test_networks/seqdata/mamba.py)")


def _float_recurrent(cls: str) -> str:
    return (f"float recurrent layer (its float state has no exact integer form): replace torch.nn.{cls} by "
            f"brevitas.nn.Quant{cls}, whose states and gates are quantized and which deploys exactly "
            f"(gapforge/ops/rnn.py), or use {_SEQUENCE_ALTERNATIVES}")


_GRU_HINT = ("recurrent layer without a quantized counterpart in Brevitas 0.13 (no QuantGRU): use "
             f"brevitas.nn.QuantLSTM or QuantRNN (deployed exactly), or {_SEQUENCE_ALTERNATIVES}")

# Constructs we recognise but do not support, with the most useful hint we can give.
_LOG_SOFTMAX = ("log_softmax is not supported: at the network's end return the logits (log_softmax keeps their "
                "argmax; the golden's prediction is it), elsewhere use softmax followed by a quantizer (QuantIdentity)")
_ARGMAX = ("argmax is not supported: return the logits; the golden test cases and the accuracy report take "
           "their argmax (the 'prediction')")
_UNSUPPORTED_HINTS: dict[str, str] = {
    "Conv2d": "float convolution: replace torch.nn.Conv2d by brevitas.nn.QuantConv2d",
    "Conv1d": "float convolution: replace torch.nn.Conv1d by brevitas.nn.QuantConv1d",
    "Linear": "float linear layer: replace torch.nn.Linear by brevitas.nn.QuantLinear",
    "ConvTranspose2d": "float transposed convolution: replace torch.nn.ConvTranspose2d by "
                       "brevitas.nn.QuantConvTranspose2d",
    "ConvTranspose1d": "float transposed convolution: replace torch.nn.ConvTranspose1d by "
                       "brevitas.nn.QuantConvTranspose1d",
    "LSTM": _float_recurrent("LSTM"),
    "GRU": _GRU_HINT,
    "RNN": _float_recurrent("RNN"),
    "QuantGRU": _GRU_HINT,
    **{f"{kind}Pad3d": f"3-D padding is not supported: pad the time axis (1-D) or the height and width (2-D) "
                       f"with nn.{kind}Pad1d / nn.{kind}Pad2d"
       for kind in ("Reflection", "Replication", "Circular", "Zero", "Constant")},
    "conv1d": "functional F.conv1d on activations: use a brevitas.nn.QuantConv1d module",
    "QuantConvTranspose3d": "3-D transposed convolution is not supported (QuantConvTranspose1d and QuantConvTranspose2d are)",
    "einsum": "write the product as torch.matmul / @ of two quantized activations (with transpose / view "
              "for the axes), which gapforge deploys exactly",
    "baddbmm": "write it as torch.matmul of two quantized activations; a constant added to the product is "
               "not supported",
    "scaled_dot_product_attention": "write the attention out: q @ k.transpose(-2, -1) * scale, softmax, "
                                    "@ v, with a QuantIdentity after each product",
    "conv2d": "functional F.conv2d on activations: use a brevitas.nn.QuantConv2d module",
    "linear": "functional F.linear on activations: use a brevitas.nn.QuantLinear module",
    # functions of two activations other than a product (x * y is supported: gapforge/ops/mul.py)
    "maximum": "an element-wise function of two activations other than x * y or x + y has no table form; "
               "compute it from supported ops",
    "minimum": "an element-wise function of two activations other than x * y or x + y has no table form; "
               "compute it from supported ops",
    "atan2": "an element-wise function of two activations has no table form; only x * y and x + y are supported",
    "where": "torch.where is not supported",
    "fmod": "an element-wise function of two activations has no table form",
    "remainder": "an element-wise function of two activations has no table form",
    "hypot": "an element-wise function of two activations has no table form",
    "log": "log of an activation is not supported (it is not finite at 0)",
    "sqrt": "sqrt of an activation is not supported yet",
    "LogSoftmax": _LOG_SOFTMAX,
    "log_softmax": _LOG_SOFTMAX,
    "argmax": _ARGMAX,
    "argmin": "argmin is not supported: return the scores (the golden's prediction is their argmax)",
}


class Registry:
    def __init__(self) -> None:
        self.ir_ops: dict[str, IROp] = {}
        self.frontends: list[Frontend] = []
        self.op_modules: dict[str, str] = {}
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
            if info.name.startswith("_"):
                continue
            mod = importlib.import_module(f"{__name__}.{info.name}")
            op = getattr(mod, "IR_OP", None)
            if op is not None:
                if op.name in self.ir_ops:
                    raise AssertionError(f"IR op {op.name} declared twice")
                self.ir_ops[op.name] = op
                self.op_modules[op.name] = info.name
            self.frontends.extend(getattr(mod, "FRONTENDS", []))
        self._by_class: dict[type, Frontend] = {}
        self._by_function: dict[str, Frontend] = {}
        for f in self.frontends:
            for cls in f.modules:
                if cls in self._by_class:
                    raise AssertionError(f"module class {cls.__name__} declared twice")
                self._by_class[cls] = f
            for fn in f.functions:
                if fn in self._by_function:
                    raise AssertionError(f"function {fn} declared twice")
                self._by_function[fn] = f

    def frontend_for_module(self, module: nn.Module) -> Frontend | None:
        for cls in type(module).__mro__:  # most specific class wins (TruncAvgPool2d before AvgPool2d)
            if cls in self._by_class:
                return self._by_class[cls]
            if cls is nn.Module:
                break
        return None

    def frontend_for_node(self, node) -> Frontend | None:
        if node.kind == "module":
            return self.frontend_for_module(node.module)
        return self._by_function.get(node.type_name)

    def is_leaf(self, module: nn.Module) -> bool:
        """Modules recorded as one node: declared ones, Brevitas layers, and childless modules."""
        if self.frontend_for_module(module) is not None:
            return True
        if type(module).__module__.startswith("brevitas.nn"):
            return True
        if isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
            return False  # a container, even an empty one (nn.Sequential() as a ResNet's identity shortcut)
        if next(module.children(), None) is not None:
            return False
        # a childless module of torch or brevitas is one node (declared, or refused by its class name); a
        # user-defined one without a declaration is traced through, so that the functional code of its
        # forward is recorded (e.g. an RMSNorm written by hand: gapforge/ops/rmsnorm.py)
        return type(module).__module__.startswith(("torch.", "brevitas."))  # not brevitas_examples: user code

    def unsupported_reason(self, node) -> tuple[str, str | None]:
        hint = _UNSUPPORTED_HINTS.get(node.type_name)
        what = "module class" if node.kind == "module" else "operation"
        msg = f"unsupported {what} {node.type_name}"
        if hint is None:
            hint = "see docs/supported_operations.md for what gapforge can deploy"
        return msg, hint


@lru_cache(maxsize=1)
def registry() -> Registry:
    return Registry()
