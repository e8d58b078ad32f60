#!/usr/bin/env python3
"""Run generated projects and write measured profiles: tests.csv, layers.csv, subops.csv.

Examples:
  python tools/profile_suite.py --out profiles/run1
  python tools/profile_suite.py --networks simple_cnn resnet_block --targets rv32 gap9-emu gap9-qemu --out p2
  python tools/profile_suite.py --model-file my_model.py --targets gap9-qemu --l1-budget 16K --out p3
  python tools/profile_suite.py --synthetic all --targets rv32 gap9-qemu --fuse-pools off --out p5
                                                                          (calibration layers)
  python tools/profile_suite.py --networks simple_cnn resnet18 --targets gap9-emu gvsoc --out p6
  python tools/profile_suite.py --targets gvsoc --platform siracusa --kernels simd --out p7
  python tools/profile_suite.py --scheduler tcp://10.0.0.5:8786 --out p4     (an existing dask cluster)

Each network (regression networks by name, or model files) is extracted once with one golden case,
then generated and run on every target as an independent job (dask.distributed: a LocalCluster on
this machine by default, --workers 0 to run serially here, --scheduler ADDRESS for an existing
cluster; the CSVs are the same whatever the worker count). Targets: host, rv32 (exact QEMU
instruction counts), gap9-emu (measured DMA bytes, tiles, L1/L2/L3 peaks), gap9-qemu (the gap9
program on rv32: per-core instruction counts as well), gvsoc (the gap9 project's pulp-sdk build on
the user's gvsoc siracusa, from PULP_SDK_HOME, GVSOC and PULP_RISCV_GCC_TOOLCHAIN: the fabric
controller's cycles per step, the executor's DMA counters). Columns: codegen/profile.py. --fuse-pools
(gap9 targets; default on, as the generator): off runs every max pool as its own layer, as the cost
model's calibration needs (tools/calibrate_cost_model.py refuses fused runs).

DIR/tests.csv: per network and target: pass/fail, MACs, instructions (or host time), MAC per
instruction, params, arena, L1/L2/L3 peaks, DMA bytes and commands, tiles; gap9 targets: the timed
inference pass after the verified one (gvsoc: its FC cycles and MAC per FC cycle beside the verified pass's
per-step sum; gap9-qemu: its instructions; whether its outputs matched).
DIR/layers.csv: per layer: kind, kernel, MACs, instructions, busiest core, DMA bytes in/out, tiles,
L1 buffers, cores. DIR/subops.csv: the phases inside a layer the runtime can tell apart.
DIR/runs/NETWORK/TARGET/: the generated projects and their results.json. DIR is written atomically.

Exit codes: 0 every run passed; 1 a run failed (its row says why); 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codegen import profile  # noqa: E402
from codegen.gap9.hw import add_platform_flag  # noqa: E402
from codegen.generate import FUSE_POOLS, KERNELS  # noqa: E402
from gapforge.errors import EXIT_OK, EXIT_VERDICT, ArgumentParser, GapforgeError, run_cli  # noqa: E402
from gapforge.fsutil import atomic_directory  # noqa: E402
from gapforge.jobs import run_jobs  # noqa: E402
from gapforge.modelsrc import list_test_networks  # noqa: E402
from tools.generate_c_code import _budget  # noqa: E402

DEFAULT_TARGETS = ["host", "rv32", "gap9-emu"]


def default_networks() -> list[str]:
    return [n for n in list_test_networks() if not n.startswith("thirdparty_")]


def network_jobs(names: list[str], model_files: list[str], root: Path, synthetic: list[str] = ()) -> list[dict]:
    jobs = []
    for n in synthetic:
        jobs.append({"name": n, "synthetic": n, "dir": str(root / n / "network"), "num_cases": 1})
    for n in names:
        jobs.append({"name": n, "test_network": n, "dir": str(root / n / "network"), "num_cases": 1})
    for f in model_files:
        p = Path(f)
        if not p.is_file():
            raise GapforgeError(f"--model-file {f}: no such file")
        jobs.append({"name": p.stem, "model_file": str(p.resolve()), "dir": str(root / p.stem / "network"),
                     "num_cases": 1})
    seen = set()
    for j in jobs:
        if j["name"] in seen:
            raise GapforgeError(f"network '{j['name']}' given twice")
        seen.add(j["name"])
    return jobs


def run_suite(jobs: list[dict], targets: list[str], root: Path, *, l1_budget=None, l2_budget=None, platform=None,
            kernels: str = "portable", fuse_pools: str = "on", scheduler: str | None = None, workers: int | None = None, quiet: bool = False) -> dict[str, list[dict]]:
    """Run everything; returns {"tests.csv": rows, "layers.csv": rows, "subops.csv": rows}."""
    prepared = run_jobs(profile.prepare_network, jobs, scheduler=scheduler, workers=workers,
                        desc="extract+golden", quiet=quiet)
    runs, tests = [], {}
    for p in prepared:
        for t in targets:
            if "error" in p:
                tests[(p["name"], t)] = profile.failed_test_row(p["name"], t, p["error"])
            else:
                runs.append({"name": p["name"], "dir": p["dir"], "target": t,
                             "project": str(root / p["name"] / t), "l1_budget": l1_budget, "l2_budget": l2_budget,
                             "platform": platform, "kernels": kernels, "fuse_pools": fuse_pools})
    results = run_jobs(profile.run_target, runs, scheduler=scheduler, workers=workers, desc="build+run",
                       quiet=quiet)
    layers, subops = [], []
    for r in results:
        tests[(r["test"]["network"], r["test"]["target"])] = r["test"]
        layers += r["layers"]
        subops += r["subops"]
    order = {(j["name"], t): i for i, (j, t) in enumerate((j, t) for j in jobs for t in targets)}
    return {"tests.csv": [tests[k] for k in sorted(tests, key=order.__getitem__)], "layers.csv": layers,
            "subops.csv": subops}


def write(out: Path, tables: dict[str, list[dict]]) -> None:
    for name, data in tables.items():
        profile.write_csv(out / name, profile.COLUMNS[name], data)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="profile_suite.py", description=__doc__.split("\n")[0],
                       epilog=__doc__.split("Examples:")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", nargs="+", metavar="NAME", help="regression networks (default: every one "
                   "that is not third-party, unless --model-file is given)")
    p.add_argument("--model-file", nargs="+", default=[], metavar="F", help="model files (create_model(), example_input())")
    p.add_argument("--synthetic", nargs="+", default=[], metavar="NAME", help="synthetic calibration networks "
                   "(gapforge/characterize/calib_set.py; 'all' for every one)")
    p.add_argument("--targets", nargs="+", default=DEFAULT_TARGETS, choices=profile.RUN_TARGETS)
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--l1-budget", metavar="BYTES", help="gap9: L1 budget for tiles (e.g. 16K)")
    p.add_argument("--l2-budget", metavar="BYTES", help="gap9: L2 budget")
    add_platform_flag(p, "gap9-emu/gap9-qemu/gvsoc runs")
    p.add_argument("--kernels", default="portable", choices=list(KERNELS),
                   help="gap9-emu/gap9-qemu/gvsoc runs: the cluster's portable C kernels (default) or the SIMD "
                        "convolution, linear and matmul kernels (plan.json generate.kernels records it)")
    p.add_argument("--fuse-pools", default="on", choices=list(FUSE_POOLS),
                   help="gap9-emu/gap9-qemu/gvsoc runs: max pools fused into the conv before them (default on, as "
                        "the generator; off to calibrate the cost model, docs/characterize.md)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="dask scheduler of an existing cluster")
    p.add_argument("--workers", type=int, metavar="N", help="LocalCluster workers (default: the cores; 0: serial)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.workers is not None and args.workers < 0:
        raise GapforgeError("--workers: must be >= 0")
    if "gvsoc" in args.targets:  # the user's installation (PULP_SDK_HOME, GVSOC, ...), refused before any work
        from codegen import gvsoc

        gvsoc.find_installation()
    from gapforge.characterize import calib_set

    synthetic = calib_set.names() if args.synthetic == ["all"] else args.synthetic
    bad = sorted(set(synthetic) - set(calib_set.names()))
    if bad:
        raise GapforgeError(f"--synthetic: unknown {', '.join(bad)} (available: {', '.join(calib_set.names())}, or all)")
    names = args.networks if args.networks is not None else \
        ([] if args.model_file or synthetic else default_networks())
    unknown = sorted(set(names) - set(list_test_networks()))
    if unknown:
        raise GapforgeError(f"--networks: unknown {', '.join(unknown)} (available: {', '.join(list_test_networks())})")
    l1, l2 = _budget(args.l1_budget, "--l1-budget"), _budget(args.l2_budget, "--l2-budget")
    with atomic_directory(args.out) as tmp:
        jobs = network_jobs(names, args.model_file, tmp / "runs", synthetic)
        tables = run_suite(jobs, args.targets, tmp / "runs", l1_budget=l1, l2_budget=l2, platform=args.platform,
                           kernels=args.kernels, fuse_pools=args.fuse_pools, scheduler=args.scheduler,
                         workers=args.workers, quiet=args.quiet)
        write(tmp, tables)
    tests = tables["tests.csv"]
    print(f"{'network':<22} {'target':<10} {'result':<6} {'MACs':>10} {'instructions':>13} {'MAC/instr':>9} "
          f"{'DMA B':>9} {'tiles':>5}")
    for t in tests:
        print(f"{t['network']:<22} {t['target']:<10} {'PASS' if t['passed'] else 'FAIL':<6} {t['macs']!s:>10} "
              f"{t['instructions']!s:>13} {t['mac_per_instruction']!s:>9} {t['dma_bytes']!s:>9} {t['tiles']!s:>5}"
              + (f"  FC cycles {t['fc_cycles']} summed ({t['mac_per_fc_cycle']} MAC/cycle), inference pass "
                 f"{t['inference_fc_cycles']} ({t['inference_mac_per_fc_cycle']})" if t.get("inference_fc_cycles") else "")
              + ("" if t["passed"] else f"  ({t['reason']})"))
    failed = sum(not t["passed"] for t in tests)
    print(f"{len(tests) - failed}/{len(tests)} runs passed; wrote {args.out}/tests.csv, layers.csv, subops.csv")
    return EXIT_OK if failed == 0 else EXIT_VERDICT


if __name__ == "__main__":
    run_cli(main)
