"""Docs generated from, or describing, a single source of truth stay in sync with it."""

import json

from conftest import REPO, run_tool

from gapforge.ops import registry
from gapforge.opsdoc import render


def test_supported_operations_doc_is_up_to_date():
    doc = (REPO / "docs" / "supported_operations.md").read_text()
    assert doc == render(), "run: python tools/generate_supported_operations_doc.py"
    r = run_tool("generate_supported_operations_doc", "--check")
    assert r.returncode == 0, r.stderr


def test_doc_lists_every_declared_operator():
    doc = render()
    reg = registry()
    for name in reg.ir_ops:
        assert f"### `{name}`" in doc
    for f in reg.frontends:
        assert f.name in doc


def test_stale_doc_is_detected(tmp_path):
    stale = tmp_path / "ops.md"
    stale.write_text("old\n")
    r = run_tool("generate_supported_operations_doc", "--check", "--out", str(stale))
    assert r.returncode == 1 and "out of date" in r.stderr


def test_network_info_doc_covers_every_schema_field():
    schema = json.loads((REPO / "gapforge/schema/network_info.schema.json").read_text())
    doc = (REPO / "docs" / "network_info.md").read_text()
    fields = set(schema["properties"])
    for d in ("tensor", "param", "op"):
        fields |= set(schema["$defs"][d]["properties"])
    missing = sorted(f for f in fields if f"`{f}`" not in doc)
    assert not missing, missing


def test_every_ir_op_has_a_reference_implementation():
    import atomic_ops
    for name, op in registry().ir_ops.items():
        assert op.reference in atomic_ops.registry(), name


def test_every_ir_op_declares_how_each_stage_runs_it():
    """One place per operator: the engine, the code generator and the GAP9 tiler read the declaration."""
    import re

    from codegen.gap9.program import tile_kernel
    from codegen.gap9.tiling import TILERS

    runtime_h = (REPO / "codegen/runtime/gf_runtime.h").read_text()
    gap9_h = (REPO / "codegen/runtime/gap9/gf_gap9.h").read_text()
    adapters = (REPO / "codegen/runtime/gap9/gf_tile_kernels.c").read_text()
    for name, op in registry().ir_ops.items():
        assert (op.sources is None) != (op.run is None), f"{name}: exactly one of sources / run"
        assert op.requantizes == (op.sources is not None), name
        assert op.fusion in ("head", "activation", "none"), name
        assert op.host + op.view + (op.call is not None) == 1, f"{name}: host, view or a device call"
        if op.tiling is not None:
            assert op.tiling.kind in TILERS and op.kernels, name
        for k in op.kernels:
            assert re.search(rf"\bvoid {k}\(", runtime_h), f"{name}: {k} not declared in gf_runtime.h"
            if op.tiling is not None:
                t = tile_kernel(k)
                assert f"void {t}(const gf_tile_args_t *a);" in gap9_h, f"{name}: {t} not declared in gf_gap9.h"
                assert re.search(rf"\bvoid {t}\(const gf_tile_args_t \*a\)", adapters), f"{name}: {t} not defined"


def test_every_ir_op_has_a_documented_shape_rule():
    for name, op in registry().ir_ops.items():
        assert op.infer_shapes is not None and op.infer_shapes.__doc__, name
