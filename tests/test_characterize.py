"""Cost model consistency: walkers vs the engine, the GAP9 model vs gap9-emu, profiles vs the schema."""

import copy
import json

import pytest
from conftest import REGRESSION, run_tool, source

from codegen import toolchains
from codegen.generate import generate_project
from gapforge.characterize import director, families, profiles
from gapforge.characterize import model as cost
from gapforge.characterize.graph import trace, walk_network_info, walk_torch
from gapforge.characterize.profiles import ProfileError
from gapforge.characterize.tiling import STRATEGIES, Tiles, strategy
from gapforge.plan import step_cost
from tools.int8_inference import INT8InferenceEngine
from tools.run_generated import run_project


@pytest.mark.parametrize("name", REGRESSION)
def test_walker_macs_equal_the_engines(name, extracted):
    """network_info walker (M x K x N from the geometry) == the engine's per-step MACs (declarations)."""
    d = extracted(name)
    engine = INT8InferenceEngine(d)
    graph = walk_network_info(d)
    want = [step_cost(engine.net, s).macs for s in engine.plan.steps]
    assert [n.macs for n in graph.nodes] == want
    assert graph.macs == sum(want) > 0


# Brevitas regression models whose forward torch.fx traces with the layers as leaves
FX_NETS = ["simple_cnn", "tiny_cnn", "mlp", "resnet_block", "stride2_cnn", "padding_cnn", "bottleneck_1x1",
           "depthwise_cnn", "per_channel_cnn", "big_mlp_l3"]


@pytest.mark.parametrize("name", FX_NETS)
def test_fx_walker_on_the_brevitas_model_equals_the_engine(name, extracted):
    src = source(name)
    fx_macs = walk_torch(src.model, src.example_inputs[0]).macs
    engine = INT8InferenceEngine(extracted(name))
    assert fx_macs == sum(step_cost(engine.net, s).macs for s in engine.plan.steps)


def test_fx_walker_on_float_family_models_matches_the_quantized_pipeline(tmp_path):
    """A float model is estimated before quantizing: same MACs as its Brevitas twin's extracted network."""
    import torch

    from gapforge.extract import extract, model_inputs, write_network

    for fam, size in (("mlp", "16"), ("conv", "8x8"), ("resblock", "8x8"), ("dense", "256")):
        p = families.parse_size(fam, size)
        fx = walk_torch(families.float_model(p), torch.rand(families.input_shape(p)))
        src = families.model_source(p)
        d = write_network(extract(src), tmp_path / p.name, model_inputs(src))
        assert fx.macs == walk_network_info(d).macs > 0, p.name


def test_fx_trace_failure_is_one_line():
    import torch

    class Branchy(torch.nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x  # data-dependent control flow

    with pytest.raises(Exception) as e:
        trace(Branchy())
    assert "torch.fx cannot trace Branchy" in str(e.value) and "\n" not in str(e.value)


GAP9_CHECK = [("simple_cnn", None), ("resnet_block", None), ("big_mlp_l3", None), ("large_cnn_96", 16 * 1024),
              ("densenet_block", 16 * 1024)]


@pytest.mark.skipif(not toolchains.cross_compiler_available()[0], reason="rv32 cross compiler (gap9 generation)")
@pytest.mark.parametrize("name,l1", GAP9_CHECK)
def test_gap9_model_bytes_and_tiles_equal_gap9_emu(name, l1, golden, tmp_path):
    d = golden(name)
    proj = tmp_path / "gap9"
    generate_project(d, proj, "gap9", 1, l1_budget=l1)
    passed, res = run_project(proj, "gap9-emu", timeout=300)
    assert passed, res["reasons"][:3]
    graph = walk_network_info(d)
    graph.nodes[0].extra.update(l1_budget=l1, l2_budget=None)
    ests = cost.estimate(graph, profiles.load("gap9"))
    measured = {layer["name"]: layer for layer in res["layers"]}
    plan = json.loads((proj / "plan.json").read_text())
    checked = 0
    for e, row in zip(ests, plan["gap9"]["layers"]):
        if row["tiling"] == "fc":
            continue
        m = measured[e.node]
        assert e.tiles == m["mem"]["tiles"], e.node
        for key in ("l3_to_l2", "l2_to_l1", "l1_to_l2", "l2_to_l3"):
            assert e.traffic[key] == m["emu"][key], (e.node, key)
        checked += 1
    assert checked > 0


def test_every_shipped_profile_validates_and_states_its_sources():
    assert {"gap9", "rv32", "cpu", "gpu", "tpu", "kpu"} <= set(profiles.names())
    for name in profiles.names():
        p = profiles.load(name)
        figs = p.figures()
        assert figs and all(how.startswith(("source: ", "assumption: ")) for *_, how in figs)
        assert p.strategy in STRATEGIES and p.clock_hz > 0 and len(p.levels) >= 2


def _bad(tmp_path, mutate, name="bad.json"):
    data = json.loads((profiles.PROFILES_DIR / "gap9.json").read_text())
    mutate(data)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d.pop("clock_hz"), "clock_hz"),
    (lambda d: d["levels"][1]["bytes"].pop("source"), "levels.1.bytes"),
    (lambda d: d["levels"][0]["bandwidth_bytes_per_cycle"].update(value=-4), "levels.0.bandwidth_bytes_per_cycle.value"),
    (lambda d: d["compute"]["units"].update(assumption="also", source="both"), "compute.units"),
    (lambda d: d["energy"].update(pj_per_flop={"value": 1, "source": "x y z"}), "energy.pj_per_flop"),
    (lambda d: d["tiling"].update(strategy="magic"), "tiling.strategy"),
    (lambda d: d["levels"].__delitem__(slice(1, None)), "levels"),
])
def test_bad_profile_is_refused_naming_the_field(tmp_path, mutate, field):
    path = _bad(tmp_path, mutate)
    with pytest.raises(ProfileError) as e:
        profiles.load(path)
    msg = e.value.one_line()
    assert f"field '{field}" in msg and str(path) in msg and "\n" not in msg


def test_bad_profile_on_the_command_line_exits_2(tmp_path, extracted):
    path = _bad(tmp_path, lambda d: d["levels"][1]["setup_cycles"].pop("value"))
    proc = run_tool("estimate", "--network", str(extracted("mlp")), "--profiles", str(path))
    assert proc.returncode == 2 and "levels.1.setup_cycles.value" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_new_tiling_strategy_is_a_plug_in(tmp_path, extracted):
    @strategy("test-untiled")
    def untiled(graph, i, profile):
        node = graph.nodes[i]
        return Tiles(1, {"dram_to_on-chip": node.in_bytes + node.w_bytes, "on-chip_to_dram": node.out_bytes}, "x")

    try:
        data = json.loads((profiles.PROFILES_DIR / "cpu.json").read_text())
        data = copy.deepcopy(data)
        data["tiling"]["strategy"] = "test-untiled"
        path = tmp_path / "p.json"
        path.write_text(json.dumps(data))
        prof = profiles.load(path)
        ests = cost.estimate(walk_network_info(extracted("mlp")), prof)
        assert all(e.tiles == 1 and e.regime == "x" for e in ests)
    finally:
        del STRATEGIES["test-untiled"]


def test_director_table_is_models_x_profiles(extracted):
    profs = [profiles.load(n) for n in ("gap9", "cpu", "kpu")]
    models = [director.network_info_model(extracted("mlp"))] + director.family_models("mlp", ["16", "64"])
    rows = director.analyze(models, profs)
    assert [(r["model"], r["size"], r["profile"]) for r in rows] == \
        [(m.name, m.size, p.name) for m in models for p in profs]
    assert all(r["macs"] > 0 and float(r["latency_s"]) > 0 for r in rows)
    per_node = director.analyze(models[:1], profs[:1], per_node=True)
    assert len(per_node) == len(walk_network_info(extracted("mlp")).nodes)
    cols = director.columns(rows)
    assert cols[:3] == ["model", "size", "profile"] and "bytes_l2_to_l1" in cols


def test_estimate_cli(extracted, tmp_path):
    out = tmp_path / "t.csv"
    proc = run_tool("estimate", "--network", str(extracted("simple_cnn")), "--per-node", "--csv", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "gap9" in proc.stdout and out.read_text().startswith("model,size,profile,node")
    proc = run_tool("estimate", "--list-profiles", "--profiles", "tpu")
    assert proc.returncode == 0 and "source:" in proc.stdout and "assumption:" in proc.stdout
