"""Atomic outputs: a tool's output appears complete or not at all, and a failed run changes nothing."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gapforge.errors import GapforgeError, os_error


def _writable_parent(target: Path) -> Path:
    parent = target.resolve().parent
    blocker = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise GapforgeError(f"{blocker}: is a file, so the output directory {target} cannot be created")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GapforgeError(f"{parent}: cannot create output directory ({exc.strerror})") from None
    if target.exists() and not target.is_dir():
        raise GapforgeError(f"{target}: exists and is not a directory")
    return parent


def temporary_sibling(target: str | os.PathLike) -> Path:
    """A fresh empty directory next to ``target`` (same file system, so it can be renamed onto it)."""
    target = Path(target)
    parent = _writable_parent(target)
    try:
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
    except OSError as exc:
        raise GapforgeError(f"{parent}: cannot write the output directory here ({exc.strerror})") from None


def replace_directory(tmp: Path, target: str | os.PathLike) -> None:
    """Move the finished directory ``tmp`` onto ``target`` (the old ``target``, if any, is removed)."""
    target = Path(target)
    parent = tmp.parent
    old = None
    try:
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=parent))
            os.rmdir(old)
            os.rename(target, old)
        os.rename(tmp, target)
    except OSError as exc:
        if old is not None and old.exists() and not target.exists():
            os.rename(old, target)  # put the previous output back
        shutil.rmtree(tmp, ignore_errors=True)
        raise os_error(exc, "cannot replace the output directory") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory next to ``target``; on success it replaces ``target``.

    On any exception the temporary directory is removed and ``target`` is left untouched.
    OSErrors while writing (a full disk, a read-only file system) become one-line GapforgeErrors.
    """
    tmp = temporary_sibling(target)
    try:
        yield tmp
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise os_error(exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_directory(tmp, target)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise GapforgeError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise GapforgeError(f"{path}: cannot write ({exc.strerror})") from None
        raise
