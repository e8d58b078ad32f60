"""Independent cross-check: onnxruntime on Brevitas' QCDQ export vs the INT8 engine.

The export's QuantizeLinear outputs are exposed as graph outputs and matched to the engine's
requantize steps through the module path ONNX names carry
(``/<module/path>/<proxy>/export_handler[_k]/QuantizeLinear_output_0``; ``_k`` is the k-th call
of a shared quantizer).
"""

from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path

import numpy as np

_QL = re.compile(r"^/(?P<path>.*?)/(?P<proxy>act_quant|input_quant|output_quant)/export_handler(?:_(?P<k>\d+))?/"
                 r"QuantizeLinear_output_0$")


def export_qcdq(model, example, path: Path) -> Path:
    import torch
    from brevitas.export import export_onnx_qcdq

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            export_onnx_qcdq(model, example, export_path=str(path), dynamo=False)
    return path


def session(onnx_path: Path, expose_quantized: bool = True, fused: bool = False):
    """An onnxruntime session on the export (``expose_quantized``: every activation QuantizeLinear output is a graph
    output too); ``fused`` lets onnxruntime fuse the QDQ pairs into its own kernels (speed, not the graph's
    arithmetic: for benchmarks only)."""
    import onnx
    import onnxruntime as ort

    m = onnx.load(str(onnx_path))
    names = []
    if expose_quantized:
        for node in m.graph.node:
            if node.op_type == "QuantizeLinear" and _QL.match(node.output[0]):
                names.append(node.output[0])
                m.graph.output.append(onnx.helper.make_empty_tensor_value_info(node.output[0]))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # Basic (constant folding) only: the extended level fuses DequantizeLinear -> Gemm into ORT's own
    # integer kernels (onnxruntime 1.32 rounds the float bias of the last Gemm there), which is not the
    # QCDQ graph's arithmetic.
    if not fused:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess, names


def op_name_for(onnx_name: str) -> str | None:
    """The gapforge requantize op that corresponds to an exported QuantizeLinear output."""
    mt = _QL.match(onnx_name)
    if not mt:
        return None
    base = mt["path"].replace("/", ".")
    if mt["proxy"] != "act_quant":
        base += f".{mt['proxy']}"
    k = int(mt["k"]) if mt["k"] else 0
    return base if k == 0 else f"{base}.call{k + 1}"


def compare(model, engine, x: np.ndarray) -> dict:
    """Run both on ``x`` (batch); returns output equality and per-quantizer equality."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = export_qcdq(model, torch.from_numpy(x[:1]), Path(tmp) / "model.onnx")
        sess, qnames = session(path)
        in_name = sess.get_inputs()[0].name
        ort_out = [sess.run(None, {in_name: x[i:i + 1]}) for i in range(len(x))]
    ours_out, ints = engine.forward(x)
    step_of_op = {op: s.output for s in engine.plan.steps for op in s.ops}
    layers = {}
    for j, name in enumerate(qnames):
        op = op_name_for(name)
        if op not in step_of_op:
            layers[name] = None
            continue
        theirs = np.concatenate([o[1 + j] for o in ort_out]).astype(np.int64)
        ours = ints[step_of_op[op]].astype(np.int64)
        layers[step_of_op[op]] = int((theirs != ours).sum()) if theirs.shape == ours.shape else -1
    final = np.concatenate([o[0] for o in ort_out])
    return {"output_equal": bool(np.array_equal(final, ours_out)),
            "max_abs_output_diff": float(np.abs(final - ours_out).max()),
            "layers": layers}
