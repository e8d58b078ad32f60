"""Static activation arena: liveness intervals -> byte offsets, with the liveness lower bound.

Every step output of the plan is a buffer alive from the step that writes it to the last
step that reads it (inclusive, so a kernel's inputs and output never share bytes). A
reshape output is a view: it shares its input's buffer, which then lives as long as either.

The lower bound is ``max over steps of the bytes alive at that step``; no placement can use
less. Placement tries several greedy orders (the TFLite Micro "greedy by size" strategy and
variants) and keeps the smallest arena; when it exceeds the bound, ``MemoryPlan.gap_reason``
says which buffer could not be placed lower and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALIGN = 8  # bytes; int32/int64 accesses are naturally aligned


def align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass
class Buffer:
    name: str
    size: int  # bytes (unaligned)
    first: int  # first step index where it is alive (written)
    last: int  # last step index where it is read (inclusive)
    offset: int = -1
    aliases: list[str] = field(default_factory=list)  # tensors sharing this buffer (views)

    def overlaps_in_time(self, other: Buffer) -> bool:
        return not (self.last < other.first or other.last < self.first)


@dataclass
class MemoryPlan:
    buffers: dict[str, Buffer]  # buffer name -> buffer
    tensor_buffer: dict[str, str]  # tensor -> buffer name (views map to their base)
    arena_size: int
    lower_bound: int
    strategy: str
    gap_reason: str = ""

    def offset(self, tensor: str) -> int:
        return self.buffers[self.tensor_buffer[tensor]].offset

    def to_json(self) -> dict:
        return {
            "arena_bytes": self.arena_size,
            "liveness_lower_bound_bytes": self.lower_bound,
            "excess_bytes": self.arena_size - self.lower_bound,
            "strategy": self.strategy,
            "gap_reason": self.gap_reason,
            "alignment": ALIGN,
            "buffers": [{"name": b.name, "offset": b.offset, "size": b.size, "first_step": b.first,
                         "last_step": b.last, "tensors": [b.name] + b.aliases}
                        for b in sorted(self.buffers.values(), key=lambda b: (b.offset, b.first))],
        }


def lower_bound(buffers: list[Buffer]) -> int:
    if not buffers:
        return 0
    horizon = max(b.last for b in buffers) + 1
    return max(sum(align(b.size) for b in buffers if b.first <= t <= b.last) for t in range(horizon))


def _place(order: list[Buffer]) -> int:
    """First-fit placement in the given order; returns the arena size. Sets offsets."""
    placed: list[Buffer] = []
    for b in order:
        busy = sorted((p.offset, p.offset + align(p.size)) for p in placed if p.overlaps_in_time(b))
        off = 0
        for lo, hi in busy:
            if off + align(b.size) <= lo:
                break
            off = max(off, hi)
        b.offset = off
        placed.append(b)
    return max((b.offset + align(b.size) for b in placed), default=0)


_ORDERS = {
    "greedy-by-size": lambda bs: sorted(bs, key=lambda b: (-b.size, b.first)),
    "greedy-by-breadth": lambda bs: sorted(bs, key=lambda b: (-(b.size * (b.last - b.first + 1)), b.first)),
    "by-first-use": lambda bs: sorted(bs, key=lambda b: (b.first, -b.size)),
    "by-lifetime": lambda bs: sorted(bs, key=lambda b: (-(b.last - b.first), -b.size)),
}


def plan_arena(buffers: list[Buffer], views: dict[str, str] | None = None) -> MemoryPlan:
    """Place ``buffers`` (views: tensor -> base buffer it aliases) and compute the bound."""
    views = views or {}
    bound = lower_bound(buffers)
    best = None
    for name, order in _ORDERS.items():
        size = _place(order(list(buffers)))
        offsets = {b.name: b.offset for b in buffers}
        if best is None or size < best[0]:
            best = (size, name, offsets)
        if size == bound:
            break
    size, strategy, offsets = best
    for b in buffers:
        b.offset = offsets[b.name]
    tensor_buffer = {b.name: b.name for b in buffers}
    for t, base in views.items():
        tensor_buffer[t] = base
    plan = MemoryPlan({b.name: b for b in buffers}, tensor_buffer, size, bound, strategy)
    if size > bound:
        plan.gap_reason = _explain_gap(buffers, size, bound)
    _check_no_overlap(buffers)
    return plan


def _explain_gap(buffers: list[Buffer], size: int, bound: int) -> str:
    top = max(buffers, key=lambda b: b.offset + align(b.size))
    t_peak = max(range(max(b.last for b in buffers) + 1),
                 key=lambda t: sum(align(b.size) for b in buffers if b.first <= t <= b.last))
    return (f"arena exceeds the liveness bound by {size - bound} bytes: buffer '{top.name}' "
            f"({top.size} B, steps {top.first}-{top.last}) sits at offset {top.offset} because the buffers alive "
            f"with it leave no hole large enough below (peak liveness is at step {t_peak}); offsets are fixed "
            "for a buffer's whole lifetime, so fragmentation between lifetimes cannot always be avoided")


def _check_no_overlap(buffers: list[Buffer]) -> None:
    for i, a in enumerate(buffers):
        for b in buffers[i + 1:]:
            if a.overlaps_in_time(b):
                if a.offset < b.offset + align(b.size) and b.offset < a.offset + align(a.size):
                    raise AssertionError(f"arena overlap between {a.name} and {b.name}")
