"""The gvsoc target: the GAP9 project's pulp-sdk build (its generated Makefile) run on gvsoc.

gapforge ships neither gvsoc nor the PULP SDK: it uses the user's installation, found from flags
or environment variables (:func:`find_installation`):

* the PULP SDK (pulp-platform/pulp-sdk, pulpos + PMSIS BSP): ``--pulp-sdk DIR`` or ``PULP_SDK_HOME``;
  the platform's configuration script ``DIR/configs/<platform>.sh`` is sourced for the build;
* gvsoc: ``--gvsoc PATH`` or ``GVSOC``: the installed ``gvsoc`` launcher (``<install>/bin/gvsoc``),
  put first on PATH (pulp-sdk's ``make run`` calls ``gvsoc``);
* the PULP toolchain: ``PULP_RISCV_GCC_TOOLCHAIN`` (its ``bin/riscv32-unknown-elf-gcc``, as pulp-sdk's
  rules use it) or ``riscv32-unknown-elf-gcc`` on PATH.

A missing piece is one line naming the flag and the variable (exit 2). The program is built with
``make clean build`` and run with ``make run`` (gvsoc's image, flash with the ReadFS files, run),
both in the project directory; its ``GF`` lines are parsed exactly as on the other targets.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from codegen.toolchains import RunResult
from gapforge.errors import GapforgeError

# gvsoc's open PULP platforms (pulp-sdk configs/<name>.sh) and why the program cannot run on one
PLATFORMS = ("siracusa", "pulp-open")
DEFAULT_PLATFORM = "siracusa"
NOT_RUNNABLE = {
    "pulp-open": "the program loads its data through ReadFS, and pulp-sdk's pulp-open configuration has no "
                 "flash for it (its link fails on pi_partition_table_free; gvsoc's pulp-open flash/L3 path does "
                 "not work either); use --platform siracusa",
}
TOOLCHAIN_CC = "riscv32-unknown-elf-gcc"


@dataclass(frozen=True)
class Installation:
    pulp_sdk: Path
    gvsoc: Path
    toolchain: Path | None  # PULP_RISCV_GCC_TOOLCHAIN, or None: the compiler is on PATH

    def to_json(self) -> dict:
        return {"pulp_sdk": str(self.pulp_sdk), "gvsoc": str(self.gvsoc),
                "toolchain": str(self.toolchain) if self.toolchain else shutil.which(TOOLCHAIN_CC)}


def find_installation(pulp_sdk: str | None = None, gvsoc: str | None = None, platform: str = DEFAULT_PLATFORM,
                      environ: dict | None = None) -> Installation:
    """The user's pulp-sdk, gvsoc and toolchain; GapforgeError (one line) naming what is missing."""
    env = os.environ if environ is None else environ
    if platform not in PLATFORMS:
        raise GapforgeError(f"--platform {platform}: gvsoc runs the program on {' or '.join(PLATFORMS)}")
    if platform in NOT_RUNNABLE:
        raise GapforgeError(f"--platform {platform}: {NOT_RUNNABLE[platform]}")
    sdk_text = pulp_sdk or env.get("PULP_SDK_HOME")
    if not sdk_text:
        raise GapforgeError("--target gvsoc needs a PULP SDK: give --pulp-sdk DIR or set PULP_SDK_HOME "
                            "(a pulp-platform/pulp-sdk checkout), and --gvsoc / GVSOC (the gvsoc launcher)")
    sdk = Path(sdk_text).expanduser()
    config = sdk / "configs" / f"{platform}.sh"
    if not config.is_file():
        raise GapforgeError(f"{config}: not found; --pulp-sdk / PULP_SDK_HOME must be a pulp-sdk checkout "
                            f"with the {platform} configuration")
    if not (sdk / "tools" / "rules" / "pmsis_rules.mk").is_file():
        raise GapforgeError(f"{sdk / 'tools/rules/pmsis_rules.mk'}: not found; --pulp-sdk / PULP_SDK_HOME must be "
                            "a pulp-sdk checkout")
    gv_text = gvsoc or env.get("GVSOC")
    if not gv_text:
        raise GapforgeError("--target gvsoc needs gvsoc: give --gvsoc PATH or set GVSOC (the installed "
                            "<install>/bin/gvsoc launcher)")
    gv = Path(gv_text).expanduser()
    if gv.is_dir():
        gv = gv / "bin" / "gvsoc" if (gv / "bin" / "gvsoc").is_file() else gv / "gvsoc"
    if not (gv.is_file() and os.access(gv, os.X_OK)):
        raise GapforgeError(f"{gv}: not an executable gvsoc launcher (--gvsoc / GVSOC)")
    tc_text = env.get("PULP_RISCV_GCC_TOOLCHAIN")
    if tc_text:
        cc = Path(tc_text) / "bin" / TOOLCHAIN_CC
        if not (cc.is_file() and os.access(cc, os.X_OK)):
            raise GapforgeError(f"{cc}: not found (PULP_RISCV_GCC_TOOLCHAIN must hold the PULP toolchain's bin/)")
        return Installation(sdk.resolve(), gv.resolve(), Path(tc_text).resolve())
    if shutil.which(TOOLCHAIN_CC, path=env.get("PATH")) is None:
        raise GapforgeError(f"--target gvsoc needs the PULP toolchain: set PULP_RISCV_GCC_TOOLCHAIN or put "
                            f"{TOOLCHAIN_CC} on PATH")
    return Installation(sdk.resolve(), gv.resolve(), None)


def _shell(inst: Installation, platform: str, command: str) -> list[str]:
    """bash -c: the platform's pulp-sdk configuration sourced, gvsoc first on PATH, then ``command``."""
    script = (f"source {shlex.quote(str(inst.pulp_sdk / 'configs' / (platform + '.sh')))} >/dev/null && "
              f"export PATH={shlex.quote(str(inst.gvsoc.parent))}:$PATH && {command}")
    return ["bash", "-c", script]


def _env(inst: Installation) -> dict[str, str]:
    env = dict(os.environ)
    env["PULP_SDK_HOME"] = str(inst.pulp_sdk)
    if inst.toolchain:
        env["PULP_RISCV_GCC_TOOLCHAIN"] = str(inst.toolchain)
    return env


def executable(project: Path, plan: dict) -> Path | None:
    """The ELF pulp-sdk's rules build (BUILD/<chip>/GCC_RISCV/<app>/<app>), if there is one."""
    app = f"gapforge_{plan['network']}"
    found = sorted((project / "BUILD").glob(f"*/GCC_RISCV/{app}/{app}"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def build(project: Path, plan: dict, inst: Installation, platform: str, timeout: float = 1800.0) -> Path:
    """``make clean build`` with pulp-sdk's rules; the ELF, or GapforgeError with the compiler's last lines."""
    if not (project / "Makefile").is_file():
        raise GapforgeError(f"{project / 'Makefile'}: missing; regenerate the project with tools/generate_c_code.py "
                            "--target gap9 (the pulp-sdk Makefile is part of it)")
    try:
        proc = subprocess.run(_shell(inst, platform, "make clean build"), cwd=project, env=_env(inst),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise GapforgeError(f"the pulp-sdk build of {project} took more than {timeout:.0f} s") from None
    exe = executable(project, plan)
    if proc.returncode != 0 or exe is None:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-4:])
        raise GapforgeError(f"the pulp-sdk build of {project} failed (make exit {proc.returncode}): {tail}")
    return exe


def run(project: Path, inst: Installation, platform: str, timeout: float) -> RunResult:
    """``make run`` (gvsoc: image, flash with the ReadFS files, run) in the project; its output."""
    t0 = time.monotonic()
    try:
        proc = subprocess.run(_shell(inst, platform, "make run"), cwd=project, env=_env(inst),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        from codegen.toolchains import ToolchainError

        raise ToolchainError(f"gvsoc ({platform}) timed out after {timeout:.0f} s") from exc
    return RunResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)


__all__ = ["PLATFORMS", "DEFAULT_PLATFORM", "Installation", "find_installation", "build", "run", "executable"]
