#!/usr/bin/env python3
"""Put a retrained model into an already built project: rewrite its data files, not its program.

Examples:
  python tools/update_weights.py --project build/mlp/project_host --model-file mlp_retrained.py
  python tools/update_weights.py --project build/mlp/project_rv32 --network build/mlp_v2
  python tools/run_generated.py --project build/mlp/project_host --target host --no-build

The model (``--model-file`` / ``--test-network``, extracted here; or ``--network DIR``, an
extracted network) is planned and generated exactly as the project was (same target, test case,
L1 / L2 budgets, gap9 kernels, platform, FC layers and pool fusion: plan.json's ``generate``; a gap9
project without ``generate.fuse_pools`` predates pool fusion: its pools ran unfused), and its layout (plan.json without CRCs: ops, fusion,
shapes, bit widths, kernels, tiling, placement, region offsets and sizes, and the program sources)
is compared with the project's. If they are equal the compiled program (host executable, rv32
ELF, gap9 project and its ReadFS files list) runs the new model unchanged, and only the data are
rewritten: data/params.bin (weights, biases, requantization mantissas / shifts / offsets), the
golden files and data/manifest.bin (offsets, sizes, CRC-32s, the same layout hash), replacing data/
in one directory rename, then plan.json's CRCs. If they differ, every difference is printed by layer
and field and nothing is written.

Exit codes: 0 data updated; 1 the layouts differ (nothing written); 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codegen.generate import generate_project  # noqa: E402
from codegen.layoutdiff import diff_plans  # noqa: E402
from gapforge.errors import EXIT_OK, EXIT_VERDICT, ArgumentParser, GapforgeError, run_cli  # noqa: E402
from gapforge.fsutil import atomic_write_text, replace_directory, temporary_sibling  # noqa: E402
from gapforge.modelsrc import add_model_arguments, load_model  # noqa: E402

SKIP = {"data", "build", "plan.json", "results.json"}  # what is not the program's source


def project_files(root: Path) -> dict[str, bytes]:
    """Every file of a project that the compiled program is made from (not data/, build/, plan.json)."""
    out = {}
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if f.is_file() and rel.parts[0] not in SKIP and not rel.parts[0].startswith("."):
            out[str(rel)] = f.read_bytes()
    return out


def _load_plan(project: Path) -> dict:
    path = project / "plan.json"
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GapforgeError(f"{path}: not a generated project (run tools/generate_c_code.py)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise GapforgeError(f"{path}: unreadable ({exc})") from None
    if "data" not in plan or "generate" not in plan:
        raise GapforgeError(f"{path}: generated before data manifests existed; regenerate the project once "
                            "(tools/generate_c_code.py), then update its weights")
    return plan


def _network_dir(args, work: Path, test_case: int, name: str, notes: list[str]) -> Path:
    """A copy in ``work`` of the new network, named ``name`` like the project's (the name is compiled
    into the program), with golden test cases 1..test_case (the stored ones of ``--network``, if any)."""
    from gapforge.inputs import select
    from tools.generate_golden_outputs import generate

    net_dir = work / "network"
    if args.network:
        src_dir = Path(args.network)
        if not (src_dir / "network_info.json").is_file():
            raise GapforgeError(f"{src_dir / 'network_info.json'}: no extracted network here "
                                "(tools/pytorch_extractor.py --out DIR)")
        shutil.copytree(src_dir, net_dir, ignore=shutil.ignore_patterns("project_*", "*.failed"))
    else:
        from gapforge.extract import extract, model_inputs, write_network

        src = load_model(args)
        write_network(extract(src), net_dir, model_inputs(src))
    info = net_dir / "network_info.json"
    doc = json.loads(info.read_text(encoding="utf-8"))
    if doc["network"]["name"] != name:
        notes.append(f"network '{doc['network']['name']}' keeps the project's name '{name}'")
        doc["network"]["name"] = name
        info.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    if (net_dir / "test_cases" / f"test_case_{test_case}").is_dir() and not args.inputs:
        return net_dir
    x, labels, what = select(net_dir, args.inputs, None if args.inputs else test_case)
    if len(x) < test_case:
        raise GapforgeError(f"the project runs golden test case {test_case}, but only {len(x)} inputs are "
                            f"available ({what})")
    generate(net_dir, x, labels, what, progress=False)
    return net_dir


# plan.json generate.fuse_pools of a gap9 project generated before max-pool fusion existed (no such key): its
# pools ran unfused
FUSE_POOLS_BEFORE = "off"


def update(project: Path, args) -> tuple[bool, list[str]]:
    """(updated, report lines). Nothing in ``project`` changes unless the layouts are equal."""
    old = _load_plan(project)
    gen = old["generate"]
    with tempfile.TemporaryDirectory(prefix="gapforge-update-") as tmp:
        work = Path(tmp)
        notes: list[str] = []
        net_dir = _network_dir(args, work, gen["test_case"], old["network"], notes)
        new_proj = work / "project"
        try:
            generate_project(net_dir, new_proj, old["target"], gen["test_case"], l1_budget=gen["l1_budget"],
                             l2_budget=gen["l2_budget"], fault=gen["fault"], tile_l1_budget=gen["tile_l1_budget"],
                             kernels=gen.get("kernels", "portable"), platform=gen.get("platform"),
                             **({"fc_layers": gen["fc_layers"]} if "fc_layers" in gen else {}),
                             **({"fuse_pools": gen.get("fuse_pools", FUSE_POOLS_BEFORE)} if "gap9" in old else {}))
        except GapforgeError as err:
            return False, [f"the new model cannot be generated for this project: {err.one_line()}"]
        new = json.loads((new_proj / "plan.json").read_text(encoding="utf-8"))
        diffs = diff_plans(old, new)
        a, b = project_files(project), project_files(new_proj)
        for name in sorted(set(a) | set(b)):
            if a.get(name) != b.get(name):
                diffs.append(f"{name}: " + ("only in the project" if name not in b else "only in the new model"
                                            if name not in a else "differs (the compiled program would change)"))
        if not diffs and old["data"]["layout_hash"] != new["data"]["layout_hash"]:
            diffs.append(f"layout hash {old['data']['layout_hash']} -> {new['data']['layout_hash']}")
        if diffs:
            return False, diffs
        lines = notes + _describe(project, new_proj, old)
        data_dir = project / old["build"]["data_dir"]
        staged = temporary_sibling(data_dir)
        try:
            shutil.copytree(new_proj / new["build"]["data_dir"], staged, dirs_exist_ok=True)
        except OSError as exc:
            shutil.rmtree(staged, ignore_errors=True)
            raise GapforgeError(f"{staged}: cannot write the new data ({exc.strerror})") from None
        replace_directory(staged, data_dir)
        atomic_write_text(project / "plan.json", json.dumps(new, indent=1) + "\n")
        return True, lines


def _describe(project: Path, new_proj: Path, old: dict) -> list[str]:
    d_old, d_new = project / old["build"]["data_dir"], new_proj / old["build"]["data_dir"]
    p_old, p_new = (d_old / "params.bin").read_bytes(), (d_new / "params.bin").read_bytes()
    changed_bytes = sum(x != y for x, y in zip(p_old, p_new))
    regions = old["params"]["regions"]
    changed = [r["name"] for r in regions if p_old[r["offset"]:r["offset"] + r["size"]] !=
               p_new[r["offset"]:r["offset"] + r["size"]]]
    goldens = [s["golden"] for s in old["steps"]]
    g_changed = [g for g in goldens if zlib.crc32((d_old / g).read_bytes()) != zlib.crc32((d_new / g).read_bytes())]
    return [f"params.bin: {changed_bytes} of {len(p_old)} bytes changed, {len(changed)} of {len(regions)} regions",
            f"golden files: {len(g_changed)} of {len(goldens)} changed",
            f"program unchanged (layout {old['data']['layout_hash']})"]


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="update_weights.py", description=__doc__.split("\n")[0],
                       epilog=__doc__.split("Examples:")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", required=True, metavar="PROJ", help="project made by tools/generate_c_code.py")
    x = add_model_arguments(p, required=True)
    x.add_argument("--network", metavar="DIR", help="an extracted network (network_info.json, e.g. a deploy.py "
                   "output directory) instead of a model")
    p.add_argument("--inputs", metavar="X.npy", help="float32 inputs for the golden test case (default: the model's "
                   "stored inputs, as when the project was made)")
    args = p.parse_args(argv)
    project = Path(args.project)
    ok, lines = update(project, args)
    if not ok:
        print(f"NOT UPDATED: the new model's layout differs from {project}'s ({len(lines)} differences); "
              "nothing was written:")
        for line in lines[:60]:
            print(f"  {line}")
        if len(lines) > 60:
            print(f"  ... and {len(lines) - 60} more")
        return EXIT_VERDICT
    for line in lines:
        print(f"  {line}")
    target = json.loads((project / "plan.json").read_text(encoding="utf-8"))["target"]
    run_as = "gap9-emu" if target == "gap9" else target
    print(f"UPDATED: {project}/data; run the same program with: python tools/run_generated.py --project {project} "
          f"--target {run_as} --no-build")
    return EXIT_OK


if __name__ == "__main__":
    run_cli(main)
