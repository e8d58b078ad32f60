#!/usr/bin/env python3
"""Sweep a synthetic network family from on-chip to external-memory sizes: measured and modelled.

Examples:
  python tools/sweep.py --family mlp --out sweeps/mlp
  python tools/sweep.py --family conv --sizes 8x8 32x32 64x64 --targets gap9-emu gap9-qemu --out sweeps/conv
  python tools/sweep.py --family dense --out sweeps/dense --scheduler tcp://10.0.0.5:8786

Every point (gapforge/characterize/families.py: mlp, dense, conv, conv3x3, resblock) goes through
the real pipeline: Brevitas model -> extraction -> golden -> code generation -> gap9-emu (placement,
DMA bytes, tiles, L1/L2/L3 peaks measured) and rv32 or gap9-qemu (exact instruction counts), each
run checked bit-exact; and through the cost model on every profile (the extracted network's graph).
Points are independent dask jobs (LocalCluster by default, --workers 0 serial, --scheduler ADDRESS).

Writes DIR/<family>_measured.csv (one row per point: the GAP9 memory regime of the plan, measured
figures, instructions, MAC per instruction), DIR/<family>_layers.csv (the measured layers of every
run, tools/profile_suite.py's layers.csv columns: calibration samples for
tools/calibrate_cost_model.py), DIR/<family>_model.csv (one row per point and profile:
the modelled regime, tiles, bytes per level, latency, energy, MAC per cycle) and the plots
DIR/<family>_tiles.png (tiles vs memory footprint), DIR/<family>_latency_energy.png (latency vs
energy per architecture), DIR/<family>_throughput.png (MAC per cycle vs size, regime changes marked).
The knees (where a regime changes and what happens to the throughput) are printed.
GAP9 regimes: L1 (whole layer in L1, one tile), L1-tiled (L1 tiles of L2 operands), L3-weights
(parameters streamed from L3), L3-streaming (activations in L3 too); a point whose GAP9 program
cannot be generated is 'refused' (the tiler finds no L1 tile for a layer; the reason is in the
row) or 'does-not-fit' (more than L3); its rv32 run is still measured. Exit codes: 0 every run bit-exact; 1 a run failed; 2 bad arguments.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codegen import profile as prof_rows  # noqa: E402
from codegen.gap9.hw import add_platform_flag  # noqa: E402
from gapforge.characterize import families, profiles  # noqa: E402
from gapforge.characterize import model as cost  # noqa: E402
from gapforge.characterize.graph import walk_network_info  # noqa: E402
from gapforge.characterize.tiling import gap9_regime  # noqa: E402
from gapforge.errors import EXIT_OK, EXIT_VERDICT, ArgumentParser, GapforgeError, run_cli  # noqa: E402
from gapforge.fsutil import atomic_directory  # noqa: E402
from gapforge.jobs import run_jobs  # noqa: E402

REGIME_ORDER = ["L1", "L1-tiled", "L3-weights", "L3-streaming", "refused", "does-not-fit"]
UNMEASURED = ("refused", "does-not-fit")  # the GAP9 program was not generated: no measured plan
MEASURED_COLUMNS = ["family", "size", "passed", "regime", "macs", "params_bytes", "activation_bytes",
                    "footprint_bytes", "tiles", "dma_bytes", "l3_to_l2", "l2_to_l1", "l1_to_l2", "l2_to_l3",
                    "l1_peak", "l2_peak", "l3_peak", "rv32_instructions", "rv32_mac_per_instruction",
                    "gap9_critical_path_instructions", "gap9_mac_per_cycle", "reason"]


def _measured_row(point, prepared, runs) -> dict:
    row = {c: "" for c in MEASURED_COLUMNS}
    row.update(family=point.family, size=point.size)
    if "error" in prepared:
        row.update(passed=False, regime="does-not-fit", reason=prepared["error"])
        return row
    reasons, passed = [], True
    for r in runs:
        t = r["test"]
        passed &= bool(t["passed"])
        if not t["passed"]:
            reasons.append(f"{t['target']}: {t['reason']}")
        if t["target"] == "gap9-emu" or (t["target"] == "gap9-qemu" and row["tiles"] == ""):
            plan = r["plan"]
            if plan.get("gap9"):
                layers = plan["gap9"]["layers"]
                regimes = [gap9_regime(x) for x in layers if x["tiling"] != "fc"]
                row["regime"] = max(regimes, key=REGIME_ORDER.index) if regimes else "L1"
            else:  # the tiler refused a layer (no L1 tile fits), or the network does not fit L3
                row["regime"] = "refused" if r["results"].get("error_class") == "TilingError" else "does-not-fit"
            for k in ("tiles", "dma_bytes", "l1_peak", "l2_peak", "l3_peak", "params_bytes", "macs"):
                row[k] = t[k]
            for k in prof_rows.DMA_KEYS:
                row[k] = sum(x[k] for x in r["layers"] if x[k] != "")
        if t["target"] == "rv32":
            row["rv32_instructions"] = t["instructions"]
            row["rv32_mac_per_instruction"] = t["mac_per_instruction"]
            row["macs"] = row["macs"] or t["macs"]
            row["params_bytes"] = row["params_bytes"] or t["params_bytes"]
        if t["target"] == "gap9-qemu":
            row["gap9_critical_path_instructions"] = t["critical_path_instructions"]
            row["gap9_mac_per_cycle"] = t["mac_per_critical_instruction"]
    row.update(passed=passed, reason="; ".join(reasons)[:300])
    if not passed and not row["regime"]:
        row["regime"] = "does-not-fit"
    return row


def _model_rows(point, net_dir, profs, platform: str | None = None) -> tuple[list[dict], dict]:
    graph = walk_network_info(net_dir)
    if graph.nodes:  # the gap9-strategy profiles plan for the platform the runs used
        graph.nodes[0].extra["platform"] = platform
    act = max((n.in_bytes + n.out_bytes for n in graph.nodes), default=0)
    params = sum(n.w_bytes for n in graph.nodes)
    rows = []
    for p in profs:
        try:
            t = cost.totals(cost.estimate(graph, p))
        except GapforgeError as err:  # the GAP9 tiler or placement refuses the point (no L1 tile, not in L3)
            from codegen.gap9.tiling import TilingError

            rows.append({"family": point.family, "size": point.size, "profile": p.name,
                         "regime": "refused" if isinstance(err, TilingError) else "does-not-fit",
                         "reason": err.one_line()})
            continue
        cycles = t["latency_s"] * p.clock_hz
        rows.append({"family": point.family, "size": point.size, "profile": p.name, "macs": t["macs"],
                     "params_bytes": params, "activation_bytes": act, "footprint_bytes": params + act,
                     "regime": t["regime"], "tiles": t["tiles"], "latency_s": f"{t['latency_s']:.6g}",
                     "energy_j": f"{t['energy_j']:.6g}", "mac_per_cycle": f"{t['macs'] / cycles:.5g}" if cycles else "",
                     **{k: v for k, v in t.items() if k.startswith("bytes_")}})
    return rows, {"params_bytes": params, "activation_bytes": act}


def _x(point) -> float:
    d = point.dims()
    if point.family == "transformer":  # MACs of the block: 12 T E^2 (the linears) + 2 T^2 E (the attention)
        return float(12 * d[0] * d[1] ** 2 + 2 * d[0] ** 2 * d[1])
    return float(d[0]) if len(d) == 1 else float(d[0] * d[1] * d[1])


def plots(family: str, measured: list[dict], model: list[dict], points, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xlabel = {"mlp": "hidden width W", "dense": "N (QuantLinear N -> N)", "conv3x3": "channels C",
              "conv": "C x H x H (channels x spatial)", "resblock": "C x H x H (channels x spatial)",
              "transformer": "12 T E^2 + 2 T^2 E (block MACs; T tokens x width E)"}[family]
    xs = {p.size: _x(p) for p in points}
    names = sorted({r["profile"] for r in model})
    ok = [r for r in model if r.get("tiles") not in ("", None)]
    # 1. tiles vs memory footprint
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for name in names:
        rs = sorted((r for r in ok if r["profile"] == name), key=lambda r: r["footprint_bytes"])
        ax.plot([r["footprint_bytes"] for r in rs], [max(1, r["tiles"]) for r in rs], "o-", label=f"model: {name}")
    ms = [r for r in measured if r["tiles"] != ""]
    ax.plot([r["footprint_bytes"] if r["footprint_bytes"] != "" else 0 for r in ms], [max(1, r["tiles"]) for r in ms],
            "k*", ms=12, label="measured: gap9-emu")
    _save_loglog(fig, ax, out / f"{family}_tiles.png", "memory footprint: parameters + largest layer's activations [bytes]",
                 "tiles (sum over layers)", f"{family}: tiles vs memory footprint", 8)
    # 2. latency vs energy per architecture
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for name in names:
        rs = sorted((r for r in ok if r["profile"] == name and float(r["energy_j"]) > 0), key=lambda r: xs[r["size"]])
        if not rs:
            continue
        ax.plot([float(r["latency_s"]) for r in rs], [float(r["energy_j"]) for r in rs], "o-", label=name)
        ax.annotate(rs[-1]["size"], (float(rs[-1]["latency_s"]), float(rs[-1]["energy_j"])), fontsize=7)
    _save_loglog(fig, ax, out / f"{family}_latency_energy.png", "latency per inference [s]", "energy per inference [J]",
                 f"{family}: latency vs energy per architecture (cost model; sizes grow along each line)", 8)
    # 3. MAC per cycle vs size, GAP9 regime changes marked
    fig, ax = plt.subplots(figsize=(8, 5))
    for name in names:
        rs = sorted((r for r in ok if r["profile"] == name and r.get("mac_per_cycle")), key=lambda r: xs[r["size"]])
        ax.plot([xs[r["size"]] for r in rs], [float(r["mac_per_cycle"]) for r in rs], "o-", label=f"model: {name}")
    for key, label, style in (("gap9_mac_per_cycle", "measured: gap9-qemu (8 cores, critical path)", "k*-"),
                              ("rv32_mac_per_instruction", "measured: rv32 (MAC per instruction)", "kx--")):
        rs = sorted((r for r in measured if r[key] not in ("", None)), key=lambda r: xs[r["size"]])
        if rs:
            ax.plot([xs[r["size"]] for r in rs], [float(r[key]) for r in rs], style, ms=9, label=label)
    prev, seen = None, set()
    for r in sorted(measured, key=lambda r: xs[r["size"]]):  # the first point of every new regime
        if prev is not None and r["regime"] not in seen:
            x = math.sqrt(xs[prev["size"]] * xs[r["size"]])
            ax.axvline(x, color="grey", ls=":", lw=1)
            ax.text(x, ax.get_ylim()[1] if ax.get_ylim()[1] > 0 else 1, f" {prev['regime']} -> {r['regime']}",
                    rotation=90, va="top", fontsize=7, color="grey")
        prev = r
        seen.add(r["regime"])
    _save_loglog(fig, ax, out / f"{family}_throughput.png", xlabel, "MAC per cycle",
                 f"{family}: throughput vs size (dotted: GAP9 memory-regime changes of the real plan)", 7)



def _save_loglog(fig, ax, path: Path, xlabel: str, ylabel: str, title: str, legend_size: int) -> None:
    """Log-log axes, labels, grid and legend; the figure written to ``path`` and closed."""
    import matplotlib.pyplot as plt

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=legend_size)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

def knees(measured: list[dict], model: list[dict]) -> list[str]:
    lines = []
    prev = None
    for r in measured:
        if prev is not None and r["regime"] != prev["regime"]:
            key, what = ("gap9_mac_per_cycle", "measured gap9-qemu MAC per critical-path instruction") \
                if prev.get("gap9_mac_per_cycle") and r.get("gap9_mac_per_cycle") else \
                ("rv32_mac_per_instruction", "measured rv32 MAC per instruction")
            a, b = prev.get(key), r.get(key)
            tp = f", {what} {float(a):.3f} -> {float(b):.3f}" if a and b else ""
            lines.append(f"knee (gap9, measured plan): {prev['size']} -> {r['size']}: {prev['regime']} -> "
                         f"{r['regime']}{tp}")
        prev = r
    for name in sorted({r["profile"] for r in model}):
        rs = [r for r in model if r["profile"] == name]
        for a, b in zip(rs, rs[1:]):
            if a["regime"] != b["regime"]:
                tp = ""
                if a.get("mac_per_cycle") and b.get("mac_per_cycle"):
                    fa, fb = float(a["mac_per_cycle"]), float(b["mac_per_cycle"])
                    tp = f", modelled MAC/cycle {fa:.4g} -> {fb:.4g}" + (f" (x{fa / fb:.1f} lower)" if fb < fa else "")
                lines.append(f"knee ({name}, model): {a['size']} -> {b['size']}: {a['regime']} -> {b['regime']}{tp}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="sweep.py", description=__doc__.split("\n")[0],
                       epilog=__doc__.split("Examples:")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", required=True, choices=families.FAMILIES)
    p.add_argument("--sizes", nargs="+", metavar="S", help="sizes (default: the family's, L1-resident to L3)")
    p.add_argument("--tiny", action="store_true", help="two small sizes (tests)")
    p.add_argument("--targets", nargs="+", default=["gap9-emu", "rv32"], choices=["gap9-emu", "rv32", "gap9-qemu"])
    p.add_argument("--profiles", nargs="+", metavar="P", help="cost-model profiles (default: all)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--scheduler", metavar="ADDRESS", help="dask scheduler of an existing cluster")
    p.add_argument("--workers", type=int, metavar="N", help="LocalCluster workers (default: the cores; 0: serial)")
    add_platform_flag(p, "gap9-emu/gap9-qemu runs and the gap9-strategy profiles")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    sizes = families.TINY_SIZES[args.family] if args.tiny else (args.sizes or families.DEFAULT_SIZES[args.family])
    points = [families.parse_size(args.family, s) for s in sizes]
    if "gap9-emu" not in args.targets:
        raise GapforgeError("--targets must include gap9-emu (the memory regimes come from its measured plan)")
    profs = [profiles.load(n) for n in (args.profiles or profiles.names())]
    fam = args.family
    with atomic_directory(args.out) as tmp:
        runs_dir = tmp / "runs"
        jobs = [{"name": pt.name, "family": pt.family, "size": pt.size, "dir": str(runs_dir / pt.name / "network"),
                 "num_cases": 1} for pt in points]
        prepared = run_jobs(prof_rows.prepare_network, jobs, scheduler=args.scheduler, workers=args.workers,
                            desc=f"{fam}: extract+golden", quiet=args.quiet)
        run_specs = [{"name": pr["name"], "dir": pr["dir"], "target": t, "project": str(runs_dir / pr["name"] / t),
                      "platform": args.platform}
                     for pr in prepared if "error" not in pr for t in args.targets]
        results = run_jobs(prof_rows.run_target, run_specs, scheduler=args.scheduler, workers=args.workers,
                           desc=f"{fam}: build+run", quiet=args.quiet)
        by_point: dict[str, list] = {}
        for r in results:
            by_point.setdefault(r["test"]["network"], []).append(r)
        measured, model = [], []
        for pt, pr in zip(points, prepared):
            row = _measured_row(pt, pr, by_point.get(pt.name, []))
            if "error" not in pr:
                mrows, sizes_ = _model_rows(pt, pr["dir"], profs, args.platform)
                model += mrows
                row.update(activation_bytes=sizes_["activation_bytes"],
                           footprint_bytes=sizes_["params_bytes"] + sizes_["activation_bytes"])
                row["params_bytes"] = row["params_bytes"] or sizes_["params_bytes"]
            measured.append(row)
        prof_rows.write_csv(tmp / f"{fam}_measured.csv", MEASURED_COLUMNS, measured)
        prof_rows.write_csv(tmp / f"{fam}_layers.csv", prof_rows.LAYERS_COLUMNS,
                            [row for r in results for row in r["layers"]])
        cols = ["family", "size", "profile", "regime", "macs", "params_bytes", "activation_bytes", "footprint_bytes",
                "tiles", "latency_s", "energy_j", "mac_per_cycle"]
        cols += sorted({k for r in model for k in r} - set(cols) - {"reason"}) + ["reason"]
        prof_rows.write_csv(tmp / f"{fam}_model.csv", cols, [{**{c: "" for c in cols}, **r} for r in model])
        if not args.no_plots:
            plots(fam, measured, [r for r in model if r.get("tiles") not in ("", None)], points, tmp)
    print(f"{'size':>8} {'regime':<14} {'passed':<6} {'MACs':>11} {'params B':>10} {'tiles':>6} {'DMA B':>10} "
          f"{'rv32 instr':>12} {'MAC/instr':>9} {'gap9 MAC/cyc':>12}")
    for r in measured:
        print(f"{r['size']:>8} {r['regime']:<14} {'yes' if r['passed'] else 'NO':<6} {r['macs']!s:>11} "
              f"{r['params_bytes']!s:>10} {r['tiles']!s:>6} {r['dma_bytes']!s:>10} {r['rv32_instructions']!s:>12} "
              f"{r['rv32_mac_per_instruction']!s:>9} {r['gap9_mac_per_cycle']!s:>12}")
    for line in knees(measured, model):
        print(line)
    for r in measured:
        if r["regime"] in UNMEASURED:
            print(f"{r['regime']} (gap9): {r['size']}: {r['reason'].split('; ')[0]}")
    print(f"wrote {args.out}/{fam}_measured.csv, {fam}_layers.csv, {fam}_model.csv" + ("" if args.no_plots else ", *.png"))
    bad = [r for r in measured if not r["passed"] and r["regime"] not in UNMEASURED]
    return EXIT_OK if not bad else EXIT_VERDICT


if __name__ == "__main__":
    run_cli(main)
