"""Operator declarations: the single place where supported operators are described.

Two kinds of declaration live side by side in ``gapforge/ops/<op>.py``:

* ``IROp``: an operator of network_info.json: its attributes, integer semantics, and what every
  later stage needs to know about it, as values and small functions: its role in fusion, how
  the INT8 engine runs it (through its numpy reference in ``atomic_ops``), how its C kernel call
  record is built, its GAP9 tiling kind and geometry, and its cost.
* ``Frontend``: a PyTorch / Brevitas construct (a module class or a functional call) and
  the function that lowers one recorded call of it to IR ops.

The compatibility checker, the extractor, the supported-operations doc, the fusion planner
(gapforge/plan.py), the INT8 engine (tools/int8_inference.py), the code generator
(codegen/program.py) and the GAP9 tiler (codegen/gap9/tiling.py) all read these declarations;
none of them branches on an operator's name. Adding an operator means: its declaration here, its
numpy reference in atomic_ops/, its C kernel in codegen/runtime/ (plus a GAP9 tile adapter in
codegen/runtime/gap9/gf_tile_kernels.c when it is tiled), and its tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Attr:
    """One attribute of an IR op: a JSON Schema fragment and its meaning."""

    schema: dict[str, Any]
    doc: str
    required: bool = True


@dataclass(frozen=True)
class Tiling:
    """How the GAP9 tiler (codegen/gap9/tiling.py) cuts a step of this op into L1 tiles.

    ``kind`` names one of the tiler's geometries:

    * ``"window"``: output boxes (channels x rows x columns) of a sliding-window op over NCHW;
      each tile needs its input box with halo. ``coupled(step, net)``: the tile's input channels
      are its output channels (depthwise, pooling) rather than all (grouped: the group's) inputs.
    * ``"linear"``: output features of a fully connected layer; the input vector stays resident.
    * ``"eltwise"``: runs of elements (or whole channel planes with per-channel requantization).
    * ``"rows"``: whole rows of the last axis (softmax, LayerNorm, RMSNorm, lincomb; GroupNorm on its
      [N, G, (C/G) * spatial] view: a group per row); tiles are runs of rows, the cores split a tile's
      rows (each core's tile kernel gets the index of its first row in ``e0``: GroupNorm and lincomb
      select per-row parameters with it), and the step's parameter block (``Step.params``) stays
      resident in L1.
    * ``"scan"``: runs of channels of the selective scan (channels are independent, steps in order
      within one); a tile carries its channels' columns of delta and u, B and C whole (resident), the
      parameter block's head and its channels' records and tables, and the cores split its channels.

    Steps without a ``Tiling`` run on the fabric controller over L2 data (``fc_direct``: their
    operands must then stay in L2, e.g. concat and permute).

    ``fc``: the step may also run on the fabric controller, its kernel over the whole tensors in L2, where
    the planner's cost model finds that cheaper than a cluster layer (a small layer: the cluster's fixed
    cost per layer and per task exceeds its work; codegen/gap9/program.py fc_placement). It maps each of
    the op's kernels to the one the FC calls with the SIMD kernels (the same signature: gf_simd.c).
    """

    kind: str
    coupled: Callable[[Any, Any], bool] | None = None
    # "eltwise" steps with lookup tables (lut): (step, net) -> (tables, bytes per table, per channel);
    # a tile carries the tables of its channels (or the one table) in its parameter buffer
    tables: Callable[[Any, Any], tuple[int, int, bool]] | None = None
    fc: dict[str, str] | None = None


@dataclass(frozen=True)
class IROp:
    name: str
    summary: str
    semantics: str  # integer semantics, one or two sentences (the full text is docs/integer_contract.md)
    inputs: str  # accepted input tensors, for the doc
    attrs: dict[str, Attr] = field(default_factory=dict)
    params: tuple[str, ...] = ()
    reference: str | None = None  # atomic_ops function implementing the op on integers
    kernels: tuple[str, ...] = ()  # C runtime kernels its calls may use (gf_runtime.h), for the doc and tests
    # the kernels are compiled once per input container type (GF_K_<KERNEL>_S8 / _U8, gf_runtime.h), so
    # a GAP9 project selects the input types its calls use
    kernels_per_input_type: bool = False

    # -- fusion (gapforge/plan.py) ----------------------------------------------------------
    # "head": the step may absorb a following [relu] -> requantize (its result is an integer source
    #         of that requantization); "activation": relu, absorbed as a clamp; "none".
    fusion: str = "none"
    requantizes: bool = False  # the step ends in the integer requantization when its output is quantized
    acc_bound: Callable[[Any, Any], Any] | None = None  # (net, step) -> per-channel worst |int32 acc|
    # (net, step) -> the sign (+1 / -1) of each integer source in the requantization's sum (None: all +1);
    # a subtraction is an add whose second source has the negated multiplier
    source_signs: Callable[[Any, Any], list[int]] | None = None
    check: Callable[[Any, Any], None] | None = None  # (net, step): raise PlanError if not executable
    symmetric_input: bool = False  # its kernels take no input zero point: input 0 must be quant, zero point 0
    # input 0 may also be an int32 accumulator without offset, per-tensor scale (e.g. the window sums of a
    # global average pool): its kernels read int32 codes, and ``acc_bound`` proves the sums stay below 2^31
    # from the producer's bound (plan.tensor_abs_max)
    wide_input: bool = False
    # (net, step) -> the step's own integer parameters (stored in ``Step.params``; they must have a
    # ``block()`` method giving the int64 parameter block its kernel reads), computed once by the
    # planner; raises ValueError (the planner reports it naming the step) when the op's contract
    # cannot hold. Used by ops with their own final rounding instead of the requantization (softmax).
    prepare: Callable[[Any, Any], Any] | None = None

    # -- INT8 engine (tools/int8_inference.py) -----------------------------------------------
    # requantizing ops: sources(engine, step, inputs) -> the integer sources of the requantization
    # (the engine then applies it, or returns the single source / their sum when there is none);
    # other ops: run(engine, step, inputs) -> the integer output.
    sources: Callable[[Any, Any, list], list] | None = None
    run: Callable[[Any, Any, list], Any] | None = None
    exact: Callable[[Any, Any, list], Any] | None = None  # float64 value a non-requantizing step rounds
    # its ``run`` also takes a real-valued accumulator (in accumulator units): the fidelity check runs it on
    # Brevitas' unrounded float32 accumulator to tell Brevitas' accumulation error from ours (thresholds)
    runs_on_real_accumulator: bool = False

    # -- code generation (codegen/program.py) and GAP9 (codegen/gap9) ------------------------
    call: Callable[[Any], Any] | None = None  # (codegen.program.CallBuilder) -> CallRec
    host: bool = False  # executed by the host (the input quantizer): the device receives its result
    view: bool = False  # the output is a view of the input's buffer (no kernel, no copy)
    tiling: Tiling | None = None  # GAP9 L1 tiling; None: the fabric controller runs it on L2 data
    fc_direct: bool = False  # FC step that reads/writes its operands directly (they stay in L2)

    # -- cost ---------------------------------------------------------------------------------
    macs: Callable[[Any, Any], int] | None = None  # (net, step) -> multiply-accumulates (None: 0)

    @property
    def device_kernel(self) -> bool:
        return self.call is not None
    # shape rule: (input shapes, attrs, param shapes) -> output shapes; raises ops._shapes.ShapeError
    # when the inputs cannot be this op's. network_info.json validation checks every declared shape with it.
    infer_shapes: Callable[[list[list[int]], dict[str, Any], dict[str, list[int]]], list[list[int]]] | None = None

    def attrs_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "required": [k for k, a in self.attrs.items() if a.required],
            "properties": {k: a.schema for k, a in self.attrs.items()},
        }


@dataclass(frozen=True)
class Frontend:
    """A PyTorch/Brevitas construct gapforge understands and how to lower it."""

    name: str  # as users write it, e.g. "brevitas.nn.QuantConv2d" or "torch.cat"
    lowers_to: tuple[str, ...]
    doc: str  # conditions and limits, one paragraph
    lower: Callable[[Any], None]  # lower(ctx): ctx is a gapforge.lowering.NodeContext
    modules: tuple[type, ...] = ()
    functions: tuple[str, ...] = ()  # canonical function names (see capture.canonical_function_name)


# Common attribute schemas
INT_PAIR = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2}
POS_PAIR = {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2}
PADDING4 = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 4, "maxItems": 4,
            "description": "top, left, bottom, right"}


# Helpers of the ``prepare`` hooks of ops that round once, straight into their output quantizer
# (softmax, the normalizations, lincomb, scan).
BOUND_LIMIT = 1e-5  # largest accepted error bound, output steps: a tenth of the fidelity check's near-tie window


def output_range(net, step) -> tuple[int, int]:
    """(lo, hi) output codes of such a step: its per-tensor output quantizer's range, clamped at the
    zero point when a ReLU is fused."""
    y = net.tensors[step.output]
    if y.kind != "quant" or y.per_channel:
        raise ValueError("its output must go to one per-tensor quantizer")
    lo, hi = y.qrange()
    return (max(lo, y.zero_point) if step.relu else lo), hi


def checked_bound(params, detail: str = ""):
    """``params`` if its integer error bound (``params.bound``, output steps) is within BOUND_LIMIT."""
    if params.bound > BOUND_LIMIT:
        raise ValueError(f"the integer error bound {params.bound:.3g} output steps exceeds {BOUND_LIMIT:g}{detail}")
    return params


def per_tensor_scale(t) -> float:
    """The scale of a tensor with one scale (kept as a number or a one-element list)."""
    return float(t.scale[0] if isinstance(t.scale, list) else t.scale)
