"""L1 tiling: for every step, the output tile that fits the L1 budget with the least DMA traffic.

Geometry (what must hold) and policy (what is preferred) are separate:

* geometry, per tiling kind, gives for a candidate output tile the L1 buffers it needs
  (input box with its halo, weight slice, parameter slice, output box; twice each when the
  layer has more than one tile, for double buffering) and the exact bytes the DMA moves;
* policy is an explicit search over all candidate tiles that fit: the objective, the same for every
  tiling kind, is the **fewest estimated cycles** (`tile_cost`: DMA bytes over the DMA bandwidth,
  plus a fixed cost per tile, plus the busiest core's work), then fewest DMA bytes, then fewest
  tiles, then most compute cores busy (cores split a tile by output channels, or by elements for
  element-wise steps). The figures are the platform's (codegen/gap9/hw.py).
* a conv plan of whole output planes whose windows read a crop of the input is then compared with its variant
  loading whole input planes (TilePlan.in_plane: one contiguous command instead of a 2-D one per plane; the
  commands saved are worth ``dma_cmd_cycles`` each, and a one-tile layer's strided load ``dma_strided_cycles``),
  taken where it fits and is cheaper (tile_conv).

The C executor (codegen/runtime/gap9/gf_tiled.c) derives the same tiles from the same three
numbers (tile channels, rows, columns) and performs exactly the transfers counted here; the
gap9-emu tests compare the emulator's byte counters with these predictions.

Tiling kinds (an op's declaration names its kind, gapforge/ops ``Tiling``): ``conv`` (sliding
windows over NCHW: conv2d incl. depthwise/grouped/strided, max/avg/trunc pooling), ``linear``,
``eltwise`` (add, requantize, relu, lut, mul), ``rows`` (softmax, LayerNorm, RMSNorm, GroupNorm, lincomb: whole rows of the last axis),
``gemm`` (matmul, and linear layers over several rows: tiles of output rows of one group, and of output
columns when the weights or the second operand do not fit with every column), ``scan`` (the Mamba
selective scan: runs of its independent channels) and ``fc``
(steps without a ``Tiling``, which the fabric controller runs on L2 data: the host-quantized input,
reshape views, concat, permute).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from codegen.gap9.hw import Budgets, Platform, align
from codegen.packing import packed_bits, row_bytes
from gapforge import ir
from gapforge.errors import GapforgeError
from gapforge.ops import registry
from gapforge.ops._shapes import chw
from gapforge.plan import Step

ELEM = {"int8": 1, "uint8": 1, "int32": 4}
SIMD_COL_PIXELS = 4  # matmul columns per pass of the SIMD kernel: GF_SIMD_PIX of gf_simd.h
SIMD_CONV_COL_BYTES = 2048  # the SIMD conv's im2col buffer: as many pixels as fit (GF_SIMD_CONV_COL_BYTES),
SIMD_CONV_PIX_MAX = 32  # 1 to GF_SIMD_CONV_PIX_MAX of them
SIMD_DW_COL_BYTES = 2048  # the SIMD depthwise kernel's rows of the padded input plane (GF_SIMD_DW_COL_BYTES)
SIMD_DW_WORDS = 16  # its largest kernel: kh * ceil(kw / 4) words (GF_SIMD_DW_WORDS)
# depthwise layers with fewer output pixels keep the portable kernel: the SIMD one's per-channel set-up
# (kernel words, requantization constants, the padded rows) outweighs its pixels there (gvsoc siracusa,
# thirdparty_mobilenet_v1: 4x4 and 2x2 maps 5-12 % slower, 8x8 and larger faster; docs/gap9.md)
SIMD_DW_MIN_PIXELS = 32


def simd_col_bytes(k: int) -> int:
    """Bytes of one compute core's SIMD matmul buffer for dot products of length k (gf_simd_col_bytes)."""
    return SIMD_COL_PIXELS * ((k + 3) // 4 * 4)


def simd_conv_col_bytes(k: int) -> int:
    """Bytes of one compute core's SIMD im2col buffer for receptive fields of k bytes (gf_simd_conv_col_bytes)."""
    k4 = (k + 3) // 4 * 4
    return max(1, min(SIMD_CONV_PIX_MAX, SIMD_CONV_COL_BYTES // k4)) * k4


def simd_dw_col_bytes(g: ConvGeometry, toh: int, tow: int) -> int:
    """Bytes of one compute core's buffer for the SIMD depthwise kernel on tiles of at most toh x tow
    output pixels (gf_simd_dw_col_bytes): the padded input rows of all of them if they fit
    SIMD_DW_COL_BYTES, else as many as fit (at least one kernel window's); 0 where the kernel does
    not apply (not depthwise with multiplier 1, column dilation, a kernel of more than SIMD_DW_WORDS words)."""
    if not (g.coupled and g.groups > 1 and g.c == g.groups == g.o and g.dx == 1
            and g.kh * ((g.kw + 3) // 4) <= SIMD_DW_WORDS):
        return 0
    wb = (3 + (tow - 1) * g.sx + 4 * ((g.kw + 3) // 4) + 3) // 4 * 4
    span = (g.kh - 1) * g.dy + 1
    rows = (toh - 1) * g.sy + span
    return min(rows, max(span, SIMD_DW_COL_BYTES // wb)) * wb


DMA_MAX = 65535  # bytes of one DMA command, 2-D line or stride (gf_tiled.c GF_DMA_MAX)


class TilingError(GapforgeError):
    pass


@dataclass
class TilePlan:
    step: str
    tiling: str  # conv | linear | eltwise | rows | fc
    tile: dict  # conv: co, oh, ow; linear: co; eltwise: planes, elems; rows: rows; gemm: rows, co
    counts: list[int]  # tiles along each tiled axis
    n_tiles: int
    buffers: dict[str, int]  # L1 bytes of one buffer of each operand (in, in2, w, p, out)
    double_buffered: bool
    resident: list[str]  # operands loaded once per layer (not double-buffered)
    l1_bytes: int  # total L1 the layer allocates
    dma: dict[str, int] = field(default_factory=dict)  # payload bytes: in, w, p, out (L2<->L1)
    cores: int = 1  # cores busy in the largest tile
    cost_cycles: int = 0  # the objective's estimate (tile_cost)
    busiest_units: int = 0  # its work units (MACs or elements) of the busiest core, summed over the tiles
    # pool fusion (codegen/gap9/fusion.py): on the fused layer (the pool's step) {"conv": the conv's step index,
    # "conv_step": its output, "pool": [kh, kw]}: the tile is the conv's, pooled in L1 ("mid": the conv tile); on the
    # conv's own step {"into": the pool's step index, "into_step": its output}: nothing runs there
    fused: dict = field(default_factory=dict)
    # conv: the tile covers whole output planes but its windows read a crop of the input (the last rows or columns
    # no window reaches, _rows): the input buffer holds the whole planes instead (cin x h x w, one contiguous load
    # per tile instead of a strided command per plane; gf_layer_t.in_plane), chosen by the objective (_conv_eval)
    in_plane: bool = False

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def dma_total(self) -> int:
        return sum(self.dma.values())


# -- geometry helpers (mirrored by gf_tiled.c) ------------------------------------------
def _rows(o0: int, n: int, stride: int, pad: int, k: int, dil: int, size: int) -> tuple[int, int, int, int]:
    """Input rows [i0, i0+count) and the tile's (pad_before, pad_after) for output rows [o0, o0+n).

    Windows [g0, g1) wholly in the padding (a 1x1 conv with padding, padding wider than the kernel)
    get the one input row nearest to them (count 1, a negative pad), which no tap reads: the box
    is never empty, so no zero-length DMA and no negative byte count. gf_tiled.c rows_of is the same.
    """
    g0 = o0 * stride - pad
    g1 = (o0 + n - 1) * stride - pad + (k - 1) * dil + 1
    i0 = min(max(g0, 0), size - 1)
    i1 = max(min(g1, size), i0 + 1)
    return i0, i1 - i0, i0 - g0, g1 - i1


def _tile_sizes(total: int, tile: int) -> list[int]:
    return [min(tile, total - s) for s in range(0, total, tile)]


def _candidates(total: int) -> list[int]:
    """Tile sizes giving distinct tile counts, largest first."""
    return sorted({math.ceil(total / k) for k in range(1, total + 1)}, reverse=True)


@dataclass(frozen=True)
class ConvGeometry:
    c: int
    h: int
    w: int
    o: int
    oh: int
    ow: int
    kh: int
    kw: int
    sy: int
    sx: int
    pt: int
    pl: int
    dy: int
    dx: int
    groups: int
    coupled: bool  # input channels follow output channels (depthwise, pooling)
    eb_in: int
    eb_out: int
    w_per_channel: int  # unpacked weight bytes per output channel (0: no weights)
    params: ParamSpec
    w_packed_per_channel: int = 0  # packed bytes per output channel when weights are sub-byte packed

    @property
    def og(self) -> int:
        return self.o // self.groups

    def cin(self, con: int) -> int:
        if self.coupled:
            return con
        if self.groups == 1:
            return self.c
        return con // self.og * (self.c // self.groups)



@dataclass(frozen=True)
class ParamSpec:
    """The parameter slice a tile needs in L1 (mirrors param_layout() in gf_tiled.c).

    L1 layout for a buffer of capacity ``cap`` channels: [bias int32 x cap][m int32 x sources x
    cap'][sh uint8 x cap'][o int64 x cap'], each part 8-byte aligned, cap' = cap with per-channel
    requantization and 1 with per-tensor requantization. A tile of ``n`` channels transfers only
    its payload. A per-tensor requantization of one source (``in_record``, gf_gap9.h gf_rq_in_record)
    has no m / sh / o part: its constants are bound once in the layer's run record, which is in L1
    during the layer (gf_tiled.c bind_rq, tile_requant), and no tile moves them.
    """

    bias: bool
    sources: int  # 0: no requantization
    per_channel: bool
    table_bytes: int = 0  # lookup tables (lut): bytes of one table, after the requantization part
    table_per_channel: bool = False

    @property
    def in_record(self) -> bool:
        """Per tensor, one source: the constants are in the run record, not in the parameter buffer."""
        return self.sources == 1 and not self.per_channel

    def l1_bytes(self, cap: int) -> int:
        if not self.bias and not self.sources and not self.table_bytes:
            return 0
        rq = cap if self.per_channel else 1
        total = align(cap * 4) if self.bias else 0
        if self.sources and not self.in_record:
            total += align(self.sources * rq * 4) + align(rq) + rq * 8
        if self.table_bytes:
            total = align(total) + (cap if self.table_per_channel else 1) * self.table_bytes
        return align(total)

    def payload(self, n: int, total: int | None = None, cap: int | None = None) -> int:
        """DMA bytes of a tile of ``n`` of the ``total`` channels into a buffer of capacity ``cap`` (default n).
        Where the bias and requantization sections are contiguous alike in the blob and in L1 (the tile holds
        every channel, or per-tensor requantization without a bias: gf_tiled.c params_merged), one transfer
        moves them with their padding."""
        rq = n if self.per_channel else 1
        tables = (n if self.table_per_channel else 1) * self.table_bytes
        if self.in_record:  # the bias (and tables) alone
            return (n * 4 if self.bias else 0) + tables
        cap = n if cap is None else cap
        rq_cap = cap if self.per_channel else 1
        merged = bool(self.sources) and total is not None \
            and (not self.per_channel or (n == total and rq_cap == total)) \
            and (not self.bias or (n == total and align(cap * 4) == align(total * 4)))
        if merged:
            return (align(n * 4) if self.bias else 0) + align(self.sources * rq * 4) + align(rq) + rq * 8 + tables
        return (n * 4 if self.bias else 0) + (self.sources * rq * 4 + rq + rq * 8 if self.sources else 0) + tables


def weight_packing(step: Step, net: ir.Network, pack: bool) -> int:
    """Packed bytes per output channel of the step's weights (0: stored one per byte)."""
    op = net.op_by_name(step.main_op)
    if not pack or "weight" not in op.params:
        return 0
    bits = packed_bits(op.params["weight"].bit_width)
    if bits == 8:
        return 0
    return row_bytes(int(math.prod(op.params["weight"].shape[1:])), bits)


def conv_geometry(step: Step, net: ir.Network, pack: bool = False) -> ConvGeometry:
    op = net.op_by_name(step.main_op)
    x = net.tensors[op.inputs[0]]
    y = net.tensors[step.output]
    a = step.attrs
    c, h, w = chw(x.shape)
    o, oh, ow = chw(y.shape)
    kh, kw = a["kernel_size"]
    sy, sx = a["stride"]
    pt, pl = a["padding"][0], a["padding"][1]
    dy, dx = a.get("dilation", [1, 1])
    groups = a.get("groups", 1)
    coupled = bool(registry().ir_ops[step.kind].tiling.coupled(step, net))
    w_pc = (c // groups) * kh * kw if "weight" in op.params else 0
    return ConvGeometry(c, h, w, o, oh, ow, kh, kw, sy, sx, pt, pl, dy, dx, groups, coupled,
                        ELEM[x.dtype], ELEM[y.dtype], w_pc, param_spec(step, net), weight_packing(step, net, pack))


def param_spec(step: Step, net: ir.Network) -> ParamSpec:
    op = net.op_by_name(step.main_op)
    rq = step.requant
    rule = registry().ir_ops[step.kind].tiling
    tables = rule.tables(step, net) if rule is not None and rule.tables is not None else (0, 0, False)
    return ParamSpec(bias="bias" in op.params,
                     sources=int(rq.m.shape[0]) if rq is not None else 0,
                     per_channel=rq is not None and rq.channels > 1,
                     table_bytes=tables[1], table_per_channel=tables[2])


# -- policy: one objective for every tiling kind ------------------------------------------
def tile_cost(hw: Platform, dma_bytes: int, n_tiles: int, busiest_units: int) -> int:
    """Estimated cycles of a layer's tiles: its DMA bytes at the DMA bandwidth, a fixed cost per tile
    (DMA set-up, barriers, the tile loop), and the work units (MACs or elements) of the busiest core
    summed over the tiles. Figures from the platform entry (hw.py dma_bytes_per_cycle,
    tile_fixed_cycles, core_cycles_per_unit)."""
    return round(dma_bytes / hw.dma_bytes_per_cycle + n_tiles * hw.tile_fixed_cycles
                 + busiest_units * hw.core_cycles_per_unit)


def _objective(hw: Platform, plan: TilePlan, busiest_units: int, saved: int = 0) -> tuple:
    """``saved``: the cycles of the DMA commands the plan saves against its crop variant (whole input planes,
    _conv_eval)."""
    plan.cost_cycles = tile_cost(hw, plan.dma_total, plan.n_tiles, busiest_units) - saved
    plan.busiest_units = busiest_units
    return plan.cost_cycles, plan.dma_total, plan.n_tiles, -plan.cores


# -- conv-like -------------------------------------------------------------------------
def box_dma(h: int, w: int, eb: int, cn: int, yn: int, xn: int) -> tuple[int, bool]:
    """(DMA commands, strided) of loading a box of ``cn`` planes x ``yn`` rows x ``xn`` columns of an L2 tensor of
    ``h`` x ``w`` planes (gf_tiled.c box_segments / dma_whole): strided where the box takes 2-D commands, which the
    one-tile fast path of gf_tiled.c cannot replay."""
    plane, block = h * w * eb, yn * w * eb
    if xn == w:
        if yn == h:
            return math.ceil(cn * plane / DMA_MAX), False
        if block <= DMA_MAX and plane <= DMA_MAX and cn > 1:  # rows of whole width, one 2-D command per group
            return math.ceil(cn / (DMA_MAX // block)), True
        return cn * math.ceil(block / DMA_MAX), False
    line = xn * eb
    per = 1 if line > DMA_MAX else DMA_MAX // line
    return cn * math.ceil(yn / per), True


def _conv_eval(g: ConvGeometry, tco: int, toh: int, tow: int, hw: Platform, single: bool = False,
               col: int = 0, dw: bool = False, pool: tuple[int, int] | None = None,
               plane: bool = False) -> tuple[TilePlan | None, tuple]:
    """``plane``: the variant loading whole input planes (TilePlan.in_plane) of a tile that covers whole output
    planes but reads a crop of the input (else None): its input buffer and bytes are the planes', its estimate
    credits the DMA commands it saves (``dma_cmd_cycles`` each) and, for a layer of one tile whose crop takes
    strided commands, ``dma_strided_cycles``. ``col``: bytes of each compute core's SIMD im2col buffer (0:
    portable kernels); the executor allocates one per forked core (all ``cores``), once per layer. ``dw``: the SIMD depthwise kernel,
    whose buffer depends on the tile (simd_dw_col_bytes); the cores split its channels. ``pool``: (kh, kw)
    of a max pool fused behind the conv (kernel = stride, no padding; toh, tow and the map multiples of it):
    the conv tile goes to one L1 buffer ``mid``, the cores pool it into ``out``, only the pooled tile is stored."""
    cores = hw.compute_cores
    if dw:
        col = simd_dw_col_bytes(g, min(toh, g.oh), min(tow, g.ow))
    split_pixels = bool(col) and not dw
    cos = _tile_sizes(g.o, tco)
    ohs = _tile_sizes(g.oh, toh)
    ows = _tile_sizes(g.ow, tow)
    rows = [_rows(i * toh, n, g.sy, g.pt, g.kh, g.dy, g.h) for i, n in enumerate(ohs)]
    cols = [_rows(i * tow, n, g.sx, g.pl, g.kw, g.dx, g.w) for i, n in enumerate(ows)]
    n_tiles = len(cos) * len(ohs) * len(ows)
    saved = 0
    if plane:
        if len(ohs) > 1 or len(ows) > 1 or (rows[0][1] == g.h and cols[0][1] == g.w):
            return None, None
        saved = hw.dma_cmd_cycles * sum(box_dma(g.h, g.w, g.eb_in, g.cin(n), rows[0][1], cols[0][1])[0]
                                        - box_dma(g.h, g.w, g.eb_in, g.cin(n), g.h, g.w)[0] for n in cos)
        if len(cos) == 1 and box_dma(g.h, g.w, g.eb_in, g.cin(tco), rows[0][1], cols[0][1])[1]:
            saved += hw.dma_strided_cycles  # a one-tile layer: the fast path the strided commands prevent
        rows, cols = [(0, g.h, 0, 0)], [(0, g.w, 0, 0)]  # the box: every row and column
    in_buf = g.cin(tco) * max(r[1] for r in rows) * max(c[1] for c in cols) * g.eb_in
    out_buf = tco * toh * tow * g.eb_out
    mid_buf = 0
    if pool is not None:
        mid_buf, out_buf = out_buf, tco * (toh // pool[0]) * (tow // pool[1]) * g.eb_out
    w_buf = tco * g.w_per_channel
    wp_buf = tco * g.w_packed_per_channel  # packed weights land here and are unpacked into w
    p_buf = g.params.l1_bytes(tco)
    resident = []
    if len(cos) == 1:
        resident = [k for k, v in (("w", w_buf), ("wp", wp_buf), ("p", p_buf)) if v]
    nbuf = 2 if n_tiles > 1 and not single else 1
    l1 = nbuf * (align(in_buf) + align(out_buf))
    l1 += sum((1 if k in resident else nbuf) * align(v) for k, v in (("w", w_buf), ("wp", wp_buf), ("p", p_buf))
              if v)
    l1 += cores * align(col) + align(mid_buf)
    w_payload = g.w_packed_per_channel or g.w_per_channel
    sum_cin = sum(g.cin(n) for n in cos)
    n_sp = len(ohs) * len(ows)
    dma = {
        "in": sum_cin * sum(r[1] for r in rows) * sum(c[1] for c in cols) * g.eb_in,
        "w": g.o * w_payload * (1 if "w" in resident else n_sp),
        "p": sum(g.params.payload(n, g.o, tco) for n in cos) * (1 if "p" in resident else n_sp),
        "out": g.o * g.oh * g.ow * g.eb_out // (pool[0] * pool[1] if pool else 1),
    }
    plan = TilePlan("", "conv", {"co": tco, "oh": toh, "ow": tow}, [len(cos), len(ohs), len(ows)], n_tiles,
                    {"in": in_buf, "w": w_buf, "wp": wp_buf, "p": p_buf, "out": out_buf, **({"col": col} if col else {}),
                     **({"mid": mid_buf} if mid_buf else {})},
                    nbuf == 2, resident, l1, dma,
                    min(cores, toh * tow if split_pixels else _units(g, tco)),  # SIMD: the cores split the pixels
                    in_plane=plane)
    # each output element costs its window's MACs; the portable kernels split a tile's units (channels,
    # or groups) over the cores, the SIMD ones (but the depthwise one) its output pixels
    per_out = g.kh * g.kw * (1 if g.coupled else g.c // g.groups)
    if split_pixels:
        busiest = sum(cos) * sum(math.ceil(h * w / cores) for h in ohs for w in ows) * per_out
    else:
        unit_ch = g.o // _units(g, g.o)
        busiest = sum(math.ceil(_units(g, n) / cores) for n in cos) * unit_ch * g.oh * g.ow * per_out
    if pool is not None:  # the pooling: every conv output once, the cores split the pooled rows
        busiest += math.ceil(g.o * g.oh * g.ow / cores)
    return plan, _objective(hw, plan, busiest, saved)


def _units(g: ConvGeometry, con: int) -> int:
    """Work units the cores share in a tile of con output channels (groups for grouped convs)."""
    if not g.coupled and g.groups > 1:
        return con // g.og
    return con


def _search(evaluate, candidates, budget: int, what: str) -> TilePlan:
    """Best candidate by the objective; double-buffered first, single-buffered only if none fits.

    Single buffering (no load of tile t+1 while tile t is computed) is the fallback for layers whose
    smallest tile only fits L1 once, e.g. a 3x3 convolution over 512 channels in 16 KiB.
    """
    try:
        return _search_pass(evaluate, candidates, budget, what, False)
    except TilingError:
        return _search_pass(evaluate, candidates, budget, what, True)


def _search_pass(evaluate, candidates, budget: int, what: str, single: bool) -> TilePlan:
    best = None
    smallest = None
    for cand in candidates:
        plan, key = evaluate(*cand, single)
        if plan is None:
            continue
        if smallest is None or plan.l1_bytes < smallest.l1_bytes:
            smallest = plan
        if plan.l1_bytes > budget:
            continue
        if best is None or key < best[1]:
            best = (plan, key)
    if best is None:
        need = smallest.l1_bytes if smallest is not None else 0
        raise TilingError(f"{what}: no tile fits the L1 budget of {budget} bytes (the smallest tile needs {need})",
                          hint="raise --l1-budget")
    return best[0]


def tile_conv(step: Step, net: ir.Network, budgets: Budgets, pack: bool = False, simd: bool = False,
              pool: tuple[int, int] | None = None) -> TilePlan:
    """``simd``: the SIMD convolution (gf_simd.c) with its per-core im2col buffer in L1. ``pool``: (kh, kw) of
    a max pool fused behind it (codegen/gap9/fusion.py): tiles of whole pool windows (_conv_eval)."""
    g = conv_geometry(step, net, pack)
    hw = budgets.hw
    # depthwise (one input channel per group): the SIMD sliding-window kernel where it applies
    # (simd_dw_col_bytes) and the map is not tiny (SIMD_DW_MIN_PIXELS), else the portable one (through im2col it measured slower on gvsoc,
    # docs/gap9.md, "SIMD kernels")
    depthwise = g.groups > 1 and g.c // g.groups == 1
    dw = simd and bool(g.w_per_channel) and depthwise and simd_dw_col_bytes(g, 1, 1) > 0 \
        and g.oh * g.ow >= SIMD_DW_MIN_PIXELS
    col = simd_conv_col_bytes(g.w_per_channel) if simd and g.w_per_channel and not depthwise else 0
    unit = g.og if (not g.coupled and g.groups > 1) else 1
    cos = [c for c in _candidates(g.o) if c % unit == 0] or [g.o]
    # a 1-D map (conv1d, height 1) has no rows to cut: its sequence axis is tiled from the start
    ph, pw = pool or (1, 1)

    def sizes(total: int, k: int) -> list[int]:  # tile sizes in whole pool windows
        return [k * n for n in _candidates(total // k)]

    cols = sizes(g.ow, pw) if g.oh == 1 and g.h == 1 else [g.ow]
    cands = [(c, r, w) for c in cos for r in sizes(g.oh, ph) for w in cols]
    try:
        plan = _search(lambda c, r, w, sb: _conv_eval(g, c, r, w, hw, sb, col, dw, pool), cands, budgets.l1,
                       step.output)
    except TilingError:  # full-width rows do not fit: tile the columns too
        cands = [(c, r, w) for c in cos for r in sizes(g.oh, ph)[-4:] for w in sizes(g.ow, pw)]
        plan = _search(lambda c, r, w, sb: _conv_eval(g, c, r, w, hw, sb, col, dw, pool), cands, budgets.l1,
                       f"{step.kind} '{step.output}'")
    # tiles of whole output planes whose windows read a crop: whole input planes instead where they fit and the
    # commands saved outweigh the extra bytes by the estimate (compared with this plan only: the credit is relative
    # to its own crop, so a bigger budget still never costs more)
    if plan.counts[1:] == [1, 1]:
        single = plan.n_tiles > 1 and not plan.double_buffered
        whole, _ = _conv_eval(g, plan.tile["co"], g.oh, g.ow, hw, single, col, dw, pool, plane=True)
        if whole is not None and whole.l1_bytes <= budgets.l1 and whole.cost_cycles < plan.cost_cycles:
            plan = whole
    plan.step = step.output
    return plan


# -- linear ----------------------------------------------------------------------------
def tile_linear(step: Step, net: ir.Network, budgets: Budgets, pack: bool = False) -> TilePlan:
    op = net.op_by_name(step.main_op)
    x, y = net.tensors[op.inputs[0]], net.tensors[step.output]
    if x.numel != x.shape[-1]:  # a linear over tokens: tiles of rows (the weights stay resident)
        return tile_gemm(step, net, budgets, pack)
    k = x.shape[-1]
    o = y.shape[-1]
    eb_in, eb_out = ELEM[x.dtype], ELEM[y.dtype]
    ps = param_spec(step, net)
    wrow = weight_packing(step, net, pack)
    cores = budgets.hw.compute_cores

    def evaluate(tco, single):
        cos = _tile_sizes(o, tco)
        n = len(cos)
        nbuf = 2 if n > 1 and not single else 1
        bufs = {"in": k * eb_in, "w": tco * k, "wp": tco * wrow, "p": ps.l1_bytes(tco), "out": tco * eb_out}
        resident = ["in"] + (["w", "wp", "p"] if n == 1 else [])
        l1 = sum((1 if name in resident else nbuf) * align(v) for name, v in bufs.items() if v)
        dma = {"in": k * eb_in, "w": o * (wrow or k), "p": sum(ps.payload(c, o, tco) for c in cos), "out": o * eb_out}
        plan = TilePlan(step.output, "linear", {"co": tco}, [n], n, bufs, nbuf == 2, resident, l1, dma,
                        min(cores, tco))
        return plan, _objective(budgets.hw, plan, sum(math.ceil(c / cores) for c in cos) * k)

    return _search(evaluate, [(c,) for c in _candidates(o)], budgets.l1, f"linear '{step.output}'")


# -- rows: matmul and linear over tokens --------------------------------------------------
@dataclass(frozen=True)
class RowsGeometry:
    """A step computing [groups][m][n] outputs from rows of k inputs (mirrored by gf_tiled.c ROWS).

    matmul: a [groups][m][k] times its second input b [groups][k][n] (loaded per tile, ``in2``);
    linear over tokens: groups 1, m rows, weights [n][k] (resident in L1 unless the columns are tiled).
    """

    groups: int
    m: int
    k: int
    n: int
    eb_in: int
    eb_in2: int  # 0: no second input (linear)
    eb_out: int
    w_per_row: int  # weight bytes per output (0: no weights)
    w_packed: int  # packed bytes per output (0: not packed)
    params: ParamSpec


def rows_geometry(step: Step, net: ir.Network, pack: bool = False) -> RowsGeometry:
    op = net.op_by_name(step.main_op)
    x, y = net.tensors[op.inputs[0]], net.tensors[step.output]
    if "weight" in op.params:
        o, k = op.params["weight"].shape
        return RowsGeometry(1, x.numel // k, k, o, ELEM[x.dtype], 0, ELEM[y.dtype], k,
                            weight_packing(step, net, pack), param_spec(step, net))
    b = net.tensors[op.inputs[1]]
    groups = int(math.prod(x.shape[:-2]))
    return RowsGeometry(groups, x.shape[-2], x.shape[-1], b.shape[-1], ELEM[x.dtype], ELEM[b.dtype], ELEM[y.dtype],
                        0, 0, param_spec(step, net))


def tile_gemm(step: Step, net: ir.Network, budgets: Budgets, pack: bool = False, simd: bool = False) -> TilePlan:
    """Tiles of ``rows`` output rows x ``co`` output columns of one group; the cores split the tile's rows.

    With all ``n`` columns in one tile (the preferred case) the weights and parameters of a linear
    over tokens stay resident in L1 and a matmul loads its group's whole second operand per tile.
    When they do not fit, the columns are tiled too: every tile loads its rows of the input, the
    ``co`` weight rows (linear) or the ``k x co`` column block of the second operand (matmul, a 2-D
    strided transfer) and the parameter slice of its columns, and stores a ``rows x co`` block of the
    output (2-D strided). Tiles run group by group, row block by row block, columns innermost.
    """
    g = rows_geometry(step, net, pack)
    cores = budgets.hw.compute_cores
    col = simd_col_bytes(g.k) if simd and g.eb_in2 else 0  # SIMD matmul: gathered columns of b, per core

    def evaluate(tr, tc, single):
        per = math.ceil(g.m / tr)
        cols = _tile_sizes(g.n, tc)
        per_c = len(cols)
        if per_c > 1 and (g.n * max(g.eb_in2, g.eb_out) > DMA_MAX):  # 2-D lines/strides of one row
            return None, None
        n_tiles = g.groups * per * per_c
        nbuf = 2 if n_tiles > 1 and not single else 1
        bufs = {"in": tr * g.k * g.eb_in, "in2": g.k * tc * g.eb_in2, "w": tc * g.w_per_row,
                "wp": tc * g.w_packed, "p": g.params.l1_bytes(tc), "out": tr * tc * g.eb_out}
        resident = [k for k in ("w", "wp", "p") if bufs[k]] if per_c == 1 else []
        l1 = sum((1 if name in resident else nbuf) * align(v) for name, v in bufs.items() if v)
        if col:
            bufs["col"] = col
            l1 += cores * align(col)
        row_tiles = g.groups * per
        dma = {"in": per_c * g.groups * g.m * g.k * g.eb_in, "in2": row_tiles * g.k * g.n * g.eb_in2,
               "w": g.n * (g.w_packed or g.w_per_row) * (1 if per_c == 1 else row_tiles),
               "p": g.params.payload(g.n, g.n, tc) if per_c == 1
               else row_tiles * sum(g.params.payload(c, g.n, tc) for c in cols),
               "out": g.groups * g.m * g.n * g.eb_out}
        dma = {k: v for k, v in dma.items() if v or k in ("in", "out")}
        plan = TilePlan(step.output, "gemm", {"rows": tr, "co": tc}, [g.groups, per, per_c], n_tiles, bufs,
                        nbuf == 2, resident, l1, dma, min(cores, tr))
        busiest = g.groups * sum(math.ceil(r / cores) for r in _tile_sizes(g.m, tr)) * g.k * g.n
        return plan, _objective(budgets.hw, plan, busiest)

    what = f"{step.kind} '{step.output}'"
    try:  # every column in each tile: resident weights, whole rows of the output
        return _search(evaluate, [(r, g.n) for r in _candidates(g.m)], budgets.l1, what)
    except TilingError:  # the weights (or the second operand) do not fit with every column: tile them too
        return _search(evaluate, [(r, c) for r in _candidates(g.m) for c in _candidates(g.n)], budgets.l1, what)


# -- element-wise ----------------------------------------------------------------------
def eltwise_layout(step: Step, net: ir.Network) -> tuple[int, int, int, int]:
    """(outer, channels, elements per channel slice, total elements) of an element-wise step.

    With per-channel requantization (or per-channel lookup tables) along axis ``a`` the output is
    ``[outer][channels][inner]`` (outer: the product of the axes before ``a``, inner: of those
    after it); otherwise it is one flat slice (1, 1, n, n).
    """
    y = net.tensors[step.output]
    rq = step.requant
    n = y.numel
    axis, chans = None, 1
    if rq is not None and rq.channels > 1:
        axis, chans = rq.channel_axis, rq.channels
    else:
        rule = registry().ir_ops[step.kind].tiling
        if rule is not None and rule.tables is not None:
            tables, _, per_channel = rule.tables(step, net)
            if per_channel:
                axis, chans = net.op_by_name(step.main_op).attrs["channel_axis"], tables
    if axis is None:
        return 1, 1, n, n
    axis %= len(y.shape)
    if y.shape[axis] != chans:
        raise TilingError(f"{step.kind} '{step.output}': {chans} requantization channels along axis {axis} of "
                          f"shape {list(y.shape)}", hint="report this: the plan and the tensor disagree")
    inner = int(math.prod(y.shape[axis + 1:]))
    return n // (chans * inner), chans, inner, n


def tile_eltwise(step: Step, net: ir.Network, budgets: Budgets, pack: bool = False) -> TilePlan:
    """Tiles of an element-wise step over its ``[outer][channels][inner]`` layout (eltwise_layout).

    Three tile shapes, mirrored by gf_tiled.c tile_geometry: ``planes`` < channels: a block of
    channels of one outer index (the cores split its channels; the block's parameter slice per tile);
    ``planes`` = k x channels: k whole outer indices (the cores split them, or the channels when k is
    1; every channel's parameters resident); ``planes`` 1: a run of ``elems`` elements inside one channel slice.
    """
    ins = [net.tensors[t] for t in step.inputs]
    y = net.tensors[step.output]
    ebs = [ELEM[t.dtype] for t in ins]
    eb_out = ELEM[y.dtype]
    outer, chans, inner, total = eltwise_layout(step, net)
    ps = param_spec(step, net)
    cores = budgets.hw.compute_cores

    # an input with fewer elements than the output is broadcast (mul): it stays resident in L1, whole
    resident = [k for k, t in zip(("in", "in2"), ins) if t.numel != total]

    def evaluate(planes, elems, single):
        whole = chans > 1 and planes >= chans  # whole [channels][inner] blocks: parameters resident
        if whole:
            per = planes // chans
            n_tiles = math.ceil(outer / per)
            tile_e, units = planes * inner, per if per > 1 else chans  # the cores split outer indices, or channels
            ptiles = [chans]
        elif planes > 1:
            n_tiles = outer * math.ceil(chans / planes)
            tile_e, units = planes * inner, planes
            ptiles = [min(planes, chans - c) for c in range(0, chans, planes)] * outer
        else:
            n_tiles = outer * chans * math.ceil(inner / elems)
            tile_e, units = elems, elems
            ptiles = [1] * n_tiles
        nbuf = 2 if n_tiles > 1 and not single else 1
        res = list(resident) + (["p"] if whole and ps.l1_bytes(chans) else [])
        run = {k: (t.numel if k in resident else tile_e) * eb for k, t, eb in zip(("in", "in2"), ins, ebs)}
        bufs = {"in": run["in"], "in2": run.get("in2", 0), "p": ps.l1_bytes(min(max(planes, 1), chans)),
                "out": tile_e * eb_out}
        l1 = sum((1 if k in res else nbuf) * align(v) for k, v in bufs.items() if v)
        dma = {"in": ins[0].numel * ebs[0], "in2": ins[1].numel * ebs[1] if len(ebs) > 1 else 0,
               "p": sum(ps.payload(pt, chans, min(max(planes, 1), chans)) for pt in ptiles),
               "out": total * eb_out}
        plan = TilePlan(step.output, "eltwise", {"planes": planes, "elems": tile_e},
                        [n_tiles], n_tiles, bufs, nbuf == 2, res, l1, dma, min(cores, units))
        busiest = n_tiles * math.ceil(units / cores) * math.ceil(tile_e / units)
        return plan, _objective(budgets.hw, plan, busiest)

    cands = []
    if chans > 1:
        cands += [(p, p * inner) for p in _candidates(chans) if p > 1]
        cands += [(k * chans, k * chans * inner) for k in _candidates(outer) if k > 1]
    cands += [(1, e) for e in _candidates(inner)]
    return _search(evaluate, cands, budgets.l1, f"{step.kind} '{step.output}'")


# -- rows ------------------------------------------------------------------------------
def rows_layout(step: Step, net: ir.Network) -> tuple[int, int]:
    """(rows, elements per row) of a rows step: the last ``axes`` axes (attribute, default 1) form a row."""
    x = net.tensors[step.inputs[0]]
    axes = int(step.attrs.get("axes", 1))
    n = int(math.prod(x.shape[len(x.shape) - axes:]))
    return x.numel // n, n


def tile_rows(step: Step, net: ir.Network, budgets: Budgets, pack: bool = False) -> TilePlan:
    """Runs of whole rows (tokens) per tile, split over the cores by rows; the step's parameter block
    (``Step.params``: tables, per-element multipliers) is loaded once and stays resident."""
    x, y = net.tensors[step.inputs[0]], net.tensors[step.output]
    rows, n = rows_layout(step, net)
    eb_in, eb_out = ELEM[x.dtype], ELEM[y.dtype]
    p_bytes = int(step.params.block().nbytes)
    cores = budgets.hw.compute_cores

    def evaluate(tr, single):
        n_tiles = math.ceil(rows / tr)
        nbuf = 2 if n_tiles > 1 and not single else 1
        bufs = {"in": tr * n * eb_in, "p": p_bytes, "out": tr * n * eb_out}
        l1 = nbuf * (align(bufs["in"]) + align(bufs["out"])) + align(p_bytes)
        dma = {"in": rows * n * eb_in, "p": p_bytes, "out": rows * n * eb_out}
        plan = TilePlan(step.output, "rows", {"rows": tr}, [n_tiles], n_tiles, bufs, nbuf == 2, ["p"], l1, dma,
                        min(cores, tr))
        busiest = sum(math.ceil(r / cores) for r in _tile_sizes(rows, tr)) * n
        return plan, _objective(budgets.hw, plan, busiest)

    return _search(evaluate, [(r,) for r in _candidates(rows)], budgets.l1, f"{step.kind} '{step.output}'")


# -- scan: runs of channels of the selective scan -----------------------------------------------
SCAN_HEAD = 24 * 8  # bytes of the parameter block's head (atomic_ops/scan.py ScanParams.block)
SCAN_RECORD = 4 * 8  # bytes of one channel's record [m3, m4, sh_y, o_y]


def scan_param_bytes(channels: int, n: int, entries: int) -> int:
    """L1 parameter bytes of a scan tile of ``channels`` channels (mirrors gf_tiled.c load_params): the head,
    the channels' records and their tables (N x entries int16 per channel)."""
    return SCAN_HEAD + channels * SCAN_RECORD + channels * n * entries * 2


def tile_scan(step: Step, net: ir.Network, budgets: Budgets, pack: bool = False) -> TilePlan:
    """Tiles of ``co`` of the D channels (a channel's L steps run in order within one core, the channels are
    independent): the tile loads the columns of its channels of delta and u ([L][D], 2-D strided), B and C
    ([L][N]) once for the layer (resident), the head of the parameter block with its channels' records and
    tables, and stores its columns of y; the cores split its channels."""
    sp = step.params
    d, n, steps, entries = sp.D, sp.N, sp.L, sp.entries
    op = net.op_by_name(step.main_op)
    ins = [net.tensors[t] for t in op.inputs]
    if any(ELEM[t.dtype] != 1 for t in ins):
        raise TilingError(f"scan '{step.output}': inputs must be 8-bit codes", hint="quantize delta, u, B, C to 8 bits")
    cores = budgets.hw.compute_cores

    def evaluate(tco, single):
        cos = _tile_sizes(d, tco)
        n_tiles = len(cos)
        nbuf = 2 if n_tiles > 1 and not single else 1
        bufs = {"in": steps * tco, "in2": steps * tco, "in3": steps * n, "in4": steps * n,
                "p": scan_param_bytes(tco, n, entries), "out": steps * tco}
        resident = ["in3", "in4"] + (["p"] if n_tiles == 1 else [])
        l1 = sum((1 if k in resident else nbuf) * align(v) for k, v in bufs.items())
        dma = {"in": steps * d, "in2": steps * d, "in3": steps * n, "in4": steps * n,
               "p": sum(scan_param_bytes(c, n, entries) for c in cos), "out": steps * d}
        plan = TilePlan(step.output, "scan", {"co": tco}, [n_tiles], n_tiles, bufs, nbuf == 2, resident, l1, dma,
                        min(cores, tco))
        return plan, _objective(budgets.hw, plan, sum(math.ceil(c / cores) for c in cos) * steps * n)

    return _search(evaluate, [(c,) for c in _candidates(d)], budgets.l1, f"scan '{step.output}'")


def fc_plan(step: Step) -> TilePlan:
    return TilePlan(step.output, "fc", {}, [], 0, {}, False, [], 0, {}, 0)


def runs_nothing(call, tp: TilePlan) -> bool:
    """An FC step that runs nothing (a view: its output is its input's bytes, in place; a conv fused into the
    pool after it: codegen/gap9/fusion.py)."""
    return tp.tiling == "fc" and (not call.kernel and call.kind != "quantize" or "into" in tp.fused)


TILERS = {"conv": tile_conv, "linear": tile_linear, "eltwise": tile_eltwise, "rows": tile_rows, "gemm": tile_gemm,
          "scan": tile_scan}


def tile_step(step: Step, net: ir.Network, budgets: Budgets, pack: bool = False, simd: bool = False) -> TilePlan:
    """Tile plan of one step by its op's tiling kind; ``pack``: sub-8-bit weights arrive packed
    (codegen/packing.py); ``simd``: the SIMD kernels (conv and matmul plan their work buffers)."""
    rule = registry().ir_ops[step.kind].tiling
    if rule is None:
        return fc_plan(step)
    if rule.kind in ("conv", "gemm"):
        return TILERS[rule.kind](step, net, budgets, pack, simd)
    return TILERS[rule.kind](step, net, budgets, pack)
