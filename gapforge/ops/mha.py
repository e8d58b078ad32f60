"""brevitas.nn.QuantMultiheadAttention: lowered to the ops it computes (no IR op of its own).

What Brevitas 0.13 computes (brevitas/nn/quant_mha.py), with the IR it becomes, batch first
(``B`` batch, ``L`` / ``S`` target / source tokens, ``E`` embedding, ``H`` heads, ``D = E / H``):

* in-projection: ``in_proj`` (packed, self-attention) or ``q_proj`` / ``k_proj`` / ``v_proj``, each a
  QuantLinear with its input quantizer (default Int8ActPerTensorFloat) and no output quantizer; the
  float result is chunked into q, k, v. Here: the input quantizer once per input, then one ``linear``
  per third of the packed weight (rows [0, E), [E, 2E), [2E, 3E), the bias quantized as Brevitas
  quantizes the whole bias), so each accumulator is requantized inside its linear.
* ``q / sqrt(D)`` (float32 divisor) then ``q_scaled_quant``: the factor folds into q's accumulator
  scale (docs/integer_contract.md, constant scaling); ``k.transpose(-2, -1)`` then
  ``k_transposed_quant`` and ``v_quant``: quantizers per tensor, so they commute with the head split,
  which is a ``reshape`` [B, T, H, D] and a ``permute`` to [B, H, T, D] (k: [B, H, D, S]).
* ``bmm(q, k^T)`` -> ``matmul`` (int32, scale s_q s_k), ``softmax_input_quant`` (None by default:
  the softmax reads the accumulator), ``softmax`` over the keys, ``attn_output_weights_quant``
  (Uint8ActPerTensorFloat), ``bmm(attn, v)`` -> ``matmul``, requantized by ``out_proj``'s input
  quantizer, the head merge (``permute`` + ``reshape`` to [B, L, E]) and ``out_proj`` (``linear``,
  its output quantizer if any).

``batch_first=False`` takes [L, B, E]: the ``x.transpose(0, 1)`` the caller writes before it is a
sequence-first view of the batch-first tensor (gapforge/lowering.py ``seq_first``), and the output
is such a view again, to be transposed back.
"""

from __future__ import annotations

import math

import brevitas.nn as qnn
import numpy as np
import torch

from gapforge.ops._base import Frontend
from gapforge.ops._layer import emit_weight_layer
from gapforge.ops.permute import emit_permute
from gapforge.ops.requantize import quantize_to
from gapforge.ops.reshape import emit_reshape
from gapforge.ops.softmax import HINT_DEAD, additive_mask, dead_rows_problem, emit_softmax


def _problems(m, call) -> list[tuple[str, str]]:
    """Unsupported arguments of one call of QuantMultiheadAttention ``m``: (message, hint) each."""
    out = []
    if call.get("attn_mask") is not None and m.softmax_input_quant.act_quant.is_quant_enabled:
        out.append(("attn_mask with softmax_input_quant: the quantizer clamps the masked (-inf) scores to a code",
                    "keep softmax_input_quant=None (the default) with an attention mask"))
    if call.get("key_padding_mask") is not None:
        out.append(("key_padding_mask is given: padding masks are not supported",
                    "call it without key_padding_mask (use fixed-length inputs)"))
    if call.get("need_weights", True):
        out.append(("need_weights=True (the default): the returned attention weights are not deployed",
                    "call it as mha(x, x, x, need_weights=False)"))
    if m.bias_k is not None or m.bias_v is not None:
        out.append(("add_bias_kv=True is not supported", "construct it with add_bias_kv=False"))
    if m.add_zero_attn:
        out.append(("add_zero_attn=True is not supported", "construct it with add_zero_attn=False"))
    return out


def _input(ctx, call, which: str):
    """The IR tensor of the query / key / value argument, batch first; checks the layout."""
    m = ctx.module
    act = ctx.act_of(call[which])
    if act is None:
        ctx.fail(f"its {which} is a constant tensor, not an activation",
                 hint="pass activations (the output of a quantizer or layer) as query, key and value")
    t = ctx.tensor_of_act(act, seq_first_ok=True)
    seq_first = ctx.is_seq_first(act)
    if len(t.shape) != 3:
        ctx.fail(f"its {which} is {len(t.shape)}-D; only batched 3-D inputs are supported",
                 hint="pass [batch, tokens, embed_dim] with batch_first=True")
    if m.batch_first and seq_first:
        ctx.fail(f"batch_first=True, but its {which} is sequence first (x.transpose(0, 1))",
                 hint="pass the batch-first tensor, or construct it with batch_first=False")
    if not m.batch_first and not seq_first:
        ctx.fail(f"batch_first=False, but its {which} is batch first: it would attend over the batch axis",
                 hint="construct it with batch_first=True, or pass x.transpose(0, 1) (and transpose the output "
                      "back)")
    return t


def _relayout(ctx, t, fn) -> None:
    """Brevitas holds the value of ``t`` in its own layout: store ``fn(value)``, batch first like ``t``."""
    v = ctx.low.values.get(t.name)
    if v is not None:
        ctx.low.values[t.name] = fn(v)


def _quantize(ctx, x, owner, what: str, fn=None):
    """Apply the quantizer ``what`` (a QuantIdentity of the module, or ``<layer>.input_quant``) to ``x``."""
    proxy = owner.act_quant if isinstance(owner, qnn.QuantIdentity) else owner.input_quant
    if not proxy.is_quant_enabled:
        return x
    with ctx.submodule(owner):
        y = quantize_to(ctx, x, proxy, f"{ctx.name}.{what}")
    if y.per_channel:
        ctx.fail(f"{what} has per-channel scales", hint=f"use a per-tensor quantizer for {what}")
    if fn is not None:
        _relayout(ctx, y, fn)
    return y


def _need_quant(ctx, t, what: str, arg: str):
    if t.kind != "quant":
        ctx.fail(f"{what} is None: the product would read an unquantized tensor",
                 hint=f"keep the default {arg} (e.g. Int8ActPerTensorFloat)")


def _attn_mask(ctx, mask, scores, b: int, h: int, n_l: int, n_s: int):
    """The bool [B, H, L, S] mask (True: excluded) of a constant attn_mask ([L, S] or [B * H, L, S], bool or a
    float mask of 0 and -inf, which Brevitas adds to the scores), or None."""
    if mask is None:
        return None
    if ctx.act_of(mask) is not None:
        ctx.fail("its attn_mask is computed from the activations; only constant masks are supported",
                 hint="pass a constant attn_mask (a registered buffer, or torch.triu / torch.ones of the static size)")
    if not isinstance(mask, torch.Tensor) or not (mask.dtype == torch.bool or mask.is_floating_point()):
        ctx.fail(f"its attn_mask is a {getattr(mask, 'dtype', type(mask).__name__)}, not a bool or float tensor",
                 hint="pass a bool attn_mask (True where the key is masked)")
    v = mask.detach().cpu()
    v = v.unsqueeze(0) if v.dim() == 2 else v.reshape(b, h, n_l, n_s)
    full = np.broadcast_to(v.numpy() if v.dtype == torch.bool else v.to(torch.float64).numpy(), (b, h, n_l, n_s))
    masked = full.copy() if full.dtype == bool else additive_mask(ctx, scores, full, "attn_mask")
    problem = dead_rows_problem(masked)
    if problem:
        ctx.fail(f"its attn_mask {problem}", hint=HINT_DEAD)
    return masked


def _lower(ctx) -> None:
    m = ctx.module
    call = ctx.call_arguments()
    problems = _problems(m, call)
    if problems:
        ctx.fail("; ".join(p[0] for p in problems), hint="; ".join(p[1] for p in problems))
    q_in, k_in, v_in = (_input(ctx, call, w) for w in ("query", "key", "value"))
    b, n_l, e = q_in.shape
    n_s = k_in.shape[1]
    h, d = m.num_heads, m.head_dim

    def seq_to_batch(v):  # Brevitas' [T, B, F] -> [B, T, F]
        return v.transpose(0, 1)

    def heads(v, rows):  # Brevitas' [B * H, rows, D] -> [B, rows, E]
        return v.reshape(-1, h, rows, d).permute(0, 2, 1, 3).reshape(-1, rows, h * d)

    if m.in_proj is not None:  # packed: query is key is value (Brevitas checks)
        x = _quantize(ctx, q_in, m.in_proj, "in_proj.input_quant", seq_to_batch)
        projs = [(m.in_proj, x, (i * e, (i + 1) * e), n) for i, n in enumerate((n_l, n_s, n_s))]
        names = ["in_proj.q", "in_proj.k", "in_proj.v"]
    else:
        projs, names = [], ["q_proj", "k_proj", "v_proj"]
        for proj, t, n, nm in zip((m.q_proj, m.k_proj, m.v_proj), (q_in, k_in, v_in), (n_l, n_s, n_s), names):
            x = _quantize(ctx, t, proj, f"{nm}.input_quant", seq_to_batch)
            projs.append((proj, x, None, n))
    accs = []
    for (proj, x, rows, n), nm in zip(projs, names):
        if x.kind != "quant":
            ctx.fail(f"{nm.split('.')[0]} receives {x.described} without a quantizer",
                     hint="keep in_proj_input_quant (Int8ActPerTensorFloat) or quantize the input first")
        with ctx.submodule(proj):
            accs.append(emit_weight_layer(ctx, proj, x, f"{ctx.name}.{nm}", "linear", {}, 2, [b, n, e], rows=rows,
                                          input_quant=False))
    qa, ka, va = accs
    # q / math.sqrt(D): PyTorch divides by the float32 divisor; the fresh accumulator takes the factor
    factor = 1.0 / float(np.float32(math.sqrt(d)))
    qa.scale = [s * factor for s in qa.scale] if qa.per_channel else float(qa.scale) * factor
    if qa.offset is not None:
        qa.offset = [o * factor for o in qa.offset] if isinstance(qa.offset, list) else float(qa.offset) * factor
    q = _quantize(ctx, qa, m.q_scaled_quant, "q_scaled_quant", lambda v: heads(v, n_l))
    k = _quantize(ctx, ka, m.k_transposed_quant, "k_transposed_quant",
                  lambda v: v.reshape(-1, h, d, n_s).permute(0, 3, 1, 2).reshape(-1, n_s, h * d))
    v = _quantize(ctx, va, m.v_quant, "v_quant", lambda v: heads(v, n_s))
    _need_quant(ctx, q, "q_scaled_quant", "q_scaled_quant")
    _need_quant(ctx, k, "k_transposed_quant", "k_transposed_quant")
    _need_quant(ctx, v, "v_quant", "v_quant")
    q4 = emit_permute(ctx, emit_reshape(ctx, q, [b, n_l, h, d], f"{ctx.name}.q_heads"), [0, 2, 1, 3],
                      f"{ctx.name}.q_heads")
    k4 = emit_permute(ctx, emit_reshape(ctx, k, [b, n_s, h, d], f"{ctx.name}.k_heads"), [0, 2, 3, 1],
                      f"{ctx.name}.k_transposed")
    v4 = emit_permute(ctx, emit_reshape(ctx, v, [b, n_s, h, d], f"{ctx.name}.v_heads"), [0, 2, 1, 3],
                      f"{ctx.name}.v_heads")
    scores = ctx.new_tensor(f"{ctx.name}.scores", "acc", [b, h, n_l, n_s], scale=float(q.scale) * float(k.scale))
    ctx.emit("matmul", [q4, k4], [scores])
    vals = ctx.low.values
    if q4.name in vals and k4.name in vals:  # Brevitas' own float32 product, in its layout
        with torch.no_grad():
            vals[scores.name] = torch.bmm(vals[q4.name].reshape(-1, n_l, d),
                                          vals[k4.name].reshape(-1, d, n_s)).reshape(-1, h, n_l, n_s)
    x = _quantize(ctx, scores, m.softmax_input_quant, "softmax_input_quant", lambda v: v.reshape(-1, h, n_l, n_s))
    probs = ctx.new_tensor(f"{ctx.name}.softmax", "real", x.shape)
    emit_softmax(ctx, x, probs, _attn_mask(ctx, call.get("attn_mask"), x, b, h, n_l, n_s))
    attn = _quantize(ctx, probs, m.attn_output_weights_quant, "attn_output_weights_quant",
                     lambda v: v.reshape(-1, h, n_l, n_s))
    if attn.kind != "quant":
        ctx.fail("attn_output_weights_quant is None: the softmax must be followed by a quantizer",
                 hint="keep the default attn_output_weights_quant (Uint8ActPerTensorFloat)")
    ctx_acc = ctx.new_tensor(f"{ctx.name}.context", "acc", [b, h, n_l, d], scale=float(attn.scale) * float(v4.scale))
    ctx.emit("matmul", [attn, v4], [ctx_acc])
    if attn.name in vals and v4.name in vals:
        with torch.no_grad():
            vals[ctx_acc.name] = torch.bmm(vals[attn.name].reshape(-1, n_l, n_s),
                                           vals[v4.name].reshape(-1, n_s, d)).reshape(-1, h, n_l, d)
    o = _quantize(ctx, ctx_acc, m.out_proj, "out_proj.input_quant",
                  lambda v: v.transpose(0, 1).reshape(-1, n_l, h, d).permute(0, 2, 1, 3))
    if o.kind != "quant":
        ctx.fail("out_proj_input_quant is None: the output projection would read the int32 product",
                 hint="keep the default out_proj_input_quant (Int8ActPerTensorFloat)")
    o = emit_reshape(ctx, emit_permute(ctx, o, [0, 2, 1, 3], f"{ctx.name}.merge"), [b, n_l, e], f"{ctx.name}.merge")
    with ctx.submodule(m.out_proj):
        y = emit_weight_layer(ctx, m.out_proj, o, f"{ctx.name}.out_proj", "linear", {}, 2, [b, n_l, e],
                              input_quant=False)
        if m.out_proj.output_quant.is_quant_enabled:
            y = quantize_to(ctx, y, m.out_proj.output_quant, f"{ctx.name}.out_proj.output_quant")
    out_val = ctx.low.graph.activations[ctx.node.outputs[0]].value
    if m.batch_first:
        ctx.bind(y)
    else:
        ctx.bind_seq_first(y)
        ctx.low.values[y.name] = out_val.transpose(0, 1)


FRONTENDS = [
    Frontend(
        name="brevitas.nn.QuantMultiheadAttention",
        modules=(qnn.QuantMultiheadAttention,),
        lowers_to=("requantize", "linear", "reshape", "permute", "matmul", "softmax"),
        doc="Self- or cross-attention exactly as Brevitas computes it, with its quantizers (the defaults or "
            "others, per tensor): packed or separate in-projections (kdim / vdim), q / sqrt(head_dim) folded "
            "into q's scale, both products as matmul, softmax over the keys (with a constant attn_mask: [L, S] "
            "or [B * H, L, S], bool or a float mask of 0 and -inf, the softmax's mask), the output projection. "
            "Called "
            "as mha(q, k, v, need_weights=False) on [batch, tokens, embed] with batch_first=True, or on "
            "x.transpose(0, 1) with batch_first=False (the output transposed back); dropout is inactive in "
            "eval. Refused with a hint: an attn_mask computed from the activations, with a row of only masked keys, "
            "or with softmax_input_quant; key_padding_mask, need_weights=True, add_bias_kv, "
            "add_zero_attn, unbatched 2-D inputs.",
        lower=_lower,
    ),
]
