"""The smallest source libcst must parse to find a file's native hints.

libcst is ~10× slower than the stdlib's `ast`, and a hint sits in a handful of functions of a
module that may run to thousands of lines. So the file is cut with `ast` (C speed) and every
function or class that holds no prefilter match is left out: what remains — the module-level statements (constants, imports, platform
checks) and the matching functions — is all the hint visitor reads. The lines kept keep their
original numbers through `Unit.lines`.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass(frozen=True)
class Unit:
    source: bytes  # what libcst parses
    lines: tuple[int, ...]  # the original line number of each of its lines

    def original(self, line: int) -> int:
        return self.lines[line - 1]


def hint_units(source: bytes, prefilter: re.Pattern[bytes]) -> Unit | None:
    """`source` without the definitions no prefilter match falls in.

    None when nothing matches (no hint can be there) or when `ast` cannot parse the file; the
    caller then parses the whole file with libcst, which reports it the same way as before.
    """
    return _unit(source, prefilter, statements=False)


def import_units(source: bytes, prefilter: re.Pattern[bytes]) -> Unit | None:
    """`source` cut down to the statements on a line the prefilter matches (the import lines)
    and the compound statements around them — `try`/`except` headers, `if TYPE_CHECKING:`, the
    `def` lines — which decide whether an import is guarded, lazy or never run.

    None when `ast` cannot parse the file: libcst then reads it whole and reports it.
    """
    unit = _unit(source, prefilter, statements=True)
    if unit is None and not prefilter.search(source):
        return Unit(b"", ()) if _parses(source) else None
    return unit


def _unit(source: bytes, prefilter: re.Pattern[bytes], *, statements: bool) -> Unit | None:
    starts = [match.start() for match in prefilter.finditer(source)]
    if not starts:
        return None
    tree = _tree(source)
    if tree is None:
        return None
    blank: list[_Blank] = []
    _cut(tree.body, _line_numbers(source, starts), blank, statements)
    lines = source.split(b"\n")
    dropped: set[int] = set()
    for first, last, indent in blank:
        dropped.update(range(first, last + 1))
        if indent is not None:
            lines[first - 1] = b" " * indent + b"pass"  # a block may not be left empty
            dropped.discard(first)
    kept = [number for number in range(1, len(lines) + 1) if number not in dropped]
    text = b"\n".join(lines[number - 1] for number in kept)
    if source.startswith(_BOM) and not text.startswith(_BOM):
        text = _BOM + text  # the encoding mark of a dropped first line
    return Unit(text, tuple(kept))


def _tree(source: bytes) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a wheel's invalid escapes are not ours to report
            return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _parses(source: bytes) -> bool:
    return _tree(source) is not None


_Blank = tuple[int, int, "int | None"]  # first line, last line, indentation of a `pass` put there


def _cut(body: list[ast.stmt], hits: list[int], blank: list[_Blank], statements: bool) -> None:
    """Blank what of `body` holds no hit: definitions only (`statements` false: module-level
    code and a function with a hit stay whole, their constants and loops are what the hint
    visitor reads), or every statement (`statements` true), looking inside the compound
    statements that hold a hit."""
    dropped: list[_Blank] = []
    for node in body:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
        last = node.end_lineno or node.lineno
        inside = [line for line in hits if first <= line <= last]
        if not inside and (statements or isinstance(node, _DEFINITIONS)):
            dropped.append((first, last, None))
        elif not statements and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        else:
            for block in _blocks(node):
                _cut(block, inside, blank, statements)
    if dropped and len(dropped) == len(body):
        first, last, _ = dropped[0]
        dropped[0] = (first, last, body[0].col_offset)
    blank.extend(dropped)


def _blocks(node: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists nested in a class or a compound statement."""
    blocks = [getattr(node, name, None) for name in ("body", "orelse", "finalbody")]
    blocks += [handler.body for handler in getattr(node, "handlers", ())]
    blocks += [case.body for case in getattr(node, "cases", ())]
    return [block for block in blocks if isinstance(block, list) and block and isinstance(block[0], ast.stmt)]


def _line_numbers(source: bytes, offsets: list[int]) -> list[int]:
    numbers, line, position = [], 1, 0
    for offset in offsets:  # finditer yields them in order
        line += source.count(b"\n", position, offset)
        position = offset
        numbers.append(line)
    return numbers
