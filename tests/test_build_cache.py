"""The C object cache: keyed on what the compiler sees, not on where the project lies."""

from codegen import toolchains


def _project(root, header_value: int):
    (root / "inc").mkdir(parents=True)
    (root / "inc" / "v.h").write_text(f"#define GF_V {header_value}\n")
    (root / "k.c").write_text('#include "v.h"\nint gf_v(void) { return GF_V; }\n')
    return root / "k.c", root / "inc"


def test_same_sources_in_two_projects_compile_once(tmp_path, monkeypatch):
    monkeypatch.setattr(toolchains, "CACHE_DIR", tmp_path / "cache")
    flags = [toolchains.HOST_CC, *toolchains.HOST_CFLAGS, "-O2"]
    src_a, inc_a = _project(tmp_path / "a", 1)
    src_b, inc_b = _project(tmp_path / "b", 1)
    src_c, inc_c = _project(tmp_path / "c", 2)
    obj_a = toolchains._compile_cached([*flags, f"-I{inc_a}"], src_a, "host")
    obj_b = toolchains._compile_cached([*flags, f"-I{inc_b}"], src_b, "host")
    obj_c = toolchains._compile_cached([*flags, f"-I{inc_c}"], src_c, "host")
    assert obj_a == obj_b  # other directory, same text: the cached object is reused
    assert obj_c != obj_a  # a header that changed gives another object
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted({obj_a.name, obj_c.name})
    # debug information records paths: with -g the project directory is part of the key
    dbg_a = toolchains._compile_cached([*flags, "-g", f"-I{inc_a}"], src_a, "host")
    dbg_b = toolchains._compile_cached([*flags, "-g", f"-I{inc_b}"], src_b, "host")
    assert dbg_a != dbg_b
