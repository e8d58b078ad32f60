"""Model loading conventions shared by every tool.

* ``--model-file PATH``: a Python file exposing ``create_model()`` (returning the calibrated
  or trained Brevitas model) and ``example_input()`` (returning an input tensor, batch 1);
  or, with ``--model-class NAME``, a class instantiated without arguments, with
  ``--input-shape`` giving the example input's shape when the file has no ``example_input()``.
* ``--test-network NAME``: the same, from ``tests/test_networks/NAME.py``.
* ``--input-quant KIND[:SCALE]``: wrap a model whose first layer takes the float input with an
  input quantizer (gapforge/inputquant.py).

A model returned in training mode is switched to eval mode with a warning on stderr; example
inputs containing NaN or complex values are refused (gapforge/inputs.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

from gapforge.errors import GapforgeError
from gapforge.inputs import checked

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_NETWORKS_DIR = REPO_ROOT / "tests" / "test_networks"


@dataclass
class ModelSource:
    name: str
    source: str
    model: object  # torch.nn.Module
    example_inputs: tuple
    module: types.ModuleType
    notes: list[str] = field(default_factory=list)  # what the tools did to the model (e.g. --input-quant)
    input_origin: str = "example_input()"  # where example_inputs come from, as messages name it


def add_model_arguments(parser: argparse.ArgumentParser, required: bool = True):
    """The model selection flags; returns their mutually exclusive group (a tool may add to it)."""
    g = parser.add_argument_group("model selection (one of)")
    x = g.add_mutually_exclusive_group(required=required)
    x.add_argument("--model-file", metavar="PATH",
                   help="Python file exposing create_model() and example_input()")
    x.add_argument("--test-network", metavar="NAME",
                   help=f"a network from tests/test_networks/ ({', '.join(list_test_networks()) or 'none'})")
    g.add_argument("--model-class", metavar="NAME",
                   help="instantiate this class from the file instead of calling create_model()")
    g.add_argument("--input-shape", metavar="N,C,H,W",
                   help="example input shape when the file has no example_input()")
    from gapforge.inputquant import FLAG_HELP

    g.add_argument("--input-quant", metavar="KIND[:SCALE]", help=FLAG_HELP)
    return x


def list_test_networks() -> list[str]:
    if not TEST_NETWORKS_DIR.is_dir():
        return []
    return sorted(p.stem for p in TEST_NETWORKS_DIR.glob("*.py") if not p.stem.startswith("_"))


def import_file(path: Path) -> types.ModuleType:
    if not path.is_file():
        raise GapforgeError(f"{path}: no such model file")
    mod_name = f"gapforge_model_{path.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise GapforgeError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise GapforgeError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        raise GapforgeError(f"{path}: importing the model file failed: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())}") from None
    return module


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise GapforgeError(f"--input-shape '{text}': expected positive integers like 1,3,32,32")
    return shape


def _factory_hint(module: types.ModuleType) -> str:
    """What a model file without create_model() offers instead: its functions and nn.Module classes."""
    import torch

    own = {n: v for n, v in vars(module).items()
           if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__}
    funcs = [n for n, v in own.items() if inspect.isfunction(v)]
    classes = [n for n, v in own.items() if inspect.isclass(v) and issubclass(v, torch.nn.Module)]
    hint = "; add a create_model() returning the trained model"
    if funcs:
        hint += f" (it defines {', '.join(f + '()' for f in funcs)}: def create_model(): return {funcs[0]}())"
    if classes:
        hint += f", or pass --model-class {classes[0]}" + (f" (classes: {', '.join(classes)})" if len(classes) > 1 else "")
    return hint


def _instantiate(cls, where: str, name: str):
    """``cls()`` for --model-class: a constructor that needs arguments is refused naming them."""
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        params = []
    needed = [p.name for p in params if p.default is inspect.Parameter.empty
              and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if needed:
        raise GapforgeError(f"{where}: --model-class {name}: its constructor needs {', '.join(needed)}, and "
                            "--model-class calls it with no arguments; give them defaults or add a create_model() "
                            f"that returns {name}(...)")
    return cls()


def load_model(args: argparse.Namespace) -> ModelSource:
    import torch

    if args.test_network:
        path = TEST_NETWORKS_DIR / f"{args.test_network}.py"
        if not path.is_file():
            raise GapforgeError(f"--test-network '{args.test_network}': unknown network "
                                f"(available: {', '.join(list_test_networks())})")
        name = args.test_network
    else:
        path = Path(args.model_file)
        name = path.stem
    module = import_file(path)
    where = f"{path}"
    try:
        if args.model_class:
            cls = getattr(module, args.model_class, None)
            if cls is None:
                raise GapforgeError(f"{where}: no class named '{args.model_class}'")
            model = _instantiate(cls, where, args.model_class)
        elif hasattr(module, "create_model"):
            model = module.create_model()
        else:
            raise GapforgeError(f"{where}: defines no create_model(){_factory_hint(module)}")
        if args.input_shape:
            torch.manual_seed(0)
            example = torch.randn(*_parse_shape(args.input_shape))
        elif hasattr(module, "example_input"):
            example = module.example_input()
        else:
            raise GapforgeError(f"{where}: defines no example_input(); pass --input-shape")
    except GapforgeError:
        raise
    except Exception as exc:
        raise GapforgeError(f"{where}: building the model failed: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())}") from None
    if not isinstance(model, torch.nn.Module):
        raise GapforgeError(f"{where}: create_model() returned {type(model).__name__}, not a torch.nn.Module")
    inputs = example if isinstance(example, tuple) else (example,)
    for i, t in enumerate(inputs):
        got = "example_input() returned" if len(inputs) == 1 else f"example_input()'s input {i} (of {len(inputs)}) is"
        if not isinstance(t, torch.Tensor):
            raise GapforgeError(f"{where}: {got} a value of type {type(t).__name__}, not a float32 tensor; "
                                "return torch.as_tensor(x, dtype=torch.float32)")
        if t.dtype != torch.float32:
            raise GapforgeError(f"{where}: {got} a {t.dtype} tensor, not float32; return x.float()")
        checked(t.detach().numpy(), f"{where}: example_input()")
    if inputs[0].dim() == 0 or inputs[0].shape[0] != 1:
        raise GapforgeError(f"{where}: example_input() must have batch size 1 (got shape {list(inputs[0].shape)})")
    training = [n or "<root>" for n, m in model.named_modules() if m.training]
    if training:
        what = "the model is" if model.training else f"{len(training)} of its modules (e.g. '{training[0]}') are"
        print(f"warning: {where}: {what} in training mode; switched to eval mode (BatchNorm uses its running "
              "statistics, quantizers their calibrated scales)", file=sys.stderr)
    model.eval()
    src = ModelSource(name=name, source=str(path), model=model, example_inputs=inputs, module=module,
                      input_origin=f"the --input-shape {args.input_shape} input" if getattr(args, "input_shape", None) else
                      "example_input()")
    spec = getattr(args, "input_quant", None)
    if spec:
        from gapforge.inputquant import insert

        insert(src, spec)
    return src
