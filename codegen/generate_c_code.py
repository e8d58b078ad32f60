#!/usr/bin/env python3
"""The seed's entry point: ``python codegen/generate_c_code.py ...`` runs ``tools/generate_c_code.py ...``.

One implementation (tools/generate_c_code.py); this file only makes the documented path work.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # run as a script: the repository root replaces codegen/ on sys.path (codegen/*.py are not top-level modules)
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from gapforge.errors import run_cli  # noqa: E402
from tools.generate_c_code import main  # noqa: E402

if __name__ == "__main__":
    run_cli(main)
