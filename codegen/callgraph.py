"""Worst-case stack depth of C entry points, from GCC's own per-function figures.

Every object compiled with ``-fstack-usage -fcallgraph-info=su`` comes with a ``.ci`` file (a VCG
graph): one node per function defined in the translation unit with its frame size ("N bytes
(static)", "(dynamic,bounded)" or "(dynamic)"), one node per function it calls but does not
define, and one edge per call site; calls through a pointer go to ``__indirect_call``. Static
functions are named ``<file>:<name>``, external ones by their plain name. :class:`CallGraph`
reads the files of one program and :meth:`CallGraph.chain` gives the deepest chain of frames an
entry point can reach: the bytes of stack it needs.

Nothing is guessed; every case the figures do not cover is refused with a one-line
:class:`StackError`, unless the caller declared a bound for it:

* a frame GCC reports as ``dynamic`` (alloca, variable-length arrays) is refused;
  ``dynamic,bounded`` frames count with GCC's bound;
* recursion (a cycle reachable from the entry) is refused;
* an indirect call is refused unless its caller is declared in ``indirect`` with the functions it
  may call (then the deepest of them counts);
* a callee defined in none of the objects (a library function) must match a pattern of
  ``external`` (fnmatch, e.g. ``pi_*``) giving a bound in bytes for it and everything it calls;
* callees matching ``ignore`` are not followed (test-only fault code meant to break the limits).

Tail calls are counted as calls (the caller's frame stays on the chain): an over-estimate.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gapforge.errors import GapforgeError

_NODE = re.compile(r'node: \{ title: "([^"]*)" label: "([^"]*)"([^}]*)\}')
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]*)" targetname: "([^"]*)"')
_FRAME = re.compile(r"(\d+) bytes \(([a-z,]+)\)")
INDIRECT = "__indirect_call"


class StackError(GapforgeError):
    """The stack depth of an entry point cannot be bounded, or exceeds what is configured."""


@dataclass(frozen=True)
class Frame:
    name: str  # function name (without the file of a static function)
    bytes: int
    where: str  # object file the function is defined in, or "external"


def short(title: str) -> str:
    """``/path/file.c:name`` (a static function) -> ``name``."""
    return title.rsplit(":", 1)[-1]


class CallGraph:
    def __init__(self, ci_files: Iterable[Path], *, external: Mapping[str, int] | None = None,
                 indirect: Mapping[str, Iterable[str]] | None = None, ignore: Iterable[str] = ()):
        self.external = dict(external or {})
        self.indirect = {k: tuple(v) for k, v in (indirect or {}).items()}
        self.ignore = tuple(ignore)
        self.frames: dict[tuple[str, str], tuple[int, str]] = {}  # (file, title) -> (bytes, qualifier)
        self.calls: dict[tuple[str, str], list[str]] = {}  # (file, title) -> callee titles, in order
        self.defined: dict[str, list[str]] = {}  # title -> files defining it
        for ci in ci_files:
            text = Path(ci).read_text(encoding="utf-8", errors="replace")
            f = Path(ci).name
            for title, label, rest in _NODE.findall(text):
                m = _FRAME.search(label)
                if "ellipse" in rest or m is None:
                    continue  # a callee not defined here
                self.frames[(f, title)] = (int(m.group(1)), m.group(2))
                self.calls.setdefault((f, title), [])
                self.defined.setdefault(title, []).append(f)
            for src, dst in _EDGE.findall(text):
                self.calls.setdefault((f, src), []).append(dst)

    # -- lookup --------------------------------------------------------------------------------
    def _resolve(self, file: str | None, title: str) -> list[tuple[str, str]]:
        """Definitions an edge of ``file`` to ``title`` may reach: its own file's first, else any
        (the deepest one counts when a name is defined twice, e.g. a static in two files)."""
        if file is not None and (file, title) in self.frames:
            return [(file, title)]
        return [(f, title) for f in self.defined.get(title, [])]

    def find(self, name: str) -> list[tuple[str, str]]:
        """Definitions of a function by plain name (static or not)."""
        return [k for k in self.frames if short(k[1]) == name]

    def _external_bound(self, title: str) -> int | None:
        for pattern, bound in self.external.items():
            if fnmatch.fnmatchcase(short(title), pattern):
                return bound
        return None

    # -- the deepest chain ---------------------------------------------------------------------
    def chain(self, entry: str, through: str | None = None) -> list[Frame]:
        """The deepest chain of frames below ``entry`` (a plain function name), entry first. Its
        bytes (sum of the frames) are what the entry point needs of its stack. With ``through``:
        the deepest chain that passes through that function ([] if the entry cannot reach it)."""
        roots = self.find(entry)
        if not roots:
            raise StackError(f"stack analysis: entry point '{entry}' is not defined in the measured objects")
        memo: dict[tuple[str, str], list[Frame]] = {}
        best: list[Frame] = []
        for r in roots:
            path = self._deepest(r, memo, [])
            if through is not None:
                path = self._through(r, through, memo, {})
            if path and (not best or sum(f.bytes for f in path) > sum(f.bytes for f in best)):
                best = path
        return best

    def _callees(self, node: tuple[str, str]) -> list[tuple[str, str]]:
        """Defined callees of a node (after _deepest has validated the graph below it)."""
        out = []
        for callee in self.calls.get(node, []):
            if callee == INDIRECT:
                pats = self.indirect.get(short(node[1]), ())
                out += [k for pat in pats for k in self.frames if fnmatch.fnmatchcase(short(k[1]), pat)]
            elif not any(fnmatch.fnmatchcase(short(callee), p) for p in self.ignore):
                out += self._resolve(node[0], callee)
        return out

    def _through(self, node, target: str, memo: dict, seen: dict) -> list[Frame]:
        """The deepest chain from node through target, [] if node cannot reach it."""
        if node in seen:
            return seen[node]
        if short(node[1]) == target:
            seen[node] = memo[node]
            return seen[node]
        best: list[Frame] | None = None
        for k in self._callees(node):
            sub = self._through(k, target, memo, seen)
            if sub and (best is None or sum(f.bytes for f in sub) > sum(f.bytes for f in best)):
                best = sub
        seen[node] = [Frame(short(node[1]), self.frames[node][0], node[0]), *best] if best is not None else []
        return seen[node]

    def _deepest(self, node: tuple[str, str], memo: dict, stack: list[tuple[str, str]]) -> list[Frame]:
        if node in memo:
            return memo[node]
        if node in stack:
            cycle = " -> ".join(short(t) for _, t in stack[stack.index(node):] + [node])
            raise StackError(f"stack analysis: recursion {cycle}: its depth cannot be bounded (remove the "
                             "recursion from code that runs on a cluster or FC stack)")
        file, title = node
        size, qual = self.frames[node]
        if qual == "dynamic":
            raise StackError(f"stack analysis: '{short(title)}' ({file}) has a dynamically sized frame "
                             "(alloca or a variable-length array): its stack use cannot be bounded")
        stack.append(node)
        deepest: list[Frame] = []
        for callee in self.calls.get(node, []):
            if any(fnmatch.fnmatchcase(short(callee), p) for p in self.ignore):
                continue
            if callee == INDIRECT:
                targets = self.indirect.get(short(title))
                if targets is None:
                    raise StackError(f"stack analysis: '{short(title)}' ({file}) calls through a function pointer; "
                                     "call the function directly, or declare the possible targets of the call")
                cands = [k for pat in targets for k in self.frames if fnmatch.fnmatchcase(short(k[1]), pat)]
                sub = [self._deepest(k, memo, stack) for k in cands]
            else:
                defs = self._resolve(file, callee)
                if defs:
                    sub = [self._deepest(k, memo, stack) for k in defs]
                else:
                    bound = self._external_bound(callee)
                    if bound is None:
                        raise StackError(f"stack analysis: '{short(title)}' calls '{short(callee)}', which is defined "
                                         "in none of the measured objects and has no declared stack bound")
                    sub = [[Frame(short(callee), bound, "external")]]
            for path in sub:
                if sum(f.bytes for f in path) > sum(f.bytes for f in deepest):
                    deepest = path
        stack.pop()
        memo[node] = [Frame(short(title), size, file), *deepest]
        return memo[node]


def chain_bytes(path: list[Frame]) -> int:
    return sum(f.bytes for f in path)


def format_chain(path: list[Frame]) -> str:
    return " > ".join(f"{f.name} {f.bytes}" for f in path)
