"""User-facing errors and the command-line wrapper every tool shares.

A ``GapforgeError`` is a mistake in the user's input (a model, a file, a flag): it is
printed as one line naming the file, module or field, never as a traceback.
Exit codes used by all tools:

* 0: success
* 1: the tool ran but the verdict is negative (model not deployable, mismatches found)
* 2: bad input (unreadable file, invalid JSON, unsupported construct during extraction, bad flag,
  an output directory that cannot be written)
* 3: internal error (a bug in gapforge): one line naming the exception; set ``GAPFORGE_TRACEBACK=1``
  to see the traceback
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable

EXIT_OK = 0
EXIT_VERDICT = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class GapforgeError(Exception):
    """An error caused by the user's input; its message is a complete one-line explanation."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def one_line(self) -> str:
        text = " ".join(str(self).split())
        if self.hint:
            text += f" (hint: {' '.join(self.hint.split())})"
        return text


def os_error(exc: OSError, doing: str = "cannot write") -> GapforgeError:
    """A GapforgeError naming the path of an OSError (unwritable directory, full disk, ...)."""
    where = exc.filename if exc.filename is not None else "output"
    return GapforgeError(f"{where}: {doing} ({exc.strerror or type(exc).__name__})")


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is a GapforgeError (one line, exit 2) instead of usage text."""

    def error(self, message: str):
        raise GapforgeError(f"{' '.join(message.split())} (see {self.prog} --help)")


def _prog() -> str:
    return sys.argv[0].rsplit("/", 1)[-1] if sys.argv and sys.argv[0] else "gapforge"


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run ``main(argv)`` and exit with its code; no traceback reaches the user.

    User errors (GapforgeError, and OSErrors such as an unwritable path) become one line on stderr
    with exit 2; anything else is a gapforge bug: one line, exit 3.
    """
    try:
        code = main(argv)
    except GapforgeError as err:
        print(f"{_prog()}: error: {err.one_line()}", file=sys.stderr)
        code = EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except OSError as exc:
        print(f"{_prog()}: error: {os_error(exc, 'cannot access').one_line()}", file=sys.stderr)
        code = EXIT_USAGE
    except Exception as exc:  # noqa: BLE001  (a bug: reported in one line, the traceback on request)
        if os.environ.get("GAPFORGE_TRACEBACK"):
            traceback.print_exc()
        print(f"{_prog()}: internal error: {type(exc).__name__}: {' '.join(str(exc).split())} "
              "(a bug in gapforge; GAPFORGE_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        code = EXIT_INTERNAL
    sys.exit(code)
