"""Network inputs given to the tools: loading, checking, and the inputs the extractor stored.

Every float input (``--inputs X.npy``, a model file's ``example_input()`` / ``held_out_data()``,
an array handed to the engine) goes through ``checked``: NaN has no quantized value and complex
numbers are not network inputs, so both are refused naming the first bad index; ``+-inf`` and huge
finite values are accepted, because Brevitas' quantizer saturates them (atomic_ops/quantize.py
does the same). Values are converted to float32, the dtype the network runs in.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gapforge.errors import GapforgeError

# the golden generator's and deploy's default number of test cases (fewer when fewer inputs exist)
DEFAULT_CASES = 3


def _index(flat: int, shape) -> list[int]:
    return [int(i) for i in np.unravel_index(flat, shape)] if shape else []


def checked(x, where: str) -> np.ndarray:
    """``x`` as float32 after refusing complex, non-numeric and NaN values (``where`` names the source)."""
    arr = np.asarray(x)
    if arr.dtype.kind == "c":
        nz = np.flatnonzero(arr.imag)
        at = f"; first non-zero imaginary part at index {_index(nz[0], arr.shape)}" if nz.size else ""
        raise GapforgeError(f"{where}: complex values (dtype {arr.dtype}) cannot be network inputs{at}")
    if arr.dtype.kind not in "biuf":
        raise GapforgeError(f"{where}: dtype {arr.dtype} is not a numeric input (expected float32)")
    with np.errstate(over="ignore"):  # finite values beyond float32 become +-inf, as in torch
        arr = arr.astype(np.float32)
    nan = np.flatnonzero(np.isnan(arr))
    if nan.size:
        raise GapforgeError(f"{where}: NaN at index {_index(nan[0], arr.shape)} ({nan.size} NaN value"
                            f"{'s' if nan.size > 1 else ''}); NaN has no quantized value")
    return arr


def load(path: str | os.PathLike) -> np.ndarray:
    """A ``.npy`` file of float inputs, checked (see ``checked``)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise GapforgeError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError) as exc:
        raise GapforgeError(f"{path}: cannot load inputs ({' '.join(str(exc).split())})") from None
    if not isinstance(arr, np.ndarray):
        raise GapforgeError(f"{path}: not a single .npy array")
    return checked(arr, str(path))


def stored(net_dir: Path) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The inputs the extractor stored: ``(x, labels or None, description)``.

    The model file's held-out samples when it has ``held_out_data()``, else its example input.
    """
    held_x, held_y = net_dir / "inputs" / "held_out_x.npy", net_dir / "inputs" / "held_out_y.npy"
    if held_x.is_file():
        return load(held_x), (np.load(held_y) if held_y.is_file() else None), "held-out samples of the model file"
    path = net_dir / "inputs" / "example_input.npy"
    if not path.is_file():
        raise GapforgeError(f"{net_dir}: no inputs/ directory (extract the network with tools/pytorch_extractor.py); "
                            "pass --inputs X.npy")
    return load(path), None, "the model's example input"


def select(net_dir: Path, inputs: str | None, num_cases: int | None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Inputs for golden test cases / fidelity: ``--inputs`` or the stored ones, the first ``num_cases``.

    Without ``num_cases``: all of ``--inputs``, else ``DEFAULT_CASES`` of the stored inputs or as many
    as there are (the description then says how many were available).
    """
    if inputs:
        x, labels, what = load(inputs), None, f"inputs from {inputs}"
    else:
        x, labels, what = stored(net_dir)
    if x.ndim == 0:
        raise GapforgeError(f"{inputs or net_dir}: a scalar is not a batch of inputs")
    if num_cases is not None and num_cases < 1:
        raise GapforgeError("--num-cases must be at least 1")
    if num_cases is not None and num_cases > len(x):
        raise GapforgeError(f"--num-cases {num_cases} but only {len(x)} inputs are available ({what})")
    k = num_cases if num_cases is not None else (len(x) if inputs else min(DEFAULT_CASES, len(x)))
    if num_cases is None and not inputs and k < DEFAULT_CASES:
        what += f": only {len(x)} available, so {k} test case{'s' if k > 1 else ''}"
    return x[:k], (labels[:k] if labels is not None else None), what
