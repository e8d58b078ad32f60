"""Which max pools the GAP9 cluster runs fused into the convolution before them (``--fuse-pools``).

A max pool is a cheap layer whose cost on the cluster is mostly fixed (its DMA in and out, its code
fetched into a cold instruction cache, its barriers). Fused, the convolution computes its output tile
into L1 as before, the cores max-pool that tile in L1 and only the pooled tile is stored: one cluster
layer instead of two, and the conv's output never leaves L1. Exact by construction (the max of the same
integers).

A maxpool2d step is fused into step ``i - 1`` when (``pool_fusions``):

* step ``i - 1`` is a conv2d (any groups) whose 8-bit output only this pool reads and is not a
  network output;
* the pool's window equals its stride, it has no padding, and the conv's map is a whole number of
  windows in both directions (no remainder, ceil mode or not), and it has no requantization of its own.

The decision is made once here and recorded in the tile plans (``TilePlan.fused``: the pool's step
carries the fused layer, its tiles the conv's in whole pool windows; the conv's step runs nothing);
the placement, the layer descriptors (gf_layer_t pool_kh / pool_kw / buf_mid), the executor
(gf_tiled.c), the step table (gf_step_t.fused), plan.json and results.json all read it from there.
"""

from __future__ import annotations

from gapforge.plan import Plan

MODES = ("on", "off")


def pool_fusions(plan: Plan) -> dict[int, int]:
    """pool step index -> conv step index, for every max pool the cluster runs fused (module docstring)."""
    net = plan.net
    readers: dict[str, int] = {}
    for s in plan.steps:
        for t in set(s.inputs):
            readers[t] = readers.get(t, 0) + 1
    out = {}
    for i, pool in enumerate(plan.steps):
        if i == 0 or pool.kind != "maxpool2d" or pool.requant is not None or len(pool.inputs) != 1:
            continue
        conv = plan.steps[i - 1]
        if conv.kind != "conv2d" or pool.inputs[0] != conv.output or readers.get(conv.output) != 1 \
                or conv.output in net.outputs:
            continue
        a = pool.attrs
        y, z = net.tensors[conv.output], net.tensors[pool.output]
        if y.dtype not in ("int8", "uint8") or z.dtype != y.dtype or len(y.shape) != 4:
            continue
        kh, kw = a["kernel_size"]
        if list(a["stride"]) != [kh, kw] or any(a["padding"]) or y.shape[2] % kh or y.shape[3] % kw \
                or list(z.shape) != [y.shape[0], y.shape[1], y.shape[2] // kh, y.shape[3] // kw]:
            continue
        out[i] = i - 1
    return out
