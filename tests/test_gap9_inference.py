"""The gap9 program's timed inference pass (gap9_main.c.j2 inference_pass): after the verified pass, the network's
inputs reloaded, every cluster task and FC step back to back under the FC's counters, the network's outputs compared
again (GF INFERENCE lines, results.json ``inference``), on the PMSIS emulation (gap9-emu)."""

import json

import pytest

from codegen import toolchains
from codegen.generate import generate_project
from codegen.profile import rows
from codegen.results import inference, parse_output, verdict
from tools.run_generated import inference_summary, run_project

pytestmark = pytest.mark.skipif(not toolchains.cross_compiler_available()[0],
                                reason=f"rv32 cross compiler: {toolchains.cross_compiler_available()[1]}")


def _run(golden, name, tmp_path, **gen):
    proj = tmp_path / f"{name}_{gen.get('l2_budget', 0)}"
    generate_project(golden(name), proj, "gap9", 1, **gen)
    passed, res = run_project(proj, "gap9-emu", timeout=300)
    return passed, res, json.loads((proj / "plan.json").read_text()), proj


def _dma(res) -> int:
    return sum(layer["mem"].get(k, 0) for layer in res["layers"] if "mem" in layer
               for k in ("l3_to_l2", "l2_to_l1", "l1_to_l2", "l2_to_l3"))


@pytest.mark.parametrize("name,gen", [
    ("simple_cnn", {}),
    ("dual_input_fusion", {}),  # two inputs, both reloaded before the pass
    ("big_mlp_l3", {}),  # weights in L3: the layers' L3 bounce area reused by the pass
    ("simple_cnn", {"l2_budget": 6 * 1024}),  # activations in L3 too: the L3 arena and its bounce area reused
])
def test_inference_pass_runs_every_step_again_and_matches(golden, tmp_path, name, gen):
    passed, res, plan, proj = _run(golden, name, tmp_path, **gen)
    assert passed, res["reasons"][:5]
    outs = plan["gap9"]["inference"]["outputs"]
    steps = plan["steps"]
    # the network's outputs: the steps whose tensor the network returns (the last step here)
    assert outs and outs[-1] == len(steps) - 1
    inf = res["inference"]
    assert inf["outputs_match"] and inf["mismatches"] == 0 and inf["outputs"] == len(outs)
    assert inf["steps"] == len(steps) and [o["index"] for o in inf["compared"]] == outs
    for o in inf["compared"]:
        s = steps[o["index"]]
        assert o["name"] == s["name"] and o["elements"] == s["out_bytes"] // (4 if s["dtype"] == "GF_S32" else 1)
    # the pass ran every cluster layer as the verified pass did: the executor's DMA bytes are the same
    assert inf["dma_bytes"] == _dma(res) > 0
    assert inf["cycles"] > 0 and inf["instret"] == 0  # gap9-emu: host nanoseconds, no instruction counter
    assert inf["counters"]["cycles"].startswith("fabric controller: host nanoseconds")
    assert "mac_per_cycle" not in inf  # no cycles on the host
    assert res["plan_mismatches"] == []  # the emulator's per-layer DMA and peaks are still the verified pass's
    if name == "big_mlp_l3":
        assert plan["gap9"]["params_level"] == "L3"
    if gen.get("l2_budget"):
        assert "L3" in plan["gap9"]["buffers"].values()
    test, _, _ = rows(plan, res, name, "gap9-emu")
    assert test["inference_outputs_match"] is True and test["inference_fc_cycles"] == ""


def test_corrupted_inference_output_fails_the_run(golden, tmp_path):
    """--inject-fault inference-output: one bit of the network's output flipped after the timed pass (emulation build
    only). The verified pass matches on every layer; the run fails, with the inference pass named."""
    passed, res, plan, proj = _run(golden, "simple_cnn", tmp_path, fault="inference-output")
    assert "GF_FAULT_INFERENCE_OUTPUT" in plan["build_emu"]["defines"]
    assert not any("FAULT" in d for d in plan["build"]["defines"])  # the SDK build is the real program
    assert not passed and res["exit_code"] == 1
    assert res["totals"]["mismatches"] == 0 and res["totals"]["compared"] == len(plan["steps"])
    last = plan["steps"][-1]["name"]
    assert any(r.startswith(f"inference pass: output '{last}': 1 mismatches (max diff 1)") for r in res["reasons"]), \
        res["reasons"]
    assert res["inference"]["outputs_match"] is False and res["inference"]["mismatches"] == 1
    assert "OUTPUTS DIFFER" in inference_summary(res["inference"], "gap9-emu")


PLAN = {"target": "gap9", "steps": [
    {"name": "quant_in", "out_bytes": 4, "dtype": "GF_S8", "macs": 0},
    {"name": "fc", "out_bytes": 8, "dtype": "GF_S32", "macs": 1000}], "gap9": {"inference": {"outputs": [1]}}}
OUT = ("GF CHECKSUM params regions=1 failed=0\n"
       "GF LAYER 0 quant_in kind=quantize kernel=- elements=4 mismatches=0 max_diff=0\n"
       "GF PERF 0 quant_in instret=10 cycles=20 macs=0\n"
       "GF LAYER 1 fc kind=linear kernel=gf_linear elements=2 mismatches=0 max_diff=0\n"
       "GF PERF 1 fc instret=300 cycles=900 macs=1000\n"
       "GF MEM 1 fc tiles=1 l1=64 l3_to_l2=0 l2_to_l1=40 l1_to_l2=8 l2_to_l3=0 dma_cmds=2\n")


def test_inference_lines_are_parsed_and_checked():
    good = OUT + ("GF INFERENCE OUTPUT 1 fc elements=2 mismatches=0 max_diff=0\n"
                  "GF INFERENCE cycles=500 instret=200 steps=2 outputs=1 mismatches=0 dma_bytes=48\n"
                  "GF RESULT status=PASS layers=2 mismatched_layers=0 inference=PASS\n")
    parsed = parse_output(good)
    assert verdict(PLAN, parsed, 0) == (True, [])
    inf = inference(PLAN, parsed, "gvsoc")
    assert (inf["cycles"], inf["instret"], inf["outputs"], inf["mac_per_cycle"], inf["outputs_match"]) == \
        (500, 200, 1, 2.0, True)
    assert "500 FC cycles" in inference_summary(inf, "gvsoc") and "2.000 MAC / FC cycle" in inference_summary(inf, "gvsoc")
    results = {"layers": parsed["layers"], "totals": {"cycles": 920, "layers": 2}, "passed": True, "inference": inf}
    test, _, _ = rows({"steps": PLAN["steps"], "totals": {"macs": 1000}}, results, "n", "gvsoc")
    assert (test["fc_cycles"], test["mac_per_fc_cycle"], test["inference_fc_cycles"],
            test["inference_mac_per_fc_cycle"], test["inference_outputs_match"]) == (920, "1.0870", 500, "2.0000", True)
    # a mismatch, a short comparison, other DMA bytes, no line at all: each a reason
    for text, why in (("elements=2 mismatches=1 max_diff=3", "output 'fc': 1 mismatches (max diff 3)"),
                      ("elements=1 mismatches=0 max_diff=0", "output 'fc': 1 of 2 elements compared")):
        bad = good.replace("elements=2 mismatches=0 max_diff=0\nGF INFERENCE cycles", text + "\nGF INFERENCE cycles")
        ok, reasons = verdict(PLAN, parse_output(bad), 1)
        assert not ok and any(r == f"inference pass: {why} after matching in the verified pass" or
                              r == f"inference pass: {why}" for r in reasons), reasons
    ok, reasons = verdict(PLAN, parse_output(good.replace("dma_bytes=48", "dma_bytes=40")), 0)
    assert not ok and "inference pass: the executor moved 40 DMA bytes, the verified pass 48" in reasons
    ok, reasons = verdict(PLAN, parse_output(OUT + "GF RESULT status=PASS layers=2 mismatched_layers=0\n"), 0)
    assert not ok and reasons[0].startswith("inference pass: not reported")
    # a plan without the pass (host targets, projects generated before it): nothing asked
    assert verdict({**PLAN, "gap9": {}}, parse_output(OUT + "GF RESULT status=PASS\n"), 0) == (True, [])
