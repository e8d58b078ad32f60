"""Arena planner, tested the TFLite Micro way: hand-computed offsets, real lifetimes, bounds, errors."""

import pytest
from conftest import REGRESSION

from codegen.memory import Buffer, align, lower_bound, plan_arena
from gapforge import ir
from gapforge.errors import GapforgeError
from gapforge.plan import build_plan


def test_hand_computed_chain():
    # a -> b -> c: a and b overlap at step 1, b and c at step 2
    bufs = [Buffer("a", 100, 0, 1), Buffer("b", 200, 1, 2), Buffer("c", 48, 2, 3)]
    plan = plan_arena(bufs)
    assert lower_bound(bufs) == align(100) + 200 == 304
    assert plan.arena_size == 304 and plan.gap_reason == ""
    off = {b.name: b.offset for b in bufs}
    assert off["b"] == 0 and off["a"] == 200 and off["c"] == 200  # a and c reuse the same bytes


def test_hand_computed_residual():
    # x is kept alive across the block (skip edge): x[0..3], y[1..2], z[2..3], out[3..4]
    bufs = [Buffer("x", 64, 0, 3), Buffer("y", 64, 1, 2), Buffer("z", 64, 2, 3), Buffer("out", 64, 3, 4)]
    plan = plan_arena(bufs)
    assert plan.lower_bound == 192 and plan.arena_size == 192


def test_fragmentation_is_reported_when_the_bound_is_missed():
    # Classic case where offsets fixed for a lifetime cannot reach the bound.
    bufs = [Buffer("a", 32, 0, 1), Buffer("b", 32, 1, 3), Buffer("c", 32, 0, 0), Buffer("d", 64, 2, 3),
            Buffer("e", 32, 3, 4), Buffer("f", 96, 4, 5)]
    plan = plan_arena(bufs)
    assert plan.arena_size >= plan.lower_bound
    if plan.arena_size > plan.lower_bound:
        assert "exceeds the liveness bound" in plan.gap_reason
    doc = plan.to_json()
    assert doc["excess_bytes"] == plan.arena_size - plan.lower_bound
    assert sorted(b["name"] for b in doc["buffers"]) == list("abcdef")


def _no_overlap(plan):
    bs = list(plan.buffers.values())
    for i, a in enumerate(bs):
        for b in bs[i + 1:]:
            if a.overlaps_in_time(b):
                assert a.offset + align(a.size) <= b.offset or b.offset + align(b.size) <= a.offset


@pytest.mark.parametrize("name", REGRESSION)
def test_real_network_lifetimes(name, extracted, tmp_path):
    from gapforge.inputs import select
    from tools.generate_golden_outputs import generate
    d = extracted(name)
    from codegen.program import build_program
    x, labels, what = select(d, None, 1)
    generate(d, x, labels, what, progress=False)
    plan = build_plan(ir.load(d))
    prog = build_program(plan, d / "test_cases" / "test_case_1")
    mem = prog.memory
    _no_overlap(mem)
    assert mem.arena_size >= mem.lower_bound
    assert mem.arena_size == mem.lower_bound or mem.gap_reason
    # every step output has a buffer; reshapes are views of their input's buffer
    for s in plan.steps:
        assert s.output in mem.tensor_buffer
        if s.kind == "reshape":
            assert mem.offset(s.output) == mem.offset(s.inputs[0])
    # a kernel never writes over one of its own inputs
    for c in prog.calls:
        if c.kernel:
            for o, t in zip(c.in_offsets, c.inputs):
                assert c.out_offset + c.out.bytes <= o or o + t.bytes <= c.out_offset


def test_missing_golden_is_a_clear_error(extracted, tmp_path):
    from codegen.program import build_program
    plan = build_plan(ir.load(extracted("mlp")))
    with pytest.raises(GapforgeError, match="no golden test case here"):
        build_program(plan, tmp_path / "nothing")
