#!/usr/bin/env python3
"""Write a matrix or one element into one layer's parameter region of a built project; prove the layout map.

Examples:
  python tools/patch_params.py --project build/mlp/project_host --list
  python tools/patch_params.py --project build/mlp/project_host --layer relu1 --offset 3,5
  python tools/patch_params.py --project build/mlp/project_host --layer relu1 --index 3,5 --value -7
  python tools/patch_params.py --project build/mlp/project_host --layer relu1 --matrix W.npy
  python tools/patch_params.py --project build/lowbit/project_gap9 --probe --network build/lowbit --target gap9-emu

``--region`` picks the region (w weights, default; b bias; m requantization mantissas; sh shifts;
o offsets). The layout map (codegen/projectdata.py ``param_offset``) knows every layout the code
generator emits: int8 PyTorch order, packed 4 / 2-bit rows (gap9), and the same bytes streamed
from L3 in row chunks. A write is checked against the bit width, the device container and the
accumulator bounds, and rewrites params.bin and the manifest (CRCs) in one data/ rename; the
compiled program is untouched, and the golden files stay as they were (the program then reports
the layers the patch moved).

``--probe`` proves the map through the real compiled program, on a scratch copy of the data:
for ``--count`` elements of every weight and bias region it writes one element (single-hot: the
element is set to the far end of its range), predicts the patched layer's output on the host with
the INT8 engine of ``--network`` (the extracted network the project was made from, with the same
element changed; teacher-forced on the layer's golden inputs), runs the unchanged program, and
requires its output of that layer to equal the prediction exactly and the outputs it moved to be
exactly those predicted (all in the patched output channel); elements whose change no output shows
(a zero input, absorbed by rounding) are replaced by others and counted as unobservable. It also
corrupts one byte of params.bin and requires the program to refuse it at load.

Exit codes: 0 written / every probe landed where the map says; 1 a probe failed; 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codegen.projectdata import KINDS, ProjectData  # noqa: E402
from gapforge import ir  # noqa: E402
from gapforge.errors import EXIT_OK, EXIT_VERDICT, ArgumentParser, GapforgeError, run_cli  # noqa: E402
from gapforge.fsutil import atomic_write_text  # noqa: E402


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise GapforgeError(f"{flag} {text!r}: comma-separated integers expected, e.g. 3,5") from None


def list_layers(d: ProjectData) -> list[str]:
    lines = []
    for layer in d.layers():
        regs = []
        for kind in KINDS:
            try:
                r = d.region(layer, kind)
            except GapforgeError:
                continue
            regs.append(f"{kind} {list(d.shape(layer, kind))} @{r['offset']}+{r['size']}")
        lines.append(f"{layer}: {d.layout_kind(layer)}; " + ", ".join(regs))
    return lines


# -- the layout probe ------------------------------------------------------------------------
def _probe_value(cur: int, lo: int, hi: int) -> int:
    """The far end of the range from the current value (the largest change one element can make)."""
    return hi if cur - lo < hi - cur else lo


def layout_probe(project: Path, network: Path, target: str, count: int = 8, seed: int = 0,
                 progress: bool = True) -> dict:
    """Single-hot probes of every weight and bias region through the compiled program (see the module doc)."""
    from tqdm import tqdm

    from tools._datarun import DataRunner
    from tools.int8_inference import INT8InferenceEngine

    engine = INT8InferenceEngine(ir.load(network))
    steps = {s.output: s for s in engine.plan.steps}
    rng = np.random.default_rng(seed)
    report: dict = {"project": str(project), "target": target, "layers": [], "runs": 0}
    with DataRunner(project, target) as runner:
        base = runner.data()
        missing = [n for n in base.layers() if n not in steps]
        if missing:
            raise GapforgeError(f"{network}: the network has no step {missing[0]!r} of the project (not the network "
                                "the project was made from)")
        report["program_sha256"] = runner.sha256
        jobs = [(layer, kind) for layer in base.layers() for kind in ("w", "b")
                if f"{layer}" and _has(base, layer, kind)]
        bar = tqdm(total=len(jobs) * count, disable=not progress, desc="layout probe", unit="probe")
        for layer, kind in jobs:
            step = steps[layer]
            op = engine.net.op_by_name(step.main_op)
            pname = "weight" if kind == "w" else "bias"
            info = op.params[pname]
            orig = engine.net.param(op, pname)
            if not np.array_equal(orig.astype(np.int64), base.read_param(layer, kind)):
                raise GapforgeError(f"{network}: layer '{layer}' {pname} differs from the project's params.bin "
                                    "(not the network the project was made from, or patched since)")
            si = base.step_index(layer)
            inputs = [base.golden(t) for t in step.inputs]
            base_out = base.golden(si)
            lo, hi = (ir.int_range(info.bit_width, info.signed, info.narrow_range) if kind == "w"
                      else (-(1 << 20), 1 << 20))  # biases: a large change that stays far from int32 overflow
            rec = {"layer": layer, "region": kind, "layout": d_layout(base, layer, kind), "probes": 0,
                   "exact": 0, "unobservable": 0, "failures": [], "moved_outputs": 0}
            order = rng.permutation(orig.size)
            for flat in order:
                if rec["probes"] >= count or rec["unobservable"] > 8 * count:
                    break
                idx = tuple(int(i) for i in np.unravel_index(flat, orig.shape))
                v = _probe_value(int(orig[idx]), lo, hi)
                patched = orig.astype(np.int64).copy()
                patched[idx] = v
                engine.net.arrays[info.file] = patched.astype(orig.dtype)
                try:
                    pred = engine.run_step(step, inputs).astype(np.int64).reshape(-1)
                finally:
                    engine.net.arrays[info.file] = orig
                moved = np.flatnonzero(pred != base_out.reshape(-1))
                if moved.size == 0:
                    rec["unobservable"] += 1
                    continue
                d = runner.data()
                try:
                    loc = d.write_element(layer, kind, idx, v)
                except GapforgeError:  # this value would break a device bound: another element
                    rec["unobservable"] += 1
                    continue
                out = runner.run(d)
                rec["probes"] += 1
                bar.update(1)
                dev = np.asarray(out["values"].get(si, []), dtype=np.int64)
                shape = base_out.shape
                chans = set(np.unravel_index(moved, shape)[1].tolist()) if len(shape) > 1 else {0}
                problems = []
                if dev.size != pred.size:
                    problems.append(f"the program printed {dev.size} of {pred.size} values")
                else:
                    dmoved = np.flatnonzero(dev != base_out.reshape(-1))
                    if not np.array_equal(dev, pred):
                        problems.append(f"{int((dev != pred).sum())} outputs differ from the prediction")
                    if not np.array_equal(dmoved, moved):
                        problems.append(f"moved {dmoved.size} outputs, the map predicts {moved.size}")
                if kind in ("w", "b") and chans != {idx[0]}:
                    problems.append(f"the prediction moves channels {sorted(chans)}, not only {idx[0]}")
                if problems:
                    rec["failures"].append({"index": list(idx), "value": v, "byte": loc.byte, "bit": loc.bit,
                                            "problems": problems})
                else:
                    rec["exact"] += 1
                    rec["moved_outputs"] += int(moved.size)
            report["layers"].append(rec)
        bar.close()
        # one corrupted byte of params.bin is refused at load
        d = runner.data()
        d.save()
        path = d.data_dir / "params.bin"
        raw = bytearray(path.read_bytes())
        if raw:
            pos = int(rng.integers(len(raw)))
            raw[pos] ^= 0x01
            path.write_bytes(bytes(raw))
            from codegen import toolchains
            from tools.run_generated import _environ

            with _environ(runner.env):
                res = toolchains.run("host" if target == "gap9-emu" else target, runner.exe, cwd=d.data_dir,
                                     timeout=runner.timeout)
            refused = res.returncode == 2 and "GF CHECKSUM" in res.stdout and "GF LAYER" not in res.stdout
            report["corruption"] = {"byte": pos, "refused": refused,
                                    "message": next((ln for ln in res.stdout.splitlines() if "CHECKSUM" in ln and
                                                     "FAIL" in ln), "")}
        report["runs"] = runner.runs + 1
    report["passed"] = all(not r["failures"] and r["probes"] > 0 for r in report["layers"]) and \
        report.get("corruption", {"refused": True})["refused"]
    return report


def _has(d: ProjectData, layer: str, kind: str) -> bool:
    try:
        d.region(layer, kind)
        return True
    except GapforgeError:
        return False


def d_layout(d: ProjectData, layer: str, kind: str) -> str:
    return d.layout_kind(layer) if kind == "w" else "int32 [O]"


def format_probe(rep: dict) -> list[str]:
    lines = [f"{'layer':<28} {'region':<6} {'layout':<56} {'probes':>6} {'exact':>6} {'unobs.':>6} {'moved':>6}"]
    for r in rep["layers"]:
        lines.append(f"{r['layer']:<28} {r['region']:<6} {r['layout']:<56} {r['probes']:>6} {r['exact']:>6} "
                     f"{r['unobservable']:>6} {r['moved_outputs']:>6}")
        for f in r["failures"][:3]:
            lines.append(f"    FAILED index {f['index']} (byte {f['byte']} bit {f['bit']}): {'; '.join(f['problems'])}")
    c = rep.get("corruption")
    if c:
        lines.append(f"corrupted byte {c['byte']} of params.bin: " + (f"refused at load ({c['message']})" if c["refused"]
                                                                     else "NOT refused"))
    return lines


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="patch_params.py", description=__doc__.split("\n")[0],
                       epilog=__doc__.split("Examples:")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", required=True, metavar="PROJ", help="project made by tools/generate_c_code.py")
    p.add_argument("--list", action="store_true", help="list the layers, their regions and layouts")
    p.add_argument("--layer", metavar="NAME", help="the step (layer) whose region to write")
    p.add_argument("--region", default="w", choices=sorted(KINDS), help="w (default), b, m, sh or o")
    p.add_argument("--offset", metavar="I,J,...", help="print where this element lives (byte, bit)")
    p.add_argument("--index", metavar="I,J,...", help="write one element (with --value)")
    p.add_argument("--value", type=int, help="the element's new integer value")
    p.add_argument("--matrix", metavar="X.npy", help="write the whole region (integers in its logical shape)")
    p.add_argument("--probe", action="store_true", help="prove the layout map through the compiled program")
    p.add_argument("--network", metavar="DIR", help="--probe: the extracted network the project was made from")
    p.add_argument("--target", choices=("host", "rv32", "gap9-emu"), help="--probe: where to run the program")
    p.add_argument("--count", type=int, default=8, help="--probe: elements per region (default 8)")
    p.add_argument("--seed", type=int, default=0, help="--probe: which elements (default 0)")
    p.add_argument("--json-out", metavar="J", help="--probe: write the report as JSON")
    args = p.parse_args(argv)
    project = Path(args.project)
    if args.probe:
        if not args.network or not args.target:
            raise GapforgeError("--probe needs --network DIR and --target")
        if args.count < 1:
            raise GapforgeError("--count must be at least 1")
        rep = layout_probe(project, Path(args.network), args.target, args.count, args.seed)
        for line in format_probe(rep):
            print(line)
        if args.json_out:
            atomic_write_text(args.json_out, json.dumps(rep, indent=1) + "\n")
        total = sum(r["probes"] for r in rep["layers"])
        exact = sum(r["exact"] for r in rep["layers"])
        print(f"{'PASS' if rep['passed'] else 'FAIL'}: {exact}/{total} probes landed where the map says "
              f"({rep['runs']} runs of program sha256 {rep['program_sha256'][:16]}...)")
        return EXIT_OK if rep["passed"] else EXIT_VERDICT
    d = ProjectData(project)
    if args.list:
        for line in list_layers(d):
            print(line)
        return EXIT_OK
    if not args.layer:
        raise GapforgeError("give --layer NAME (or --list, or --probe)")
    if args.offset:
        loc = d.param_offset(args.layer, args.region, *_ints(args.offset, "--offset"))
        print(f"{args.layer}.{args.region}[{args.offset}]: params.bin byte {loc.byte}, bit {loc.bit}, {loc.bits} bits")
        return EXIT_OK
    if args.index is not None:
        if args.value is None:
            raise GapforgeError("--index needs --value")
        loc = d.write_element(args.layer, args.region, _ints(args.index, "--index"), args.value)
        what = f"{args.layer}.{args.region}[{args.index}] = {args.value} (byte {loc.byte}, bit {loc.bit})"
    elif args.matrix:
        from gapforge.inputs import load

        m = np.load(args.matrix, allow_pickle=False) if args.matrix.endswith(".npy") else load(args.matrix)
        d.write_param(args.layer, args.region, m)
        what = f"{args.layer}.{args.region} <- {args.matrix} {list(np.shape(m))}"
    else:
        raise GapforgeError("give --offset, --index with --value, or --matrix")
    d.save()
    print(f"written: {what}; {project}/data/params.bin and manifest.bin updated (golden files unchanged)")
    return EXIT_OK


if __name__ == "__main__":
    run_cli(main)
