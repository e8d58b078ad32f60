"""Architecture profiles: JSON data files validated by profile.schema.json.

A profile is looked up by name (``gapforge/characterize/profiles/<name>.json``) or by path. Every
figure is ``{"value": x, "unit": ..., "source": ...}`` or ``{..., "assumption": ...}``; a file that
fails the schema is refused with one line naming the file and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from gapforge.errors import GapforgeError

HERE = Path(__file__).resolve().parent
PROFILES_DIR = HERE / "profiles"
SCHEMA = HERE / "profile.schema.json"


class ProfileError(GapforgeError):
    """A profile that cannot be read or fails the schema (one line, naming the field)."""


@dataclass(frozen=True)
class Level:
    name: str
    bytes: float
    bandwidth: float  # bytes per cycle
    setup_cycles: float
    pj_per_byte: float


@dataclass(frozen=True)
class Profile:
    name: str
    data: dict
    path: Path

    @property
    def clock_hz(self) -> float:
        return self.data["clock_hz"]["value"]

    @property
    def peak_macs_per_cycle(self) -> float:
        c = self.data["compute"]
        return c["units"]["value"] * c["macs_per_cycle_per_unit"]["value"]

    @property
    def efficiency(self) -> float:
        return self.data["compute"]["efficiency"]["value"]

    @property
    def units(self) -> int:
        return int(self.data["compute"]["units"]["value"])

    @property
    def pj_per_mac(self) -> float:
        return self.data["energy"]["pj_per_mac"]["value"]

    @property
    def levels(self) -> list[Level]:
        return [Level(lv["name"], lv["bytes"]["value"], lv["bandwidth_bytes_per_cycle"]["value"],
                      lv["setup_cycles"]["value"], lv["pj_per_byte"]["value"]) for lv in self.data["levels"]]

    @property
    def strategy(self) -> str:
        return self.data["tiling"]["strategy"]

    @property
    def double_buffered(self) -> bool:
        return bool(self.data["tiling"].get("double_buffered", False))

    @property
    def platform(self) -> str | None:
        """Strategy gap9: the hardware-model entry (codegen/gap9/hw.py PLATFORMS) planned for."""
        return self.data["tiling"].get("platform")

    def param(self, key: str) -> float:
        try:
            return self.data["tiling"]["params"][key]["value"]
        except KeyError:
            raise ProfileError(f"{self.path}: field 'tiling.params.{key}': required by tiling strategy "
                               f"'{self.strategy}'") from None

    @property
    def instructions(self) -> dict | None:
        return self.data.get("instructions")

    def figures(self) -> list[tuple[str, Any, str, str]]:
        """(field path, value, unit, 'source: ...' or 'assumption: ...') of every figure."""
        out = []

        def walk(node, path):
            if isinstance(node, dict) and "value" in node and ("source" in node or "assumption" in node):
                how = f"source: {node['source']}" if "source" in node else f"assumption: {node['assumption']}"
                out.append((path, node["value"], node.get("unit", ""), how))
            elif isinstance(node, dict):
                for k, v in node.items():
                    walk(v, f"{path}.{k}" if path else k)
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    name = v.get("name", i) if isinstance(v, dict) else i
                    walk(v, f"{path}[{name}]")

        walk(self.data, "")
        return out


@cache
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def _field(err) -> str:
    path = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "required":
        missing = next((m for m in err.validator_value if m not in (err.instance or {})), "?")
        path = f"{path}.{missing}" if path else missing
        return f"field '{path}': missing"
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        path = f"{path}.{extra[0]}" if path and extra else (extra[0] if extra else path)
        return f"field '{path}': not a profile field"
    if err.validator == "oneOf" and isinstance(err.instance, dict) and "value" in err.instance:
        both = "source" in err.instance and "assumption" in err.instance
        return f"field '{path}': needs exactly one of 'source' or 'assumption'" + (" (has both)" if both else "")
    return f"field '{path or '(top)'}': {err.message}"


def validate(data: Any, where: str) -> None:
    errors = sorted(_validator().iter_errors(data), key=lambda e: (len(list(e.absolute_path)), list(e.absolute_path)))
    if errors:
        # the deepest error of the first failing field names it best
        first = errors[0]
        for e in errors:
            if list(e.absolute_path)[:len(list(first.absolute_path))] == list(first.absolute_path):
                first = e if len(list(e.absolute_path)) >= len(list(first.absolute_path)) else first
        raise ProfileError(f"{where}: {_field(first)}")


def names() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.json"))


def load(name_or_path: str | Path) -> Profile:
    """The profile ``name`` (a file of profiles/) or the JSON file at that path, validated."""
    p = Path(name_or_path)
    path = p if p.suffix == ".json" or p.exists() else PROFILES_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise ProfileError(f"profile '{name_or_path}': no such profile (available: {', '.join(names())}) or file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read ({exc})") from None
    validate(data, str(path))
    from gapforge.characterize.tiling import STRATEGIES

    if data["tiling"]["strategy"] not in STRATEGIES:
        raise ProfileError(f"{path}: field 'tiling.strategy': unknown strategy '{data['tiling']['strategy']}' "
                           f"(available: {', '.join(sorted(STRATEGIES))})")
    if data["tiling"].get("platform") is not None:
        from codegen.gap9.hw import PLATFORMS

        if data["tiling"]["platform"] not in PLATFORMS:
            raise ProfileError(f"{path}: field 'tiling.platform': unknown platform '{data['tiling']['platform']}' "
                               f"(available: {', '.join(PLATFORMS)})")
    return Profile(data["name"], data, path)
