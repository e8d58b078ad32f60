"""Build and run C programs for the host or for RV32 under QEMU (tests, benchmarks, generated code).

Targets:

* ``host``: the machine's ``gcc`` (``-std=c99 -Wall -Wextra -Werror``; with ``sanitize=True`` also
  ``-fsanitize=address,undefined -fno-sanitize-recover=all -g``), programs run directly.
* ``rv32``: bare-metal RV32IMAC (``riscv64-unknown-elf-gcc`` with picolibc; stdio and exit go
  through semihosting), programs run on ``qemu-system-riscv32 -machine virt`` with
  ``-icount shift=0`` so that ``minstret`` counts are exact and repeatable. Files are opened
  relative to the working directory given to :func:`run`; the program's exit code is QEMU's.

The rv32 recipe (``RV32_CFLAGS``, ``RV32_LDFLAGS``, ``QEMU_ARGS``): flash (code, read-only data)
at 0x80000000 (8 MiB), RAM at 0x80800000 (120 MiB, the rest of a 128 MiB window) for data, heap
and a 64 KiB stack, inside the 256 MiB the virt machine is given.

Optimisation: ``opt`` (default ``-O2``) applies to every source. The runtime's kernel files rely
on nothing else: they are written for -O2 (explicit register blocking and unrolling) and carry
their own ``#pragma GCC optimize`` where a pass must be turned off (see codegen/runtime).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gapforge.errors import GapforgeError  # noqa: E402

TARGETS = ("host", "rv32")

HOST_CC = "gcc"
HOST_CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]

RV32_CC = "riscv64-unknown-elf-gcc"
RV32_SIZE = "riscv64-unknown-elf-size"
RV32_CFLAGS = ["--specs=picolibc.specs", "--crt0=semihost", "--oslib=semihost",
               "-march=rv32imac", "-mabi=ilp32", "-std=c99", "-Wall", "-Wextra", "-Werror"]
RV32_LDFLAGS = ["-Wl,--defsym=__flash=0x80000000", "-Wl,--defsym=__flash_size=0x00800000",
                "-Wl,--defsym=__ram=0x80800000", "-Wl,--defsym=__ram_size=0x07800000",
                "-Wl,--defsym=__stack_size=0x00010000"]

_cache_env = os.environ.get("GAPFORGE_BUILD_CACHE")
CACHE_DIR: Path | None = (Path(_cache_env) if _cache_env else Path.home() / ".cache" / "gapforge" / "objects") \
    if _cache_env != "" else None

QEMU = "qemu-system-riscv32"
# -nographic would send the semihosting console to stderr; routing it to a stdio chardev instead
# gives the program's output (stdout and stderr alike, one console) on QEMU's stdout.
QEMU_ARGS = ["-machine", "virt", "-bios", "none", "-m", "256M", "-icount", "shift=0",
             "-display", "none", "-serial", "none", "-monitor", "none",
             "-chardev", "stdio,id=gfsemi,signal=off"]
SEMIHOSTING = "enable=on,target=native,chardev=gfsemi"


class ToolchainError(GapforgeError):
    """A compiler or emulator is missing, a build failed or a run timed out (one-line message)."""


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise ToolchainError(f"unknown target {target!r} (expected one of {', '.join(TARGETS)})")


def _picolibc_present() -> bool:
    """True if the cross compiler finds picolibc's specs file (package picolibc-riscv64-unknown-elf)."""
    try:
        out = subprocess.run([RV32_CC, "-print-file-name=picolibc.specs"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    path = out.stdout.strip()
    return out.returncode == 0 and path != "picolibc.specs" and Path(path).is_file()


def cross_compiler_available() -> tuple[bool, str]:
    """(True, "") if the rv32 cross compiler and picolibc's headers are installed (QEMU aside)."""
    if shutil.which(RV32_CC) is None:
        return False, f"{RV32_CC} not found on PATH (Debian: apt-get install gcc-riscv64-unknown-elf)"
    if not _picolibc_present():
        return False, f"picolibc for {RV32_CC} not found (Debian: apt-get install picolibc-riscv64-unknown-elf)"
    return True, ""


def available(target: str) -> tuple[bool, str]:
    """(True, "") if ``target`` can be built and run here, else (False, the reason)."""
    _check_target(target)
    if target == "host":
        if shutil.which(HOST_CC) is None:
            return False, f"host C compiler {HOST_CC!r} not found on PATH"
        return True, ""
    ok, why = cross_compiler_available()
    if not ok:
        return ok, why
    if shutil.which(QEMU) is None:
        return False, f"{QEMU} not found on PATH (Debian: apt-get install qemu-system-misc)"
    return True, ""


_SUMMARY_LINES = ("all warnings being treated as errors", "ld returned", "compilation terminated")


def _last_line(text: str) -> str:
    """The last informative line of compiler output: the last diagnostic ("error:", "warning:",
    undefined reference) that is not a summary such as "all warnings being treated as errors"."""
    lines = [" ".join(ln.split()) for ln in text.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not any(s in ln for s in _SUMMARY_LINES)]
    for ln in reversed(useful):
        if "error" in ln.lower() or "warning:" in ln or "undefined reference" in ln:
            return ln
    if useful:
        return useful[-1]
    return lines[-1] if lines else "(no output)"


def _run_tool(cmd: list[str], what: str, target: str) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{what} for {target}: compiler timed out") from None
    except OSError as exc:
        raise ToolchainError(f"{what} for {target}: cannot run {cmd[0]} ({exc})") from None
    if proc.returncode != 0:
        raise ToolchainError(f"{what} for {target} failed: {_last_line(proc.stderr + proc.stdout)}")
    return proc


def _compile_cached(cflags: list[str], source: Path, target: str, out_dir: Path | None = None,
                    aux: Sequence[str] = ()) -> Path:
    """Compile one source to an object file, reusing a cached object when recompiling would give the same one.

    The cache key is the compiler command without its ``-I`` directories, the compiler's version and
    the preprocessed source (``-E -P``: every included header's text, every macro expanded, so
    ``__FILE__`` and the defines are in it). Without debug information the object depends on nothing
    else, so the runtime files that every generated project copies are compiled once, not once per
    project directory. With ``-g`` the object records paths, so the command and the source path
    stay in the key. ``aux`` names the further outputs the flags make the compiler write next to the
    object (``.su`` for -fstack-usage, ``.ci`` for -fcallgraph-info): they are cached with it. Set
    GAPFORGE_BUILD_CACHE to move the cache, or to an empty string to disable it (objects are then
    compiled into ``out_dir``).
    """
    if CACHE_DIR is None:
        if out_dir is None:
            raise ToolchainError(f"compiling {source.name} for {target}: no object directory (the cache is off)")
        out_dir.mkdir(parents=True, exist_ok=True)
        obj = out_dir / f"{source.stem}.o"
        _run_tool([*cflags, "-c", str(source), "-o", str(obj)], f"compiling {source.name}", target)
        return obj
    debug = "-g" in cflags
    pre = _run_tool([*cflags, "-E", "-P", str(source)], f"preprocessing {source.name}", target).stdout
    flags = cflags if debug else [f for f in cflags if not f.startswith("-I")]
    h = hashlib.sha256("\0".join([*flags, _compiler_version(cflags[0])]).encode())
    if debug:
        h.update(str(source).encode())
    h.update(pre.encode())
    obj = CACHE_DIR / f"{source.stem}-{h.hexdigest()[:24]}.o"
    if not (obj.is_file() and all(obj.with_suffix(a).is_file() for a in aux)):
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = obj.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}.o")
        _run_tool([*cflags, "-c", str(source), "-o", str(tmp)], f"compiling {source.name}", target)
        for a in aux:  # the compiler names them after the object: <tmp stem><a>
            os.replace(tmp.with_suffix(a), obj.with_suffix(a))
        os.replace(tmp, obj)
    return obj


@functools.cache
def _compiler_version(cc: str) -> str:
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def compile_flags(target: str, include_dirs: Sequence[Path], *, defines: dict[str, str] | None = None,
                  opt: str = "-O2", sanitize: bool = False, extra_flags: Sequence[str] = ()) -> list[str]:
    """The compiler command (compiler and flags, without sources) :func:`build` compiles with."""
    _check_target(target)
    if sanitize and target != "host":
        raise ToolchainError("sanitize=True is only supported for the host target")
    if target == "host":
        cflags = [HOST_CC, *HOST_CFLAGS, opt] + (SANITIZE_FLAGS if sanitize else [])
    else:
        cflags = [RV32_CC, *RV32_CFLAGS, opt]
    cflags += [f"-I{Path(d).resolve()}" for d in include_dirs]
    for key, value in (defines or {}).items():
        cflags.append(f"-D{key}" if value is None or value == "" else f"-D{key}={value}")
    return cflags + list(extra_flags)


def compile_objects(cflags: list[str], sources: Sequence[Path], target: str, out_dir: Path | None = None, *,
                    aux: Sequence[str] = ()) -> list[Path]:
    """Compile each source with the compiler command ``cflags`` (in parallel, through the object
    cache of ``_compile_cached``); returns the object files in the order of ``sources``. ``target``
    only names the build in error messages."""
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda s: _compile_cached(cflags, Path(s).resolve(), target, out_dir, aux),
                             sources))


def link(target: str, objects: Sequence[Path], out: Path, *, sanitize: bool = False,
         ldflags: Sequence[str] = ()) -> Path:
    """Link ``objects`` into the executable ``out`` for ``target``; returns ``out``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if target == "host":
        cmd = [HOST_CC, *[str(o) for o in objects], "-o", str(out), *(SANITIZE_FLAGS if sanitize else []), *ldflags]
    else:
        cmd = [RV32_CC, *RV32_CFLAGS, *[str(o) for o in objects], "-o", str(out), *RV32_LDFLAGS, *ldflags]
    _run_tool(cmd, f"linking {out.name}", target)
    return out


def build(target: str, sources: list[Path], include_dirs: list[Path], out: Path, *,
          defines: dict[str, str] | None = None, opt: str = "-O2", sanitize: bool = False,
          extra_flags: Sequence[str] = (), aux: Sequence[str] = (), ldflags: Sequence[str] = ()) -> Path:
    """Compile and link ``sources`` into the executable ``out`` for ``target``; returns ``out``.

    Each source is compiled separately (in parallel, through the object cache of
    ``_compile_cached``; into ``<out>.obj/`` when the cache is off) and the objects are linked.
    Raises ToolchainError (one line, with the compiler's last error line) if the toolchain is
    missing or the build fails. ``sanitize`` is for the host only. See :func:`build_objects` for
    a build whose objects (and ``aux`` outputs) the caller reads.
    """
    return build_objects(target, sources, include_dirs, out, defines=defines, opt=opt, sanitize=sanitize,
                         extra_flags=extra_flags, aux=aux, ldflags=ldflags)[0]


def build_objects(target: str, sources: list[Path], include_dirs: list[Path], out: Path, *,
                  defines: dict[str, str] | None = None, opt: str = "-O2", sanitize: bool = False,
                  extra_flags: Sequence[str] = (), aux: Sequence[str] = (),
                  ldflags: Sequence[str] = ()) -> tuple[Path, list[Path]]:
    """:func:`build`, returning (executable, object files in the order of ``sources``)."""
    _check_target(target)
    ok, why = available(target)
    if not ok:
        raise ToolchainError(why)
    cflags = compile_flags(target, include_dirs, defines=defines, opt=opt, sanitize=sanitize, extra_flags=extra_flags)
    out = Path(out)
    objs = compile_objects(cflags, sources, target, out.parent / f"{out.name}.obj", aux=aux)
    return link(target, objs, out, sanitize=sanitize, ldflags=ldflags), objs


def run(target: str, exe: Path, *, cwd: Path, timeout: float = 120.0, args: Sequence[str] = ()) -> RunResult:
    """Run ``exe`` (built by :func:`build` for ``target``) in ``cwd``; returns its exit code and output.

    rv32 runs under QEMU with semihosting: ``cwd`` is the directory the program opens files
    relative to, ``args`` become its argv[1:] (picolibc sets argv[0] to "program-name"); the
    program's stdout and stderr both arrive in ``stdout`` (one semihosting console). Raises ToolchainError if the run times out or
    the emulator cannot be started.
    """
    _check_target(target)
    exe = Path(exe).resolve()
    if target == "host":
        cmd = [str(exe), *args]
    else:
        ok, why = available(target)
        if not ok:
            raise ToolchainError(why)
        semi = SEMIHOSTING
        for a in args:
            if "," in a or " " in a:
                raise ToolchainError(f"semihosting argument {a!r} must not contain ',' or spaces")
            semi += f",arg={a}"
        if not args:
            semi += ",arg="  # else QEMU passes the kernel's file name as argv[1]
        cmd = [QEMU, *QEMU_ARGS, "-semihosting-config", semi, "-kernel", str(exe)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=str(cwd), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, errors="replace")
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{exe.name} on {target} timed out after {timeout:g} s") from None
    except OSError as exc:
        raise ToolchainError(f"cannot run {exe.name} on {target}: {exc}") from None
    return RunResult(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start)
