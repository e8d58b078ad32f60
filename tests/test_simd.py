"""The SIMD kernels (codegen/runtime/gf_simd.c over the primitives of gf_simd.h) on the GAP9 project.

* gap9-emu with ``--kernels simd``: the portable model of the primitives runs the SIMD kernels'
  loops, tails, im2col buffers and L1 planning bit-exact on regression networks (every layer, DMA
  bytes and L1 peaks as planned);
* the ``.insn`` implementation (upstream GCC, -march=rv32imc) compiles and its object holds the
  intended Xpulp encodings (gvsoc's isa_pulpv2.py), checked against the assembler;
* the portable and the SIMD plans differ only by the work buffers the tiler adds.
(kernel_check cases 30-33 of tests/test_runtime_kernels.py compare the kernels with the numpy
reference on random shapes with tails.)
"""

import json
import re
import subprocess

import pytest
from test_gap9 import _assert_exact

from codegen import toolchains
from codegen.gap9 import tiling
from codegen.gap9.tiling import simd_col_bytes, simd_conv_col_bytes
from codegen.generate import generate_project
from gapforge import ir
from gapforge.errors import GapforgeError
from gapforge.plan import build_plan
from tools.run_generated import run_project

RUNTIME = __import__("pathlib").Path(__file__).resolve().parents[1] / "codegen" / "runtime"
SIMD_NETS = ["simple_cnn", "depthwise_cnn", "bottleneck_1x1", "resnet_block", "mlp", "transformer_simple",
             "lowbit_cnn"]

pytestmark = pytest.mark.skipif(not toolchains.cross_compiler_available()[0],
                                reason=f"rv32 cross compiler: {toolchains.cross_compiler_available()[1]}")


@pytest.mark.parametrize("name", SIMD_NETS)
def test_simd_kernels_bit_exact_on_the_emulation(name, golden, tmp_path):
    proj = tmp_path / f"{name}_gap9_simd"
    # mlp: the cost model puts all three of its linear layers on the FC; kept on the cluster here (the cluster's kernels)
    generate_project(golden(name), proj, "gap9", 1, kernels="simd", fc_layers="off" if name == "mlp" else "auto")
    passed, res = run_project(proj, "gap9-emu", timeout=300)
    plan = _assert_exact(passed, res, proj)
    assert plan["generate"]["kernels"] == "simd"
    assert {"GF_K_SIMD", "GF_SIMD_KERNELS"} <= set(plan["build"]["defines"])
    kernel = {s["name"]: s["kernel"] for s in plan["steps"]}
    net = ir.load(golden(name))
    dw = {s.output for s in build_plan(net).steps  # one input channel per group
          if s.attrs.get("groups", 1) > 1 and net.tensors[net.op_by_name(s.main_op).inputs[0]].shape[1] == s.attrs["groups"]}
    assert any(r["tiling"] in ("conv", "linear", "gemm") for r in plan["gap9"]["layers"])
    steps = {s.output: s for s in build_plan(net).steps}
    for r in (r for r in plan["gap9"]["layers"] if r["tiling"] in ("conv", "gemm")):  # every layer with a convolution kernel or a matmul has its work buffers in L1
        col = r["l1_buffers"].get("col", 0)
        name = r.get("fused_conv", r["name"])  # a max pool fused into its conv: the conv's kernel (gap9/fusion.py)
        if name in dw:  # depthwise: the sliding-window kernel's rows of the padded input plane
            g = tiling.conv_geometry(steps[name], net, True)
            want = tiling.simd_dw_col_bytes(g, min(r["tile"]["oh"], g.oh), min(r["tile"]["ow"], g.ow))
            assert col == (want if g.oh * g.ow >= tiling.SIMD_DW_MIN_PIXELS else 0) and want > 0, r
        elif kernel[name] in ("gf_conv2d", "gf_conv2d_3x3", "gf_conv2d_1x1", "gf_dwconv2d", "gf_matmul"):
            assert col > 0 and col % 4 == 0, r
        else:
            assert col == 0, r


def test_portable_and_simd_plans_differ_by_the_work_buffers(golden, tmp_path):
    g_port = generate_project(golden("simple_cnn"), tmp_path / "p", "gap9", 1)
    g_simd = generate_project(golden("simple_cnn"), tmp_path / "s", "gap9", 1, kernels="simd")
    plan_p = json.loads((tmp_path / "p" / "plan.json").read_text())
    plan_s = json.loads((tmp_path / "s" / "plan.json").read_text())
    assert "GF_SIMD_KERNELS" not in plan_p["build"]["defines"] and plan_p["generate"]["kernels"] == "portable"
    assert "GF_SIMD_KERNELS" in plan_s["build"]["defines"] and plan_s["generate"]["kernels"] == "simd"
    for tp, ts, step in zip(g_port.tiles, g_simd.tiles, g_simd.program.calls):
        if "col" not in ts.buffers:
            continue
        cores = 8  # the executor allocates one per forked core
        if ts.tile == tp.tile:  # the same parameter buffer (a per-tensor requantization's constants: in the run record)
            assert ts.buffers["p"] == tp.buffers["p"], step.name
            assert ts.l1_bytes == tp.l1_bytes + cores * ((ts.buffers["col"] + 7) // 8 * 8), step.name
        assert ts.buffers["col"] == simd_conv_col_bytes(ts.buffers["w"] // ts.tile["co"]), step.name


def test_simd_kernels_are_gap9_only(golden, tmp_path):
    with pytest.raises(GapforgeError, match="--kernels simd applies to the gap9 target only"):
        generate_project(golden("mlp"), tmp_path / "h", "host", 1, kernels="simd")
    with pytest.raises(GapforgeError, match="--kernels 'fast': unknown"):
        generate_project(golden("mlp"), tmp_path / "g", "gap9", 1, kernels="fast")


def test_work_buffer_sizes_mirror_the_runtime():
    text = (RUNTIME / "gf_simd.h").read_text()
    for macro, value in (("GF_SIMD_PIX", tiling.SIMD_COL_PIXELS), ("GF_SIMD_CONV_COL_BYTES", tiling.SIMD_CONV_COL_BYTES),
                         ("GF_SIMD_CONV_PIX_MAX", tiling.SIMD_CONV_PIX_MAX),
                         ("GF_SIMD_DW_COL_BYTES", tiling.SIMD_DW_COL_BYTES), ("GF_SIMD_DW_WORDS", tiling.SIMD_DW_WORDS)):
        assert re.search(rf"#define {macro} {value}u?\b", text), macro
    assert simd_col_bytes(13) == 64 and simd_conv_col_bytes(9) == 32 * 12 and simd_conv_col_bytes(576) == 3 * 576
    assert simd_conv_col_bytes(4000) == 4000
    # depthwise 3x3, 16x16 tile, stride 1: 18 rows of round4(3 + 15 + 4) = 24 bytes; 5x5 stride 2 over
    # 100 columns: rows of round4(3 + 198 + 8) = 212 bytes, 9 of them fit 2 KiB; column dilation: none
    dwg = lambda kh, kw, s, dx=1: tiling.ConvGeometry(8, 64, 200, 8, 0, 0, kh, kw, s, s, 1, 1, 1, dx, 8, True,  # noqa: E731
                                                       1, 1, kh * kw, None)
    assert tiling.simd_dw_col_bytes(dwg(3, 3, 1), 16, 16) == 18 * 24
    assert tiling.simd_dw_col_bytes(dwg(5, 5, 2), 30, 100) == 9 * 212
    assert tiling.simd_dw_col_bytes(dwg(3, 3, 1, 2), 16, 16) == 0 and tiling.simd_dw_col_bytes(dwg(9, 9, 1), 4, 4) == 0


# -- the .insn build ---------------------------------------------------------------------------
# (mnemonic, assembler source, .insn written as gf_simd.h does) for every instruction it uses
ENCODINGS = [
    ("pv.sdotsp.b a0, a1, a2", ".insn r 0x57, 1, 0x5C, a0, a1, a2"),
    ("pv.sdotusp.b a0, a1, a2", ".insn r 0x57, 1, 0x54, a0, a1, a2"),
    ("pv.sdotup.b a0, a1, a2", ".insn r 0x57, 1, 0x50, a0, a1, a2"),
    ("p.lw a0, 4(a1!)", ".insn i 0x0B, 2, a0, 4(a1)"),
    ("lp.setup 0, a3, 18", ".insn i 0x7B, 4, x0, a3, 18"),
    ("p.clipu a0, a1, a2", ".insn r 0x33, 6, 0x0A, a0, a1, a2"),  # clip to 0 .. a2 (RI5CY's p.clipur)
]


def _field_word(mnemonic: str) -> int:
    """The word from gvsoc's bit patterns (isa_pulpv2.py), fields filled in by hand."""
    a0, a1, a2, a3 = 10, 11, 12, 13
    r = lambda f7, f3, op: f7 << 25 | a2 << 20 | a1 << 15 | f3 << 12 | a0 << 7 | op  # noqa: E731
    return {
        "pv.sdotsp.b a0, a1, a2": r(0b1011100, 0b001, 0b1010111),
        "pv.sdotusp.b a0, a1, a2": r(0b1010100, 0b001, 0b1010111),
        "pv.sdotup.b a0, a1, a2": r(0b1010000, 0b001, 0b1010111),
        "p.lw a0, 4(a1!)": 4 << 20 | a1 << 15 | 0b010 << 12 | a0 << 7 | 0b0001011,
        "lp.setup 0, a3, 18": 18 << 20 | a3 << 15 | 0b100 << 12 | 0 << 7 | 0b1111011,
        "p.clipu a0, a1, a2": r(0b0001010, 0b110, 0b0110011),
    }[mnemonic]


def _words(obj, tmp_path) -> list[int]:
    out = subprocess.run(["riscv64-unknown-elf-objdump", "-d", str(obj)], capture_output=True, text=True, check=True)
    return [int(m.group(1), 16) for m in re.finditer(r"^\s*[0-9a-f]+:\s+([0-9a-f]{8})\s", out.stdout, re.M)]


def test_insn_encodings_match_gvsoc_isa(tmp_path):
    src = tmp_path / "enc.s"
    src.write_text(".option norvc\n" + "\n".join(insn for _, insn in ENCODINGS) + "\n")
    obj = tmp_path / "enc.o"
    subprocess.run(["riscv64-unknown-elf-as", "-march=rv32imc", "-mabi=ilp32", str(src), "-o", str(obj)], check=True)
    assert _words(obj, tmp_path) == [_field_word(m) for m, _ in ENCODINGS]


def test_insn_build_compiles_for_rv32_with_the_intended_encodings(tmp_path):
    obj = tmp_path / "gf_simd.o"
    cmd = ["riscv64-unknown-elf-gcc", "--specs=picolibc.specs", "-march=rv32imc", "-mabi=ilp32", "-std=c99", "-O2",
           "-Wall", "-Wextra", "-Werror", "-DGF_SIMD_INSN", f"-I{RUNTIME}", "-c", str(RUNTIME / "gf_simd.c"),
           "-o", str(obj)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    words = _words(obj, tmp_path)
    ops = {(w & 0x7F, (w >> 12) & 7, w >> 25) for w in words}
    for f7 in (0b1011100, 0b1010100, 0b1010000):  # sdotsp, sdotusp, sdotup: every lane type is used
        assert (0b1010111, 0b001, f7) in ops
    postinc = [w for w in words if w & 0x7F == 0b0001011 and (w >> 12) & 7 == 0b010]
    assert postinc and all(w >> 20 == 4 for w in postinc)  # p.lw rd, 4(rs1!)
    setups = [w for w in words if w & 0x7F == 0b1111011]
    assert setups and all((w >> 12) & 7 == 0b100 and (w >> 7) & 31 == 0 for w in setups)
    assert {w >> 20 for w in setups} == {18, 28, 34, 40, 48}  # 1 x 4, 2 x 4, 1 x 8, 4 x 4 and the K <= 12 inner loops
    # each hardware loop is the inner dot product: its last instruction (lp.setup + 2 x uimmL) a dot
    # product, its body 5 loads and 4 dot products (1 vector x 4 rows), 6 and 8 (2 vectors x 4 rows), 9 and 8
    # (1 vector x 8 rows: the weight words by register post-increment loads, p.lw rd, rs2(rs1!)) or 8 and 16
    # (4 vectors x 4 rows: every load so)
    out = subprocess.run(["riscv64-unknown-elf-objdump", "-d", str(obj)], capture_output=True, text=True).stdout
    lines = [(int(m.group(1), 16), int(m.group(2), 16)) for m in
             re.finditer(r"^\s*([0-9a-f]+):\s+([0-9a-f]{8})\s", out, re.M)]
    at = dict(lines)
    for addr, w in lines:
        if w & 0x7F == 0b1111011:
            n = (w >> 20) // 2
            body = [at[addr + 4 * i] & 0x7F for i in range(1, n + 1)]
            loads, dots = body.count(0b0001011), body.count(0b1010111)
            if n == 20:  # K <= 12: per pixel 3 loads, 12 dot products, 4 stores and the pointer's addi
                assert (loads, dots, body.count(0b0100011)) == (3, 12, 4) and body[-1] == 0b0010011
                continue
            assert body[-1] == 0b1010111
            assert (loads, dots) == {9: (5, 4), 14: (6, 8), 17: (9, 8), 24: (8, 16)}[n] and loads + dots == n
            if n == 24:  # LW_RR_POSTINC: funct3 7, funct7 0x10
                assert all((at[addr + 4 * i] >> 12) & 7 == 7 and at[addr + 4 * i] >> 25 == 0x10
                           for i in range(1, n + 1) if at[addr + 4 * i] & 0x7F == 0b0001011)
            if n == 17:  # the x word by p.lw rd, 4(rs1!), the 8 weight words LW_RR_POSTINC
                assert [((at[addr + 4 * i] >> 12) & 7, at[addr + 4 * i] >> 25) for i in range(1, n + 1)
                        if at[addr + 4 * i] & 0x7F == 0b0001011] == [(2, 0)] + [(7, 0x10)] * 8
    # the portable build of the same file (host emulation, QEMU) has none of them
    obj2 = tmp_path / "gf_simd_portable.o"
    subprocess.run([c for c in cmd if c != "-DGF_SIMD_INSN"][:-1] + [str(obj2)], check=True)
    assert not {w & 0x7F for w in _words(obj2, tmp_path)} & {0b1010111, 0b1111011}
