"""Parse the generated program's output into results.json and decide the verdict.

The program prints (see codegen/templates/main.c.j2):
  GF BEGIN network=... target=... steps=N ...
  GF MANIFEST layout=<hash> flags=F             (data/manifest.bin accepted: codegen/manifest.py)
  GF CHECKSUM params regions=R failed=F        (and GF CHECKSUM <name> FAIL lines)
  GF VALUES i first v v ...                    (manifest flag 1 only: step i's output values from element first)
  GF LAYER i name kind=... kernel=... elements=n mismatches=m max_diff=d
      (gap9, a conv fused into its max pool, codegen/gap9/fusion.py: elements=0 ... fused_into=<the pool's step>;
      its output stays in L1 and is not compared, the pool's step is compared, carries the fused layer and ends
      with fused_conv=<the conv's step>)
  GF PERF i name instret=... cycles=... macs=...
  GF RESULT status=PASS|FAIL layers=N mismatched_layers=K
and, on the gap9 target, per step:
  GF MEM i name tiles=.. l1=.. l3_to_l2=.. l2_to_l1=.. l1_to_l2=.. l2_to_l3=.. dma_cmds=..   (executor counters)
  GF EMU i name l1_peak=.. l2_peak=.. l3_peak=.. l3_to_l2=.. ...                    (emulator counters)
  GF EMU ERROR ...                                                                  (emulator caught a fault)
  GF CLUSTER i name cycles_max=.. instr_max=.. core=.. instr_core=.. cc_cycles=.. cc_instr=.. bk_cycles=..
      bk_instr=..   (tiled steps: the cluster's own pi_perf counters, the layer's busiest core's and the layer's
      bookkeeping: core 0's copies of its control block in and back, bk, plus, cc, on a task's first layer the
      controller's work before the task's one fork and on its last after it; the
      GF PERF figures are the fabric controller's, around the whole step: docs/gap9.md "Execution")
and on gap9-qemu (the gap9 program on rv32 under QEMU), per step, the program's instructions per core:
  GF CORES i name core_max=.. core_sum=.. cores_used=.. core_crit=.. cc=.. cluster=.. core0=.. ... core7=..
and on the gap9 target, after the steps of a cluster task that ran several (plan.json gap9.tasks):
  GF TASK i name steps=n layers=m instret=.. cycles=..   (the FC's counters around the whole task, first step i; that
      step's GF PERF carries them, the task's other steps' GF PERF print 0. Where every layer of the task has its GF
      CORES (gap9-qemu: the serialised instructions are exact per layer), each step gets its own: a layer its
      cluster share ``cores.cluster``, the first step also the FC's share, task - the layers' cluster shares)
and on the gap9 target, after the verified steps, the timed inference pass (every task and FC step back to back, the
FC's pi_perf counters around all of them; docs/gap9.md "Execution"), then its comparison of the network's outputs:
  GF INFERENCE OUTPUT i name elements=n mismatches=m max_diff=d   (one per network output, plan.json gap9.inference)
  GF INFERENCE cycles=.. instret=.. steps=N outputs=K mismatches=M dma_bytes=B
      (B: the executor's DMA bytes of the pass, every cluster layer's, summed: the verified pass's GF MEM sum)
A run passes only if the program exited 0, every step of plan.json was reported with its full
element count and no mismatch, the parameter checksums were all good, and (gap9 plans that record
``gap9.inference``) the inference pass reported every network output with its full element count, no
mismatch and the verified pass's DMA bytes.
"""

from __future__ import annotations

import re
import signal
from typing import Any

_KV = re.compile(r"(\w+)=(\S+)")


def _kv(text: str) -> dict[str, str]:
    return dict(_KV.findall(text))


def parse_output(stdout: str) -> dict[str, Any]:
    layers: dict[int, dict[str, Any]] = {}
    out: dict[str, Any] = {"begin": None, "manifest": None, "checksum": None, "result": None, "errors": []}
    values: dict[int, dict[int, list[int]]] = {}
    for line in stdout.splitlines():
        if not line.startswith("GF "):
            continue
        parts = line.split(maxsplit=3)
        tag = parts[1]
        if tag == "LAYER" and len(parts) == 4:
            idx = int(parts[2])
            name, _, rest = parts[3].partition(" ")
            kv = _kv(rest)
            layers.setdefault(idx, {"index": idx, "name": name}).update(
                kind=kv.get("kind"), kernel=None if kv.get("kernel") == "-" else kv.get("kernel"),
                elements=int(kv["elements"]), mismatches=int(kv["mismatches"]), max_diff=int(kv["max_diff"]),
                **{k: kv[k] for k in ("fused_into", "fused_conv") if k in kv})
        elif tag == "PERF" and len(parts) == 4:
            idx = int(parts[2])
            name, _, rest = parts[3].partition(" ")
            kv = _kv(rest)
            layers.setdefault(idx, {"index": idx, "name": name}).update(
                instret=int(kv["instret"]), cycles=int(kv["cycles"]), macs=int(kv["macs"]))
        elif tag == "MEM" and len(parts) == 4:
            idx = int(parts[2])
            name, _, rest = parts[3].partition(" ")
            layers.setdefault(idx, {"index": idx, "name": name})["mem"] = {k: int(v) for k, v in _kv(rest).items()}
        elif tag == "CLUSTER" and len(parts) == 4:
            idx = int(parts[2])
            name, _, rest = parts[3].partition(" ")
            kv = {k: int(v) for k, v in _kv(rest).items()}
            layers.setdefault(idx, {"index": idx, "name": name}).update(
                cluster_cycles=kv["cycles_max"], cluster_instr=kv["instr_max"], cluster={
                    "cycles_core": kv["core"], "instr_core": kv["instr_core"], "cc_cycles": kv["cc_cycles"],
                    "cc_instr": kv["cc_instr"], **{k: kv[k] for k in ("bk_cycles", "bk_instr") if k in kv}})
        elif tag == "CORES" and len(parts) == 4 and parts[2].isdigit():
            idx = int(parts[2])
            name, _, rest = parts[3].partition(" ")
            layers.setdefault(idx, {"index": idx, "name": name})["cores"] = {k: int(v) for k, v in _kv(rest).items()}
        elif tag == "TASK" and len(parts) == 4:
            idx = int(parts[2])
            name, _, rest = parts[3].partition(" ")
            kv = {k: int(v) for k, v in _kv(rest).items()}
            out.setdefault("tasks", []).append({"first": idx, "name": name, **kv})
        elif tag == "EMU" and len(parts) >= 3 and parts[2] == "ERROR":
            out["errors"].append(line)
        elif tag == "EMU" and len(parts) == 4 and parts[2].isdigit():
            idx = int(parts[2])
            name, _, rest = parts[3].partition(" ")
            layers.setdefault(idx, {"index": idx, "name": name})["emu"] = {k: int(v) for k, v in _kv(rest).items()}
        elif tag == "VALUES" and len(parts) == 4:
            first, _, rest = parts[3].partition(" ")
            values.setdefault(int(parts[2]), {})[int(first)] = [int(v) for v in rest.split()]
        elif tag == "INFERENCE" and len(parts) >= 3:
            if parts[2] == "OUTPUT":  # GF INFERENCE OUTPUT i name k=v ...
                f = line.split(maxsplit=5)
                if len(f) == 6 and f[3].isdigit():
                    kv = {k: int(v) for k, v in _kv(f[5]).items()}
                    out.setdefault("inference_outputs", []).append({"index": int(f[3]), "name": f[4], **kv})
            else:
                out["inference"] = {k: int(v) for k, v in _kv(line).items()}
        elif tag == "MANIFEST":
            out["manifest"] = _kv(line)
        elif tag == "BEGIN":
            out["begin"] = _kv(line)
        elif tag == "CHECKSUM":
            if "regions=" in line:
                out["checksum"] = {k: int(v) for k, v in _kv(line).items()}
            else:
                out["errors"].append(line)
        elif tag == "RESULT":
            out["result"] = _kv(line)
        elif tag == "ERROR":
            out["errors"].append(line)
    for task in out.get("tasks", []):
        _attribute_task(task, layers)
    out["layers"] = [layers[i] for i in sorted(layers)]
    out["values"] = {i: [v for first in sorted(chunks) for v in chunks[first]] for i, chunks in sorted(values.items())}
    return out


def _attribute_task(task: dict, layers: dict[int, dict[str, Any]]) -> None:
    """Steps of a multi-step cluster task: ``task`` (its first step and step count) on each; per-step FC figures
    where the emulator's exact per-layer accounting allows (module docstring)."""
    steps = [layers[i] for i in range(task["first"], task["first"] + task["steps"]) if i in layers]
    for layer in steps:
        layer["task"] = {"first": task["first"], "steps": task["steps"]}
    cluster = [layer for layer in steps if "cluster_cycles" in layer]  # the task's cluster layers (GF CLUSTER)
    if not cluster or any("cores" not in layer for layer in cluster) or "instret" not in steps[0]:
        return
    fc_share = task["instret"] - sum(layer["cores"]["cluster"] for layer in cluster)
    for layer in steps:
        own = layer["cores"]["cluster"] if layer in cluster else 0
        layer["instret"] = layer["cycles"] = own + (fc_share if layer is steps[0] else 0)


# What each per-step counter of results.json is on each target that prints GF PERF and GF CLUSTER (the FC's
# figures keep their names, "cycles" and "instret"; the cluster's are "cluster_cycles" / "cluster_instr").
COUNTERS = {
    "gap9-emu": {
        "cycles": "fabric controller: host nanoseconds around the whole step (a cluster task of several steps, "
                  "'task': the whole task, on its first step; 0 on the others)",
        "instret": "fabric controller: not counted on the host (0)",
        "cluster_cycles": "busiest forked core: host nanoseconds of its own share of the tile loop "
                          "(emulator work included, not repeatable)",
        "cluster_instr": "not counted on the host (0)"},
    "gap9-qemu": {
        "cycles": "fabric controller: the whole step's instructions, every core serialised (minstret, emulator "
                  "work excluded; same as instret)",
        "instret": "fabric controller: the whole step's instructions, every core serialised (minstret, emulator "
                   "work excluded; in a cluster task of several steps, 'task': the layer's cluster share, the "
                   "first step also the FC's share of the task)",
        "cluster_cycles": "busiest forked core: its own instructions around its share of the tile loop (minstret, "
                          "emulator work excluded; same as cluster_instr)",
        "cluster_instr": "busiest forked core: its own instructions around its share of the tile loop (minstret, "
                         "emulator work excluded)"},
    "gvsoc": {
        "cycles": "fabric controller: PI_PERF_CYCLES around the whole step (elapsed FC cycles; a cluster task of "
                  "several steps, 'task': the whole task, on its first step; 0 on the others)",
        "instret": "fabric controller: PI_PERF_INSTR around the whole step (the FC's own instructions; a cluster "
                   "task of several steps: as cycles)",
        "cluster_cycles": "busiest forked core: PI_PERF_CYCLES around its share of the tile loop (pulp-sdk: the "
                          "cluster timer, shared: elapsed cluster cycles from the last core's reset to this read)",
        "cluster_instr": "busiest forked core: PI_PERF_INSTR around its share of the tile loop"},
}


# What the inference pass's counters (GF INFERENCE cycles / instret: the FC's pi_perf counters around the whole pass)
# are on each target that runs the gap9 program.
INFERENCE_COUNTERS = {
    "gap9-emu": {"cycles": "fabric controller: host nanoseconds around the whole pass (emulator work included, not "
                           "repeatable)", "instret": "not counted on the host (0)"},
    "gap9-qemu": {"cycles": "fabric controller: the whole pass's instructions, every core serialised (minstret, "
                            "emulator work excluded; same as instret)",
                  "instret": "the whole pass's instructions, every core serialised (minstret)"},
    "gvsoc": {"cycles": "fabric controller: PI_PERF_CYCLES around the whole pass (elapsed FC cycles)",
              "instret": "fabric controller: PI_PERF_INSTR around the whole pass (the FC's own instructions)"},
}


def _elements(step: dict) -> int:
    """Elements of a plan.json step's output (int32 outputs: 4 bytes each, else 1)."""
    return step["out_bytes"] // (4 if step["dtype"] == "GF_S32" else 1)


def inference(plan: dict, parsed: dict, target: str) -> dict | None:
    """results.json ``inference``: the timed pass's counters, its output comparisons and whether they all matched
    (None when the program printed no GF INFERENCE line). ``mac_per_cycle`` where the cycles are cycles (gvsoc)."""
    inf = parsed.get("inference")
    if inf is None:
        return None
    outs = parsed.get("inference_outputs", [])
    macs = sum(s.get("macs", 0) for s in plan.get("steps", []))
    res = {"cycles": inf.get("cycles", 0), "instret": inf.get("instret", 0), "steps": inf.get("steps"),
           "outputs": inf.get("outputs", len(outs)), "mismatches": inf.get("mismatches"),
           "dma_bytes": inf.get("dma_bytes"), "macs": macs,
           "outputs_match": bool(outs) and not inference_problems(plan, parsed), "compared": outs}
    if target == "gvsoc" and res["cycles"]:
        res["mac_per_cycle"] = round(macs / res["cycles"], 4)
    if target in INFERENCE_COUNTERS:
        res["counters"] = INFERENCE_COUNTERS[target]
    return res


def inference_problems(plan: dict, parsed: dict) -> list[str]:
    """Why the inference pass failed (empty: it passed, or the plan has none: not a gap9 plan that records it)."""
    want = plan.get("gap9", {}).get("inference")
    if want is None:
        return []
    inf = parsed.get("inference")
    if inf is None:
        return ["inference pass: not reported (no GF INFERENCE line: the program stopped before or during it)"]
    problems = []
    steps = plan.get("steps", [])
    got = {o["index"]: o for o in parsed.get("inference_outputs", [])}
    for i in want.get("outputs", []):
        step = steps[i] if i < len(steps) else {"name": f"step {i}", "out_bytes": 0, "dtype": ""}
        o = got.get(i)
        elements = _elements(step)
        if o is None:
            problems.append(f"inference pass: output '{step['name']}' was not compared")
        elif o.get("elements") != elements:
            problems.append(f"inference pass: output '{step['name']}': {o.get('elements')} of {elements} elements "
                            "compared")
        elif o.get("mismatches"):
            problems.append(f"inference pass: output '{step['name']}': {o['mismatches']} mismatches (max diff "
                            f"{o.get('max_diff')}) after matching in the verified pass")
    extra = sorted(set(got) - set(want.get("outputs", [])))
    if extra:
        problems.append(f"inference pass: steps {extra} compared, which are not the network's outputs")
    # the executor's DMA bytes of the pass against the verified pass's (GF MEM, every cluster layer)
    mem = [layer["mem"] for layer in parsed.get("layers", []) if "mem" in layer]
    first = sum(m.get(k, 0) for m in mem for k in ("l3_to_l2", "l2_to_l1", "l1_to_l2", "l2_to_l3"))
    if mem and inf.get("dma_bytes") is not None and inf["dma_bytes"] != first:
        problems.append(f"inference pass: the executor moved {inf['dma_bytes']} DMA bytes, the verified pass {first}")
    return problems


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def verdict(plan: dict, parsed: dict, returncode: int) -> tuple[bool, list[str]]:
    """(passed, reasons it did not)."""
    reasons = list(parsed["errors"])  # the program's own diagnosis first (emulator faults, load errors)
    reported = {layer["name"]: layer for layer in parsed["layers"]}
    if returncode < 0:  # killed by a signal: in the first step that reported no result (stdout is flushed per step)
        first = next(((i, s["name"]) for i, s in enumerate(plan["steps"])
                      if "mismatches" not in reported.get(s["name"], {})), None)
        where = f" in step {first[0]} '{first[1]}'" if first else (
            " after the verified steps (in the inference pass or after it)"
            if plan.get("gap9", {}).get("inference") is not None and parsed.get("inference") is None
            else " after the last step")
        reasons.append(f"program killed by {_signal_name(-returncode)}{where}")
    elif returncode != 0:
        reasons.append(f"program exited with status {returncode}")
    for step in plan["steps"]:
        layer = reported.get(step["name"])
        elements = _elements(step)
        if step.get("fused_into") and layer is not None:  # gap9: a conv computed in L1 of its pool's layer
            if layer.get("fused_into") != step["fused_into"]:
                reasons.append(f"layer '{step['name']}': planned fused into '{step['fused_into']}', reported "
                               + (f"fused into '{layer['fused_into']}'" if layer.get("fused_into") else "on its own"))
            continue
        if layer is None or "mismatches" not in layer:
            reasons.append(f"layer '{step['name']}' was not compared")
        elif layer["elements"] != elements:
            reasons.append(f"layer '{step['name']}': {layer['elements']} of {elements} elements compared")
        elif layer["mismatches"]:
            reasons.append(f"layer '{step['name']}': {layer['mismatches']} mismatches (max diff {layer['max_diff']})")
    if returncode >= 0 or parsed.get("inference") is not None:  # a program killed before the pass: said above
        reasons += inference_problems(plan, parsed)
    cs = parsed.get("checksum")
    if not cs or cs.get("failed", 1) != 0:
        reasons.append("parameter checksums were not verified" if not cs else f"{cs['failed']} parameter checksums failed")
    if not parsed.get("result") or parsed["result"].get("status") != "PASS":
        if not reasons:
            reasons.append("no PASS result line")
    return not reasons, reasons
