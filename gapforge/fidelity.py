"""Fidelity of the INT8 engine to Brevitas, measured layer by layer.

Teacher-forced: every step of the plan is fed Brevitas' own integers for its inputs (read
from one captured forward pass over the inputs) and its output is compared element-wise
with Brevitas' integers. Brevitas computes in float32, so where the exact value is a hair
away from a .5 tie its rounding can differ from exact arithmetic; a mismatch counts as
*explained* only when ``|frac(exact) - 0.5| < NEAR_TIE`` (exact = the real value the step
rounds, computed from the integer inputs). Power-of-two networks must match everywhere.

A mismatch just outside that window is reported separately as *float32-explained* when
Brevitas' own float32 value before rounding (captured in the same pass) lies on the other
side of the tie from the exact value: the difference is then Brevitas' float32 accumulation
error, not ours. A step on an int32 accumulator (thresholds: a float function of a conv/linear output)
has no rounding of its own: its one-LSB mismatch is float32-explained when the step run on Brevitas'
unrounded float32 accumulator (within 0.5 of the integer one) gives Brevitas' result, i.e. Brevitas'
accumulation put the value across the step's boundary. Anything else is *unexplained* and fails the check.

Free-running: the engine runs on its own outputs end to end; we report top-1 agreement,
the maximum output difference, and per-layer mismatches (near-tie flips propagate).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from gapforge import ir
from gapforge.capture import capture, iter_leaves
from gapforge.errors import GapforgeError
from gapforge.inputs import arrays_of, torch_args
from gapforge.lowering import Lowering
from gapforge.ops import registry

NEAR_TIE = 1e-4


@dataclass
class LayerFidelity:
    name: str
    kind: str
    elements: int
    compared: bool
    mismatches: int = 0
    near_tie_mismatches: int = 0
    float32_explained: int = 0
    unexplained: int = 0
    max_tie_distance: float = 0.0  # of explained mismatches: max |frac(exact) - 0.5|
    max_abs_diff: float = 0.0  # integer LSBs for quant outputs, real units for accumulators
    note: str = ""


@dataclass
class FidelityReport:
    network: str
    cases: int
    power_of_two: bool
    teacher_forced: list[LayerFidelity] = field(default_factory=list)
    free_running: list[LayerFidelity] = field(default_factory=list)
    top1_agreement: float = float("nan")
    max_abs_output_diff: float = float("nan")
    max_rel_output_diff: float = float("nan")

    @property
    def unexplained(self) -> int:
        return sum(lf.unexplained for lf in self.teacher_forced)

    @property
    def total_mismatches(self) -> int:
        return sum(lf.mismatches for lf in self.teacher_forced)

    @property
    def outside_window(self) -> int:
        return sum(lf.mismatches - lf.near_tie_mismatches for lf in self.teacher_forced)

    @property
    def passed(self) -> bool:
        if self.power_of_two:
            return self.total_mismatches == 0 and self.top1_agreement == 1.0
        return self.unexplained == 0

    def to_json(self) -> dict:
        return {"network": self.network, "cases": self.cases, "power_of_two": self.power_of_two,
                "passed": self.passed, "near_tie_window": NEAR_TIE,
                "teacher_forced": {"mismatches": self.total_mismatches, "outside_near_tie_window": self.outside_window,
                                   "unexplained": self.unexplained,
                                   "layers": [asdict(x) for x in self.teacher_forced]},
                "free_running": {"top1_agreement": self.top1_agreement,
                                 "max_abs_output_diff": self.max_abs_output_diff,
                                 "max_rel_output_diff": self.max_rel_output_diff,
                                 "layers": [asdict(x) for x in self.free_running]}}


def _is_pot(v: float) -> bool:
    m, _ = math.frexp(abs(v))
    return v > 0 and m == 0.5


def is_power_of_two_network(net: ir.Network) -> bool:
    """All activation, accumulator and weight scales are powers of two and no float offsets exist.

    Accumulator scales count: an average pooling's divisor (a 5x4 window: 1/20) or a folded
    BatchNorm makes the requantize multiplier a non-power of two even between power-of-two
    quantizers, and then near-ties (Brevitas' float32 rounding) can occur.
    """
    for t in net.tensors.values():
        if t.kind in ("quant", "acc") and not all(_is_pot(s) for s in t.scale_list(1 if not t.per_channel
                                                                                    else len(t.scale))):
            return False
        if t.kind == "acc" and t.offset is not None and any(v != 0 for v in t.offset_list(len(t.offset) if isinstance(t.offset, list) else 1)):
            return False
    for op in net.ops:
        for p in op.params.values():
            if p.scale is not None and not all(_is_pot(s) for s in (p.scale if isinstance(p.scale, list) else [p.scale])):
                return False
    return True


def brevitas_integers(t: ir.TensorInfo, value: torch.Tensor) -> np.ndarray:
    """Brevitas' integers of a quant tensor: ``round(value / scale) + zp`` (not ``.int()``)."""
    v = value.detach().double().numpy()
    return np.rint(v / t.scale_array(v.ndim)) + t.zero_point


def brevitas_accumulator(t: ir.TensorInfo, value: torch.Tensor) -> np.ndarray | None:
    """The integers of an accumulator Brevitas holds as a float32 value ``s * q + offset``, when they
    are unambiguous: every ``(value - offset) / s`` within 0.25 of an integer below 2^24 (Brevitas'
    float32 accumulation error is far smaller); None otherwise (the step is then compared free-running)."""
    v = value.detach().double().numpy()
    q = (v - t.offset_array(v.ndim)) / t.scale_array(v.ndim)
    r = np.rint(q)
    if r.size and (np.abs(q - r).max() >= 0.25 or np.abs(r).max() >= 2**24):
        return None
    return r


def capture_values(model, x, name: str) -> dict[str, torch.Tensor]:
    """Brevitas' value of every IR tensor for the batch ``x`` (a tensor, or a tuple: one per input)."""
    graph = capture(model, x if isinstance(x, tuple) else (x,), registry().is_leaf)
    low = Lowering(graph, name, strict=True)
    low.run()
    return low.values


def _brevitas_pre_rounding(engine, step, values) -> np.ndarray | None:
    """What Brevitas rounded: its float32 value entering the step's final quantizer, / s_out in float32."""
    if step.requant is None:
        return None
    net = engine.net
    feed = net.op_by_name(step.ops[-1]).inputs[0]
    prod = net.producer_of(feed)
    if prod is not None and prod.type == "relu" and prod.name in step.ops:
        feed = prod.inputs[0]
    if feed not in values or net.tensors[feed].kind == "real":
        return None
    out = net.tensors[step.output]
    v = values[feed].detach().float().numpy()
    s = out.scale_array(v.ndim).astype(np.float32)
    return (np.maximum(v, np.float32(0)) if step.relu else v) / s


def _accumulator_explained(engine, step, inputs, values, theirs, cand) -> int:
    """Mismatches of a step on an int32 accumulator (thresholds) explained by Brevitas' float32 accumulation:
    Brevitas' own accumulator value, in accumulator units (not rounded), is within 0.5 of the integer one and
    the step run on it gives exactly Brevitas' result (the value lies across the step's boundary)."""
    t = engine.net.tensors[step.inputs[0]]
    if t.kind != "acc" or step.inputs[0] not in values:
        return 0
    v = values[step.inputs[0]].detach().double().numpy()
    real = (v - t.offset_array(v.ndim)) / t.scale_array(v.ndim)
    if real.shape != inputs[0].shape:
        return 0
    theirs_side = engine.run_step(step, [real])
    return int((cand & (np.abs(real - inputs[0]) < 0.5) & (theirs_side == theirs)).sum())


def _compare(engine, step, ours: np.ndarray, theirs_val, inputs, exact_check: bool,
             values: dict | None = None) -> LayerFidelity:
    t = engine.net.tensors[step.output]
    lf = LayerFidelity(step.output, step.kind + ("+relu" if step.relu else ""), int(ours.size), True)
    if t.kind == "quant":
        theirs = brevitas_integers(t, theirs_val)
        diff = np.abs(ours.astype(np.float64) - theirs)
        mism = diff != 0
        lf.mismatches = int(mism.sum())
        lf.max_abs_diff = float(diff.max()) if diff.size else 0.0
        if lf.mismatches and exact_check:
            exact = engine.pre_rounding(step, inputs)
            if exact is not None:
                exact = np.broadcast_to(exact, ours.shape)
                frac = exact - np.floor(exact)
                dist = np.abs(frac - 0.5)
                tie = (dist < NEAR_TIE) & (diff <= 1)
                lf.near_tie_mismatches = int((mism & tie).sum())
                explained = mism & tie
                brev = _brevitas_pre_rounding(engine, step, values) if values is not None else None
                if brev is not None:
                    # Brevitas' float32 value and the exact value round to different integers,
                    # and Brevitas' rounding gives exactly Brevitas' result
                    f32 = mism & ~tie & (diff <= 1) & (np.rint(brev) != np.rint(exact)) & \
                        (np.clip(np.rint(brev) + t.zero_point, *t.qrange()) == theirs)
                    lf.float32_explained = int(f32.sum())
                    explained = explained | f32
                if explained.any():
                    lf.max_tie_distance = float(dist[explained].max())
            elif values is not None and registry().ir_ops[step.kind].runs_on_real_accumulator:
                lf.float32_explained = _accumulator_explained(engine, step, inputs, values, theirs, mism & (diff <= 1))
        lf.unexplained = lf.mismatches - lf.near_tie_mismatches - lf.float32_explained
    else:  # accumulator outputs (logits): compare real values; Brevitas accumulates in float32
        ours_real = engine.dequantize(step.output, ours).astype(np.float64)
        theirs_real = theirs_val.detach().double().numpy()
        lf.max_abs_diff = float(np.abs(ours_real - theirs_real).max())
        lf.note = "accumulator: real-valued comparison (Brevitas accumulates in float32)"
    return lf


def teacher_forced(engine, values: dict[str, torch.Tensor], x: np.ndarray) -> list[LayerFidelity]:
    """Every step on Brevitas' integers, compared with Brevitas' integers."""
    out = []
    net = engine.net
    for step in engine.plan.steps:
        if step.output not in values or any(i not in values for i in step.inputs):
            out.append(LayerFidelity(step.output, step.kind, 0, False,
                                     note="Brevitas value not observable (internal to a module)"))
            continue
        if registry().ir_ops[step.kind].host:  # the input quantizer reads the float input
            inputs = [dict(zip(net.inputs, arrays_of(x)))[step.inputs[0]]]
        else:
            inputs = []
            for i in step.inputs:
                t = net.tensors[i]
                q = brevitas_integers(t, values[i]) if t.kind == "quant" else \
                    brevitas_accumulator(t, values[i]) if t.kind == "acc" else None
                if q is None:
                    inputs = None
                    break
                inputs.append(q.astype(np.int64))
            if inputs is None:
                out.append(LayerFidelity(step.output, step.kind, 0, False,
                                         note="input is an accumulator whose integers Brevitas' float32 value "
                                              "does not determine; compared free-running only"))
                continue
        ours = engine.run_step(step, inputs)
        out.append(_compare(engine, step, ours, values[step.output], inputs, True, values))
    return out


def free_running(engine, values: dict[str, torch.Tensor], x: np.ndarray, brevitas_out: np.ndarray):
    """End-to-end engine run vs Brevitas: per-layer mismatches and output agreement."""
    out_fp, ints = engine.forward(x)
    layers = []
    for step in engine.plan.steps:
        if step.output in values:
            layers.append(_compare(engine, step, ints[step.output].astype(np.int64), values[step.output], None, False))
    ref = brevitas_out.reshape(brevitas_out.shape[0], -1)
    ours = out_fp.reshape(out_fp.shape[0], -1)
    top1 = top1_agreement(ours, ref)
    abs_diff = float(np.abs(ref - ours).max())
    rel = abs_diff / max(float(np.abs(ref).max()), 1e-30)
    return layers, top1, abs_diff, rel, out_fp


def top1_agreement(ours: np.ndarray, ref: np.ndarray) -> float:
    """Fraction of samples where Brevitas' top class is also a top class of ours.

    Our outputs are exact, so two classes with equal logits are a genuine tie; Brevitas' float32
    noise then decides its argmax arbitrarily, and either choice counts as agreement.
    """
    pick = ours[np.arange(len(ours)), ref.argmax(1)]
    return float((pick == ours.max(1)).mean())


def first_output(out) -> np.ndarray:
    """The model's (first) output as float32 numpy: a model with several outputs returns a tuple, list
    or dict, whose first tensor (in the order the capture lists the network's outputs) is the output the
    INT8 engine returns (``INT8InferenceEngine.forward``) and the one accuracy and top-1 agreement are
    measured on; every output is compared layer by layer."""
    first = next(iter_leaves(out), None)
    if first is None:
        raise GapforgeError(f"the model returned a {type(out).__name__} holding no tensor")
    return getattr(first, "value", first).detach().numpy()


def check(model, engine, x: np.ndarray, name: str) -> FidelityReport:
    xt = torch_args(x)
    values = capture_values(model, xt, name)
    with torch.no_grad():
        ref = first_output(model(*xt))
    rep = FidelityReport(engine.net.name, len(x), is_power_of_two_network(engine.net))
    rep.teacher_forced = teacher_forced(engine, values, x)
    rep.free_running, rep.top1_agreement, rep.max_abs_output_diff, rep.max_rel_output_diff, _ = \
        free_running(engine, values, x, ref)
    return rep


SINGLE_INPUT_NOTE = ("ran on ONE input only, which says little about fidelity: give the model file a "
                     "held_out_data() (or pass --inputs X.npy) to compare on many")


def format_report(rep: FidelityReport, inputs: str | None = None) -> str:
    """The per-layer table and the verdict; ``inputs`` says where the inputs came from."""
    w = max([len(lf.name) for lf in rep.teacher_forced] + [5])
    lines = [f"fidelity of '{rep.network}' on {rep.cases} input{'s' if rep.cases != 1 else ''}"
             f"{f' ({inputs})' if inputs else ''}, "
             f"{'power-of-two scales: exact equality required' if rep.power_of_two else f'near-tie window {NEAR_TIE:g}'}",
             f"  {'layer':<{w}}  {'kind':<18} {'elements':>9} {'mismatch':>8} {'near-tie':>8} {'f32-expl':>8} {'unexpl.':>7} "
             f"{'max|d|':>9}  free-running mismatches"]
    free = {lf.name: lf for lf in rep.free_running}
    for lf in rep.teacher_forced:
        fr = free.get(lf.name)
        frs = f"{fr.mismatches}" if fr is not None and fr.compared else "-"
        if not lf.compared:
            lines.append(f"  {lf.name:<{w}}  {lf.kind:<18} {'-':>9} {'-':>8} {'-':>8} {'-':>8} {'-':>7} {'-':>9}  {frs}  ({lf.note})")
            continue
        lines.append(f"  {lf.name:<{w}}  {lf.kind:<18} {lf.elements:>9} {lf.mismatches:>8} {lf.near_tie_mismatches:>8} "
                     f"{lf.float32_explained:>8} {lf.unexplained:>7} {lf.max_abs_diff:>9.3g}  {frs}")
    lines.append(f"teacher-forced: {rep.total_mismatches} mismatches ({rep.outside_window} outside the near-tie "
                 f"window; {rep.unexplained} not explained by Brevitas' float32 rounding); "
                 f"free-running: top-1 agreement {rep.top1_agreement * 100:.2f}%, max |output diff| "
                 f"{rep.max_abs_output_diff:.3g} (relative {rep.max_rel_output_diff:.3g}) -> "
                 f"{'PASS' if rep.passed else 'FAIL'}")
    if rep.cases == 1:
        lines.append(f"NOTE: fidelity {SINGLE_INPUT_NOTE}")
    return "\n".join(lines)
