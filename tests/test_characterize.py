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
           "depthwise_cnn", "per_channel_cnn", "big_mlp_l3", "gelu_basic", "layernorm_basic", "softmax_basic",
           "tokens_mlp", "attention_core", "transformer_simple", "transformer_multiblock", "transformer_qmha",
           "long_encoder"]


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
    """The model plans the unfused program (tiling.GAP9_FUSE_POOLS): so is the project it is checked against."""
    from gapforge.characterize.tiling import GAP9_FUSE_POOLS

    d = golden(name)
    proj = tmp_path / "gap9"
    generate_project(d, proj, "gap9", 1, l1_budget=l1, fuse_pools=GAP9_FUSE_POOLS)
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


# -- calibration (tools/calibrate_cost_model.py; training data: calibration/samples.csv) -----------

def test_kernel_paths_follow_the_kernels_dispatch():
    """3x3 on a 4-wide map: every row is one 4-pixel block (no per-pixel path); 4 output channels put
    one channel in the tail blocks; a 5-wide map sends column 4 through the per-pixel path, whose
    loop (pix_iters) runs once per tap and block of channels (3 + 1 of the 4 channels: 2 blocks)."""
    from gapforge.characterize.kernel_paths import conv_paths

    g = {"c": 1, "h": 4, "w": 4, "oh": 4, "ow": 4, "kh": 3, "kw": 3, "sy": 1, "sx": 1, "pt": 1, "pl": 1, "dy": 1,
         "dx": 1, "groups": 1, "o": 3, "rq": True}
    assert conv_paths("gf_conv2d_3x3", g) == {"slow_macs": 0.0, "ctail_macs": 0.0, "pix_iters": 0.0}
    # 4 channels: 1 tail channel, 4 pixels x valid kernel rows (2, 3, 3, 2) x 3 taps per row
    assert conv_paths("gf_conv2d_3x3", {**g, "o": 4}) == {"slow_macs": 0.0, "ctail_macs": 120.0, "pix_iters": 0.0}
    # 5 columns: column 4 per pixel, 2 valid taps per kernel row (20 taps), all 4 channels in 2 blocks
    assert conv_paths("gf_conv2d_3x3", {**g, "o": 4, "w": 5, "ow": 5}) == {"slow_macs": 80.0, "ctail_macs": 120.0,
                                                                           "pix_iters": 40.0}
    # on a GAP9 core with 2 of the 16 channels of a 1x1: no 3-in-2 or 4x4 block, all per pixel, one
    # loop iteration per pixel and input channel for both channels
    g1 = {**g, "kh": 1, "kw": 1, "pt": 0, "pl": 0, "c": 8, "o": 16}
    assert conv_paths("gf_conv2d_1x1", g1, oc=2) == {"slow_macs": 2 * 16 * 8.0, "ctail_macs": 0.0,
                                                     "pix_iters": 16 * 8.0}
    # the general kernel, 1x5 on a 4-wide map: no interior block; 42 taps, 6 channels in blocks of 4 + 2
    g5 = {**g, "kh": 1, "kw": 5, "pl": 2, "o": 6}
    assert conv_paths("gf_conv2d", g5) == {"slow_macs": 42 * 6.0, "ctail_macs": 0.0, "pix_iters": 42 * 2.0}


def _held_out_errors(target):
    from tools import calibrate_cost_model as cc

    data = cc.read_samples(cc.SAMPLES, target)
    if target == "gap9-qemu":
        data = cc.with_gap9_extra(data, cc.calibrate(cc.read_samples(cc.SAMPLES, "rv32"), cc.HELD_OUT)[0])
    return data, cc.calibrate(data, cc.HELD_OUT)


@pytest.mark.parametrize("target", ["rv32", "gap9-qemu"])
def test_refit_on_the_stored_samples_meets_the_targets_and_equals_the_stored_fit(target):
    """Held-out networks (never fitted): median <= 10%, max <= 25% per layer; the stored
    calibration is this fit (same coefficients, same held-out error)."""
    import statistics

    from tools import calibrate_cost_model as cc

    data, (kernels, errors) = _held_out_errors(target)
    e = [x["rel_error"] for x in errors]
    assert {x["network"] for x in errors} == set(cc.HELD_OUT) and len(e) >= 60
    assert statistics.median(e) <= cc.TARGET_MEDIAN and max(e) <= cc.TARGET_MAX
    stored = cost.calibration(target)
    assert stored["held_out_error"] == {"median": round(statistics.median(e), 4), "max": round(max(e), 4),
                                        "layers": len(e)}
    for k, v in kernels.items():
        assert stored["kernels"][k]["coef"] == pytest.approx(v["coef"], rel=1e-6, abs=1e-9), k
    # every kernel variant a held-out network uses was in the training set
    train_kernels = {r["kernel"] for r in data if r["network"] not in cc.HELD_OUT}
    assert {x["kernel"] for x in errors} <= train_kernels


def test_task_starts_are_the_generated_programs_and_the_tool_checks_them_against_plan_json(extracted, tmp_path):
    """activations_cnn's GAP9 program runs two cluster tasks (steps 1-16, the task bound of 16 layers, and the
    classifier after the FC's step 17; plan.json gap9.tasks as measured at 31c3945): task_first is 1 on their
    first steps. The calibration tool refuses samples whose kept plan.json starts its tasks elsewhere."""
    from gapforge.errors import GapforgeError
    from tools import calibrate_cost_model as cc

    net = extracted("activations_cnn")
    graph = walk_network_info(net)
    assert cost.task_starts(graph) == {1, 18}
    run = tmp_path / "activations_cnn"
    (run / "gap9-qemu").mkdir(parents=True)
    (run / "network").symlink_to(net)
    plan = run / "gap9-qemu" / "plan.json"
    plan.write_text(json.dumps({"gap9": {"tasks": [{"steps": list(range(1, 17))}, {"steps": [18]}]}}))
    assert cc.task_starts(run / "network", graph) == {1, 18}
    plan.write_text(json.dumps({"gap9": {"tasks": [{"steps": list(range(1, 19))}]}}))
    with pytest.raises(GapforgeError, match=r"tasks start at steps \[1\], the model plans \[1, 18\]"):
        cc.task_starts(run / "network", graph)


def test_the_model_plans_the_unfused_program_and_the_tool_refuses_fused_runs(extracted, tmp_path):
    """simple_cnn's max pools fuse into their convs by default (codegen/gap9/fusion.py); the cost model plans the
    unfused program (tiling.GAP9_FUSE_POOLS), as the samples were measured, and calibrate_cost_model refuses a run
    measured fused: a kept plan.json with gap9.fusions, or layers.csv rows marked fused_into / fused_conv."""
    from codegen import profile as prof_rows
    from codegen.gap9 import fusion
    from gapforge.characterize import tiling
    from gapforge.errors import GapforgeError
    from tools import calibrate_cost_model as cc

    net = extracted("simple_cnn")
    graph = walk_network_info(net)
    assert fusion.pool_fusions(graph.plan)  # fused by default
    assert tiling.GAP9_FUSE_POOLS == "off"
    assert not any("fused_into" in r or "fused_conv" in r for r in tiling.gap9_layers(graph))
    run = tmp_path / "run"
    (run / "runs" / "simple_cnn" / "gap9-qemu").mkdir(parents=True)
    (run / "runs" / "simple_cnn" / "network").symlink_to(net)
    plan = run / "runs" / "simple_cnn" / "gap9-qemu" / "plan.json"
    plan.write_text(json.dumps({"gap9": {"fusions": [{"conv": "relu1", "pool": "pool1", "conv_index": 1,
                                                      "pool_index": 2}], "tasks": []}}))
    with pytest.raises(GapforgeError, match=r"plan.json: measured with max pools fused into their convs; profile "
                                            r"with --fuse-pools off to calibrate"):
        cc.task_starts(run / "runs" / "simple_cnn" / "network", graph)
    row = {c: "" for c in prof_rows.LAYERS_COLUMNS}
    row.update(network="simple_cnn", target="gap9-qemu", index=1, name="relu1", kernel="gf_conv2d",
               critical_path_instructions=10, fused_into="pool1")
    prof_rows.write_csv(run / "layers.csv", prof_rows.LAYERS_COLUMNS, [row])
    with pytest.raises(GapforgeError, match=r"layers.csv: simple_cnn/relu1 measured with max pools fused"):
        cc.samples(run, prof_rows.read_csv(run / "layers.csv"), "gap9-qemu")


@pytest.mark.parametrize("target", ["rv32", "gap9-qemu"])
def test_the_model_reproduces_stored_measurements_of_a_held_out_network(target, extracted):
    """padding_cnn (held out: padding 0 / 2 on small maps, the per-pixel path): the estimate of each
    layer from the walker + the stored calibration is the samples' prediction and within 25% of the
    measured count (rv32 minstret, gap9-qemu critical path) stored in samples.csv."""
    from gapforge.characterize.tiling import STRATEGIES
    from tools import calibrate_cost_model as cc

    graph = walk_network_info(extracted("padding_cnn"))
    rows = {r["index"]: r for r in cc.read_samples(cc.SAMPLES, target) if r["network"] == "padding_cnn"}
    assert len(rows) == 5  # three 3x3 convolutions, the max pooling, the classifier
    starts = cost.task_starts(graph)  # one cluster task: the convolutions, the pooling and the classifier
    assert starts == {1} and [r["task_first"] for _, r in sorted(rows.items())] == \
        ([1, 0, 0, 0, 0] if target == "gap9-qemu" else [0] * 5)
    for i, r in rows.items():
        node = graph.nodes[i]
        plan = None
        if target == "gap9-qemu":
            t = STRATEGIES["gap9"](graph, i, None)
            plan, cores = t.extra, t.extra["cores"]
            assert (t.tiles, cores) == (r["tiles"], r["cores"])
        x = cost.features(node, r["tiles"], r["cores"], plan)
        assert x == pytest.approx(r["x"], rel=1e-3, abs=1e-3), node.name
        p = cost.predict_instructions(node, target, r["tiles"], r["cores"], plan, i in starts)
        assert abs(p - r["y"]) / r["y"] <= cc.TARGET_MAX, (node.name, p, r["y"])
