#!/usr/bin/env python3
"""Build random Brevitas networks the way users write them and run each through the whole pipeline.

Examples:
  python tools/fuzz_networks.py --count 20 --seed 1
  python tools/fuzz_networks.py --count 300 --seed 7 --out golden_outputs/fuzz --targets host rv32 gap9-emu
  python tools/fuzz_networks.py --count 50 --seed 3 --only 17 42 --keep

Every network is written as a standalone model file (``create_model()``, ``example_input()``,
``held_out_data()``: random weights, deterministic Brevitas calibration on random or digits
inputs, eval mode) and loaded through ``--model-file`` like a user's model. It is then checked
(compatibility checker), extracted, compared with Brevitas layer by layer (fidelity), given a
golden test case, generated and run on each target: host, rv32 (QEMU) and gap9-emu at each L1
budget of ``--l1-budgets``. A network the checker calls not deployable must also be refused by the
extractor (checker agreement).

Network i of ``--seed S`` is the same on every run (``--only i`` re-runs it alone). For every
failure the model file is kept as OUT/failures/NAME.py (re-run it with ``tools/deploy.py
--model-file``) with OUT/failures/NAME.json saying what failed; OUT/summary.json has the totals
and one record per network.

Exit codes: 0 every network behaved (deployable ones bit-exact on every target, the others refused
consistently); 1 some failure (mismatch, crash, a stage failing after the checker said deployable,
checker disagreement, a generated model Brevitas cannot run); 2 bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import random
import shutil
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codegen import toolchains  # noqa: E402
from codegen.generate import generate_project  # noqa: E402
from gapforge.errors import EXIT_OK, EXIT_VERDICT, GapforgeError, run_cli  # noqa: E402
from gapforge.extract import extract  # noqa: E402
from gapforge.fsutil import atomic_write_text  # noqa: E402
from gapforge.modelsrc import ModelSource, add_model_arguments, load_model  # noqa: E402
from gapforge.plan import build_plan  # noqa: E402
from tools.deploy import STAGES, Progress, run_pipeline  # noqa: E402
from tools.generate_c_code import _budget  # noqa: E402
from tools.run_generated import run_project  # noqa: E402

TARGETS = ("host", "rv32", "gap9-emu")
DEFAULT_L1 = ("max", "16K")  # max: the planner's default, L1 less the cluster stacks and the layer control block

# =================================================================================================
# Network generator: emits the Python source of a model file, choosing constructs at random.
# =================================================================================================


@dataclass
class Val:
    """A tensor of the generated forward(): its variable, shape (C, H, W) or (F,), and what it is.

    ``kind``: ``q`` a QuantTensor (quantizer with return_quant_tensor=True, pooling or cat of them),
    ``g`` a float tensor on one quantizer's grid (return_quant_tensor=False), ``c`` a channel concat
    of ``g`` tensors with different scales, ``f`` a float tensor (accumulator, BatchNorm, float ReLU
    or sum), ``s`` the sum of two QuantTensors (must be requantized). ``quant`` names the quantizer
    module whose scale the integers carry (None when no module can be called again).
    """

    var: str
    shape: tuple
    kind: str
    quant: str | None = None
    signed: bool = False

    @property
    def spatial(self) -> bool:
        return len(self.shape) == 3


@dataclass
class NetSource:
    name: str
    seed: int
    text: str
    constructs: list[str]
    probe: str | None  # the construct expected to be unsupported, if one was inserted


def _out_size(n: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    span = n + 2 * p - d * (k - 1) - 1
    if span < 0:
        return 0
    return (-(-span // s) if ceil else span // s) + 1


class _Gen:
    """One network: modules, forward lines and the bookkeeping to keep Brevitas semantics valid."""

    PROBES = ("leaky_relu", "sigmoid", "avgpool_exclude_pad", "maxpool_dilation", "shifted_quant", "sub",
              "mul", "pad", "adaptive_nondividing", "bn_after_quant", "quant_plus_float", "relu_input")

    def __init__(self, rng: random.Random, name: str, seed: int, probe_rate: float):
        self.r = rng
        self.name = name
        self.seed = seed
        self.mods: list[str] = []
        self.lines: list[str] = []
        self.quant_imports: set[str] = set()
        self.counts: dict[str, int] = {}
        self.constructs: list[str] = []
        self.pot = rng.random() < 0.2  # power-of-two scales everywhere: fidelity must then be exact
        self.probe = rng.choice(self.PROBES) if rng.random() < probe_rate else None
        self.probe_done = False
        self.nvar = 0
        self.pot_class = False
        self.act_bits = rng.choice([8, 8, 8, None])  # None: mixed bit widths per quantizer

    # ---- small helpers ----------------------------------------------------------------------
    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def mod(self, prefix: str, ctor: str) -> str:
        n = self.counts.get(prefix, 0)
        self.counts[prefix] = n + 1
        name = f"{prefix}{n}"
        self.mods.append(f"self.{name} = {ctor}")
        return f"self.{name}"

    def emit(self, expr: str) -> str:
        self.nvar += 1
        v = f"x{self.nvar}"
        self.lines.append(f"{v} = {expr}")
        return v

    def note(self, what: str) -> None:
        self.constructs.append(what)

    def take_probe(self, which: str) -> bool:
        if self.probe == which and not self.probe_done:
            self.probe_done = True
            self.note(f"probe:{which}")
            return True
        return False

    def bits(self) -> int:
        if self.act_bits:
            return self.act_bits
        return self.r.choice([8, 8, 6, 5, 4, 4, 3, 2])

    # ---- quantizers ---------------------------------------------------------------------------
    def act_ctor(self, relu: bool, rqt: bool, bits: int | None = None, quant: str | None = None) -> str:
        """QuantReLU / QuantIdentity source. ``quant``: None (the module's default quantizer, unsigned for
        QuantReLU, signed for QuantIdentity), ``unsigned``, ``signed`` or ``shifted`` (zero point != 0)."""
        b = bits or self.bits()
        args = [f"bit_width={b}"] if b != 8 else []
        unsigned = relu if quant is None else quant == "unsigned"
        if quant == "shifted":
            q = "ShiftedUint8ActPerTensorFloat"
        elif self.pot:
            q = "Uint8ActPerTensorFixedPoint" if unsigned else "Int8ActPerTensorFixedPoint"
        elif quant is not None:
            q = "Uint8ActPerTensorFloat" if unsigned else "Int8ActPerTensorFloat"
        else:
            q = None
        if q:
            self.quant_imports.add(q)
            args.insert(0, f"act_quant={q}")
        args.append(f"return_quant_tensor={rqt}")
        return f"qnn.{'QuantReLU' if relu else 'QuantIdentity'}({', '.join(args)})"

    def new_quant(self, relu: bool | None = None, rqt: bool = True, bits: int | None = None) -> tuple[str, bool]:
        """A new activation quantizer module; returns (module, signed)."""
        if relu is None:
            relu = self.chance(0.7)
        quant = None
        if relu and self.chance(0.1):
            quant = "signed"  # a ReLU with a signed quantizer: max(0, x) first, as in Brevitas
        elif not relu and self.chance(0.15):
            quant = "unsigned"
        name = self.mod("relu" if relu else "quant", self.act_ctor(relu, rqt, bits, quant))
        return name, not relu and quant != "unsigned"

    def quantize(self, v: Val, relu: bool | None = None, rqt: bool = True, module: str | None = None,
                 signed: bool | None = None) -> Val:
        """Apply an activation quantizer (a new one, or ``module`` again: a shared quantizer)."""
        if module is None:
            module, signed = self.new_quant(relu, rqt)
        out = self.emit(f"{module}({v.var})")
        return Val(out, v.shape, "q" if rqt else "g", module.removeprefix("self."), bool(signed))

    # ---- weights ------------------------------------------------------------------------------
    def weight_args(self, input_is_qt: bool) -> list[str]:
        """weight_quant / weight_bit_width / bias arguments; Int32Bias needs a QuantTensor input."""
        args = []
        wb = self.r.choice([8, 8, 8, 7, 6, 5, 4, 4, 3, 2])
        per_channel = self.chance(0.4)
        if self.pot:
            if per_channel:
                self.pot_class = True
                args.append("weight_quant=Int8WeightPerChannelFixedPoint")
            else:
                self.quant_imports.add("Int8WeightPerTensorFixedPoint")
                args.append("weight_quant=Int8WeightPerTensorFixedPoint")
        elif per_channel:
            self.quant_imports.add("Int8WeightPerChannelFloat")
            args.append("weight_quant=Int8WeightPerChannelFloat")
        if wb != 8:
            args.append(f"weight_bit_width={wb}")
        bias = self.r.choice(["int32", "int32", "float", "none"])
        if bias == "int32" and not input_is_qt:
            bias = "float"
        if self.pot and bias == "float":
            bias = "int32" if input_is_qt else "none"
        if bias == "int32":
            self.quant_imports.add("Int32Bias")
            args += ["bias=True", "bias_quant=Int32Bias"]
        elif bias == "none":
            args.append("bias=False")
        self.note(f"w{wb}{'pc' if per_channel else ''}/{bias}bias")
        return args

    # ---- layers -------------------------------------------------------------------------------
    def conv(self, v: Val, cout: int | None = None, mode: str = "free", depthwise: bool | None = None,
             stride: int = 1) -> Val:
        """A QuantConv2d on ``v``; returns its float output (kind ``f``).

        ``mode``: ``free`` (any kernel, stride, padding, dilation), ``same`` (odd kernel, padding
        d*(k//2): the output keeps the spatial size at ``stride`` 1, halves it at 2) or ``pointwise``.
        """
        c, h, w = v.shape
        r = self.r
        if mode == "pointwise":
            k, s, p, d = (1, 1), (stride, stride), (0, 0), (1, 1)
        elif mode == "same":
            kk = r.choice([1, 3, 3, 3, 5])
            d = r.choice([1, 1, 1, 2]) if kk > 1 else 1
            k, s, p, d = (kk, kk), (stride, stride), (d * (kk // 2),) * 2, (d, d)
        else:
            kernel = r.choice([1, 2, 3, 3, 3, 3, 5, (1, 3), (3, 1), (3, 5)])
            k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
            sv = r.choice([1, 1, 1, 2, 2, 3]) if min(h, w) >= 6 else 1
            s = (sv, sv) if r.random() < 0.9 else (sv, r.choice([1, 2]))
            d = (r.choice([1, 1, 1, 2]),) * 2 if max(k) > 1 else (1, 1)
            p = tuple(r.choice([0, kk // 2, kk // 2, 1, 2]) for kk in k)
            if r.random() < 0.1 and s == (1, 1):
                p = "same"
        # output size must stay >= 1
        if p != "same":
            for i, n in enumerate((h, w)):
                while _out_size(n, k[i], s[i], p[i], d[i]) < 1:
                    if d[i] > 1:
                        d = (1, 1)
                    elif p[i] < k[i] // 2 + 1:
                        p = tuple(pp + 1 if j == i else pp for j, pp in enumerate(p))
                    else:
                        k = tuple(1 if j == i else kk for j, kk in enumerate(k))
            oh, ow = (_out_size(h, k[0], s[0], p[0], d[0]), _out_size(w, k[1], s[1], p[1], d[1]))
        else:
            oh, ow = h, w
        if depthwise is None:
            depthwise = v.kind == "c" or (c > 1 and (cout is None or cout % c == 0) and self.chance(0.25))
        groups = 1
        if depthwise:
            groups = c
            cout = c * (r.choice([1, 1, 1, 2]) if cout is None else max(1, cout // c))
            self.note("depthwise")
        else:
            if cout is None:
                cout = r.choice([4, 6, 8, 8, 12, 16, 16, 24, 32])
            divs = [g for g in range(2, c) if c % g == 0 and cout % g == 0]
            if divs and self.chance(0.35):
                groups = r.choice(divs)
                self.note(f"groups{groups}")
        args = [str(c), str(cout), str(k[0]) if k[0] == k[1] else str(k)]
        if s != (1, 1):
            args.append(f"stride={s[0] if s[0] == s[1] else s}")
        if p == "same":
            args.append("padding='same'")
        elif p != (0, 0):
            args.append(f"padding={p[0] if p[0] == p[1] else p}")
        if d != (1, 1):
            args.append(f"dilation={d[0]}")
        if groups > 1:
            args.append(f"groups={groups}")
        args += self.weight_args(v.kind == "q")
        self.note(f"conv{k[0]}x{k[1]}/s{s[0]}{'' if s[0] == s[1] else s[1]}/p{p}/d{d[0]}")
        m = self.mod("conv", f"qnn.QuantConv2d({', '.join(args)})")
        out = Val(self.emit(f"{m}({v.var})"), (cout, oh, ow), "f")
        if self.chance(0.3):
            bn = self.mod("bn", f"nn.BatchNorm2d({cout})")
            out = Val(self.emit(f"{bn}({out.var})"), out.shape, "f")
            self.note("batchnorm")
        return out

    def linear(self, v: Val, fout: int) -> Val:
        args = [str(v.shape[0]), str(fout)] + self.weight_args(v.kind == "q")
        m = self.mod("fc", f"qnn.QuantLinear({', '.join(args)})")
        self.note("linear")
        return Val(self.emit(f"{m}({v.var})"), (fout,), "f")

    def activate(self, v: Val, rqt: bool = True, pool: bool = False) -> Val:
        """Float conv output -> quantized: QuantReLU / QuantIdentity, maybe after a float ReLU or (``pool``)
        max pooling of the accumulator."""
        r = self.r.random()
        if self.take_probe("leaky_relu"):
            v = Val(self.emit(f"F.leaky_relu({v.var}, 0.1)"), v.shape, "f")
        elif self.take_probe("sigmoid"):
            v = Val(self.emit(f"torch.sigmoid({v.var})"), v.shape, "f")
        elif r < 0.15:
            v = Val(self.emit(f"{self.r.choice(['F.relu', 'torch.relu'])}({v.var})"), v.shape, "f")
            self.note("float-relu")
            return self.quantize(v, relu=False, rqt=rqt)
        elif pool and r < 0.27 and v.spatial and min(v.shape[1:]) >= 4:
            v = self.maxpool(v)
            self.note("maxpool-on-acc")
        return self.quantize(v, rqt=rqt)

    def maxpool(self, v: Val) -> Val:
        c, h, w = v.shape
        r = self.r
        k = r.choice([2, 2, 3]) if min(h, w) >= 3 else 2
        s = r.choice([k, k, 1, 2])
        p = r.choice([0, 0, k // 2])
        ceil = r.random() < 0.25
        if self.take_probe("maxpool_dilation"):
            dil = 2
        else:
            dil = 1
        oh, ow = (_out_size(h, k, s, p, dil, ceil), _out_size(w, k, s, p, dil, ceil))
        if ceil:  # PyTorch drops a last window that starts in the right padding
            oh -= (oh - 1) * s >= h + p
            ow -= (ow - 1) * s >= w + p
        if oh < 1 or ow < 1:
            k, s, p, ceil, dil = 1, 1, 0, False, 1
            oh, ow = h, w
        args = [str(k)] + ([f"stride={s}"] if s != k else []) + ([f"padding={p}"] if p else []) + \
            (["ceil_mode=True"] if ceil else []) + ([f"dilation={dil}"] if dil > 1 else [])
        if r.random() < 0.3 and dil == 1:
            expr = f"F.max_pool2d({v.var}, {k}, {s}, {p}, ceil_mode={ceil})"
        else:
            expr = f"{self.mod('pool', 'nn.MaxPool2d(' + ', '.join(args) + ')')}({v.var})"
        self.note(f"maxpool{k}/s{s}/p{p}{'/ceil' if ceil else ''}")
        return Val(self.emit(expr), (c, oh, ow), v.kind, v.quant, v.signed)

    def avgpool(self, v: Val) -> Val:
        """Average pooling of a QuantTensor: plain (then a quantizer), adaptive, or Brevitas' trunc pooling."""
        c, h, w = v.shape
        r = self.r
        choice = r.choice(["avg", "avg", "adaptive", "trunc", "trunc", "trunc_adaptive", "mean"])
        if choice == "mean" and v.kind == "q":
            choice = "adaptive"
        if choice in ("avg", "trunc"):
            k = r.choice([2, 2, 3]) if min(h, w) >= 3 else min(h, w, 2)
            s = r.choice([k, k, 1, 2])
            p = r.choice([0, 0, 0, k // 2]) if choice == "avg" else 0  # TruncAvgPool2d has no padding
            if self.take_probe("avgpool_exclude_pad"):
                p = max(p, 1) if k > 1 else 0
                extra = ", count_include_pad=False" if p else ""
            else:
                extra = ""
            oh, ow = _out_size(h, k, s, p), _out_size(w, k, s, p)
            if oh < 1 or ow < 1:
                k, s, p, oh, ow = 1, 1, 0, h, w
            args = f"{k}" + (f", stride={s}" if s != k else "") + (f", padding={p}" if p else "") + extra
            if choice == "trunc":
                ob = r.choice([8, 8, 6, 4])
                rounding = r.choice(["", "", ", trunc_quant=TruncTo8bit"])
                if rounding:
                    self.quant_imports.add("TruncTo8bit")
                m = self.mod("tpool", f"qnn.TruncAvgPool2d({args}{rounding}{f', bit_width={ob}' if ob != 8 else ''})")
                self.note(f"truncavgpool{k}/s{s}/p{p}/b{ob}")
                return Val(self.emit(f"{m}({v.var})"), (c, oh, ow), "q", None, v.signed)
            if r.random() < 0.3 and not extra:
                expr = f"F.avg_pool2d({v.var}, {k}, {s}, {p}, False, True, None)"
            else:
                expr = f"{self.mod('pool', f'nn.AvgPool2d({args})')}({v.var})"
            self.note(f"avgpool{k}/s{s}/p{p}")
            out = Val(self.emit(expr), (c, oh, ow), "f")
            return self.quantize(out, relu=False if v.signed else None)
        divisors = [o for o in (1, 2, 3, 4) if h % o == 0 and w % o == 0]
        o = r.choice(divisors)
        if self.take_probe("adaptive_nondividing"):
            o = next((x for x in (3, 5, 2) if h % x and x < h), o)
        if choice == "trunc_adaptive":
            m = self.mod("tpool", f"qnn.TruncAdaptiveAvgPool2d({o})")
            self.note(f"truncadaptive{o}")
            return Val(self.emit(f"{m}({v.var})"), (c, o, o), "q", None, v.signed)
        if choice == "mean":
            out = Val(self.emit(f"{v.var}.mean((2, 3), keepdim=True)"), (c, 1, 1), "f")
            self.note("mean")
        else:
            if r.random() < 0.5:
                expr = f"{self.mod('pool', f'nn.AdaptiveAvgPool2d({o})')}({v.var})"
            else:
                expr = f"F.adaptive_avg_pool2d({v.var}, {o})"
            out = Val(self.emit(expr), (c, o, o), "f")
            self.note(f"adaptiveavg{o}")
        return self.quantize(out, relu=False if v.signed else None)

    # ---- blocks -------------------------------------------------------------------------------
    def conv_block(self, v: Val) -> Val:
        return self.activate(self.conv(v), pool=True)

    def residual_block(self, v: Val) -> Val:
        c = v.shape[0]
        variant = self.r.choice(["shared", "shared", "eltwise", "float", "float", "grid"])
        if variant == "shared" and (v.kind != "q" or v.quant is None):
            variant = "eltwise"
        self.note(f"residual-{variant}")
        op = "+"
        if variant != "eltwise":  # QuantEltwiseAdd always adds
            op = "-" if self.take_probe("sub") else "*" if self.take_probe("mul") else "+"
        if variant == "shared":
            # QuantResNet style: the quantizer of the block input quantizes the branch again
            b = self.activate(self.conv(v, mode="same")) if self.chance(0.6) else v
            b = self.conv(b, cout=c, mode="same")
            b = self.quantize(b, module=f"self.{v.quant}", signed=v.signed)
            left, right = (b, v) if self.chance(0.5) else (v, b)
            expr = f"{left.var} {op} {right.var}" if self.chance(0.8) else f"torch.add({left.var}, {right.var})"
            if op != "+":
                expr = f"{left.var} {op} {right.var}"
            s = Val(self.emit(expr), v.shape, "s")
            return self.quantize(s)
        if variant == "eltwise":
            b = self.conv(v, cout=c, mode="same")
            if self.chance(0.5):
                b = self.activate(b)
            in_q = "Int8ActPerTensorFixedPoint" if self.pot else "Int8ActPerTensorFloat"
            out_q = f"{self.r.choice(['Uint8', 'Int8'])}ActPerTensor{'FixedPoint' if self.pot else 'Float'}"
            self.quant_imports.update([in_q, out_q])
            m = self.mod("add", f"qnn.QuantEltwiseAdd(input_quant={in_q}, output_quant={out_q}, "
                                f"return_quant_tensor=True)")
            out = self.emit(f"{m}({b.var}, {v.var})" if self.chance(0.5) else f"{m}({v.var}, {b.var})")
            return Val(out, v.shape, "q", None, out_q.startswith("Int8"))
        if variant == "float":
            # two float paths (branch conv, shortcut conv) meet at one quantizer; maybe downsampling
            down = v.shape[1] >= 4 and self.chance(0.4)
            cout = self.r.choice([c, c, 2 * c, 8, 16])
            st = 2 if down else 1
            a = self.conv(v, cout=cout, mode="same", stride=st)
            short = self.conv(v, cout=cout, mode="pointwise", stride=st)
            if self.chance(0.5):
                a = Val(self.emit(f"F.relu({a.var})"), a.shape, "f")
            if self.take_probe("quant_plus_float"):
                short = self.quantize(short, rqt=True)
            s = Val(self.emit(f"{a.var} {op} {short.var}"), a.shape, "f")
            return self.activate(s)
        # two quantizers with their own scales, float outputs on their grids, summed, requantized
        a = self.quantize(self.conv(v, cout=c, mode="same"), rqt=False)
        b = self.quantize(self.conv(v, cout=c, mode="pointwise"), rqt=False) if self.chance(0.6) else \
            (v if v.kind == "g" else self.quantize(self.conv(v, cout=c, mode="same"), rqt=False))
        s = Val(self.emit(f"{a.var} {op} {b.var}"), v.shape, "f")
        return self.quantize(s)

    def concat_block(self, v: Val) -> Val:
        variant = self.r.choice(["shared", "shared", "grid", "dense"])
        if variant == "dense" and (v.kind != "q" or v.quant is None):
            variant = "shared"
        self.note(f"concat-{variant}")
        cat = self.r.choice(["torch.cat", "torch.cat", "torch.concat"])
        n = self.r.choice([2, 2, 3])
        if variant in ("shared", "dense"):
            if variant == "dense":
                q, signed = f"self.{v.quant}", v.signed
                parts = [v]
            else:
                q, signed = self.new_quant(rqt=True)
                parts = []
            while len(parts) < n:
                parts.append(self.quantize(self.conv(v, mode="same"), module=q, signed=signed))
            if cat == "torch.concat":
                cat = "torch.cat"  # torch.concat of QuantTensors returns a float tensor in Brevitas
            out = self.emit(f"{cat}([{', '.join(p.var for p in parts)}], {self.r.choice(['1', 'dim=1'])})")
            return Val(out, (sum(p.shape[0] for p in parts),) + v.shape[1:], "q", q.removeprefix("self."), signed)
        parts = [self.quantize(self.conv(v, mode="same"), rqt=False) for _ in range(n)]
        out = Val(self.emit(f"{cat}([{', '.join(p.var for p in parts)}], 1)"),
                  (sum(p.shape[0] for p in parts),) + v.shape[1:], "c")
        if self.chance(0.3):
            return self.activate(self.conv(out, depthwise=True))
        return self.quantize(out)

    def pool_block(self, v: Val) -> Val:
        if v.kind == "q" and self.chance(0.45):
            return self.avgpool(v)
        return self.maxpool(v)

    # ---- the network --------------------------------------------------------------------------
    def build(self) -> NetSource:
        r = self.r
        mlp = r.random() < 0.1
        data = r.choice(["digits", "digits", "random", "random_signed"])
        if mlp:
            shape = (r.choice([16, 32, 64]) if data != "digits" else 64,)
        else:
            c = r.choice([1, 1, 2, 3])
            h = r.choice([8, 8, 12, 16, 16, 16, 20, 24, 32])
            w = h if r.random() < 0.85 else r.choice([8, 12, 16])
            shape = (c, h, w)
        in_bits = r.choice([8, 8, 8, 7, 6, 4])
        signed_in = data == "random_signed" or r.random() < 0.7
        relu_in = self.take_probe("relu_input")  # QuantReLU on the float input: refused
        q = self.mod("quant_in", self.act_ctor(relu=relu_in, rqt=True, bits=in_bits,
                                               quant="signed" if signed_in else "unsigned"))
        v = Val(self.emit(f"{q}(x)"), shape, "q", q.removeprefix("self."), signed_in)
        self.note(f"input{shape}/{data}/{in_bits}b")
        if v.spatial and self.take_probe("shifted_quant"):  # zero point != 0 before a conv: refused
            m = self.mod("quant", self.act_ctor(relu=False, rqt=True, quant="shifted"))
            out = self.conv(v)
            v = Val(self.emit(f"{m}({out.var})"), out.shape, "q", m.removeprefix("self."))
            v = self.activate(self.conv(v))
        if v.spatial:
            for _ in range(r.choice([1, 2, 2, 3, 3, 4, 5])):
                c, h, w = v.shape
                options = ["conv"] * 4 + ["residual"] * 2 + ["concat"]
                if min(h, w) >= 2:
                    options += ["pool"] * 2
                if c * h * w > 8192:
                    options = ["pool", "conv"]
                kind = r.choice(options)
                if v.kind not in ("q", "g"):
                    kind = "conv"
                v = {"conv": self.conv_block, "residual": self.residual_block, "concat": self.concat_block,
                     "pool": self.pool_block}[kind](v)
                if self.take_probe("bn_after_quant") and v.kind == "q":
                    bn = self.mod("bn", f"nn.BatchNorm2d({v.shape[0]})")
                    v = self.quantize(Val(self.emit(f"{bn}({v.var})"), v.shape, "f"))
                if self.take_probe("pad"):
                    v = Val(self.emit(f"F.pad({v.var}, (1, 1, 1, 1))"), (v.shape[0], v.shape[1] + 2, v.shape[2] + 2),
                            v.kind, v.quant, v.signed)
            c, h, w = v.shape
            if c * h * w > 1024 or r.random() < 0.3:
                v = self.avgpool_head(v)
            v = self.flatten(v)
        for _ in range(r.choice([0, 0, 1, 1, 2])):
            v = self.quantize(self.linear(v, r.choice([8, 16, 24, 32])), relu=r.random() < 0.8)
        v = self.linear(v, r.choice([10, 10, 5, 3]))
        if r.random() < 0.15:
            v = self.quantize(v, relu=False, rqt=False)
            self.note("quantized-output")
        self.lines.append(f"return {v.var}")
        return NetSource(self.name, self.seed, self.render(shape, data), self.constructs,
                         self.probe if self.probe_done else None)

    def avgpool_head(self, v: Val) -> Val:
        """Global (or 2x2 adaptive) average pooling before the classifier."""
        c, h, w = v.shape
        o = 2 if h % 2 == 0 and w % 2 == 0 and c * 4 <= 1024 and self.chance(0.3) else 1
        if v.kind == "q" and self.chance(0.4):
            m = self.mod("tpool", f"qnn.TruncAdaptiveAvgPool2d({o})")
            self.note(f"truncadaptive{o}")
            return Val(self.emit(f"{m}({v.var})"), (c, o, o), "q", None, v.signed)
        if v.kind == "g" and o == 1 and self.chance(0.5):
            out = Val(self.emit(f"{v.var}.mean((2, 3), keepdim=True)"), (c, 1, 1), "f")
            self.note("mean")
        else:
            m = self.mod("pool", f"nn.AdaptiveAvgPool2d({o})")
            out = Val(self.emit(f"{m}({v.var})"), (c, o, o), "f")
            self.note(f"adaptiveavg{o}")
        return self.quantize(out, relu=False if v.signed else None)

    def flatten(self, v: Val) -> Val:
        c, h, w = v.shape
        form = self.r.randrange(4)
        if form == 3:
            expr = f"{self.mod('flat', 'nn.Flatten()')}({v.var})"
        else:
            expr = (f"{v.var}.view({v.var}.size(0), -1)", f"torch.flatten({v.var}, 1)",
                    f"{v.var}.reshape({v.var}.shape[0], -1)")[form]
        self.note("flatten")
        return Val(self.emit(expr), (c * h * w,), v.kind, v.quant, v.signed)

    def render(self, shape: tuple, data: str) -> str:
        imports = sorted(self.quant_imports)
        quant_line = f"from brevitas.quant import {', '.join(imports)}  # noqa: E402\n" if imports else ""
        pot_class = ""
        if self.pot_class:
            if "Int8WeightPerTensorFixedPoint" not in self.quant_imports:
                quant_line = (f"from brevitas.quant import {', '.join(sorted(imports + ['Int8WeightPerTensorFixedPoint']))}"
                              "  # noqa: E402\n")
            pot_class = ('\n\nclass Int8WeightPerChannelFixedPoint(Int8WeightPerTensorFixedPoint):\n'
                         '    """Power-of-two weight scale per output channel."""\n\n'
                         '    scaling_per_output_channel = True\n')
        body = "\n".join(f"        {m}" for m in self.mods)
        fwd = "\n".join(f"        {ln}" for ln in self.lines)
        summary = ", ".join(dict.fromkeys(c for c in self.constructs if not c.startswith(("w", "input"))))
        return _TEMPLATE.format(name=self.name, seed=self.seed, summary=_wrap(summary), quant_line=quant_line,
                                pot_class=pot_class, shape=(1, *shape), data=data, body=body, fwd=fwd,
                                pot=self.pot, helpers=_helpers_source())


def _wrap(text: str, width: int = 96) -> str:
    words, lines, cur = text.split(" "), [], ""
    for wd in words:
        if len(cur) + len(wd) + 1 > width:
            lines.append(cur)
            cur = wd
        else:
            cur = f"{cur} {wd}" if cur else wd
    lines.append(cur)
    return "\n".join(lines)


_TEMPLATE = '''"""{name}: a random Brevitas network written by tools/fuzz_networks.py (seed {seed}).

Constructs: {summary}

Random weights; activation scales calibrated deterministically (Brevitas calibration_mode) on
{data} inputs (fuzz_model_functions below). Re-run it through the pipeline with
  python tools/deploy.py --model-file {name}.py --out /tmp/{name} --target gap9 --l1-budget 16K
"""

# ---- copied from gapforge's tools/_fuzz_model.py ----
{helpers}

# ---- the network ----
import brevitas.nn as qnn  # noqa: E402
{quant_line}
SEED = {seed}
INPUT_SHAPE = {shape}
DATA = "{data}"
POWER_OF_TWO = {pot}
{pot_class}

class FuzzNet(nn.Module):
    def __init__(self):
        super().__init__()
{body}

    def forward(self, x):
{fwd}


create_model, example_input, held_out_data = fuzz_model_functions(FuzzNet, SEED, INPUT_SHAPE, DATA)
'''


@functools.cache
def _helpers_source() -> str:
    """tools/_fuzz_model.py without its docstring (its imports and functions), for a standalone model file."""
    text = (Path(__file__).resolve().parent / "_fuzz_model.py").read_text(encoding="utf-8")
    return text.split('"""', 2)[2].strip() + "\n"


def generate_network(seed: int, index: int, probe_rate: float = 0.08) -> NetSource:
    """Network ``index`` of the run with ``seed``: the same source on every call."""
    net_seed = random.Random(f"gapforge-fuzz:{seed}:{index}").randrange(1, 2**31)
    g = _Gen(random.Random(net_seed), f"fuzz_s{seed}_n{index:04d}", net_seed, probe_rate)
    return g.build()


# =================================================================================================
# Runner: each network through check -> extract -> fidelity -> golden -> codegen -> run per target.
# =================================================================================================


@dataclass
class Run:
    """One target run of one network: ``status`` is exact, mismatch, crash or error (a stage refused)."""

    target: str
    status: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Record:
    name: str
    index: int
    constructs: list[str]
    probe: str | None
    deployable: bool | None = None
    runs: list[Run] = field(default_factory=list)
    failure: str | None = None  # None: behaved; else the category of the first failure
    detail: str = ""
    refusal: str = ""  # the checker's first reason, for a network it calls not deployable
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"name": self.name, "index": self.index, "deployable": self.deployable, "probe": self.probe,
                "failure": self.failure, "detail": self.detail, "refusal": self.refusal,
                "seconds": round(self.seconds, 2),
                "runs": [{"target": r.target, "status": r.status, "detail": r.detail, "seconds": round(r.seconds, 2)}
                         for r in self.runs], "constructs": self.constructs}


class _StageProgress(Progress):
    """deploy.Progress that remembers the stage being run (to attribute an exception to it)."""

    def __init__(self) -> None:
        super().__init__(quiet=True)
        self.stage = "load"

    def start(self, stage: str) -> None:
        self.stage = stage
        super().start(stage)


def _run_status(target: str, passed: bool, res: dict) -> Run:
    """Classify one results.json: exact, mismatch (a layer differs) or crash (anything else)."""
    plan_problems = res.get("plan_mismatches") or []
    if passed and not plan_problems:
        return Run(target, "exact", seconds=res.get("seconds", 0.0))
    if res["totals"]["mismatches"]:
        bad = [f"{layer['name']} {layer['mismatches']} (max diff {layer['max_diff']})"
               for layer in res["layers"] if layer.get("mismatches")]
        return Run(target, "mismatch", "mismatching layers: " + "; ".join(bad[:4]), res.get("seconds", 0.0))
    reasons = list(res.get("reasons", [])) + plan_problems
    tail = res.get("stderr_tail", "").strip().splitlines()[-2:]
    return Run(target, "crash", "; ".join(reasons[:4] + tail), res.get("seconds", 0.0))


def _model_args(path: Path) -> argparse.Namespace:
    """The arguments a user gives to load ``path`` (so new model-loading options keep their defaults)."""
    p = argparse.ArgumentParser()
    add_model_arguments(p)
    return p.parse_args(["--model-file", str(path)])


@dataclass(frozen=True)
class TargetRun:
    label: str  # host, rv32, gap9-emu@16K, gap9-emu@16K/L2=64K
    target: str  # the codegen target: host, rv32, gap9
    l1: int | None = None
    l2: int | None = None

    @property
    def runs_as(self) -> str:
        return "gap9-emu" if self.target == "gap9" else self.target


def _kib(n: int) -> str:
    return f"{n // 1024}K" if n % 1024 == 0 else str(n)


def l1_budget(text: str, flag: str) -> int | None:
    """An L1 budget of --l1-budgets / L1_BUDGETS: bytes, or 'max' (None: the planner's default)."""
    return None if text == "max" else _budget(text, flag)


def target_runs(targets: list[str], l1_budgets: list[int | None], l2_budget: int | None = None) -> list[TargetRun]:
    """Every run of a network: host / rv32 once, gap9-emu once per L1 budget (None: the default, 'max')."""
    runs = []
    for t in targets:
        if t == "gap9-emu":
            l2 = f"/L2={_kib(l2_budget)}" if l2_budget else ""
            runs += [TargetRun(f"gap9-emu@{_kib(b) if b is not None else 'max'}{l2}", "gap9", b, l2_budget)
                     for b in l1_budgets]
        else:
            runs.append(TargetRun(t, t))
    return runs


def run_network(net: NetSource, index: int, work: Path, runs: list[TargetRun],
                timeout: float = 300.0) -> Record:
    """Write ``net``'s model file into ``work`` and take it through every stage and target."""
    work.mkdir(parents=True, exist_ok=True)
    model_file = work / f"{net.name}.py"
    model_file.write_text(net.text, encoding="utf-8")
    return run_model_file(model_file, work, runs, timeout, Record(net.name, index, net.constructs, net.probe))


def run_model_file(model_file: Path, work: Path, runs: list[TargetRun], timeout: float = 300.0,
                   rec: Record | None = None) -> Record:
    """Take a model file (a generated network or a saved reproducer) through every stage and target."""
    t0 = time.perf_counter()
    rec = rec or Record(model_file.stem, -1, [], None)
    try:
        _pipeline(rec, model_file, work, runs, timeout)
    finally:
        rec.seconds = time.perf_counter() - t0
    return rec


def _fail(rec: Record, category: str, detail: str) -> None:
    if rec.failure is None:
        rec.failure, rec.detail = category, detail


def _pipeline(rec: Record, model_file: Path, work: Path, runs, timeout: float) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            src = load_model(_model_args(model_file))
    except GapforgeError as err:  # Brevitas could not build or calibrate it: a generator bug
        _fail(rec, "invalid-model", err.one_line())
        return
    out = work / "deploy"
    first = runs[0]
    prog = _StageProgress()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary = run_pipeline(src, out, first.target, num_cases=1, fidelity_cases=N_FIDELITY, l1_budget=first.l1,
                                   l2_budget=first.l2, progress=prog)
    except GapforgeError as err:
        _fail(rec, f"{prog.stage}-refused", err.one_line())
        rec.deployable = True if prog.stage != "check" else None
        return
    except Exception as exc:  # noqa: BLE001 -- any exception of a stage is a finding
        rec.deployable = True if prog.stage != "check" else None
        _fail(rec, f"{prog.stage}-crash", _exc_line(exc))
        return
    rec.deployable = summary["check"]["deployable"]
    if not rec.deployable:
        rec.refusal = (summary.get("problems") or [""])[0]
        _check_refusal(rec, src)
        return
    if "run" not in summary:  # a stage after the check said no (fidelity)
        stage = STAGES[len(prog.rows) - 1] if prog.rows else prog.stage
        _fail(rec, f"{stage}-failed", " | ".join(summary.get("problems", []))[:2000])
        return
    rec.runs.append(_run_status(first.label, *_results(out / f"project_{first.target}")))
    for run in runs[1:]:
        rec.runs.append(_one_target(out, run, timeout))
    for r in rec.runs:
        if r.status != "exact":
            _fail(rec, r.status, f"{r.target}: {r.detail}")


def _results(proj: Path) -> tuple[bool, dict]:
    res = json.loads((proj / "results.json").read_text())
    return res["passed"], res


def _one_target(out: Path, run: TargetRun, timeout: float) -> Run:
    proj = out / ("project_" + "".join(ch if ch.isalnum() else "_" for ch in run.label))
    t0 = time.perf_counter()
    stage = "codegen"
    try:
        generate_project(out, proj, run.target, 1, l1_budget=run.l1, l2_budget=run.l2)
        stage = "build+run"
        passed, res = run_project(proj, run.runs_as, timeout=timeout)
    except GapforgeError as err:
        status = "crash" if "timed out" in str(err) else "error"
        return Run(run.label, status, f"{stage}: {err.one_line()}", time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001
        return Run(run.label, "crash", f"{stage}: {_exc_line(exc)}", time.perf_counter() - t0)
    return _run_status(run.label, passed, res)


def _check_refusal(rec: Record, src: ModelSource) -> None:
    """Checker said not deployable: the extractor or the planner must refuse it too, with a one-line error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build_plan(extract(src))
    except GapforgeError:
        return
    except Exception as exc:  # noqa: BLE001
        _fail(rec, "extract-crash", f"checker said not deployable; extraction crashed: {_exc_line(exc)}")
        return
    _fail(rec, "checker-disagrees", "checker said not deployable but the extractor and planner accepted the model")


def _exc_line(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}{where}"


N_FIDELITY = 8


# =================================================================================================
# Totals, reproducers, command line
# =================================================================================================


def totals(records: list[Record], labels: list[str]) -> dict:
    t: dict = {"networks": len(records),
               "deployable": sum(r.deployable is True for r in records),
               "not_deployable": sum(r.deployable is False for r in records),
               "behaved": sum(r.failure is None for r in records),
               "failed": sum(r.failure is not None for r in records),
               "invalid_models": sum(r.failure == "invalid-model" for r in records),
               "checker_yes_later_failed": sum(r.deployable is True and r.failure is not None for r in records),
               "checker_no_extract_accepted": sum(r.failure == "checker-disagrees" for r in records),
               "mismatches": 0, "crashes": 0, "per_target": {}}
    for label in labels:
        runs = [x for r in records for x in r.runs if x.target == label]
        t["per_target"][label] = {s: sum(x.status == s for x in runs) for s in ("exact", "mismatch", "crash", "error")}
        t["per_target"][label]["runs"] = len(runs)
    t["mismatches"] = sum(x.status == "mismatch" for r in records for x in r.runs)
    t["fidelity_failures"] = sum(r.failure == "fidelity-failed" for r in records)
    t["crashes"] = sum(x.status == "crash" for r in records for x in r.runs) + \
        sum(bool(r.failure) and r.failure.endswith("-crash") for r in records)
    cats: dict[str, int] = {}
    for r in records:
        if r.failure:
            cats[r.failure] = cats.get(r.failure, 0) + 1
    t["failure_categories"] = cats
    return t


def network_line(rec: Record) -> str:
    """One line per network: verdict, each target's status, time."""
    verdict = {True: "deployable", False: "not deployable", None: "-"}[rec.deployable]
    runs = " ".join(f"{r.target}={r.status}" for r in rec.runs)
    refused = f"refused consistently: {rec.refusal[:100]}" if rec.deployable is False else ""
    return f"{rec.name}  {verdict:<14} {runs or refused}" \
           f"{'' if rec.failure is None else '  FAILED'}  ({rec.seconds:.1f} s)"


def format_totals(t: dict) -> str:
    lines = [f"networks {t['networks']}: deployable {t['deployable']}, not deployable {t['not_deployable']}, "
             f"behaved {t['behaved']}, failed {t['failed']}",
             f"mismatches {t['mismatches']} (runs), fidelity failures {t['fidelity_failures']}, crashes {t['crashes']}, "
             f"checker said yes but a later stage failed "
             f"{t['checker_yes_later_failed']}, checker said no but the extractor accepted "
             f"{t['checker_no_extract_accepted']}, invalid generated models {t['invalid_models']}"]
    for label, c in t["per_target"].items():
        lines.append(f"  {label:<14} bit-exact {c['exact']}/{c['runs']}  mismatch {c['mismatch']}  "
                     f"crash {c['crash']}  error {c['error']}")
    if t["failure_categories"]:
        lines.append("  failures: " + ", ".join(f"{k} {v}" for k, v in sorted(t["failure_categories"].items())))
    return "\n".join(lines)


def _indices(args) -> list[int]:
    if args.only:
        bad = [i for i in args.only if not 0 <= i < args.count]
        if bad:
            raise GapforgeError(f"--only {bad[0]}: outside 0..{args.count - 1} (--count {args.count})")
        return sorted(set(args.only))
    return list(range(args.count))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fuzz_networks.py", description=__doc__.split("\n")[0],
                                epilog=__doc__.split("Examples:")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, required=True, metavar="N", help="number of random networks")
    p.add_argument("--seed", type=int, required=True, metavar="S", help="seed of the run")
    p.add_argument("--out", default="golden_outputs/fuzz", metavar="DIR",
                   help="summary.json, failures/ (reproducers) and work/ (default golden_outputs/fuzz)")
    p.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS, help="targets to run on")
    p.add_argument("--l1-budgets", nargs="+", default=list(DEFAULT_L1), metavar="BYTES",
                   help="gap9-emu L1 budgets, one run each; 'max' is the planner's default, the 128 KiB L1 "
                        "less the cluster stacks and control block (default: max 16K)")
    p.add_argument("--l2-budget", metavar="BYTES",
                   help="gap9-emu L2 budget (default: the hardware model's; small values move data to L3)")
    p.add_argument("--only", nargs="+", type=int, metavar="I", help="run only these network indices")
    p.add_argument("--probe-rate", type=float, default=0.08, metavar="P",
                   help="fraction of networks given one construct gapforge is expected to refuse (default 0.08)")
    p.add_argument("--timeout", type=float, default=300.0, metavar="SEC", help="per program run (default 300)")
    p.add_argument("--keep", action="store_true", help="keep the work directory of every network")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.count < 1:
        raise GapforgeError("--count must be at least 1")
    if not 0 <= args.probe_rate <= 1:
        raise GapforgeError("--probe-rate must be between 0 and 1")
    budgets = [l1_budget(b, "--l1-budgets") for b in args.l1_budgets]
    targets = list(dict.fromkeys(args.targets))
    for t in targets:
        ok, why = toolchains.available("host" if t == "gap9-emu" else t)
        if not ok:
            raise GapforgeError(f"--targets {t}: not available here ({why})")
    return fuzz(_indices(args), args.seed, Path(args.out), targets, budgets,
                l2_budget=_budget(args.l2_budget, "--l2-budget"), probe_rate=args.probe_rate,
                timeout=args.timeout, keep=args.keep, progress=not args.no_progress)


def fuzz(indices: list[int], seed: int, out: Path, targets: list[str], budgets: list[int | None], *,
         l2_budget: int | None = None, probe_rate: float = 0.08, timeout: float = 300.0, keep: bool = False,
         progress: bool = True) -> int:
    """Run networks ``indices`` of ``seed``; writes OUT/summary.json and OUT/failures/; returns the exit code."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # for this run only (a caller in the same process keeps its own count)
    try:
        return _fuzz(indices, seed, out, targets, budgets, l2_budget=l2_budget, probe_rate=probe_rate,
                     timeout=timeout, keep=keep, progress=progress)
    finally:
        torch.set_num_threads(threads)


def _fuzz(indices: list[int], seed: int, out: Path, targets: list[str], budgets: list[int | None], *,
          l2_budget: int | None, probe_rate: float, timeout: float, keep: bool, progress: bool) -> int:
    from tqdm import tqdm

    runs = target_runs(targets, budgets, l2_budget)
    labels = [r.label for r in runs]
    records: list[Record] = []
    failures = out / "failures"
    bar = tqdm(indices, desc=f"fuzz seed {seed}", unit="net", file=sys.stderr, disable=not progress)
    start = time.perf_counter()
    for i in bar:
        net = generate_network(seed, i, probe_rate)
        work = out / "work" / net.name
        rec = run_network(net, i, work, runs, timeout)
        records.append(rec)
        bar.write(network_line(rec), file=sys.stdout)
        if rec.failure:
            failures.mkdir(parents=True, exist_ok=True)
            atomic_write_text(failures / f"{net.name}.py", net.text)
            atomic_write_text(failures / f"{net.name}.json", json.dumps(rec.to_json(), indent=1) + "\n")
            bar.write(f"  FAIL [{rec.failure}] {rec.detail[:400]}", file=sys.stdout)
        if not keep and not rec.failure:
            shutil.rmtree(work, ignore_errors=True)
        t = totals(records, labels)
        bar.set_postfix_str(f"deployable {t['deployable']} failed {t['failed']}")
        atomic_write_text(out / "summary.json", json.dumps(
            {"seed": seed, "targets": labels, "indices": indices, "seconds": round(time.perf_counter() - start, 1),
             "totals": t, "networks": [r.to_json() for r in records]}, indent=1) + "\n")
    if not keep:
        with contextlib.suppress(OSError):
            (out / "work").rmdir()
    print(format_totals(totals(records, labels)))
    print(f"summary: {out / 'summary.json'}" + (f"; reproducers: {failures}/" if failures.is_dir() else ""))
    return EXIT_OK if all(r.failure is None for r in records) else EXIT_VERDICT


if __name__ == "__main__":
    run_cli(main)
