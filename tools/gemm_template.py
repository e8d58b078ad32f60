#!/usr/bin/env python3
"""A GEMM engine from one compiled program: y = W x for many (W, x) by patching data, never recompiling.

Examples:
  python tools/gemm_template.py --in 64 --out 32 --pairs 100
  python tools/gemm_template.py --in 256 --out 64 --target rv32 --pairs 10 --dir build/gemm256

Builds once (in ``--dir``, default a temporary directory) a one-layer Brevitas model, an int8
QuantIdentity and a QuantLinear(N, M) without bias whose output is its int32 accumulator, through the
normal pipeline (tools/deploy.py stages: check, extract, golden, codegen, build, run bit-exact).
Then, for each of ``--pairs`` random pairs (W int8 in the weights' narrow range [-127, 127], x int8
in [-128, 127], seeded), it writes W into the layer's weight region and x into the input golden
file (codegen/projectdata.py), the exact product ``W @ x`` (int64 on the host, numpy) as the
expected output, runs the same compiled program (tools/_datarun.py) and reads y back from its
output (``GF VALUES``). Every pair must equal numpy's exact result element by element and the
program must report 0 mismatches; the program's SHA-256 is checked after every run.

Exit codes: 0 every product exact; 1 a product differed; 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gapforge.errors import EXIT_OK, EXIT_VERDICT, ArgumentParser, GapforgeError, run_cli  # noqa: E402

RUN_AS = {"host": "host", "rv32": "rv32", "gap9": "gap9-emu"}

MODEL = '''\
"""One QuantLinear({n}, {m}) without bias after an int8 QuantIdentity: the GEMM template of tools/gemm_template.py."""
import torch
import torch.nn as nn
import brevitas.nn as qnn
from brevitas.graph.calibrate import calibration_mode


class Gemm(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.fc = qnn.QuantLinear({n}, {m}, bias=False, weight_bit_width=8)

    def forward(self, x):
        return self.fc(self.quant_in(x))


def create_model():
    torch.manual_seed({seed})
    model = Gemm().eval()
    with torch.no_grad(), calibration_mode(model):
        model(torch.randn(16, {n}))
    return model.eval()


def example_input():
    return torch.randn(1, {n}, generator=torch.Generator().manual_seed({seed}))
'''


class GemmTemplate:
    """``GemmTemplate(n, m, target, root)`` builds the one-layer project; ``matmul(W, x)`` runs it on (W, x)."""

    def __init__(self, n: int, m: int, target: str = "host", root: str | Path | None = None, seed: int = 0):
        from tools._datarun import DataRunner
        from tools.deploy import Progress, run_pipeline

        if n < 1 or m < 1:
            raise GapforgeError("--in and --out must be at least 1")
        self.n, self.m, self.target = n, m, target
        self._tmp = None
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="gapforge-gemm-")
            root = self._tmp.name
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        model = self.root / f"gemm_{n}x{m}.py"
        model.write_text(textwrap.dedent(MODEL.format(n=n, m=m, seed=seed)), encoding="utf-8")
        from gapforge.modelsrc import load_model

        src = load_model(argparse.Namespace(model_file=str(model), test_network=None, model_class=None,
                                            input_shape=None, input_quant=None))
        t0 = time.perf_counter()
        summary = run_pipeline(src, self.root / "deploy", target, num_cases=1, fidelity_cases=1, skip_fidelity=True,
                               l1_budget=None, l2_budget=None, progress=Progress(quiet=True), inputs=None)
        if not summary["passed"]:
            raise GapforgeError(f"the GEMM template {n}x{m} did not deploy bit-exact on {target}: "
                                + "; ".join(summary.get("problems", [])[:3]))
        self.build_seconds = time.perf_counter() - t0
        self.project = self.root / "deploy" / f"project_{target}"
        self.runner = DataRunner(self.project, RUN_AS[target])
        base = self.runner.data()
        layers = base.layers()
        if len(layers) != 1 or base.shape(layers[0], "w") != (m, n):
            raise GapforgeError(f"{self.project}: expected one {m}x{n} weight region, found {layers}")
        self.layer = layers[0]
        self.out_step = base.step_index(self.layer)
        w = base.layout[self.layer]["params"]["weight"]
        from gapforge.ir import int_range

        self.w_range = int_range(w["bit_width"], w["signed"], w["narrow_range"])
        enc = base.layout[base.steps[0]["name"]]["output"]
        self.x_range = int_range(enc["bit_width"], enc["signed"], enc["narrow_range"])
        if base.steps[self.out_step]["dtype"] != "GF_S32":
            raise GapforgeError(f"{self.project}: the template's output is not its int32 accumulator")

    def matmul(self, w: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
        """(device y, host y = W @ x exact, parsed program output)."""
        w, x = np.asarray(w, dtype=np.int64), np.asarray(x, dtype=np.int64)
        if w.shape != (self.m, self.n) or x.shape != (self.n,):
            raise GapforgeError(f"W must be {self.m}x{self.n} and x of length {self.n}")
        want = w @ x  # exact: int64 and |y| <= n * 127 * 128
        d = self.runner.data()
        d.write_param(self.layer, "w", w)
        d.write_golden(0, x.reshape(1, -1))
        d.write_golden(self.out_step, want.reshape(1, -1))
        out = self.runner.run(d)
        got = np.asarray(out["values"].get(self.out_step, []), dtype=np.int64)
        return got, want, out

    def close(self) -> None:
        self.runner.close()
        if self._tmp is not None:
            self._tmp.cleanup()


def run_pairs(gemm: GemmTemplate, pairs: int, seed: int, progress: bool = True) -> dict:
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    (wlo, whi), (xlo, xhi) = gemm.w_range, gemm.x_range
    exact = 0
    bad = []
    t0 = time.perf_counter()
    for k in tqdm(range(pairs), disable=not progress, desc=f"gemm {gemm.m}x{gemm.n}", unit="pair"):
        w = rng.integers(wlo, whi + 1, size=(gemm.m, gemm.n))
        x = rng.integers(xlo, xhi + 1, size=gemm.n)
        got, want, out = gemm.matmul(w, x)
        mism = sum(layer.get("mismatches", 0) for layer in out["layers"])
        if got.shape == want.shape and np.array_equal(got, want) and mism == 0 and out["returncode"] == 0:
            exact += 1
        else:
            bad.append({"pair": k, "returncode": out["returncode"], "mismatches": mism,
                        "differing": int((got != want).sum()) if got.shape == want.shape else None})
    return {"n": gemm.n, "m": gemm.m, "target": gemm.target, "pairs": pairs, "exact": exact, "failures": bad,
            "build_seconds": round(gemm.build_seconds, 2), "seconds_per_pair": round((time.perf_counter() - t0) / max(pairs, 1), 4),
            "program_sha256": gemm.runner.sha256, "runs": gemm.runner.runs}


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="gemm_template.py", description=__doc__.split("\n")[0],
                       epilog=__doc__.split("Examples:")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--in", dest="n", type=int, required=True, metavar="N", help="input length (columns of W)")
    p.add_argument("--out", dest="m", type=int, required=True, metavar="M", help="output length (rows of W)")
    p.add_argument("--target", default="host", choices=sorted(RUN_AS), help="host (default), rv32 or gap9 (run on gap9-emu)")
    p.add_argument("--pairs", type=int, default=100, help="random (W, x) pairs (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the pairs (default 0)")
    p.add_argument("--dir", metavar="DIR", help="where to build the template (default: a temporary directory)")
    args = p.parse_args(argv)
    if args.pairs < 1:
        raise GapforgeError("--pairs must be at least 1")
    gemm = GemmTemplate(args.n, args.m, args.target, args.dir)
    try:
        rep = run_pairs(gemm, args.pairs, args.seed)
    finally:
        gemm.close()
    print(f"template {args.m}x{args.n} built once in {rep['build_seconds']} s; {rep['runs']} runs of program sha256 "
          f"{rep['program_sha256'][:16]}... ({rep['seconds_per_pair']} s per pair)")
    for f in rep["failures"][:5]:
        print(f"  pair {f['pair']}: exit {f['returncode']}, {f['mismatches']} mismatches, {f['differing']} values differ")
    ok = rep["exact"] == rep["pairs"]
    print(f"{'PASS' if ok else 'FAIL'}: {rep['exact']}/{rep['pairs']} products y = W x equal numpy's exact integers")
    return EXIT_OK if ok else EXIT_VERDICT


if __name__ == "__main__":
    run_cli(main)
