"""network_info.json validation: invalid or truncated files give one line naming the field."""

import json
import shutil

import pytest
from conftest import run_tool

from gapforge import ir
from gapforge.errors import GapforgeError


@pytest.fixture
def doc(extracted, tmp_path):
    d = tmp_path / "net"
    shutil.copytree(extracted("resnet_block"), d)
    return d, json.loads((d / "network_info.json").read_text())


def _write(d, doc):
    (d / "network_info.json").write_text(json.dumps(doc))


def _error(d) -> str:
    with pytest.raises(GapforgeError) as err:
        ir.load(d)
    msg = err.value.one_line()
    assert "\n" not in msg
    return msg


def test_valid_file_loads(doc):
    d, _ = doc
    net = ir.load(d)
    assert net.name == "resnet_block" and net.ops


def test_truncated_file(doc):
    d, _ = doc
    text = (d / "network_info.json").read_text()
    (d / "network_info.json").write_text(text[: len(text) // 2])
    assert "not valid JSON" in _error(d) and "truncated" in _error(d)


@pytest.mark.parametrize("mutate, field", [
    (lambda j: j.pop("ops"), "'<root>'"),
    (lambda j: j.__setitem__("schema_version", 2), "'schema_version'"),
    (lambda j: j["tensors"]["quant_in"].__setitem__("scale", -1.0), "'tensors.quant_in.scale'"),
    (lambda j: j["tensors"]["quant_in"].__setitem__("kind", "weird"), "'tensors.quant_in.kind'"),
    (lambda j: j["tensors"]["quant_in"].pop("bit_width"), "'tensors.quant_in'"),
    (lambda j: j["ops"][1]["attrs"].__setitem__("stride", [1]), "'ops[1].attrs.stride'"),
    (lambda j: j["ops"][1].__setitem__("type", "conv3d"), "'ops[1].type'"),
    (lambda j: j["ops"][1]["inputs"].__setitem__(0, "nope"), "'ops[1].inputs[0]'"),
    (lambda j: j["ops"].reverse(), "used before it is produced"),
    (lambda j: j["outputs"].__setitem__(0, "input"), "'outputs[0]'"),
    (lambda j: j["ops"][1]["params"]["weight"].__setitem__("file", "../etc/passwd"), "'ops[1].params.weight.file'"),
])
def test_invalid_fields_are_named(doc, mutate, field):
    d, j = doc
    mutate(j)
    _write(d, j)
    msg = _error(d)
    assert field in msg, msg
    assert msg.startswith(str(d / "network_info.json"))


def test_weight_file_mismatch_is_reported(doc):
    d, j = doc
    net = ir.load(d)
    op = next(o for o in net.ops if "weight" in o.params)
    path = d / op.params["weight"].file
    import numpy as np
    np.save(path, np.zeros((1, 2), dtype=np.int8))
    with pytest.raises(GapforgeError, match="does not match network_info.json"):
        ir.load(d)  # every weight file is read and checked when the network is loaded


def test_cli_reports_bad_file_without_traceback(doc):
    d, _ = doc
    (d / "network_info.json").write_text('{"format": "gapforge-network-info"')
    r = run_tool("generate_golden_outputs", "--network", str(d))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "not valid JSON" in r.stderr


def test_shape_rules_agree_with_pytorch():
    """conv2d / pooling shape rules (gapforge/ops/*.py infer_shapes) against PyTorch on random configurations."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from gapforge.ops import registry

    ops = registry().ir_ops
    rng = np.random.default_rng(0)
    for _ in range(300):
        c, g = int(rng.integers(1, 4)), int(rng.choice([1, 2]))
        h, w = (int(v) for v in rng.integers(1, 12, 2))
        k = [int(v) for v in rng.integers(1, 5, 2)]
        s = [int(v) for v in rng.integers(1, 4, 2)]
        d = [int(v) for v in rng.integers(1, 3, 2)]
        p = [int(rng.integers(0, (kk + 1) // 2 + 1)) for kk in k]
        pads = [p[0], p[1], p[0], p[1]]
        x = torch.zeros(1, c * g, h, w)
        wt = torch.zeros(4 * g, c, *k)
        attrs = {"kernel_size": k, "stride": s, "padding": pads, "dilation": d, "groups": g}
        try:
            want = list(F.conv2d(x, wt, stride=s, padding=p, dilation=d, groups=g).shape)
        except RuntimeError:
            want = None
        try:
            got = ops["conv2d"].infer_shapes([list(x.shape)], attrs, {"weight": list(wt.shape)})[0]
        except ValueError:
            got = None
        assert got == want, (attrs, list(x.shape))
        p = [min(pp, kk // 2) for pp, kk in zip(p, k)]  # PyTorch's pooling limit
        pads = [p[0], p[1], p[0], p[1]]
        for ceil in (False, True):
            try:
                want = list(F.max_pool2d(x, k, s, p, ceil_mode=ceil).shape)
            except RuntimeError:
                want = None
            try:
                got = ops["maxpool2d"].infer_shapes(
                    [list(x.shape)], {"kernel_size": k, "stride": s, "padding": pads, "ceil_mode": ceil}, {})[0]
            except ValueError:
                got = None
            assert got == want, (k, s, p, ceil, list(x.shape))
        try:
            want = list(F.avg_pool2d(x, k, s, p).shape)
        except RuntimeError:
            want = None
        try:
            got = ops["avgpool2d"].infer_shapes([list(x.shape)], {"kernel_size": k, "stride": s, "padding": pads,
                                                                 "divisor": 1}, {})[0]
        except ValueError:
            got = None
        assert got == want, (k, s, p, list(x.shape))
