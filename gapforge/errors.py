"""User-facing errors and the command-line wrapper every tool shares.

A ``GapforgeError`` is a mistake in the user's input (a model, a file, a flag): it is
printed as one line naming the file, module or field, never as a traceback.
Exit codes used by all tools:

* 0: success
* 1: the tool ran but the verdict is negative (model not deployable, mismatches found)
* 2: bad input (unreadable file, invalid JSON, unsupported construct during extraction, bad flag)
"""

from __future__ import annotations

import sys
from collections.abc import Callable

EXIT_OK = 0
EXIT_VERDICT = 1
EXIT_USAGE = 2


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


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run ``main(argv)`` and exit with its code; user errors become one line on stderr."""
    try:
        code = main(argv)
    except GapforgeError as err:
        prog = sys.argv[0].rsplit("/", 1)[-1] if sys.argv and sys.argv[0] else "gapforge"
        print(f"{prog}: error: {err.one_line()}", file=sys.stderr)
        code = EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)
