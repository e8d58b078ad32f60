"""Run a project's compiled program on new data, never rebuilding it (tools/patch_params.py, gemm_template.py).

``DataRunner(project, target)`` takes the program built in ``PROJ/build/<target>`` (building it
first if there is none), copies the project's plan.json and data/ into a scratch project, and
``run(data)`` saves a ``ProjectData`` of that scratch project (codegen/projectdata.py: params,
golden files, manifest with its CRCs) and runs the unchanged program on it, with the manifest flag
that makes the program print every step's output values. The project itself is never modified.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from codegen import manifest as mf
from codegen import toolchains
from codegen.projectdata import ProjectData
from codegen.results import parse_output
from gapforge.errors import GapforgeError
from tools.run_generated import _check_plan_target, _environ, build, emu_env, executable, load_plan, sha256_of


class DataRunner:
    def __init__(self, project: str | Path, target: str, timeout: float = 600.0):
        self.project = Path(project)
        self.target = target
        self.timeout = timeout
        self.plan = load_plan(self.project)
        _check_plan_target(self.plan, target)
        ok, why = toolchains.available("host" if target == "gap9-emu" else target)
        if not ok:
            raise GapforgeError(f"target {target} is not available here: {why}")
        self.exe, env = build(self.project, self.plan, target, no_build=executable(self.project, target).is_file())
        self.env = {**env, **emu_env(self.plan, target)}
        self.sha256 = sha256_of(self.exe)
        self._tmp = Path(tempfile.mkdtemp(prefix="gapforge-data-"))
        self.scratch = self._tmp / "project"
        self.scratch.mkdir()
        shutil.copy2(self.project / "plan.json", self.scratch / "plan.json")
        shutil.copytree(self.project / self.plan["build"]["data_dir"], self.scratch / self.plan["build"]["data_dir"])
        self.runs = 0

    def data(self) -> ProjectData:
        """The project's data (a fresh copy each call) for the caller to modify and pass to ``run``."""
        d = ProjectData(self.project)
        for i in range(len(d.steps)):  # read now: the scratch copy holds the previous run's data
            d.golden(i)
        d.project, d.data_dir = self.scratch, self.scratch / self.plan["build"]["data_dir"]
        return d

    def run(self, data: ProjectData, print_values: bool = True) -> dict:
        """Save ``data`` into the scratch project and run the program on it; the parsed output
        (codegen/results.py) with ``returncode`` and ``values`` {step index: output integers}."""
        data.flags = (data.flags | mf.FLAG_PRINT_VALUES) if print_values else (data.flags & ~mf.FLAG_PRINT_VALUES)
        data.save()
        with _environ(self.env):
            res = toolchains.run("host" if self.target == "gap9-emu" else self.target, self.exe,
                                 cwd=data.data_dir, timeout=self.timeout)
        self.runs += 1
        parsed = parse_output(res.stdout)
        parsed["returncode"] = res.returncode
        parsed["stdout"] = res.stdout
        if sha256_of(self.exe) != self.sha256:
            raise GapforgeError(f"{self.exe}: the program changed during the runs")
        return parsed

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> DataRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
