"""brevitas.nn.QuantLSTM and QuantRNN: unrolled over the T steps of the example input into existing IR ops.

Brevitas 0.13 (brevitas/nn/quant_rnn.py) quantizes every value between two steps of the cell, so each step is
integer arithmetic between quantizers. What ``_QuantLSTMCell.forward_iter`` computes per step (``x`` the
step's input, ``h`` / ``c`` the states; zeros, unquantized, before the first step), and the IR it becomes:

* per gate ``g`` in (input, forget, cell, output): ``<g>_acc_quant(F.linear(x, W_g) + F.linear(h, U_g) + b_g)``.
  ``W_g`` and ``U_g`` share one weight quantizer (``GateParams``: one scale over both), ``b_g`` is Int32Bias on
  ``s_x * s_W``, and ``x`` and ``h`` are both codes of ``io_quant`` (the layer's input quantizer is the
  hidden-state quantizer; deeper layers read the previous layer's ``h``), so the sum is ONE ``linear`` over
  ``concat(x, h)`` with the weight ``[W_g | U_g]``, requantized by the gate's accumulator quantizer (one rounding).
  At t = 0 the ``linear`` reads ``x`` alone (``h`` is 0). Weight quantizers giving ``W_g`` and ``U_g``
  different scales: two ``linear`` and an ``add`` (two sources, one rounding).
* ``sigmoid_quant`` / ``tanh_quant`` (QuantSigmoid / QuantTanh: the function and the quantizer) of a gate's
  int8 code: a ``lut``.
* ``f * c`` and ``i * g``, each ``cell_state_quant``-ed: ``mul`` + requantize; their sum, ``cell_state_quant``-ed
  again: an ``add`` of two codes of one scale + requantize (exact: the sum is on the grid). At t = 0 the first
  product is 0 and the new state is the second product's code.
* ``h = io_quant(o * hidden_state_tanh_quant(c))``: a ``lut`` and a ``mul`` + requantize.

QuantRNN: ``h = io_quant(act(gate_acc_quant(F.linear(x, W) + F.linear(h, U) + b)))``: the gate's ``linear`` and a
``lut`` of ``act`` (tanh or relu) into ``io_quant``.

The outputs: ``y`` (the per-step ``h`` concatenated along time; both directions' along features), batch first
as in the IR, or sequence first as MultiheadAttention's (gapforge/ops/mha.py) with ``batch_first=False``;
``h_n`` / ``c_n`` ([layers * directions, B, H]) are deployed through their indexing (``h_n[-1]``,
``h_n.squeeze(0)``), which is folded into this node: each index is that layer's and direction's state.
The cell's quantizers run inside Brevitas' (possibly scripted) fast cell, which the capture cannot see into,
so Brevitas' value of every internal tensor (for the layer-by-layer fidelity check) is recomputed here with
the model's own quantizers, following forward_iter line by line, and used only when it reproduces the
captured outputs exactly.
"""

from __future__ import annotations

from types import SimpleNamespace

import brevitas.nn as qnn
import torch
import torch.nn.functional as F
from brevitas.quant_tensor import IntQuantTensor

from gapforge.ops._base import Frontend
from gapforge.ops._layer import emit_weight_layer
from gapforge.ops.add import emit_add
from gapforge.ops.concat import emit_concat
from gapforge.ops.lut import FloatFn, emit_lut
from gapforge.ops.mul import emit_mul
from gapforge.ops.requantize import quantize_to
from gapforge.ops.reshape import emit_reshape
from gapforge.ops.slice import emit_slice

_GATES = ("input", "forget", "cell", "output")
# the cell's quantizer of each gate's accumulator and of its activation, and the activation's name
_GATE_QUANT = {"input": ("input_acc_quant", "input_sigmoid_quant", "sigmoid"),
               "forget": ("forget_acc_quant", "forget_sigmoid_quant", "sigmoid"),
               "cell": ("cell_acc_quant", "cell_tanh_quant", "tanh"),
               "output": ("output_acc_quant", "output_sigmoid_quant", "sigmoid")}
# the constructor argument that sets each of the cell's quantizers, for messages
_QUANT_ARG = {"output_quant": "io_quant", "cell_state_quant": "cell_state_quant", "gate_acc_quant": "gate_acc_quant",
              "input_acc_quant": "gate_acc_quant", "forget_acc_quant": "gate_acc_quant",
              "cell_acc_quant": "gate_acc_quant", "output_acc_quant": "gate_acc_quant",
              "input_sigmoid_quant": "sigmoid_quant", "forget_sigmoid_quant": "sigmoid_quant",
              "output_sigmoid_quant": "sigmoid_quant", "cell_tanh_quant": "tanh_quant",
              "hidden_state_tanh_quant": "tanh_quant"}


def _layers(m):
    """[(layer index, direction index, the _QuantLSTMLayer / _QuantRNNLayer)] in Brevitas' order."""
    return [(li, d, layer) for li, dirs in enumerate(m.layers) for d, layer in enumerate(dirs)]


def _cell_quants(lstm: bool) -> list[str]:
    if lstm:
        return ["output_quant", "cell_state_quant", "hidden_state_tanh_quant"] + \
            [q for g in _GATES for q in _GATE_QUANT[g][:2]]
    return ["output_quant", "gate_acc_quant"]


def _problems(m, call, lstm: bool) -> list[tuple[str, str]]:
    """Unsupported construction or call arguments: (message, hint) each."""
    out = []
    for arg in ("hx", "cx") if lstm else ("hx",):
        if call.get(arg) is not None:
            out.append((f"{arg} is given: initial states are not supported",
                        f"call it without {arg} (the zero initial state)"))
    first = m.layers[0][0]
    if lstm and first.cifg:
        out.append(("coupled_input_forget_gates=True is not supported (its forget gate 1 - i is no 8-bit code)",
                    "construct it with coupled_input_forget_gates=False"))
        return out
    for _, _, layer in _layers(m):
        if not layer.io_quant.is_quant_enabled:
            out.append(("io_quant is None: the input and hidden state are unquantized float",
                        "keep the default io_quant=Int8ActPerTensorFloat"))
            break
        bad = [q for q in _cell_quants(lstm) if not getattr(layer.cell, q).is_quant_enabled]
        if bad:
            args = sorted({_QUANT_ARG[q] for q in bad})
            out.append((f"{', '.join(args)} is None: a float value between two steps of the cell has no exact "
                        "integer form", f"keep the default {', '.join(args)} (a per-tensor quantizer)"))
            break
        gates = [layer.gate_params] if not lstm else [getattr(layer, f"{g}_gate_params") for g in _GATES]
        if any(gp is not None and not gp.input_weight.weight_quant.is_quant_enabled for gp in gates):
            out.append(("weight_quant is None: the gate weights are unquantized",
                        "keep the default weight_quant=Int8WeightPerTensorFloat"))
            break
    return out


class _GateLinear(SimpleNamespace):
    """What emit_weight_layer reads of a layer, for one gate: its (input | hidden) weight, bias, bias quantizer."""

    def quant_weight(self):
        qws = [w() for w in self.weights]
        if len(qws) == 1:
            return qws[0]
        a = qws[0]
        return IntQuantTensor(torch.cat([q.value for q in qws], dim=1), a.scale, a.zero_point, a.bit_width,
                              a.signed, False)


def _gate_acc(ctx, gp, xs, hidden: int, base: str, step0: bool, record, v: dict, key: str):
    """The gate's accumulator(s) on the step's input (and hidden state): one IR tensor the next quantizer rounds."""
    wq = gp.input_weight.weight_quant
    with torch.no_grad():
        s_i, s_h = gp.input_weight().scale, gp.hidden_weight().scale
    x, h, xh = xs
    shape = [x.shape[0], hidden]
    if step0 or torch.equal(s_i, s_h):
        lin = _GateLinear(weights=[gp.input_weight] if step0 else [gp.input_weight, gp.hidden_weight],
                          weight_quant=wq, bias=gp.bias, bias_quant=gp.bias_quant)
        acc = emit_weight_layer(ctx, lin, x if step0 else xh, base, "linear", {}, 1, shape, input_quant=False)
        record(acc, v.get(key))
        return acc
    lin_x = _GateLinear(weights=[gp.input_weight], weight_quant=wq, bias=gp.bias, bias_quant=gp.bias_quant)
    lin_h = _GateLinear(weights=[gp.hidden_weight], weight_quant=wq, bias=None, bias_quant=gp.bias_quant)
    ax = emit_weight_layer(ctx, lin_x, x, f"{base}.ih", "linear", {}, 1, shape, input_quant=False)
    record(ax, v.get(f"{key}.ih"))
    ah = emit_weight_layer(ctx, lin_h, h, f"{base}.hh", "linear", {}, 1, shape, input_quant=False)
    record(ah, v.get(f"{key}.hh"))
    acc = emit_add(ctx, ax, ah, base)
    record(acc, v.get(key))
    return acc


def _lut(ctx, x, proxy, fn, expr: str, what: str, base: str):
    return emit_lut(ctx, FloatFn(x, fn, what, expr), proxy, base, x.shape)


# -- Brevitas' values of the internal tensors --------------------------------------------------
def _q(proxy, v):
    return proxy(v).value


def _brevitas_layer(layer, inp: torch.Tensor, lstm: bool) -> list[dict]:
    """Brevitas' float32 values of one layer's cell, per step in processing order (forward_iter's lines)."""
    cell = layer.cell
    # deeper layers (quantize_output_only) read the previous layer's h, already on io_quant's grid, where
    # io_quant is the identity; its QuantTensor gives the bias quantizer the input scale as Brevitas' does
    qin = layer.io_quant(inp)
    xin = qin.value
    steps = xin.unbind(1 if cell.batch_first else 0)
    order = range(len(steps) - 1, -1, -1) if layer.reverse_input else range(len(steps))
    gates = [getattr(layer, f"{g}_gate_params") for g in _GATES] if lstm else [layer.gate_params]
    params = []
    for gp in gates:
        wi, wh = gp.input_weight(), gp.hidden_weight()
        b = gp.bias_quant(gp.bias, qin, wi)
        params.append((wi.value, wh.value, torch.tensor(0.) if b is None else getattr(b, "value", b)))
    batch = steps[0].shape[0]
    h = torch.zeros(batch, layer.hidden_size)
    c = torch.zeros(batch, layer.hidden_size)
    out = []
    for t in order:
        x = steps[t]
        v = {"t": t}
        parts = [(F.linear(x, wi), F.linear(h, wh), b) for wi, wh, b in params]
        sums = [ih + hh + b for ih, hh, b in parts]
        names = _GATES if lstm else ("gate",)
        for g, (ih, hh, b) in zip(names, parts):  # the two accumulators when the scales differ (_gate_acc)
            v[f"{g}.acc.ih"], v[f"{g}.acc.hh"] = ih + b, hh
        if not lstm:
            v["gate.acc"] = sums[0]
            v["gate"] = _q(cell.gate_acc_quant, sums[0])
            h = _q(cell.output_quant, cell.act_fn(v["gate"]))
            v["h"] = h
            out.append(v)
            continue
        acts = {}
        for g, s in zip(_GATES, sums):
            accq, actq, _ = _GATE_QUANT[g]
            v[f"{g}.acc"] = s
            v[g] = _q(getattr(cell, accq), s)
            acts[g] = v[f"{g}.act"] = _q(getattr(cell, actq), v[g])
        v["fc.acc"] = acts["forget"] * c
        fc = v["fc"] = _q(cell.cell_state_quant, v["fc.acc"])
        v["ic.acc"] = acts["input"] * acts["cell"]
        v["ic"] = _q(cell.cell_state_quant, v["ic.acc"])
        v["c.acc"] = fc + v["ic"]
        c = v["c"] = _q(cell.cell_state_quant, v["c.acc"])
        v["tanh_c"] = _q(cell.hidden_state_tanh_quant, c)
        v["h.acc"] = acts["output"] * v["tanh_c"]
        h = v["h"] = _q(cell.output_quant, v["h.acc"])
        out.append(v)
    return out


# -- lowering ----------------------------------------------------------------------------------
def _state_uses(ctx, act: int, n: int, what: str) -> list[tuple]:
    """The nodes that read state output ``act`` ([n, B, H]) and which of its n rows each reads."""
    if act in ctx.low.graph.outputs:
        ctx.fail(f"{what} is a network output ([{n}, batch, hidden]: not batch first)",
                 hint=f"return {what}[-1] (the last layer's state, [batch, hidden]) or the output sequence")
    uses = []
    for node in ctx.low.graph.consumers(act):
        k = None
        if node.kind == "function" and node.type_name == "getitem" and len(node.inputs) == 1:
            idx = node.args[1] if len(node.args) > 1 else None
            idx = idx[0] if isinstance(idx, tuple) and len(idx) == 1 else idx
            if isinstance(idx, int) and not isinstance(idx, bool) and -n <= idx < n:
                k = idx % n
        elif node.kind == "function" and node.type_name == "squeeze" and n == 1:
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
            if dim == 0 or dim == (0,):
                k = 0
        if k is None:
            ctx.fail(f"{what} is read by {node.describe()}; only {what}[i] (one layer's state, [batch, hidden]) "
                     f"and {what}.squeeze(0) are supported", hint=f"index it: {what}[-1]")
        uses.append((node, k))
    return uses


def _step_of(node, seq_axis: int, n_t: int) -> int | None:
    """The time step ``y[:, t]`` (batch first) / ``y[t]`` (sequence first) that ``node`` reads of the output
    sequence ``y``, or None when it is another use of ``y``."""
    if node.kind != "function" or node.type_name != "getitem" or len(node.inputs) != 1 or len(node.args) < 2:
        return None
    idx = node.args[1] if isinstance(node.args[1], tuple) else (node.args[1],)
    full = slice(None)
    if len(idx) > seq_axis + 2 or any(i != full for i in idx[:seq_axis]) or \
            any(i != full for i in idx[seq_axis + 1:]) or len(idx) <= seq_axis:
        return None
    k = idx[seq_axis]
    if isinstance(k, bool) or not isinstance(k, int) or not -n_t <= k < n_t:
        return None
    return k % n_t


def _lower(ctx) -> None:
    m = ctx.module
    lstm = isinstance(m, qnn.QuantLSTM)
    call = ctx.call_arguments()
    problems = _problems(m, call, lstm)
    if problems:
        ctx.fail("; ".join(p[0] for p in problems), hint="; ".join(p[1] for p in problems))
    first = m.layers[0][0]
    batch_first = first.cell.batch_first
    act = ctx.act_of(call["inp"])
    if act is None:
        ctx.fail("its input is a constant tensor, not an activation")
    x_in = ctx.tensor_of_act(act, seq_first_ok=True)
    if len(x_in.shape) != 3:
        ctx.fail(f"its input is {len(x_in.shape)}-D; only batched 3-D inputs are supported",
                 hint="pass [batch, time, features] with batch_first=True")
    if batch_first and ctx.is_seq_first(act):
        ctx.fail("batch_first=True, but its input is sequence first (x.transpose(0, 1))",
                 hint="pass the batch-first tensor, or construct it with batch_first=False")
    if not batch_first and not ctx.is_seq_first(act):
        ctx.fail("batch_first=False, but its input is batch first: it would run over the batch axis",
                 hint="construct it with batch_first=True, or pass x.transpose(0, 1) (and transpose the output "
                      "back)")
    b, n_t, _ = x_in.shape
    n_dirs = len(m.layers[0])
    outs = ctx.node.outputs
    n_states = len(m.layers) * n_dirs
    state_acts = outs[1:]
    # which state rows each state output holds: h_n (and c_n, concatenated or one per layer and direction)
    rows_of = [("h_n", list(range(n_states)))]
    if lstm:
        rows_of += [("c_n", list(range(n_states)))] if len(state_acts) == 2 else \
            [(f"c_n[{k}]", [k]) for k in range(n_states)]
    if len(rows_of) != len(state_acts):
        ctx.fail(f"returned {len(outs)} tensors; expected the output and {len(rows_of)} states")
    uses = [_state_uses(ctx, a, len(rows), what) for a, (what, rows) in zip(state_acts, rows_of)]

    # Brevitas' values (the captured pass): recomputed per layer, used when they reproduce the outputs
    vals = ctx.low.values
    captured = ctx.low.graph.activations[act].value
    brev: dict[tuple[int, int], list[dict]] | None = {}
    with torch.no_grad():
        inp = captured
        for li, dirs in enumerate(m.layers):
            ys = []
            for d, layer in enumerate(dirs):
                brev[(li, d)] = _brevitas_layer(layer, inp, lstm)
                ys.append(torch.stack([v["h"] for v in sorted(brev[(li, d)], key=lambda v: v["t"])],
                                      dim=1 if batch_first else 0))
            inp = torch.cat(ys, dim=-1)
        y_val = ctx.low.graph.activations[outs[0]].value
        if not torch.equal(inp, y_val):
            brev = None

    def record(t, v):
        if brev is not None:
            vals[t.name] = v
        else:
            vals.pop(t.name, None)

    # the input quantizer (layer 0; deeper layers read the previous layer's h, already io_quant codes)
    with ctx.submodule(first):
        xq = quantize_to(ctx, x_in, first.io_quant, f"{ctx.name}.io_quant")
    if xq.kind != "quant" or xq.per_channel:
        ctx.fail("io_quant must be a per-tensor quantizer", hint="keep the default io_quant=Int8ActPerTensorFloat")
    record(xq, first.io_quant(captured).value if batch_first else first.io_quant(captured).value.transpose(0, 1))
    xs = []
    for t in range(n_t):
        s = emit_slice(ctx, xq, 1, t, t + 1, 1, f"{ctx.name}.x.t{t}")
        xs.append(emit_reshape(ctx, s, [b, xq.shape[2]], f"{ctx.name}.x.t{t}"))
    states_h, states_c = [], []
    for li, dirs in enumerate(m.layers):
        dir_h = []
        for d, layer in enumerate(dirs):
            prefix = f"{ctx.name}.layers.{li}.{d}"
            bv = {v["t"]: v for v in brev[(li, d)]} if brev is not None else {}
            with ctx.submodule(layer):
                hs, c = _emit_layer(ctx, layer, xs, prefix, lstm, bv, record)
            dir_h.append(hs)
            states_h.append(hs[0] if layer.reverse_input else hs[-1])
            states_c.append(c)
        if n_dirs == 1:
            xs = dir_h[0]
        else:
            xs = []
            for t in range(n_t):
                xt = emit_concat(ctx, [dir_h[0][t], dir_h[1][t]], 1, f"{ctx.name}.layers.{li}.out.t{t}")
                record(xt, torch.cat([vals[dir_h[0][t].name], vals[dir_h[1][t].name]], 1) if brev else None)
                xs.append(xt)
    # y: the last layer's per-step outputs along time; y[:, t] (y[t] sequence first) is step t's output
    for node in ctx.low.graph.consumers(outs[0]):
        k = _step_of(node, 1 if batch_first else 0, n_t)
        if k is not None:
            ctx.absorb(node, xs[k])
    steps = [emit_reshape(ctx, xt, [b, 1, xt.shape[1]], f"{ctx.name}.y.t{t}") for t, xt in enumerate(xs)]
    y = emit_concat(ctx, steps, 1, f"{ctx.name}.y") if n_t > 1 else steps[0]
    if batch_first:
        ctx.bind(y)
    else:
        ctx.bind_seq_first(y)
        vals[y.name] = y_val.transpose(0, 1)
    for (what, rows), a, used in zip(rows_of, state_acts, uses):
        src = states_c if what.startswith("c_n") else states_h
        for node, k in used:
            ctx.absorb(node, src[rows[k]])
        ctx.low.act_tensor[a] = None  # only its indexing (absorbed above) reads it


def _emit_layer(ctx, layer, xs, prefix: str, lstm: bool, bv: dict, record):
    """One layer and direction over the steps ``xs`` ([B, F] codes each, time order): (h per step, last c)."""
    cell = layer.cell
    n_t = len(xs)
    order = range(n_t - 1, -1, -1) if layer.reverse_input else range(n_t)
    gates = {g: getattr(layer, f"{g}_gate_params") for g in _GATES} if lstm else {"gate": layer.gate_params}
    hs: list = [None] * n_t
    h = c = None
    for t in order:
        v = bv.get(t, {})
        base = f"{prefix}.t{t}"
        x = xs[t]
        xh = None
        if h is not None:
            xh = emit_concat(ctx, [x, h], 1, f"{base}.xh")
            record(xh, torch.cat([ctx.low.values[x.name], ctx.low.values[h.name]], 1) if v else None)
        codes = {}
        for g, gp in gates.items():
            acc = _gate_acc(ctx, gp, (x, h, xh), layer.hidden_size, f"{base}.{g}.acc", h is None, record, v,
                            f"{g}.acc")
            accq = "gate_acc_quant" if not lstm else _GATE_QUANT[g][0]
            q = quantize_to(ctx, acc, getattr(cell, accq), f"{base}.{g}")
            if q.kind != "quant" or q.per_channel:
                ctx.fail(f"{_QUANT_ARG[accq]} must be a per-tensor quantizer",
                         hint=f"keep the default {_QUANT_ARG[accq]}=Int8ActPerTensorFloat")
            record(q, v.get(g))
            codes[g] = q
        if not lstm:
            act_fn = cell.act_fn
            h = _lut(ctx, codes["gate"], cell.output_quant, act_fn, f"{type(act_fn).__name__.lower()}(x)",
                     f"QuantRNN '{ctx.name}'", f"{base}.h")
            record(h, v.get("h"))
            hs[t] = h
            continue
        acts = {}
        for g in _GATES:
            _, actq, fn = _GATE_QUANT[g]
            a = _lut(ctx, codes[g], getattr(cell, actq), lambda z: z, f"{fn}(x)", f"QuantLSTM '{ctx.name}'",
                     f"{base}.{g}.act")
            record(a, v.get(f"{g}.act"))
            acts[g] = a
        csq = cell.cell_state_quant
        ic_acc = emit_mul(ctx, acts["input"], acts["cell"], f"{base}.ic.acc")
        record(ic_acc, v.get("ic.acc"))
        ic = quantize_to(ctx, ic_acc, csq, f"{base}.ic")
        record(ic, v.get("ic"))
        if c is None:  # cell_state_quant(f * 0) is 0, and cell_state_quant(0 + ic) is ic
            c = ic
        else:
            fc_acc = emit_mul(ctx, acts["forget"], c, f"{base}.fc.acc")
            record(fc_acc, v.get("fc.acc"))
            fc = quantize_to(ctx, fc_acc, csq, f"{base}.fc")
            record(fc, v.get("fc"))
            c_acc = emit_add(ctx, fc, ic, f"{base}.c.acc")
            record(c_acc, v.get("c.acc"))
            c = quantize_to(ctx, c_acc, csq, f"{base}.c")
            record(c, v.get("c"))
        tc = _lut(ctx, c, cell.hidden_state_tanh_quant, lambda z: z, "tanh(x)", f"QuantLSTM '{ctx.name}'",
                  f"{base}.tanh_c")
        record(tc, v.get("tanh_c"))
        h_acc = emit_mul(ctx, acts["output"], tc, f"{base}.h.acc")
        record(h_acc, v.get("h.acc"))
        h = quantize_to(ctx, h_acc, cell.output_quant, f"{base}.h")
        record(h, v.get("h"))
        hs[t] = h
    return hs, c


_DOC_COMMON = (
    "Unrolled over the T steps of the example input (T is fixed), every quantizer read from the model "
    "(the defaults or others, per tensor, zero point 0 where a linear or add reads it): batch_first True "
    "(or False on x.transpose(0, 1), the output read as y[t] or transposed back), num_layers >= 1, bidirectional, "
    "bias or not. The output sequence is deployed (whole, or y[:, t]: that step's output), the final states through their indexing "
    "(h_n[-1], h_n.squeeze(0)). Refused with a hint: initial states (hx / cx), a disabled quantizer, "
    "unbatched 2-D inputs, a state returned or used other than by indexing.")

FRONTENDS = [
    Frontend(
        name="brevitas.nn.QuantLSTM",
        modules=(qnn.QuantLSTM,),
        lowers_to=("requantize", "slice", "reshape", "concat", "linear", "add", "lut", "mul"),
        doc="LSTM exactly as Brevitas computes it: per step and gate one linear over [x, h] (the two weights "
            "share their quantizer) with its Int32Bias, the gate's accumulator quantizer, sigmoid / tanh as "
            "tables, f * c and i * g as products requantized by cell_state_quant, their sum requantized, "
            "tanh(c) as a table and o * tanh(c) requantized by io_quant (the hidden state). " + _DOC_COMMON +
            " Also refused: coupled_input_forget_gates=True.",
        lower=_lower,
    ),
    Frontend(
        name="brevitas.nn.QuantRNN",
        modules=(qnn.QuantRNN,),
        lowers_to=("requantize", "slice", "reshape", "concat", "linear", "add", "lut"),
        doc="Elman RNN exactly as Brevitas computes it: per step one linear over [x, h] with its Int32Bias, "
            "gate_acc_quant, and tanh or relu into io_quant (the hidden state) as a table. " + _DOC_COMMON,
        lower=_lower,
    ),
]
