#!/usr/bin/env bash
# Install everything gapforge needs on a fresh Debian/Ubuntu machine with Python 3.11:
#  - Debian packages for the rv32 target: gcc-riscv64-unknown-elf, picolibc-riscv64-unknown-elf,
#    qemu-system-misc (skipped when already installed; needs root or sudo)
#  - torch==2.13.0 exactly (the CPU wheel; any looser spec pulls CUDA packages), then gapforge
#    itself in editable mode with its test extras.
# Idempotent: re-running it only checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v riscv64-unknown-elf-gcc >/dev/null 2>&1 || need_apt+=(gcc-riscv64-unknown-elf)
[ -e /usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs ] || need_apt+=(picolibc-riscv64-unknown-elf)
command -v qemu-system-riscv32 >/dev/null 2>&1 || need_apt+=(qemu-system-misc)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing Debian packages: ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if ! $PY -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' 2>/dev/null; then
    echo "setup: installing torch==2.13.0"
    $PY -m pip install -q "torch==2.13.0"
fi
if ! $PY -c 'import gapforge, brevitas, jsonschema, onnxruntime, onnxoptimizer, sklearn, hypothesis, pytest, xdist' 2>/dev/null \
   || [ pyproject.toml -nt .setup-done ]; then
    echo "setup: installing gapforge and its Python dependencies"
    $PY -m pip install -q -e ".[test]"
    touch .setup-done
fi
echo "setup: ok ($($PY -c 'import torch, brevitas; print("torch", torch.__version__, "/ brevitas", brevitas.__version__)'))"
