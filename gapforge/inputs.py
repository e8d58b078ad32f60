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


class Several:
    """A batch for a network with several inputs: one float32 array per graph input, batch first.

    Indexing applies to every array (``x[:k]``, ``x[i]``, ``x[i][None]``), ``len`` is the batch size,
    so the tools handle it like the single array of a one-input network.
    """

    def __init__(self, arrays: list[np.ndarray]):
        self.arrays = list(arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, k) -> Several:
        return Several([a[k] for a in self.arrays])

    @property
    def ndim(self) -> int:
        return min(a.ndim for a in self.arrays)


def arrays_of(x) -> list[np.ndarray]:
    """The per-input arrays of a batch: ``[x]`` for one input."""
    if isinstance(x, Several):
        return x.arrays
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def batch_of(arrays: list[np.ndarray]):
    """The batch object for per-input arrays: the array itself for one input, else ``Several``."""
    return arrays[0] if len(arrays) == 1 else Several(arrays)


def torch_args(x) -> tuple:
    """The model's call arguments for a batch (one float32 tensor per input)."""
    import torch

    return tuple(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in arrays_of(x))


def file_names(kind: str, count: int) -> list[str]:
    """Names of the stored arrays under ``inputs/``: ``example_input`` / ``held_out_x`` for one input,
    ``example_input_<i>`` / ``held_out_x_<i>`` (i = the graph input's index) for several."""
    return [kind] if count == 1 else [f"{kind}_{i}" for i in range(count)]


def stored_arrays(net_dir: Path, kind: str):
    """The arrays stored as ``inputs/<kind>.npy`` or ``inputs/<kind>_0.npy``, ``_1``, ... (None: none)."""
    one = net_dir / "inputs" / f"{kind}.npy"
    if one.is_file():
        return load(one)
    paths = []
    while (net_dir / "inputs" / f"{kind}_{len(paths)}.npy").is_file():
        paths.append(net_dir / "inputs" / f"{kind}_{len(paths)}.npy")
    return Several([load(p) for p in paths]) if paths else None


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


def load(path: str | os.PathLike):
    """A ``.npy`` file of float inputs, checked (see ``checked``); for a network with several inputs an
    ``.npz`` file with one array per input (``np.savez(f, x0, x1)``: in the order of the model's
    arguments, i.e. arr_0, arr_1, ... or input_0, input_1, ...)."""
    if str(path).endswith(".npz"):
        return _load_npz(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise GapforgeError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError) as exc:
        raise GapforgeError(f"{path}: cannot load inputs ({' '.join(str(exc).split())})") from None
    if not isinstance(arr, np.ndarray):
        raise GapforgeError(f"{path}: not a single .npy array")
    return checked(arr, str(path))


def _load_npz(path) -> Several:
    try:
        with np.load(path, allow_pickle=False) as z:
            files = dict(z.items())
    except FileNotFoundError:
        raise GapforgeError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError) as exc:
        raise GapforgeError(f"{path}: cannot load inputs ({' '.join(str(exc).split())})") from None
    for prefix in ("arr_", "input_"):
        if files and all(k.startswith(prefix) and k[len(prefix):].isdigit() for k in files):
            order = sorted(files, key=lambda k: int(k[len(prefix):]))
            if [int(k[len(prefix):]) for k in order] != list(range(len(order))):
                raise GapforgeError(f"{path}: arrays {order} are not numbered 0, 1, ...")
            arrays = [checked(files[k], f"{path}: array '{k}'") for k in order]
            if len({len(a) for a in arrays}) != 1:
                raise GapforgeError(f"{path}: the arrays have different batch sizes "
                                    f"({', '.join(f'{k}: {len(a)}' for k, a in zip(order, arrays))})")
            return Several(arrays)
    raise GapforgeError(f"{path}: expected arrays named arr_0, arr_1, ... (np.savez(f, x0, x1)) or input_0, "
                        f"input_1, ..., got {sorted(files)}")


def check_shapes(x, net, what: str = "inputs"):
    """``x`` (a batch, or one sample without the batch axis) against the network's graph inputs; returns
    the batch. Errors name the input (its graph tensor and index)."""
    arrays = arrays_of(x)
    if len(arrays) != len(net.inputs):
        raise GapforgeError(f"{what}: {len(arrays)} input array{'s' if len(arrays) != 1 else ''} for a network "
                            f"with {len(net.inputs)} inputs ({', '.join(net.inputs)})"
                            + ("; pass an .npz file with one array per input" if len(net.inputs) > 1 else ""))
    out = []
    for i, (a, name) in enumerate(zip(arrays, net.inputs)):
        where = what if len(arrays) == 1 else f"{what}: input {i} ('{name}')"
        a = checked(a, where)
        shape = net.tensors[name].shape
        if a.ndim == len(shape) - 1:
            a = a[None]
        if list(a.shape[1:]) != list(shape[1:]):
            raise GapforgeError(f"{where}: shape {list(a.shape)} does not match the network's {shape} (batch first)")
        out.append(a)
    if len({len(a) for a in out}) != 1:
        raise GapforgeError(f"{what}: the inputs have different batch sizes ({[len(a) for a in out]})")
    return batch_of(out)


def stored(net_dir: Path) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The inputs the extractor stored: ``(x, labels or None, description)``.

    The model file's held-out samples when it has ``held_out_data()``, else its example input.
    """
    held_y = net_dir / "inputs" / "held_out_y.npy"
    held = stored_arrays(net_dir, "held_out_x")
    if held is not None:
        return held, (np.load(held_y) if held_y.is_file() else None), "held-out samples of the model file"
    example = stored_arrays(net_dir, "example_input")
    if example is None:
        raise GapforgeError(f"{net_dir}: no inputs/ directory (extract the network with tools/pytorch_extractor.py); "
                            "pass --inputs X.npy")
    return example, None, "the model's example input"


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
