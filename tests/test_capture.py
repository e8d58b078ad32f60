"""Dataflow capture: the graph is the real dataflow of one forward pass."""

import brevitas.nn as qnn
import pytest
import torch
import torch.nn as nn
from brevitas.quant import Int32Bias
from conftest import source

from gapforge.capture import capture
from gapforge.errors import GapforgeError
from gapforge.ops import registry


def _graph(model, shape=(1, 1, 8, 8)):
    torch.manual_seed(0)
    return capture(model.eval(), (torch.randn(*shape),), registry().is_leaf)


def _edges(graph):
    """{node name: [names of the nodes producing its inputs]}"""
    out = {}
    for n in graph.nodes:
        prods = []
        for a in n.inputs:
            p = graph.activations[a].producer
            prods.append("<input>" if p is None else graph.nodes[p].name)
        out[n.name] = prods
    return out


class ImplicitOps(nn.Module):
    """Residual `x + y` and `torch.cat` written as plain Python in forward()."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(return_quant_tensor=True)
        self.a = qnn.QuantConv2d(1, 4, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.ra = qnn.QuantReLU(return_quant_tensor=True)
        self.b = qnn.QuantConv2d(4, 4, 3, padding=1, bias=True, bias_quant=Int32Bias)
        self.rs = qnn.QuantReLU(return_quant_tensor=True)

    def forward(self, x):
        x = self.q(x)
        y = self.ra(self.a(x))
        z = self.ra(self.b(y))  # the same module called twice (shared quantizer)
        s = self.rs(y + z)
        c = torch.cat([s, self.rs(y)], dim=1)
        return c.flatten(1)


def test_implicit_add_cat_and_shared_module_are_captured_as_dataflow():
    g = _graph(ImplicitOps())
    names = [n.name for n in g.nodes]
    assert names == ["q", "a", "ra", "b", "ra.call2", "add", "rs", "rs.call2", "cat", "flatten"]
    e = _edges(g)
    assert e["add"] == ["ra", "ra.call2"]  # operands: both calls of the shared module
    assert e["rs.call2"] == ["ra"]  # the skip edge goes to the first call, not the second
    assert e["cat"] == ["rs", "rs.call2"]
    assert e["q"] == ["<input>"]
    add = next(n for n in g.nodes if n.name == "add")
    assert add.kind == "function" and add.location and add.location.startswith("test_capture.py:")
    assert g.outputs == g.nodes[-1].outputs


def test_shapes_come_from_the_run():
    g = _graph(ImplicitOps())
    shapes = {n.name: list(g.activations[n.outputs[0]].shape) for n in g.nodes}
    assert shapes["cat"] == [1, 8, 8, 8]
    assert shapes["flatten"] == [1, 512]


def test_quant_tensor_metadata_is_recorded():
    g = _graph(ImplicitOps())
    ra = next(n for n in g.nodes if n.name == "ra")
    meta = g.activations[ra.outputs[0]].quant
    assert meta is not None and meta.bit_width == 8 and meta.signed is False
    # the quantizer proxies inside a leaf are recorded with their outputs
    assert any(m for m in ra.proxy_meta.values())


class InPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity()
        self.c = qnn.QuantConv2d(1, 2, 1, bias=False, input_quant=None)

    def forward(self, x):
        x = self.q(x)
        y = self.c(x)
        y += 1.0  # in-place op on an activation: a new version of the same tensor object
        return torch.relu_(y)


def test_in_place_ops_create_new_versions():
    g = _graph(InPlace())
    names = [n.type_name for n in g.nodes]
    assert names == ["QuantIdentity", "QuantConv2d", "add", "relu"]
    outs = [n.outputs[0] for n in g.nodes]
    assert len(set(outs)) == 4  # four distinct activations although two share a tensor object
    conv_out, add_out = g.activations[outs[1]].value, g.activations[outs[2]].value
    assert torch.allclose(add_out, conv_out + 1.0)  # the stored snapshot predates the in-place add


def test_forward_failure_is_reported_with_module_path():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Sequential(nn.Identity(), nn.Linear(3, 2))

        def forward(self, x):
            return self.inner(x)

    with pytest.raises(GapforgeError, match=r"the example input has shape \[1, 1, 8, 8\], but module 'inner.1' "
                       r"\(Linear\) expects 3 features on its last axis and receives it"):
        _graph(Broken())  # a layer the input does not fit: the shapes, not torch's message

    class Raising(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Sequential(nn.Identity(), nn.Unflatten(1, (3, 5)))

        def forward(self, x):
            return self.inner(x)

    with pytest.raises(GapforgeError, match=r"forward pass failed inside module 'inner.1' at test_capture.py:\d+ "
                       r"\(return self.inner\(x\)\): RuntimeError: .* \(the example input has shape \[1, 1, 8, 8\]\)"):
        _graph(Raising())


def test_training_mode_is_refused():
    m = ImplicitOps().train()
    with pytest.raises(GapforgeError, match="training mode"):
        capture(m, (torch.randn(1, 1, 8, 8),), registry().is_leaf)


def _node_inputs(src, node_name):
    g = capture(src.model, src.example_inputs, registry().is_leaf)
    return _edges(g)[node_name], g


def test_resnet_block_residual_edge():
    src = source("resnet_block")
    g = capture(src.model, src.example_inputs, registry().is_leaf)
    adds = [n for n in g.nodes if n.type_name == "add"]
    assert len(adds) == 1
    prods = _edges(g)[adds[0].name]
    # one operand comes from the block body, the other is the block input (the skip edge)
    assert len(prods) == 2 and prods[0] != prods[1]
    assert all(g.nodes[g.activations[a].producer].kind == "module" for a in adds[0].inputs)


def test_densenet_block_concat_edges():
    src = source("densenet_block")
    g = capture(src.model, src.example_inputs, registry().is_leaf)
    cats = [n for n in g.nodes if n.type_name == "cat"]
    assert len(cats) >= 2
    # the second concatenation consumes the output of the first one (dense connectivity)
    first_out = cats[0].outputs[0]
    assert first_out in cats[1].inputs


class QuantTensorTimesTensor(nn.Module):
    """``a @ b`` with ``a`` a QuantTensor and ``b`` a plain tensor: Python calls ``b.__rmatmul__(a)``."""

    def __init__(self):
        super().__init__()
        self.a = qnn.QuantIdentity(return_quant_tensor=True)
        self.b = qnn.QuantIdentity()

    def forward(self, x):
        return self.a(x) @ self.b(x).transpose(1, 2)


def test_reflected_matmul_keeps_the_operand_order_the_user_wrote():
    g = _graph(QuantTensorTimesTensor(), shape=(1, 4, 8))
    (mm,) = [n for n in g.nodes if n.name.startswith("matmul")]
    assert _edges(g)[mm.name] == ["a", "transpose"]
    assert list(g.activations[mm.outputs[0]].shape) == [1, 4, 4]
