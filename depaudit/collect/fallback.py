"""Imports of a file libcst cannot parse (Python 2, half-edited code), read line by line.

What it sees: `import a, b.c as d` and `from a.b import c, d as e` / `from . import x` /
`from ..m import (y, z` at the start of a line, at any indentation, also as a later
`;`-separated statement of a line (`import os; import sys`).

What it cannot see, by design:
- context: whether the import is guarded by a `try`, inside a function, under
  `if TYPE_CHECKING:` — its records are all unguarded and not lazy;
- `importlib.import_module("x")` and `__import__("x")`;
- names of a `from ... import (` list after its first line, and statements continued
  with a backslash;
- whether a line is really code: an `import x` line inside a triple-quoted string or
  docstring is reported as an import, and so is text after a `;` inside a string.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_DOTTED = r"[^\W\d]\w*(?:\s*\.\s*[^\W\d]\w*)*"
_IMPORT = re.compile(rf"^import\s+({_DOTTED}(?:\s+as\s+\w+)?(?:\s*,\s*{_DOTTED}(?:\s+as\s+\w+)?)*)")
_FROM = re.compile(rf"^from(?:\s+|(?=\.))(\.*)\s*({_DOTTED})?\s*import\b\s*\(?\s*([\w\s,*]*)")
_AS = re.compile(r"\s+as\s+")


class FallbackImport(NamedTuple):
    line: int
    module: str  # without the leading dots of a relative import
    names: tuple[str, ...]  # imported names of a `from` import
    level: int  # number of leading dots; 0 for an absolute import


def fallback_imports(text: str) -> list[FallbackImport]:
    """Every import statement found in `text`, in line order."""
    found: list[FallbackImport] = []
    for number, line in enumerate(text.splitlines(), start=1):
        for statement in line.split(";"):
            found.extend(_statement(number, statement.strip()))
    return found


def _statement(number: int, text: str) -> list[FallbackImport]:
    match = _FROM.match(text)
    if match:
        dots, module, names = match.groups()
        if not dots and not module:
            return []  # `from import x` is no import at all
        imported = tuple(part.split()[0] for part in names.split(",") if part.split() and part.split()[0] != "*")
        return [FallbackImport(number, _plain(module or ""), imported, len(dots))]
    match = _IMPORT.match(text)
    if match:
        return [FallbackImport(number, _plain(_AS.split(part.strip())[0]), (), 0) for part in match.group(1).split(",")]
    return []


def _plain(dotted: str) -> str:
    """`a . b` (legal Python) as `a.b`."""
    return "".join(dotted.split())
