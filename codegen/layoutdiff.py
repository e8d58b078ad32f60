"""Compare the layouts of two generated projects (plan.json without its data fields).

Two projects with the same layout compile to the same program, so the data of one runs on the
program of the other (tools/update_weights.py). ``diff_plans`` names every difference by layer and
field, e.g. ``layer 'relu1': params.weight.shape [64, 64] -> [48, 64]``.
"""

from __future__ import annotations

from codegen.manifest import VOLATILE_TOP, strip_data

NAMED_LISTS = {("steps",), ("layout", "steps"), ("params", "regions"), ("gap9", "layers"), ("memory", "buffers")}


def _fmt(v) -> str:
    s = repr(v) if not isinstance(v, (dict, list)) else str(v)
    return s if len(s) <= 80 else s[:77] + "..."


def _walk(a, b, path: tuple, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            sub = path + (k,)
            if k not in b:
                out.append(f"{where}{'.'.join(map(str, sub))}: only in the project ({_fmt(a[k])})")
            elif k not in a:
                out.append(f"{where}{'.'.join(map(str, sub))}: only in the new model ({_fmt(b[k])})")
            else:
                _walk(a[k], b[k], sub, where, out)
        return
    if isinstance(a, list) and isinstance(b, list) and path in NAMED_LISTS and _named(a) and _named(b):
        an, bn = [x["name"] for x in a], [x["name"] for x in b]
        label = ".".join(path)
        if an != bn:
            gone = [n for n in an if n not in bn]
            new = [n for n in bn if n not in an]
            msg = f"{label}: {len(an)} -> {len(bn)} entries"
            if gone:
                msg += f"; only in the project: {', '.join(gone)}"
            if new:
                msg += f"; only in the new model: {', '.join(new)}"
            if not gone and not new:
                msg += f"; order {an} -> {bn}"
            out.append(msg)
        bmap = {x["name"]: x for x in b}
        for x in a:
            if x["name"] in bmap:
                kind = "region" if path == ("params", "regions") else "layer"
                _walk(x, bmap[x["name"]], (), f"{kind} '{x['name']}' ({label}): ", out)
        return
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and any(isinstance(x, (dict, list)) for x in a):
        for i, (x, y) in enumerate(zip(a, b)):
            _walk(x, y, path + (i,), where, out)
        return
    if a != b:
        out.append(f"{where}{'.'.join(map(str, path)) or '(value)'}: {_fmt(a)} -> {_fmt(b)}")


def _named(items: list) -> bool:
    return all(isinstance(x, dict) and "name" in x for x in items)


def layout_of(plan: dict) -> dict:
    return strip_data({k: v for k, v in plan.items() if k not in VOLATILE_TOP})


def diff_plans(old: dict, new: dict) -> list[str]:
    """Differences of layout between the project's plan.json (``old``) and the new model's (``new``).
    The per-layer layout records come first: they say what changed in the model."""
    a, b = layout_of(old), layout_of(new)
    out: list[str] = []
    _walk({"layout": a.pop("layout", {})}, {"layout": b.pop("layout", {})}, (), "", out)
    _walk(a, b, (), "", out)
    return out
