"""Measured profiles: rows of tests.csv, layers.csv and subops.csv from a run's plan.json + results.json.

Every figure comes from what the program printed (codegen/results.py) or from the plan the run was
checked against; nothing is estimated here (the cost model is gapforge/characterize).

Counters per target:
  host       time_ns: nanoseconds of the host's monotonic clock (not repeatable); no instructions
  rv32       instructions: QEMU minstret with -icount shift=0 (exact, repeatable)
  gap9-emu   no time (the emulation's clock is the host's); DMA bytes, tiles, L1/L2/L3 peaks measured
  gap9-qemu  the gap9 program on rv32: instructions of every core (exact), plus everything of gap9-emu
  gvsoc      the gap9 project's pulp-sdk build on gvsoc (siracusa): fc_cycles, the fabric controller's
             PI_PERF_CYCLES around each step (elapsed FC cycles); the busiest cluster core's counters
             (below); DMA bytes, commands and tiles as the executor counted them (GF MEM); no peaks

gap9-qemu per step: ``instructions`` is the fabric controller's pi_perf count around the whole step,
which under the emulation is every core serialised; ``busiest_core`` the compute core with the most
instructions (the emulator's per-core accounting, GF CORES); ``critical_path`` the step's instructions
on 8 cores running in parallel: the FC's share + the cluster controller's + for every barrier round its
busiest core. ``cluster_instr``: the busiest forked core's own pi_perf count around its share of the
tile loop (GF CLUSTER, read on the cluster; ``busiest_core`` minus that core's fixed entry, last-barrier
and exit instructions, docs/gap9.md).

gap9 targets with max pools fused into their convs (codegen/gap9/fusion.py, plan.json gap9.fusions): the
conv's row has ``fused_into`` (the pool's step): it ran nothing, so its counters measure no convolution; the
pool's row has ``fused_conv`` (the conv's step) and carries the conv's work (tiles, DMA, instructions).

gap9 targets, tests.csv: ``inference_*`` the timed inference pass after the verified one (results.json
``inference``: every task and FC step back to back, the FC's counters around the whole pass, the network's
outputs compared again, ``inference_outputs_match``): ``inference_fc_cycles`` and its MAC per FC cycle on gvsoc
beside ``fc_cycles`` (the verified pass's per-step FC cycles summed, with the comparison and printing between
the steps outside them) and ``mac_per_fc_cycle``; ``inference_instructions`` on gap9-qemu (every core serialised).

gvsoc (profile_suite --targets gvsoc, with the user's installation): ``fc_cycles`` the fabric
controller's PI_PERF_CYCLES around the whole step (elapsed FC cycles), ``cluster_cycles`` / ``cluster_instr`` the busiest forked core's PI_PERF_CYCLES
(elapsed cluster cycles) and PI_PERF_INSTR around its share of the tile loop. Those columns stay
empty where the target has no such counter (gap9-qemu's cycles are its instructions, gap9-emu's host
nanoseconds: results.json carries them with their meaning, ``counters``).
"""

from __future__ import annotations

from typing import Any

TESTS_COLUMNS = ["network", "target", "passed", "layers", "mismatches", "macs", "instructions", "time_ns",
                 "fc_cycles", "mac_per_fc_cycle", "inference_fc_cycles", "inference_mac_per_fc_cycle",
                 "inference_instructions", "inference_outputs_match", "mac_per_instruction", "critical_path_instructions", "mac_per_critical_instruction",
                 "params_bytes", "arena_bytes", "l1_peak", "l2_peak", "l3_peak", "dma_bytes", "dma_cmds", "tiles",
                 "reason"]
LAYERS_COLUMNS = ["network", "target", "index", "name", "kind", "kernel", "macs", "instructions", "time_ns",
                  "fc_cycles", "mac_per_instruction", "busiest_core_instructions", "core_sum_instructions",
                  "cluster_cycles", "cluster_instr",
                  "cluster_controller_instructions", "critical_path_instructions", "cores_used", "cores_planned",
                  "tiling", "tiles", "l1_bytes", "buffers", "dma_in_bytes", "dma_out_bytes", "l3_to_l2", "l2_to_l1",
                  "l1_to_l2", "l2_to_l3", "dma_cmds", "l1_peak", "l2_peak", "l3_peak", "mismatches", "fused_into",
                  "fused_conv"]
SUBOPS_COLUMNS = ["network", "target", "index", "layer", "phase", "instructions", "busiest_core_instructions",
                  "bytes", "commands"]
KEYS = {"tests.csv": ("network", "target"), "layers.csv": ("network", "target", "index"),
        "subops.csv": ("network", "target", "index", "phase")}
COLUMNS = {"tests.csv": TESTS_COLUMNS, "layers.csv": LAYERS_COLUMNS, "subops.csv": SUBOPS_COLUMNS}
DMA_KEYS = ("l3_to_l2", "l2_to_l1", "l1_to_l2", "l2_to_l3")


def _ratio(a, b) -> str:
    return f"{a / b:.4f}" if a and b else ""


def _critical(layer: dict) -> int | None:
    c = layer.get("cores")
    if c is None or "instret" not in layer:
        return None
    return layer["instret"] - c["cluster"] + c["cc"] + c["core_crit"]


def rows(plan: dict, results: dict, network: str, target: str) -> tuple[dict, list[dict], list[dict]]:
    """(tests.csv row, layers.csv rows, subops.csv rows) of one run."""
    measured_instr = target in ("rv32", "gap9-qemu")
    gvsoc = target == "gvsoc"
    gap9 = PROJECT_TARGET.get(target) == "gap9"
    planned = {r["name"]: r for r in plan.get("gap9", {}).get("layers", [])}
    steps = {s["name"]: s for s in plan.get("steps", [])}
    layers, subops = [], []
    for layer in results.get("layers", []):
        p = planned.get(layer["name"], {})
        mem, emu, cores = layer.get("mem", {}), layer.get("emu", {}), layer.get("cores")
        dma = mem if gvsoc else emu  # gvsoc: the executor's own counters (no emulator)
        instr = layer.get("instret") if measured_instr else None
        crit = _critical(layer)
        macs = layer.get("macs", steps.get(layer["name"], {}).get("macs", 0))
        row: dict[str, Any] = {
            "network": network, "target": target, "index": layer["index"], "name": layer["name"],
            "kind": layer.get("kind") or steps.get(layer["name"], {}).get("kind", ""),
            "kernel": layer.get("kernel") or "", "macs": macs, "instructions": instr if instr is not None else "",
            "time_ns": layer.get("cycles", "") if target == "host" else "",
            "fc_cycles": layer.get("cycles", "") if gvsoc else "",
            "mac_per_instruction": _ratio(macs, instr),
            "busiest_core_instructions": cores["core_max"] if cores else "",
            "core_sum_instructions": cores["core_sum"] if cores else "",
            "cluster_cycles": layer.get("cluster_cycles", "") if gvsoc else "",
            "cluster_instr": layer.get("cluster_instr", "") if target in ("gap9-qemu", "gvsoc") else "",
            "cluster_controller_instructions": cores["cc"] if cores else "",
            "critical_path_instructions": crit if crit is not None else "",
            "cores_used": cores["cores_used"] if cores else "", "cores_planned": p.get("cores", "") if gap9 else "",
            "tiling": p.get("tiling", "") if gap9 else "", "tiles": mem.get("tiles", "") if gap9 else "",
            "l1_bytes": p.get("l1_bytes", "") if gap9 else "",
            "buffers": ";".join(f"{k}={v}" for k, v in p.get("l1_buffers", {}).items()) if gap9 else "",
            "mismatches": layer.get("mismatches", ""),
            # gap9 pool fusion (plan.json gap9.layers): the conv ran nothing (its figures are no measurement of it),
            # the pool's row carries the conv's work
            "fused_into": p.get("fused_into", layer.get("fused_into", "")) if gap9 else "",
            "fused_conv": p.get("fused_conv", layer.get("fused_conv", "")) if gap9 else "",
        }
        for k in DMA_KEYS:
            row[k] = dma.get(k, "") if gap9 else ""
        row["dma_in_bytes"] = dma.get("l3_to_l2", 0) + dma.get("l2_to_l1", 0) if gap9 and dma else ""
        row["dma_out_bytes"] = dma.get("l1_to_l2", 0) + dma.get("l2_to_l3", 0) if gap9 and dma else ""
        row["dma_cmds"] = dma.get("dma_cmds", "") if gap9 else ""
        for k in ("l1_peak", "l2_peak", "l3_peak"):
            row[k] = emu.get(k, "") if gap9 else ""
        layers.append(row)
        base = {"network": network, "target": target, "index": layer["index"], "layer": layer["name"],
                "instructions": "", "busiest_core_instructions": "", "bytes": "", "commands": ""}
        if cores is not None and cores["cluster"]:
            subops.append({**base, "phase": "fc", "instructions": layer["instret"] - cores["cluster"]})
            subops.append({**base, "phase": "cluster_controller", "instructions": cores["cc"]})
            subops.append({**base, "phase": "compute", "instructions": cores["core_sum"],
                           "busiest_core_instructions": cores["core_max"]})
        if gap9 and dma:
            for k in DMA_KEYS:
                if dma.get(k):
                    subops.append({**base, "phase": f"dma:{k}", "bytes": dma[k],
                                   "commands": dma.get("dma_cmds", "") if k == "l2_to_l1" else ""})
    tot = results.get("totals", {})
    inf = results.get("inference") or {}  # gap9: the timed inference pass after the verified one
    emu_layers = [row for row in layers if row["l1_peak"] != ""]
    dma_layers = [row for row in layers if row["dma_in_bytes"] != ""]
    instr_total = sum(r["instructions"] for r in layers if r["instructions"] != "") if measured_instr else None
    crit_total = sum(r["critical_path_instructions"] for r in layers if r["critical_path_instructions"] != "")
    macs_total = plan.get("totals", {}).get("macs", tot.get("macs", 0))
    test = {
        "network": network, "target": target, "passed": bool(results.get("passed")), "layers": tot.get("layers", ""),
        "mismatches": tot.get("mismatches", ""), "macs": macs_total,
        "instructions": instr_total if instr_total else "",
        "time_ns": tot.get("cycles", "") if target == "host" else "",
        "fc_cycles": tot.get("cycles", "") if gvsoc else "",
        # the sum of the verified pass's per-step FC cycles, and the timed inference pass's (results.json inference)
        "mac_per_fc_cycle": _ratio(macs_total, tot.get("cycles")) if gvsoc else "",
        "inference_fc_cycles": inf.get("cycles", "") if gvsoc else "",
        "inference_mac_per_fc_cycle": _ratio(macs_total, inf.get("cycles")) if gvsoc else "",
        "inference_instructions": inf.get("instret", "") if target == "gap9-qemu" else "",
        "inference_outputs_match": inf.get("outputs_match", "") if inf else "",
        "mac_per_instruction": _ratio(macs_total, instr_total),
        "critical_path_instructions": crit_total if target == "gap9-qemu" and crit_total else "",
        "mac_per_critical_instruction": _ratio(macs_total, crit_total) if target == "gap9-qemu" else "",
        "params_bytes": plan.get("totals", {}).get("params_bytes", ""),
        "arena_bytes": plan.get("totals", {}).get("arena_bytes", ""),
        "l1_peak": max((r["l1_peak"] for r in emu_layers), default=""),
        "l2_peak": max((r["l2_peak"] for r in emu_layers), default=""),
        "l3_peak": max((r["l3_peak"] for r in emu_layers), default=""),
        "dma_bytes": sum(r["dma_in_bytes"] + r["dma_out_bytes"] for r in dma_layers) if dma_layers else "",
        "dma_cmds": sum(r["dma_cmds"] for r in dma_layers if r["dma_cmds"] != "") if dma_layers else "",
        "tiles": sum(r["tiles"] for r in layers if r["tiles"] != "") if gap9 else "",
        "reason": "; ".join(results.get("reasons", [])[:2]),
    }
    return test, layers, subops


def write_csv(path, columns: list[str], data: list[dict]) -> None:
    """One CSV, atomically (gapforge.fsutil), columns in the given order."""
    import csv
    import io

    from gapforge.fsutil import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for row in data:
        w.writerow(row)
    atomic_write_text(path, buf.getvalue())


def read_csv(path) -> list[dict]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# -- the jobs of tools/profile_suite.py and tools/sweep.py (module-level: dask workers import them) ------

PROJECT_TARGET = {"host": "host", "rv32": "rv32", "gap9-emu": "gap9", "gap9-qemu": "gap9", "gvsoc": "gap9"}
RUN_TARGETS = tuple(PROJECT_TARGET)


def prepare_network(job: dict) -> dict:
    """Extract a network and write its golden cases: job = {"name", "test_network" | "model_file" |
    "family" + "size" | "synthetic", "dir", "num_cases"}; returns {"name", "dir"} or {"name", "error"}."""
    import argparse
    from pathlib import Path

    from gapforge.errors import GapforgeError
    from gapforge.extract import extract, model_inputs, write_network
    from gapforge.inputs import select
    from gapforge.modelsrc import load_model
    from tools.generate_golden_outputs import generate

    try:
        if job.get("family"):  # a sweep point (gapforge/characterize/families.py)
            from gapforge.characterize import families

            src = families.model_source(families.parse_size(job["family"], job["size"]))
        elif job.get("synthetic"):  # a calibration network (gapforge/characterize/calib_set.py)
            from gapforge.characterize import calib_set

            src = calib_set.model_source(job["synthetic"])
        else:
            src = load_model(argparse.Namespace(test_network=job.get("test_network"),
                                                model_file=job.get("model_file"), model_class=None, input_shape=None))
        out = Path(job["dir"])
        write_network(extract(src), out, model_inputs(src))
        x, labels, what = select(out, None, job.get("num_cases", 1))
        generate(out, x, labels, what, progress=False)
    except GapforgeError as err:
        return {"name": job["name"], "error": err.one_line()}
    return {"name": job["name"], "dir": str(out)}


def run_target(job: dict) -> dict:
    """Generate and run one network on one target: job = {"name", "dir", "target", "project",
    "l1_budget", "l2_budget", "platform", "kernels", "fuse_pools"} (the budgets, platform, kernels and fuse_pools
    apply to the gap9 targets only; fuse_pools default "on", as generate_project); returns {"test", "layers",
    "subops"} (rows) and "results"."""
    import json
    from pathlib import Path

    from codegen.generate import generate_project
    from gapforge.errors import GapforgeError
    from tools.run_generated import run_project

    target, proj = job["target"], Path(job["project"])
    budgets = {"l1_budget": job.get("l1_budget"), "l2_budget": job.get("l2_budget"), "platform": job.get("platform"),
               "kernels": job.get("kernels", "portable"),
               "fuse_pools": job.get("fuse_pools", "on")} if PROJECT_TARGET[target] == "gap9" else {}
    try:
        generate_project(Path(job["dir"]), proj, PROJECT_TARGET[target], 1, **budgets)
        plan = json.loads((proj / "plan.json").read_text(encoding="utf-8"))
        _, results = run_project(proj, target, timeout=job.get("timeout", 1200.0))
    except GapforgeError as err:
        results = {"passed": False, "reasons": [err.one_line()], "layers": [], "totals": {},
                   "error_class": type(err).__name__}
        plan = {}
        if (proj / "plan.json").is_file():
            plan = json.loads((proj / "plan.json").read_text(encoding="utf-8"))
    test, layers, subops = rows(plan, results, job["name"], target)
    return {"test": test, "layers": layers, "subops": subops, "plan": plan, "results": results}


def failed_test_row(name: str, target: str, reason: str) -> dict:
    row = {c: "" for c in TESTS_COLUMNS}
    row.update(network=name, target=target, passed=False, reason=reason)
    return row
