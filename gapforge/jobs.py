"""Independent jobs (profile runs, sweep points) on dask.distributed, or serially.

``run_jobs(fn, items)`` calls ``fn(item)`` for every item and returns the results in the order of
``items``, whoever ran them: on a LocalCluster of this machine (the default), on an existing
cluster (``scheduler="tcp://host:8786"``) or in this process (``workers=0``). The result is the
same list whatever the worker count, which is what makes the CSVs built from it identical.

``fn`` must be a module-level function of an importable module (the workers import it by name).
Worker processes get this checkout first on PYTHONPATH, so they run the same code as the caller.
A job that raises GapforgeError is reported as the one-line error of that job; any other exception
propagates (a bug).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gapforge.errors import GapforgeError

REPO = Path(__file__).resolve().parents[1]


def _progress(total: int, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="job", file=sys.stderr, disable=quiet)


def _with_repo_on_path() -> None:
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(REPO) not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *parts])


def run_jobs(fn: Callable[[Any], Any], items: Sequence[Any], *, scheduler: str | None = None,
             workers: int | None = None, desc: str = "jobs", quiet: bool = False) -> list[Any]:
    """[fn(item) for item in items], computed as independent jobs (see the module docstring).

    ``workers``: LocalCluster size (default: the machine's cores, at most the number of jobs);
    0 runs serially here. ``scheduler``: the address of an existing dask scheduler (``workers`` is
    then ignored)."""
    items = list(items)
    if not items:
        return []
    if scheduler is None and (workers == 0 or len(items) == 1 and workers is None):
        out = []
        with _progress(len(items), desc, quiet) as bar:
            for it in items:
                out.append(fn(it))
                bar.update(1)
        return out
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:  # pragma: no cover - dask is a declared dependency
        raise GapforgeError("dask.distributed is not installed (pip install 'dask[distributed]')") from None
    _with_repo_on_path()
    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise GapforgeError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        else:
            n = workers or min(os.cpu_count() or 1, len(items))
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                   silence_logs=40)
            client = Client(cluster)
        with client:
            futures = client.map(fn, items, pure=False)
            index = {f.key: i for i, f in enumerate(futures)}
            out: list[Any] = [None] * len(items)
            with _progress(len(items), desc, quiet) as bar:
                for fut in as_completed(futures):
                    out[index[fut.key]] = fut.result()
                    bar.update(1)
            return out
    finally:
        if cluster is not None:
            cluster.close()
