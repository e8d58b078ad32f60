"""Mamba building blocks written the way a Brevitas user writes them: the reference for the mamba
regression networks (mamba_conv1d, mamba_ssm, mamba_block, mamba_stacked, bidirectional_mamba) and a
model to copy.

Tensors are token-major, ``[batch, L, features]`` as in Mamba; the depthwise causal convolution runs
over ``[batch, features, L]``. Every float computation between two quantizers is of one of the two
kinds gapforge deploys exactly (see ../shared/docs/float-between-quantizers.md):

* an element-wise function of **one** quantized tensor, then a quantizer: a table
  (SiLU, Softplus, ``exp(delta * A)`` with the parameter ``A[d, n]``: one table per (d, n));
* sums of products of quantized tensors (and constants), then a quantizer: exact integers with one
  final rounding (``A_bar * h + delta * B * x`` into ``h_quant``; ``C . h + D * x`` into ``y_quant``;
  ``y * silu(z)`` into ``gate_quant``).

Where the QuantIdentity modules sit, and why (each one makes the float value between it and the next
quantizer one of the two kinds above):

* ``xz_quant`` after ``in_proj``: the conv1d, the slices and SiLU(z) need a quantized tensor, not the
  int32 accumulator of the linear layer.
* ``conv_quant`` after the depthwise conv: SiLU of an accumulator has no table; of a quantized tensor it has.
* ``silu_quant`` / ``z_quant`` after each SiLU: the scan and the gate multiply them with other
  activations (a product needs two quantized operands).
* ``xproj_quant`` after ``x_proj``: delta's input, B and C are sliced from it and multiplied.
* ``dt_quant`` after ``dt_proj``: Softplus needs a quantized input; ``delta_quant`` after Softplus:
  delta is both the input of the ``exp(delta * A)`` table and a factor of ``delta * B * x``.
* ``dA_quant`` after ``exp(delta * A)``: A_bar multiplies the state.
* ``h_quant`` on the state, **every step**: without it the state is a float recurrence (its value at
  step t depends on every earlier step through float arithmetic) that no integer program reproduces;
  the checker refuses such a model and names this place.
* ``y_quant`` after the stacked outputs ``C . h + D * x``, ``gate_quant`` after ``y * silu(z)``:
  the products that follow (gate, out_proj) need quantized operands.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import brevitas.nn as qnn
import torch
import torch.nn as nn
from brevitas.quant import Uint8ActPerTensorFloat

import seqdata

_SOURCE = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def qid(unsigned: bool = False) -> qnn.QuantIdentity:
    """An 8-bit quantizer returning a plain tensor (Int8ActPerTensorFloat, or Uint8ActPerTensorFloat).

    Plain tensors keep the model's arithmetic ordinary float32 torch code (indexing ``x[:, t]``, products
    with parameters); the layers after them use float biases, which gapforge folds exactly."""
    return qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat) if unsigned else qnn.QuantIdentity()


class CausalConvSiLU(nn.Module):
    """in_proj -> (x, z); x: depthwise causal QuantConv1d (Mamba's padding=k-1 then [..., :L]) -> SiLU."""

    def __init__(self, d_model: int, d_inner: int, d_conv: int = 4):
        super().__init__()
        self.d_inner = d_inner
        self.in_proj = qnn.QuantLinear(d_model, 2 * d_inner, bias=False)  # Mamba: no bias
        self.xz_quant = qid()
        self.conv1d = qnn.QuantConv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1, bias=True)
        self.conv_quant = qid()
        self.act = nn.SiLU()
        self.silu_quant = qid()

    def forward(self, x):  # x: [B, L, d_model], quantized
        L = x.shape[1]
        xz = self.xz_quant(self.in_proj(x))
        u, z = xz[..., :self.d_inner], xz[..., self.d_inner:]
        u = self.conv_quant(self.conv1d(u.transpose(1, 2))[..., :L])
        u = self.silu_quant(self.act(u)).transpose(1, 2)  # [B, L, d_inner]
        return u, z


class SelectiveScan(nn.Module):
    """The selective state-space scan, written as a Python loop over time.

    delta, u: [B, L, D]; Bm, Cm: [B, L, N] (all quantized). Per step t:
    A_bar = exp(delta_t * A), h = h_quant(A_bar * h + delta_t * B_t * u_t), y_t = C_t . h + D * u_t;
    y = y_quant(stack(y_t)).
    """

    def __init__(self, d_inner: int, d_state: int):
        super().__init__()
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))  # S4D-real initialisation, as Mamba
        self.D = nn.Parameter(torch.ones(d_inner))
        self.dA_quant = qid(unsigned=True)  # A_bar in (0, 1]
        self.h_quant = qid()
        self.y_quant = qid()

    def forward(self, delta, u, Bm, Cm):
        A = -torch.exp(self.A_log)  # [D, N], a constant of the deployed model
        L = u.shape[1]
        h = None
        ys = []
        for t in range(L):
            d_t = delta[:, t].unsqueeze(-1)  # [B, D, 1]
            dA = self.dA_quant(torch.exp(d_t * A))  # [B, D, N]
            dBx = d_t * Bm[:, t].unsqueeze(1) * u[:, t].unsqueeze(-1)  # [B, D, N]
            h = self.h_quant(dBx if h is None else dA * h + dBx)  # the state, quantized every step
            ys.append((h * Cm[:, t].unsqueeze(1)).sum(-1) + self.D * u[:, t])  # [B, D]
        return self.y_quant(torch.stack(ys, 1))  # [B, L, D]


class MambaMixer(nn.Module):
    """A full Mamba mixer: in_proj, causal conv + SiLU, x_proj, dt_proj, Softplus, scan, gate, out_proj."""

    def __init__(self, d_model: int, d_inner: int = 16, d_state: int = 4, d_conv: int = 4, dt_rank: int = 2):
        super().__init__()
        self.dt_rank, self.d_state = dt_rank, d_state
        self.conv = CausalConvSiLU(d_model, d_inner, d_conv)
        self.x_proj = qnn.QuantLinear(d_inner, dt_rank + 2 * d_state, bias=False)
        self.xproj_quant = qid()
        self.dt_proj = qnn.QuantLinear(dt_rank, d_inner, bias=True)
        self.dt_quant = qid()
        self.softplus = nn.Softplus()
        self.delta_quant = qid(unsigned=True)
        self.scan = SelectiveScan(d_inner, d_state)
        self.z_act = nn.SiLU()
        self.z_quant = qid()
        self.gate_quant = qid()
        self.out_proj = qnn.QuantLinear(d_inner, d_model, bias=False)  # Mamba: no bias

    def forward(self, x):  # [B, L, d_model] quantized -> [B, L, d_model] int32 accumulator of out_proj
        u, z = self.conv(x)
        R, N = self.dt_rank, self.d_state
        p = self.xproj_quant(self.x_proj(u))
        dt, Bm, Cm = p[..., :R], p[..., R:R + N], p[..., R + N:]
        delta = self.delta_quant(self.softplus(self.dt_quant(self.dt_proj(dt))))
        y = self.scan(delta, u, Bm, Cm)
        y = self.gate_quant(y * self.z_quant(self.z_act(z)))
        return self.out_proj(y)


class MambaBlock(nn.Module):
    """Residual Mamba block: x + out_proj(...), re-quantized (the next block's input)."""

    def __init__(self, d_model: int, **kw):
        super().__init__()
        self.mixer = MambaMixer(d_model, **kw)
        self.res_quant = qid()

    def forward(self, x):
        return self.res_quant(x + self.mixer(x))


def kaiming_init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def network(name: str, factory, **kw):
    """seqdata.network(...) with this file's source in the cache key (a change here retrains the
    mamba networks, and only them: seqdata/__init__.py and the ``_*.py`` helpers stay as they are)."""
    return seqdata.network(f"{name}+ref{_SOURCE}", factory, **kw)
