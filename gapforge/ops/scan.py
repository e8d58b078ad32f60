"""scan: Mamba's selective state-space scan with a quantized state, recognised in the unrolled loop.

A Python loop over time is unrolled by the capture (L steps x a dozen nodes). ``fold_scans`` finds the
loop the way users write it (tests/test_networks/seqdata/mamba.py, ``SelectiveScan``) and replaces its
nodes by one ``selective_scan`` node, lowered to one ``scan`` IR op whose integer contract is per step
(atomic_ops/scan.py, docs/integer_contract.md "Selective scan"). Per step t, with the token slices
``x[:, t]`` of [B, L, F] tensors::

    d_t = delta[:, t].unsqueeze(-1)                                   # [B, D, 1]
    dA  = dA_quant(torch.exp(d_t * A))                                # A: a constant [D, N]
    dBx = d_t * Bm[:, t].unsqueeze(1) * u[:, t].unsqueeze(-1)         # factors in any order
    h   = h_quant(dBx) at t = 0, h_quant(dA * h + dBx) after          # the same quantizer module
    y_t = (h * Cm[:, t].unsqueeze(1)).sum(-1) [+ D * u[:, t]]         # D: a constant [D]
    y   = y_quant(torch.stack([y_0, ..., y_{L-1}], 1))

Every float value between two quantizers is a table (A_bar) or an exact sum of integer products (h, y),
so the op equals Brevitas outside near-ties. A loop that does not have this form is left unfolded (its
nodes then meet the ordinary frontends; an unquantized state is refused by gapforge/recurrence.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import atomic_ops
from atomic_ops import scan as ref
from gapforge.capture import Graph, Node, Ref
from gapforge.ops._base import Attr, Frontend, IROp, Tiling, output_range, per_tensor_scale
from gapforge.ops._shapes import ShapeError, inputs_of

FUNCTION = "selective_scan"


# -- IR op ------------------------------------------------------------------------------------
def infer_shapes(inputs, attrs, params):
    """delta, u [batch, L, D]; B, C [batch, L, N] -> y [batch, L, D]; table [D*N, entries]."""
    d, u, b, c = inputs_of(inputs, 4)
    if len(d) != 3 or list(u) != list(d):
        raise ShapeError(f"delta {d} and u {u} must be equal [batch, L, D]")
    if len(b) != 3 or list(b) != list(c) or b[:2] != d[:2]:
        raise ShapeError(f"B {b} and C {c} must be [batch, L, N] with the batch and L of delta {d}")
    if b[2] > ref.MAX_STATE:
        raise ShapeError(f"a state of {b[2]} elements per channel (at most {ref.MAX_STATE})")
    t = params.get("table")
    if t is None or len(t) != 2 or t[0] != d[2] * b[2]:
        raise ShapeError(f"needs a param 'table' [D*N = {d[2] * b[2]}, entries]", "params.table.shape")
    return [list(d)]


def prepare(net, step) -> ref.ScanParams:
    op = net.op_by_name(step.main_op)
    delta, u, b, c = (net.tensors[n] for n in op.inputs)
    y = net.tensors[step.output]
    lo, hi = output_range(net, step)
    a = op.attrs
    Dvec = np.asarray(a["D"], dtype=np.float64) if a.get("D") is not None else None
    return ref.prepare(
        D=int(delta.shape[2]), N=int(b.shape[2]), L=int(delta.shape[1]), table=net.param(op, "table"),
        base=-(1 << (delta.bit_width - 1)) if delta.signed else 0, s_a=float(a["a_scale"]),
        s_d=per_tensor_scale(delta), s_u=per_tensor_scale(u), s_b=per_tensor_scale(b), s_c=per_tensor_scale(c),
        s_h=float(a["h_scale"]), s_y=per_tensor_scale(y), Dvec=Dvec,
        zps={"d": int(delta.zero_point), "u": int(u.zero_point), "b": int(b.zero_point), "c": int(c.zero_point),
             "h": int(a["h_zero_point"]), "y": int(y.zero_point)},
        h_range=tuple(a["h_range"]), y_range=(lo, hi), y_signed=y.signed)


def _call(cg):
    args = []
    for i in range(4):
        args += [cg.X[i], cg.T[i]]
    return cg.call("gf_scan", (*args, cg.param_block(), cg.Y))


def _macs(net, step) -> int:
    """Per step and state element: the two products of the update and the C product."""
    op = net.op_by_name(step.main_op)
    _, L, D = net.tensors[op.inputs[0]].shape
    return int(L * D * net.tensors[op.inputs[2]].shape[2] * 3)


IR_OP = IROp(
    name="scan",
    summary="Selective state-space scan (Mamba) with a quantized state, then the output quantizer.",
    semantics="Per channel d and step t in order: a = table[d, n][delta - base]; h = clamp(rne_shift(m1 a (h - z_h) "
              "+ m2 (delta - z_d)(B - z_b)(u - z_u), sh_h) + z_h) (exact int64 sum, one rounding, the state "
              "quantizer's); y = clamp(rne_shift(m3 sum_n (h - z_h)(C - z_c) + m4[d] (u - z_u), sh_y[d]) + z_y) "
              "(docs/integer_contract.md, Selective scan).",
    inputs="delta, u [1, L, D] and B, C [1, L, N]: quant tensors of at most 8 bits, per-tensor scales (any zero "
           "points); N <= 64",
    attrs={
        "a_scale": Attr({"type": "number"}, "scale of the A_bar quantizer (the table holds its codes minus z_a)"),
        "h_scale": Attr({"type": "number"}, "scale of the state quantizer"),
        "h_zero_point": Attr({"type": "integer"}, "zero point of the state quantizer"),
        "h_range": Attr({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
                        "integer range [lo, hi] of the state quantizer"),
        "steps": Attr({"type": "integer", "minimum": 1}, "L, the number of steps (for reading)"),
        "D": Attr({"type": "array", "items": {"type": "number"}}, "the skip coefficients D[d] (float32 values) of "
                  "y = C . h + D * u; absent: no skip term", required=False),
    },
    params=("table",),
    reference="scan",
    kernels=("gf_scan",),
    fusion="head",
    prepare=prepare,
    run=lambda engine, step, inputs: atomic_ops.get("scan")(*inputs, step.params),
    exact=lambda engine, step, inputs: ref.exact(*inputs, step.params),
    call=_call,
    tiling=Tiling("scan"),  # tiles of channels over the cores (codegen/gap9/tiling.py tile_scan)
    macs=_macs,
    infer_shapes=infer_shapes,
)


# -- recognising the unrolled loop ---------------------------------------------------------------
class _NoMatch(Exception):
    pass


@dataclass
class FoldedScan:
    node: Node  # the synthetic selective_scan node (replaces the y quantizer's node)
    covered: list[int]  # nodes folded into it (besides the y quantizer's)


def _producer(g: Graph, act: int) -> Node:
    p = g.activations[act].producer
    if p is None:
        raise _NoMatch
    return g.nodes[p]


def _fn(g: Graph, act: int, *names: str) -> Node:
    n = _producer(g, act)
    if n.kind != "function" or n.type_name not in names:
        raise _NoMatch
    return n


def _refs(n: Node) -> list[int]:
    return [a.index for a in n.args if isinstance(a, Ref)]


def _const(n: Node) -> torch.Tensor:
    cs = [a for a in n.args if isinstance(a, torch.Tensor)]
    if len(cs) != 1 or len(_refs(n)) != 1:
        raise _NoMatch
    return cs[0]


class _Matcher:
    def __init__(self, g: Graph):
        self.g = g
        self.used: set[int] = set()

    def take(self, n: Node) -> Node:
        self.used.add(n.index)
        return n

    def token(self, act: int) -> tuple[int, int, int | None]:
        """``X[:, t]`` or ``X[:, t].unsqueeze(axis)`` of a [1, L, F] activation -> (X, t, axis or None)."""
        g = self.g
        axis = None
        n = _producer(g, act)
        if n.kind == "function" and n.type_name == "unsqueeze":
            ax = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim")
            axis = int(ax) % 3
            self.take(n)
            act = _refs(n)[0]
            n = _producer(g, act)
        if n.kind != "function" or n.type_name != "getitem" or len(_refs(n)) != 1:
            raise _NoMatch
        idx = n.args[1]
        if not (isinstance(idx, tuple) and len(idx) == 2 and idx[0] == slice(None) and isinstance(idx[1], int)):
            raise _NoMatch
        x = _refs(n)[0]
        if len(g.activations[x].shape) != 3:
            raise _NoMatch
        self.take(n)
        return x, idx[1] % g.activations[x].shape[1], axis

    def factors(self, act: int) -> list[int]:
        """The activations whose product (of two activations at a time) is ``act``."""
        n = _producer(self.g, act)
        if n.kind == "function" and n.type_name == "mul" and len(_refs(n)) == 2 and len(n.args) == 2:
            self.take(n)
            return self.factors(n.args[0].index) + self.factors(n.args[1].index)
        return [act]


def _match(g: Graph, hs: list[Node]) -> FoldedScan:
    m = _Matcher(g)
    L = len(hs)
    mod_h = hs[0].module
    delta = u = bm = cm = None
    A = Dv = None
    dA_mod = None
    first_dA: list[Node] = []

    def set_once(cur, val):
        if cur is not None and cur != val:
            raise _NoMatch
        return val

    def dbx(act: int, t: int, dt_act: int | None):
        nonlocal delta, u, bm
        fs = m.factors(act)
        if len(fs) != 3:
            raise _NoMatch
        toks = [(f, *m.token(f)) for f in fs]
        if any(tok[2] != t for tok in toks):
            raise _NoMatch
        rows = [tok for tok in toks if tok[3] == 1]  # [1, 1, N]: B
        cols = [tok for tok in toks if tok[3] == 2]  # [1, D, 1]: delta and u
        if len(rows) != 1 or len(cols) != 2:
            raise _NoMatch
        bm = set_once(bm, rows[0][1])
        if dt_act is not None:
            dd = [c for c in cols if c[0] == dt_act]
            if len(dd) != 1:
                raise _NoMatch
            delta = set_once(delta, dd[0][1])
            u = set_once(u, [c for c in cols if c[0] != dt_act][0][1])
        return cols

    def dA_of(act: int, t: int) -> int:
        """dA_quant(exp(d_t * A)) -> d_t's activation."""
        nonlocal A, dA_mod
        q = _producer(g, act)
        if q.kind != "module" or len(q.inputs) != 1:
            raise _NoMatch
        dA_mod = q.module if dA_mod is None else dA_mod
        if q.module is not dA_mod or q.module is mod_h:
            raise _NoMatch
        e = _fn(g, q.inputs[0], "exp")
        mu = _fn(g, _refs(e)[0], "mul")
        c = _const(mu).detach()
        if A is None:
            A = c
        elif not torch.equal(A, c):
            raise _NoMatch
        for n in (q, e, mu):
            m.take(n)
        return _refs(mu)[0]

    step0_cols = None
    for k in range(L):
        r = hs[k].inputs
        if len(r) != 1:
            raise _NoMatch
        if k == 0:
            step0_cols = dbx(r[0], 0, None)
            continue
        add = _fn(g, r[0], "add")
        ops = _refs(add)
        if len(ops) != 2:
            raise _NoMatch
        m.take(add)
        prev = hs[k - 1].outputs[0]
        rec = [o for o in ops if _producer(g, o).type_name == "mul" and prev in _refs(_producer(g, o))]
        if len(rec) != 1:
            raise _NoMatch
        mul = m.take(_producer(g, rec[0]))
        dA_act = [a for a in _refs(mul) if a != prev]
        if len(dA_act) != 1:
            raise _NoMatch
        dt = dA_of(dA_act[0], k)
        dbx([o for o in ops if o != rec[0]][0], k, dt)
        if m.token(dt)[:2] != (delta, k):
            raise _NoMatch
    # step 0: delta and u are known now
    d0 = [c for c in step0_cols if c[1] == delta]
    if len(d0) != 1 or [c[1] for c in step0_cols if c[1] != delta] != [u]:
        raise _NoMatch
    for n in g.consumers(d0[0][0]):  # A_bar of step 0 is computed and unused (h is 0): fold it too
        if n.kind == "function" and n.type_name == "mul" and len(_refs(n)) == 1:
            try:
                q = g.consumers(g.consumers(n.outputs[0])[0].outputs[0])
                if len(q) == 1 and q[0].module is dA_mod and not g.consumers(q[0].outputs[0]):
                    first_dA = [n, g.consumers(n.outputs[0])[0], q[0]]
            except (IndexError, AttributeError):
                pass
    for n in first_dA:
        m.take(n)
    # outputs: y_t = sum(h_t * C_t, -1) [+ D * u_t], stacked over axis 1, then the y quantizer
    ys = []
    for k in range(L):
        hk = hs[k].outputs[0]
        outs = [n for n in g.consumers(hk) if n.index not in m.used]
        if len(outs) != 1 or outs[0].type_name != "mul" or len(_refs(outs[0])) != 2:
            raise _NoMatch
        mul = m.take(outs[0])
        ca = [a for a in _refs(mul) if a != hk]
        x, t, ax = m.token(ca[0])
        if t != k or ax != 1:
            raise _NoMatch
        cm = set_once(cm, x)
        sums = g.consumers(mul.outputs[0])
        if len(sums) != 1 or sums[0].type_name != "sum":
            raise _NoMatch
        s = m.take(sums[0])
        dim = s.args[1] if len(s.args) > 1 else s.kwargs.get("dim")
        if dim not in (-1, 2, (-1,), [-1], (2,), [2]) or s.kwargs.get("keepdim"):
            raise _NoMatch
        y = s.outputs[0]
        nxt = g.consumers(y)
        if len(nxt) == 1 and nxt[0].type_name == "add":
            add = nxt[0]
            other = [a for a in _refs(add) if a != y]
            if len(other) != 1:
                raise _NoMatch
            dm = _fn(g, other[0], "mul")
            c = _const(dm).detach().reshape(-1)
            x, t, ax = m.token(_refs(dm)[0])
            if x != u or t != k or ax is not None:
                raise _NoMatch
            if Dv is None:
                Dv = c
            elif not torch.equal(Dv, c):
                raise _NoMatch
            m.take(dm)
            m.take(add)
            y = add.outputs[0]
        ys.append(y)
    stacks = g.consumers(ys[0])
    if len(stacks) != 1 or stacks[0].type_name != "stack":
        raise _NoMatch
    st = m.take(stacks[0])
    dim = st.args[1] if len(st.args) > 1 else st.kwargs.get("dim", 0)
    if [a.index for a in st.args[0] if isinstance(a, Ref)] != ys or int(dim) % 3 != 1:
        raise _NoMatch
    yq = g.consumers(st.outputs[0])
    if len(yq) != 1 or yq[0].kind != "module":
        raise _NoMatch
    yq = yq[0]
    for h in hs:
        m.take(h)
    covered = sorted(m.used)
    # nothing outside the loop may read a value computed inside it
    for i in covered:
        for o in g.nodes[i].outputs:
            if any(c.index not in m.used and c.index != yq.index for c in g.consumers(o)) or o in g.outputs:
                raise _NoMatch
    shapes = [g.activations[a].shape for a in (delta, u, bm, cm)]
    D, N = shapes[0][2], shapes[2][2]
    if A is None or tuple(A.shape) not in ((D, N),) or (Dv is not None and Dv.numel() != D):
        raise _NoMatch
    meta = {}
    for n in [hs[0], yq] + [g.nodes[i] for i in covered if g.nodes[i].kind == "module"]:
        for k, v in n.proxy_meta.items():
            meta.setdefault(k, v)
    node = Node(yq.index, "function", st.name.rsplit(".stack", 1)[0] + ".scan" if ".stack" in st.name else "scan",
                st.path, FUNCTION, None, None, (Ref(delta), Ref(u), Ref(bm), Ref(cm)),
                {"A": A, "D": Dv, "dA_quant": dA_mod, "h_quant": mod_h, "y_quant": yq.module, "steps": L},
                [delta, u, bm, cm], list(yq.outputs), st.location, meta)
    return FoldedScan(node, [i for i in covered if i != yq.index])


def fold_scans(g: Graph) -> list[FoldedScan]:
    """Every selective scan written as a loop (see the module docstring) in the captured graph."""
    calls: dict[int, list[Node]] = {}
    for n in g.nodes:
        if n.kind == "module":
            calls.setdefault(id(n.module), []).append(n)
    found = []
    for hs in calls.values():
        if len(hs) < 2 or type(hs[0].module).__name__ != "QuantIdentity":
            continue
        try:
            found.append(_match(g, hs))
        except _NoMatch:
            continue
    return found


# -- lowering -----------------------------------------------------------------------------------
def _lower_scan(ctx) -> None:
    from gapforge.brevitas_quant import act_quant_params
    from gapforge.ops.lut import input_base
    from gapforge.ops.requantize import quantize_to

    kw = ctx.node.kwargs
    names = ("delta", "u", "B", "C")
    ts = [ctx.input_tensor(i) for i in range(4)]
    for name, t in zip(names, ts):
        if t.kind != "quant" or t.bit_width > 8:
            ctx.fail(f"the scan's {name} '{t.name}' is {t.described}; it must be quantized (at most 8 bits)",
                     hint=f"put a QuantIdentity on {name} before the loop")
        if t.per_channel:
            ctx.fail(f"the scan's {name} '{t.name}' has per-channel scales", hint="use a per-tensor quantizer")
    delta, u, bm, cm = ts
    D, N, L = delta.shape[2], bm.shape[2], delta.shape[1]
    if N > ref.MAX_STATE:
        ctx.fail(f"a state of {N} elements per channel; at most {ref.MAX_STATE} are supported")
    where = f"quantizer '{ctx.name}'"
    hq = act_quant_params(kw["h_quant"].act_quant, 3, f"state {where}", observed=ctx.observed_proxy(
        kw["h_quant"].act_quant))
    aproxy = kw["dA_quant"].act_quant
    aq = act_quant_params(aproxy, 3, f"A_bar {where}", observed=ctx.observed_proxy(aproxy))
    if hq.channel_axis is not None or aq.channel_axis is not None:
        ctx.fail("per-channel state or A_bar quantizers are not supported", hint="use per-tensor QuantIdentity")
    # the A_bar table: the model's float32 exp(delta * A) and its quantizer on every delta code
    bits = int(delta.bit_width)
    lo = input_base(delta)
    codes = torch.arange(lo, lo + (1 << bits), dtype=torch.float32).reshape(-1, 1, 1)
    with torch.no_grad():
        dval = (codes - torch.tensor(float(delta.zero_point))) * torch.tensor(float(delta.scale))
        out = aproxy(torch.exp(dval.expand(-1, D, 1) * kw["A"].to(torch.float32)))
    value = getattr(out, "value", out).detach().double()
    q = value / aq.scale + aq.zero_point
    ints = torch.round(q)
    if not torch.all((q - ints).abs() < 1e-3):
        ctx.fail(f"A_bar {where}: the quantizer's output is not on its integer grid")
    table = (ints - aq.zero_point).permute(1, 2, 0).reshape(D * N, 1 << bits).numpy().astype(np.int16)
    real = ctx.new_tensor(ctx.name, "real", [delta.shape[0], L, D])
    params = {"table": ctx.add_param(real.name, "table", table, bit_width=16, signed=True)}
    attrs = {"a_scale": float(aq.scale), "h_scale": float(hq.scale), "h_zero_point": int(hq.zero_point),
             "h_range": [int(v) for v in hq.qrange()], "steps": int(L)}
    if kw["D"] is not None:
        attrs["D"] = [float(v) for v in kw["D"].double().reshape(D)]  # float32 values, exact in float64
    ctx.emit("scan", ts, [real], attrs=attrs, params=params)
    yproxy = kw["y_quant"].act_quant
    ctx.bind(quantize_to(ctx, real, yproxy, ctx.name))


FRONTENDS = [
    Frontend(
        name="selective scan (Mamba) written as a loop over time with a quantized state",
        functions=(FUNCTION,),
        lowers_to=("scan", "requantize"),
        doc="The loop of tests/test_networks/seqdata/mamba.py (SelectiveScan): per step t, "
            "A_bar = A_bar_quant(exp(delta_t * A)) with a constant A [D, N], h = h_quant(A_bar * h + delta_t * B_t "
            "* u_t) (h_quant(delta_t * B_t * u_t) at t = 0; the same QuantIdentity every step), y_t = (h * C_t)"
            ".sum(-1) [+ D * u_t] with a constant D [D], then y_quant(torch.stack(ys, 1)); delta, u [B, L, D] "
            "and B, C [B, L, N] quantized (per tensor, at most 8 bits), N <= 64. Recognised in the unrolled "
            "loop and folded into one scan op (one table, two exact roundings per step). A state without "
            "a quantizer is refused naming the state and where the QuantIdentity goes.",
        lower=_lower_scan,
    ),
]
