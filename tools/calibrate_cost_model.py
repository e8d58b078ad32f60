#!/usr/bin/env python3
"""Fit the cost model's per-kernel instruction coefficients on measured counts; check on held-out networks.

Examples:
  python tools/calibrate_cost_model.py                                  (refit on the stored samples)
  python tools/profile_suite.py --synthetic all --targets rv32 gap9-qemu --fuse-pools off --out p_syn
  python tools/calibrate_cost_model.py --profile-run docs/profiles p_syn sweeps/transformer --write

Samples: every measured layer with a kernel: for rv32 its minstret, for gap9-qemu its critical path
on the cluster (the FC's share + the controller's + per barrier round the busiest core), with its
features (gapforge/characterize/model.py FEATURES: MACs, outputs, inputs, output rows,
padded-border outputs, tail-pixel MACs, tiles, a constant, MACs on the convolution kernels'
per-pixel path and channel-tail blocks, the per-pixel path's loop iterations, unpacked sub-8-bit
weights, pooling window reads, requantization paths; the busiest core's on the cluster) from the
graph walker, so the fitted model predicts from what an estimate knows. gap9-qemu adds
model.GAP9_EXTRA (rv32_work: the rv32 fit's instructions for the busiest core's share; task_first:
the first layer of each cluster task, model.task_starts, checked against the run's plan.json gap9.tasks)
and fits model.GAP9_FITTED only. The model and the samples are of the unfused GAP9 program
(tiling.GAP9_FUSE_POOLS): a run profiled with max pools fused into their convs (a kept plan.json with
gap9.fusions, or layers.csv rows with fused_into / fused_conv) is refused: profile with --fuse-pools off.
--profile-run reads
tools/profile_suite.py or tools/sweep.py outputs (layers.csv; the extracted networks under runs/,
or extracted here into --networks-dir when a run kept only its CSVs, as docs/profiles does);
without it the samples stored in gapforge/characterize/calibration/samples.csv (the calibration's
training data, written by --write) are refitted. One non-negative least-squares fit per kernel
minimises the relative error
on the training networks (--held-out names the others; they are never used for fitting); the
requantization paths and task_first have one coefficient shared by every kernel. Prints,
per target and kernel, the median and maximum relative error per layer on the held-out networks,
and (with --profile-run) checks that the model's DMA bytes and tiles equal gap9-emu's measured
ones (on the networks extracted for the fit). --write stores gapforge/characterize/calibration/<target>.json (coefficients, features,
training networks, the held-out error table) and samples.csv. Exit codes: 0 done; 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codegen import profile as prof_rows  # noqa: E402
from gapforge.characterize import model as cost  # noqa: E402
from gapforge.characterize import profiles, tiling  # noqa: E402
from gapforge.characterize.graph import walk_network_info  # noqa: E402
from gapforge.errors import EXIT_OK, ArgumentParser, GapforgeError, run_cli  # noqa: E402
from gapforge.fsutil import atomic_write_text  # noqa: E402

TARGETS = {"rv32": "instructions", "gap9-qemu": "critical_path_instructions"}
HELD_OUT = ["attention_core", "bn_cnn", "densenet_block", "implicit_add", "kws_conv1d", "lowbit_cnn", "padding_cnn",
            "per_channel_cnn", "resnet_block"]
TARGET_MEDIAN, TARGET_MAX = 0.10, 0.25
SAMPLES = cost.CALIBRATION_DIR / "samples.csv"
SAMPLE_COLUMNS = ["target", "network", "index", "layer", "kernel", "class", "measured", "tiles", "cores",
                  "task_first", *cost.FEATURES]


def network_dir(run: Path, net: str, extracted: Path) -> Path:
    """The extracted network of a run's layer rows: the run's own, else extracted into ``extracted``."""
    d = run / "runs" / net / "network"
    if (d / "network_info.json").is_file():
        return d
    d = extracted / net / "network"
    if (d / "network_info.json").is_file():
        return d
    from gapforge.characterize import calib_set, families
    from gapforge.modelsrc import list_test_networks

    job = {"name": net, "dir": str(d), "num_cases": 1}
    fam, _, size = net.partition("_")
    if net in calib_set.names():
        job["synthetic"] = net
    elif net in list_test_networks():  # before the families: transformer_multiblock is a regression network
        job["test_network"] = net
    elif fam in families.FAMILIES and size:
        job.update(family=fam, size=size)
    else:
        raise GapforgeError(f"{run}/runs/{net}/network: no extracted network, and '{net}' is neither a regression "
                            f"nor a synthetic calibration network (keep the run's runs/ directory)")
    res = prof_rows.prepare_network(job)
    if "error" in res:
        raise GapforgeError(f"{net}: extraction failed: {res['error']}")
    return d


FUSED = "measured with max pools fused into their convs; profile with --fuse-pools off to calibrate"


def refuse_fused(plan: Path, doc: dict) -> None:
    """A measured run planned with pool fusion (plan.json gap9.fusions non-empty) cannot calibrate the model: the
    samples and the model are of the unfused program (tiling.GAP9_FUSE_POOLS)."""
    if doc.get("gap9", {}).get("fusions"):
        raise GapforgeError(f"{plan}: {FUSED}")


def task_starts(network: Path, graph) -> frozenset[int]:
    """model.task_starts of a network's graph; where the gap9-qemu project that measured it is kept beside the
    extracted ``network`` (profile_suite's and sweep's runs/NET/), its plan.json gap9.tasks must agree (the model
    plans the tasks as the generator did)."""
    starts = cost.task_starts(graph)
    plan = network.parent / "gap9-qemu" / "plan.json"
    if plan.is_file():
        doc = json.loads(plan.read_text())
        refuse_fused(plan, doc)
        ran = frozenset(t["steps"][0] for t in doc.get("gap9", {}).get("tasks", []) if t["steps"])
        if ran != starts:
            raise GapforgeError(f"{plan}: the tasks start at steps {sorted(ran)}, the model plans {sorted(starts)} "
                                "(a run of another generator version?)")
    return starts


def samples(run: Path, layers: list[dict], target: str, extracted: Path | None = None) -> list[dict]:
    graphs: dict[str, object] = {}
    starts: dict[str, frozenset[int]] = {}
    out = []
    for r in layers:
        if r["target"] != target:
            continue
        if r.get("fused_into") or r.get("fused_conv"):  # a run's layers.csv without its projects (codegen/profile.py)
            raise GapforgeError(f"{layers_csv(run)}: {r['network']}/{r['name']} {FUSED}")
        if not r["kernel"] or not r[TARGETS[target]]:
            continue
        net = r["network"]
        if net not in graphs:
            d = network_dir(run, net, extracted or run / "runs")
            graphs[net] = walk_network_info(d)
            starts[net] = task_starts(d, graphs[net]) if target == "gap9-qemu" else frozenset()
        i = int(r["index"])
        node = graphs[net].nodes[i]
        tiles = int(r["tiles"]) if r["tiles"] else 1
        cores = int(r["cores_planned"]) if target == "gap9-qemu" and r["cores_planned"] else 1
        plan = None
        if target == "gap9-qemu":
            t = tiling.STRATEGIES["gap9"](graphs[net], i, None)
            plan = t.extra if "resident" in t.extra else None
        out.append({"target": target, "network": net, "index": int(r["index"]), "layer": r["name"],
                    "kernel": r["kernel"], "y": float(r[TARGETS[target]]), "tiles": tiles, "cores": cores,
                    "task_first": int(i in starts[net]), "x": cost.features(node, tiles, cores, plan),
                    "class": cost.kernel_class(node)})
    return out


def layers_csv(run: Path) -> Path:
    """The per-layer measurements of a run: profile_suite's layers.csv or sweep's FAMILY_layers.csv."""
    found = [run / "layers.csv"] if (run / "layers.csv").is_file() else sorted(run.glob("*_layers.csv"))
    if len(found) != 1:
        raise GapforgeError(f"{run}/layers.csv: missing (not a tools/profile_suite.py or tools/sweep.py output)")
    return found[0]


def write_samples(path: Path, data: list[dict]) -> None:
    rows = [{**{k: r[k] for k in ("target", "network", "index", "layer", "kernel", "class", "tiles", "cores",
                                  "task_first")},
             "measured": int(r["y"]), **{f: (int(v) if float(v).is_integer() else round(v, 4))
                                         for f, v in zip(cost.FEATURES, r["x"])}} for r in data]
    prof_rows.write_csv(path, SAMPLE_COLUMNS, rows)


def read_samples(path: Path, target: str) -> list[dict]:
    if not path.is_file():
        raise GapforgeError(f"{path}: missing (give --profile-run DIR to build the samples)")
    rows = prof_rows.read_csv(path)
    missing = [f for f in ("task_first", *cost.FEATURES) if rows and f not in rows[0]]
    if missing:
        raise GapforgeError(f"{path}: no column {missing[0]} (samples of an older feature set: rebuild them "
                            f"with --profile-run DIR --write)")
    return [{"target": target, "network": r["network"], "index": int(r["index"]), "layer": r["layer"],
             "kernel": r["kernel"], "class": r["class"], "y": float(r["measured"]), "tiles": int(r["tiles"]),
             "cores": int(r["cores"]), "task_first": int(r["task_first"]), "x": [float(r[f]) for f in cost.FEATURES]}
            for r in rows if r["target"] == target]


# one coefficient for every kernel: the same requantization code paths, the same per-task FC work
SHARED = ("rq_slow", "rq_amb", "task_first")


def with_gap9_extra(data: list[dict], rv32_kernels: dict) -> list[dict]:
    """gap9-qemu samples with model.GAP9_EXTRA appended to their features (rv32_work from ``rv32_kernels``)."""
    return [{**r, "x": r["x"] + cost.gap9_extra(r["kernel"], r["class"], r["x"], r["task_first"], rv32_kernels)}
            for r in data]


def fit(rows: list[dict]) -> list[float]:
    """Non-negative least squares on the relative error of ``rows`` (one kernel or class)."""
    import numpy as np
    from scipy.optimize import nnls

    a = np.array([[v / r["y"] for v in r["x"]] for r in rows])
    coef, _ = nnls(a, np.ones(len(rows)))
    return [float(c) for c in coef]


def fit_joint(rows: list[dict], field: str) -> dict[str, list[float]]:
    """One NNLS over every kernel at once: per-kernel coefficients for the kernel's own work and
    SHARED coefficients (the requantization paths, gf_requant.c, are the same code in every kernel),
    so a kernel with few samples still gets the requantization cost the others measure."""
    import numpy as np
    from scipy.optimize import nnls

    keys = sorted({r[field] for r in rows})
    gap9 = len(rows[0]["x"]) > len(cost.FEATURES)  # gap9-qemu: model.GAP9_FITTED only
    names = list(cost.FEATURES) + (list(cost.GAP9_EXTRA) if gap9 else [])
    fitted = [f in cost.GAP9_FITTED if gap9 else True for f in names]
    local = [i for i, f in enumerate(names) if f not in SHARED and fitted[i]]
    shared = [i for i, f in enumerate(names) if f in SHARED and fitted[i]]
    a = np.zeros((len(rows), len(keys) * len(local) + len(shared)))
    for j, r in enumerate(rows):
        b = keys.index(r[field]) * len(local)
        for n, i in enumerate(local):
            a[j, b + n] = r["x"][i] / r["y"]
        for n, i in enumerate(shared):
            a[j, len(keys) * len(local) + n] = r["x"][i] / r["y"]
    sol, _ = nnls(a, np.ones(len(rows)), maxiter=50 * a.shape[1])
    out = {}
    for kk, k in enumerate(keys):
        coef = [0.0] * len(names)
        for n, i in enumerate(local):
            coef[i] = float(sol[kk * len(local) + n])
        for n, i in enumerate(shared):
            coef[i] = float(sol[len(keys) * len(local) + n])
        out[k] = coef
    return out


def predict(coef, x) -> float:
    return max(0.0, sum(c * v for c, v in zip(coef, x)))


def calibrate(data: list[dict], held_out: list[str]) -> tuple[dict, list[dict]]:
    train = [r for r in data if r["network"] not in held_out]
    kernels = {}
    for field in ("kernel", "class"):
        coefs = fit_joint(train, field)
        for k in sorted(coefs):
            rows = [r for r in train if r[field] == k]
            kernels[k] = {"coef": coefs[k], "samples": len(rows),
                          "training_max_rel_error": round(max(abs(predict(coefs[k], r["x"]) - r["y"]) / r["y"]
                                                              for r in rows), 4)}
    errors = []
    for r in data:
        if r["network"] not in held_out:
            continue
        key = r["kernel"] if r["kernel"] in kernels else r["class"]
        if key not in kernels:
            continue
        p = predict(kernels[key]["coef"], r["x"])
        errors.append({**{k: r[k] for k in ("network", "layer", "kernel")}, "measured": r["y"], "predicted": round(p),
                       "rel_error": abs(p - r["y"]) / r["y"]})
    return kernels, errors


def dma_check(run: Path, layers: list[dict], extracted: Path | None = None) -> tuple[int, list[str]]:
    """Layers where the GAP9 model's bytes per level and tiles equal gap9-emu's measured ones (networks of the
    run's runs/, else of ``extracted``; networks in neither are skipped)."""
    gap9 = profiles.load("gap9")
    ok, bad = 0, []
    for net in sorted({r["network"] for r in layers if r["target"] == "gap9-emu"}):
        d = run / "runs" / net / "network"
        if not d.is_dir() and extracted is not None:
            d = extracted / net / "network"
        if not (d / "network_info.json").is_file():
            continue
        plan = d.parent / "gap9-emu" / "plan.json"
        if plan.is_file():
            refuse_fused(plan, json.loads(plan.read_text()))
        ests = cost.estimate(walk_network_info(d), gap9)
        measured = [r for r in layers if r["network"] == net and r["target"] == "gap9-emu"]
        for e, m in zip(ests, measured):
            if not m["tiling"] or m["tiling"] == "fc":
                continue
            same = e.tiles == int(m["tiles"]) and all(e.traffic[k] == int(m[k]) for k in prof_rows.DMA_KEYS)
            ok += same
            if not same:
                bad.append(f"{net}/{m['name']}")
    return ok, bad


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="calibrate_cost_model.py", description=__doc__.split("\n")[0],
                       epilog=__doc__.split("Examples:")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile-run", nargs="+", metavar="DIR", help="tools/profile_suite.py / tools/sweep.py "
                   "output directories (default: refit the stored samples, " + str(SAMPLES.name) + ")")
    p.add_argument("--networks-dir", metavar="DIR", help="where networks of runs without runs/ are extracted "
                   "(default: a temporary directory)")
    p.add_argument("--held-out", nargs="+", default=HELD_OUT, metavar="NET", help="networks never used for fitting")
    p.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    p.add_argument("--write", action="store_true", help="store the fit and the samples in "
                   "gapforge/characterize/calibration/")
    p.add_argument("--json", metavar="OUT", help="write the error table as JSON")
    args = p.parse_args(argv)
    import tempfile

    runs = [Path(r) for r in args.profile_run or []]
    for run in runs:
        layers_csv(run)
    tmp = tempfile.TemporaryDirectory(prefix="gf-calib-") if runs and not args.networks_dir else None
    extracted = Path(args.networks_dir) if args.networks_dir else (Path(tmp.name) if tmp else None)
    all_samples: list[dict] = []
    report = {}
    cache: dict[str, list[dict]] = {}

    def samples_of(target: str) -> list[dict]:
        if target not in cache:
            if runs:
                cache[target] = []
                for run in runs:
                    cache[target] += samples(run, prof_rows.read_csv(layers_csv(run)), target, extracted)
            else:
                cache[target] = read_samples(SAMPLES, target)
        return cache[target]

    rv32_kernels: dict = {}
    for target in sorted(args.targets, key=lambda t: t != "rv32"):  # rv32 first: gap9-qemu builds on it
        data = samples_of(target)
        all_samples += data
        if not data:
            print(f"{target}: no measured layers (run profile_suite with --targets {target})")
            continue
        nets = sorted({r["network"] for r in data})
        missing = sorted(set(args.held_out) - set(nets))
        if missing:
            raise GapforgeError(f"--held-out: {', '.join(missing)} not measured for {target} (add the run that has "
                                f"them to --profile-run)")
        if target == "gap9-qemu":  # the busiest core's work as the rv32 model counts it (model.GAP9_EXTRA)
            base = rv32_kernels.get("kernels")
            if base is None:
                base = calibrate(samples_of("rv32"), args.held_out)[0]
            data = with_gap9_extra(data, base)
        kernels, errors = calibrate(data, args.held_out)
        if target == "rv32":
            rv32_kernels["kernels"] = kernels
        e = [x["rel_error"] for x in errors]
        med, mx = statistics.median(e), max(e)
        print(f"\n{target}: {TARGETS[target]} per layer, fitted on {len(nets) - len(args.held_out)} networks "
              f"({len(data) - len(errors)} layers), checked on {len(args.held_out)} held-out networks "
              f"({len(errors)} layers)")
        print(f"  {'kernel':<18} {'layers':>6} {'median':>8} {'max':>8}")
        for k in sorted({x["kernel"] for x in errors}):
            ke = [x["rel_error"] for x in errors if x["kernel"] == k]
            print(f"  {k:<18} {len(ke):>6} {statistics.median(ke) * 100:>7.1f}% {max(ke) * 100:>7.1f}%")
        verdict = lambda v, t: "met" if v <= t else "MISSED"  # noqa: E731
        print(f"  {'all':<18} {len(e):>6} {med * 100:>7.1f}% {mx * 100:>7.1f}%   targets: median <= 10% "
              f"{verdict(med, TARGET_MEDIAN)}, max <= 25% {verdict(mx, TARGET_MAX)}")
        for x in sorted(errors, key=lambda x: -x["rel_error"])[:5]:
            print(f"    worst: {x['network']}/{x['layer']} ({x['kernel']}): measured {x['measured']:.0f}, "
                  f"predicted {x['predicted']}, {x['rel_error'] * 100:.1f}%")
        report[target] = {"median_rel_error": med, "max_rel_error": mx, "layers": errors}
        if args.write:
            doc = {"model": target, "measured": TARGETS[target],
                   "features": list(cost.FEATURES) + (list(cost.GAP9_EXTRA) if target == "gap9-qemu" else []),
                   "per_core_features": list(cost.PER_CORE) if target == "gap9-qemu" else [],
                   "fitted_features": list(cost.GAP9_FITTED) if target == "gap9-qemu" else list(cost.FEATURES),
                   "fitted_by": "tools/calibrate_cost_model.py (non-negative least squares on relative error)",
                   "training_networks": [n for n in nets if n not in args.held_out],
                   "held_out_networks": list(args.held_out),
                   "held_out_error": {"median": round(med, 4), "max": round(mx, 4), "layers": len(errors)},
                   "kernels": kernels}
            atomic_write_text(cost.CALIBRATION_DIR / f"{target}.json", json.dumps(doc, indent=1) + "\n")
            print(f"  wrote {cost.CALIBRATION_DIR / (target + '.json')}")
    if args.write and all_samples:
        write_samples(SAMPLES, all_samples)
        print(f"  wrote {SAMPLES} ({len(all_samples)} samples)")
    for run in runs:
        rows = prof_rows.read_csv(layers_csv(run))
        if any(r["target"] == "gap9-emu" for r in rows):
            ok, bad = dma_check(run, rows, extracted)
            print(f"\nGAP9 model vs gap9-emu measured ({run}): {ok} tiled layers with equal DMA bytes per level "
                  f"and tiles, {len(bad)} different" + (f" ({', '.join(bad[:5])})" if bad else ""))
            report.setdefault("dma_check", {}).setdefault("equal", 0)
            report["dma_check"]["equal"] += ok
            report["dma_check"].setdefault("different", []).extend(bad)
    if tmp is not None:
        tmp.cleanup()
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=1) + "\n")
    return EXIT_OK


if __name__ == "__main__":
    run_cli(main)
