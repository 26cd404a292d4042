"""The smallest source libcst must parse to find a file's imports or native hints.

libcst is ~10× slower than the stdlib's `ast`, and what we look for sits in a handful of
statements of a module that may run to thousands of lines. So the file is cut with `ast` (C
speed): for hints, what remains is every call the hint visitor may report with the functions
around it, and the statements that bind what it reads (names bound to literals, import aliases,
the blocks around them); for imports, the import lines and the blocks around them, less the
module-level imports `ast` answers alone (`plain_imports`). The lines kept keep their original
numbers through `Unit.lines`.
"""

from __future__ import annotations

import ast
import bisect
import io
import re
import tokenize
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

_BOM = b"\xef\xbb\xbf"
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_IMPORTS = (ast.Import, ast.ImportFrom)
_COMPOUND = (
    ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.For, ast.AsyncFor, ast.While,
    ast.With, ast.AsyncWith, ast.Try, ast.TryStar, ast.Match,
)  # fmt: skip


@dataclass(frozen=True)
class Unit:
    source: bytes  # what libcst parses
    lines: tuple[int, ...]  # the original line number of each of its lines
    # The file's statements the cut took out (blanked or made `pass`): what of the file's `ast`
    # tree is not in `source` (see `counted_nodes`). Held, so that their ids stay theirs.
    removed: tuple[ast.stmt, ...] = field(default=(), compare=False, repr=False)

    def original(self, line: int) -> int:
        return self.lines[line - 1]


class Prefilter(Protocol):
    def search(self, source: bytes) -> object: ...  # truthy where the source may hold a hit


def hint_units(source: bytes, prefilter: Prefilter, may_report: Callable[[str], bool]) -> Unit | None:
    """`source` cut down to the calls whose name (after `from x import y as z` aliases)
    `may_report` accepts, the functions around them and the statements that bind names.

    None when nothing matches the prefilter (no hint can be there) or when `ast` cannot parse
    the file; the caller then parses the whole file with libcst, which reports it as before.
    """
    if not prefilter.search(source):
        return None
    tree = _tree(source)
    if tree is None:
        return None
    return _cut_unit(source, tree, _call_lines(tree, may_report), statements=False)


def import_units(source: bytes, prefilter: re.Pattern[bytes]) -> Unit | None:
    """`source` cut down to the statements on a line the prefilter matches (the import lines)
    and the compound statements around them — `try`/`except` headers, `if TYPE_CHECKING:`, the
    `def` lines — which decide whether an import is guarded, lazy or never run.

    None when `ast` cannot parse the file: libcst then reads it whole and reports it.
    """
    return import_cut(source, prefilter, tree_of(source))


def import_cut(
    source: bytes, prefilter: re.Pattern[bytes], tree: ast.Module | None, plain: Sequence[ast.stmt] = ()
) -> Unit | None:
    """`import_units` on the file's `ast` tree (`tree_of`), where the caller has it already.
    `plain` (sorted, of `plain_imports`) are read from `ast` by the caller: the cut leaves them
    out, and is empty (no source) when nothing else holds a hit. None also for a file with a
    line that ends in a bare CR (old Mac text): `ast` counts it a line, the cut counts newlines."""
    if tree is None or bare_cr(source):
        return None
    starts = [match.start() for match in prefilter.finditer(source)]
    hits = _outside(_line_numbers(source, starts), plain)
    if not hits:
        return Unit(b"", ())
    return _cut_unit(source, tree, sorted({*hits, *_handler_raises(tree.body, hits)}), statements=True)


def plain_imports(source: bytes, tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The module-level import statements that no context can touch: not inside any block (no
    try, if, def or class around them), alone on their lines. `ast` gives their module, names,
    level and line exactly as libcst would, so libcst need not read them; on a file of
    100,000 imports, libcst's parse and walk are nearly all of a scan.

    Left to libcst: a statement that binds `importlib.import_module` under a name (the import
    visitor then reads calls of that name), one whose text is not ASCII (`ast` gives
    identifiers NFKC-normalised, libcst as written; a comment after it does not count), and all
    of a file not in UTF-8 (an encoding may turn ASCII bytes into other text) or with a line
    that ends in a bare CR (see `import_cut`)."""
    if not _utf8(source) or bare_cr(source):
        return []
    wide = [] if source.isascii() else _line_numbers(source, [match.start() for match in _NON_ASCII.finditer(source)])
    starts = _line_starts(source) if wide else []
    may_bind = b"importlib" in source
    body = tree.body
    found: list[ast.Import | ast.ImportFrom] = []
    for position, node in enumerate(body):
        if (
            isinstance(node, _IMPORTS)
            and not _shares_a_line(body, position)
            and not (may_bind and _binds_import_module(node))
            and (not wide or not _within(wide, node.lineno, node.end_lineno or node.lineno) or _ascii_text(source, starts, node))
        ):
            found.append(node)
    return found


def _line_starts(source: bytes) -> list[int]:
    """The offset at which each line starts (`ast`'s lines, in a file with no bare CR)."""
    return [0, *(match.end() for match in re.finditer(rb"\n", source))]


def _ascii_text(source: bytes, starts: list[int], node: ast.stmt) -> bool:
    """Whether the statement's own text (not a comment after it) is ASCII. `ast`'s columns are
    UTF-8 byte offsets, as the file is (the caller checked); but not past a BOM on line 1."""
    if node.lineno == 1 and source.startswith(_BOM):
        return False
    first = starts[node.lineno - 1] + node.col_offset
    last = starts[(node.end_lineno or node.lineno) - 1] + (node.end_col_offset or 0)
    return source[first:last].isascii()


_NON_ASCII = re.compile(rb"[\x80-\xff]+")
_BARE_CR = re.compile(rb"\r(?!\n)")


def bare_cr(source: bytes) -> bool:
    return b"\r" in source and _BARE_CR.search(source) is not None


def _utf8(source: bytes) -> bool:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    except SyntaxError:
        return False
    return encoding in ("utf-8", "utf-8-sig")


def _binds_import_module(node: ast.Import | ast.ImportFrom) -> bool:
    """`import importlib as il`, `from importlib import import_module`: the names the import
    visitor adds to those whose calls are dynamic imports."""
    if isinstance(node, ast.Import):
        return any(alias.name == "importlib" and alias.asname is not None for alias in node.names)
    return node.module == "importlib" and not node.level and any(alias.name == "import_module" for alias in node.names)


def _outside(hits: list[int], statements: Sequence[ast.stmt]) -> list[int]:
    """The hits (sorted) on no line of `statements` (sorted, each on lines of its own)."""
    if not statements:
        return hits
    kept: list[int] = []
    position = 0
    for hit in hits:
        while position < len(statements) and (statements[position].end_lineno or statements[position].lineno) < hit:
            position += 1
        if position == len(statements) or statements[position].lineno > hit:
            kept.append(hit)
    return kept


COUNTED = (ast.Call, ast.Import, ast.ImportFrom)


def counted_nodes(tree: ast.Module, removed: Sequence[ast.stmt] = ()) -> list[ast.AST]:
    """The calls and import statements of `tree`, less those in `removed` statements, in source
    order (an outer call before the calls in its arguments): those a libcst visitor counts as it
    meets them (see lines.py). With a cut's `Unit.removed`, they are the unit's own, each with its
    line in the file: the unit's text need not be parsed again. The cut keeps or removes whole
    statements and keeps their order (a `pass` in place of one keeps the order on its line)."""
    skip = {id(node) for node in removed}
    found: list[ast.AST] = []
    pending: list[ast.AST] = [tree]
    while pending:
        for child in ast.iter_child_nodes(pending.pop()):
            if id(child) in skip:
                continue
            if isinstance(child, COUNTED):
                found.append(child)
            if not isinstance(child, _HOLD_NO_CALL):
                pending.append(child)
    found.sort(key=_position)
    return found


# Nodes that hold no call: the walk need not enter them (an import's names are half the nodes
# of a file of imports).
_HOLD_NO_CALL = (ast.Import, ast.ImportFrom, ast.Name, ast.Constant, ast.alias, ast.Pass, ast.expr_context)


def _position(node: ast.AST) -> tuple[int, int, int, int]:
    return (node.lineno, node.col_offset, -(node.end_lineno or 0), -(node.end_col_offset or 0))  # type: ignore[attr-defined]


def _handler_raises(body: list[ast.stmt], hits: list[int]) -> list[int]:
    """Lines of the `raise` statements in the handlers of each try whose body holds a hit: they
    say whether the handler survives a failed import. Other raises say nothing of imports."""
    found: list[int] = []
    for node in body:
        if not _within(hits, node.lineno, node.end_lineno or node.lineno):
            continue
        if isinstance(node, (ast.Try, ast.TryStar)) and node.body:
            first, last = node.body[0].lineno, node.body[-1].end_lineno or node.body[-1].lineno
            if _within(hits, first, last):
                for handler in node.handlers:
                    found.extend(_raises(handler.body))
        for block in _blocks(node):
            found.extend(_handler_raises(block, hits))
    return found


def _raises(body: list[ast.stmt]) -> list[int]:
    """Lines of the `raise` statements in `body` and its blocks (not in what it only defines)."""
    found: list[int] = []
    for node in body:
        if isinstance(node, ast.Raise):
            found.append(node.lineno)
        elif not isinstance(node, _DEFINITIONS):
            for block in _blocks(node):
                found.extend(_raises(block))
    return found


def tree_of(source: bytes) -> ast.Module | None:
    """The file's `ast` tree: None when `ast` cannot parse it (libcst, which knows newer
    syntax, then decides); raises TooDeep when it gave up on the nesting."""
    return _tree(source)


def _cut_unit(source: bytes, tree: ast.Module, hits: list[int], statements: bool) -> Unit:
    blank: list[_Blank] = []
    spans: list[_Span] = []
    _cut(tree.body, hits, blank, statements, spans)
    lines = source.split(b"\n")
    removed = [node for *_, node in blank]
    for line, start, end, node in sorted(spans, key=lambda span: span[:3], reverse=True):  # right to left: the offsets stay true
        text = lines[line - 1]
        if b"import" in text[start:end]:
            continue  # import_module() or __import__() may be in it
        if text.isascii() and not (line == 1 and source.startswith(_BOM)):  # ast's offsets are of UTF-8 text
            lines[line - 1] = text[:start] + b"pass" + text[end:]
            removed.append(node)
    dropped: set[int] = set()
    for first, last, indent, _ in blank:
        dropped.update(range(first, last + 1))
        if indent is not None:
            lines[first - 1] = b" " * indent + b"pass"  # a block may not be left empty
            dropped.discard(first)
    kept = [number for number in range(1, len(lines) + 1) if number not in dropped]
    text = b"\n".join(lines[number - 1] for number in kept)
    if source.startswith(_BOM) and not text.startswith(_BOM):
        text = _BOM + text  # the encoding mark of a dropped first line
    return Unit(text, tuple(kept), tuple(removed))


def _call_lines(tree: ast.Module, may_report: Callable[[str], bool]) -> list[int]:
    nodes = list(ast.walk(tree))
    aliases = {
        alias.asname: alias.name
        for node in nodes
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname is not None
    }
    lines = set()
    for node in nodes:
        if isinstance(node, ast.Call) and node.args:
            name = dotted_name(node.func)
            if name is not None and may_report(aliases.get(name, name)):
                lines.add(node.lineno)
    # A module-level call of a function that holds a hit (`if not load_library(): raise`): it
    # says the hit runs at import.
    ordered = sorted(lines)
    holders = {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _within(ordered, node.lineno, node.end_lineno or node.lineno)
    }
    if holders:
        for statement in tree.body:
            if not isinstance(statement, _DEFINITIONS):
                for node in ast.walk(statement):
                    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in holders:
                        lines.add(node.lineno)
    return sorted(lines)


def dotted_name(node: ast.expr) -> str | None:
    """The name libcst's get_full_name_for_node gives a call's function: `FFI().dlopen` is
    `FFI.dlopen`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return None if base is None else f"{base}.{node.attr}"
    if isinstance(node, (ast.Call, ast.Subscript)):
        return dotted_name(node.func if isinstance(node, ast.Call) else node.value)
    return None


class TooDeep(Exception):
    """Python's own parser gave up on the file's nesting. libcst's native parser must not see it:
    on such files it overflows its stack (a segfault, which no `except` catches) or runs for
    minutes, and no Python can run the file anyway."""

    def __init__(self, reason: str, line: int | None) -> None:
        super().__init__(reason)
        self.reason, self.line = reason, line


_TOO_DEEP = re.compile(r"too many nested|too complex|too many levels of indentation|too many statically nested")


def _tree(source: bytes) -> ast.Module | None:
    """None when `ast` cannot parse the file (libcst, which knows newer syntax, then decides);
    raises TooDeep when it gave up on the nesting."""
    try:
        return _tree_or_raise(source)
    except (SyntaxError, ValueError):
        return None


def syntax_error(source: bytes) -> tuple[int | None, str] | None:
    """Python's own complaint about a file and its line (better worded and placed than
    libcst's); None when Python parses it."""
    try:
        _tree_or_raise(source)
    except TooDeep as error:
        return error.line, error.reason
    except (SyntaxError, ValueError) as error:  # ValueError: a UnicodeDecodeError, on some files
        message = (error.msg if isinstance(error, SyntaxError) else str(error)) or "invalid syntax"
        if source.startswith((b"\xff\xfe", b"\xfe\xff")):
            return 1, "it is UTF-16 text, which Python does not read as source: save it as UTF-8"
        if "null bytes" in message:
            return source.count(b"\n", 0, source.find(b"\0")) + 1, "it holds a NUL byte: is it a binary file?"
        if message.startswith("unknown encoding"):
            cookie = [n for n, text in enumerate(source.split(b"\n", 2)[:2], 1) if b"coding" in text]
            return (cookie[0] if cookie else None), f"{message} in its coding line"
        if "codec can't decode" in message:
            found = _undecodable(source)
            if found is not None:
                return found
        return (error.lineno if isinstance(error, SyntaxError) else None) or None, message
    return None


def _undecodable(source: bytes) -> tuple[int, str] | None:
    """Where the first byte that is not in the file's encoding (PEP 263, else UTF-8) is."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    except SyntaxError:
        encoding = "utf-8"  # the first two lines are not UTF-8 either: no cookie could be read
    try:
        source.decode(encoding)
    except UnicodeDecodeError as error:
        line = source.count(b"\n", 0, error.start) + 1
        return line, (
            f"byte 0x{source[error.start]:02x} on line {line} is not {error.encoding}: declare the "
            "file's encoding (# -*- coding: latin-1 -*-) or save it as UTF-8"
        )
    except LookupError:
        pass
    return None


def _tree_or_raise(source: bytes) -> ast.Module:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a wheel's invalid escapes are not ours to report
            return ast.parse(source)
    except (RecursionError, MemoryError):
        raise TooDeep("it nests too deeply", None) from None
    except SyntaxError as error:
        if _TOO_DEEP.search(error.msg or ""):
            raise TooDeep(error.msg, error.lineno or None) from None
        raise


_Blank = tuple[int, int, "int | None", ast.stmt]  # first line, last line, indentation of a `pass` put there; the statement
_Span = tuple[int, int, int, ast.stmt]  # line, first and end byte of a one-line statement that becomes `pass`; it


def _cut(
    body: list[ast.stmt], hits: list[int], blank: list[_Blank], statements: bool, spans: list[_Span], near: bool = False
) -> None:
    """Blank what of `body` holds no hit: every statement (`statements` true), or (`statements`
    false) all but what the hint visitor reads besides the calls it reports: names bound to
    literals or to text or paths built from them, `from x import y as z`, `raise`, `continue`
    and `return`, and the compound statements around them. Compound
    statements and definitions that hold a hit, and compound statements that may hold such a
    binding, are looked into."""
    dropped: list[_Blank] = []
    for position, node in enumerate(body):
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
        last = node.end_lineno or node.lineno
        inside = _within(hits, first, last)
        if not inside and (statements or isinstance(node, _DEFINITIONS) or not _binds(node, near)):
            if not _shares_a_line(body, position):
                dropped.append((first, last, None, node))
            elif statements and first == last:
                spans.append((first, node.col_offset, node.end_col_offset or node.col_offset, node))
        elif statements and inside and first == last and _shares_a_line(body, position) and not isinstance(node, _IMPORTS):
            # `import x; DATA = [...]`: the import line holds the data too; libcst reads ~100 KB/s
            # of such literals, so the statement beside the import becomes `pass`.
            spans.append((first, node.col_offset, node.end_col_offset or node.col_offset, node))
        elif statements and inside and not _blocks(node) and not isinstance(node, (*_IMPORTS, ast.Raise)) and not _imports_by_call(node):
            # A simple statement whose "import" is a word in its text (pygments' lexers: a table of
            # keywords, 130 KB in one assignment): nothing the import reader looks for.
            if not _shares_a_line(body, position):
                dropped.append((first, last, None, node))
            elif first == last:
                spans.append((first, node.col_offset, node.end_col_offset or node.col_offset, node))
        else:
            for block in _blocks(node):
                _cut(block, inside, blank, statements, spans, near or bool(inside))
    if dropped and len(dropped) == len(body):
        first, last, _, node = dropped[0]
        dropped[0] = (first, last, body[0].col_offset, node)
    blank.extend(dropped)


def _imports_by_call(node: ast.stmt) -> bool:
    """Whether a statement calls something named `import_module` or `__import__` (under any
    alias: a renamed one is read whole before any cut)."""
    return any(
        isinstance(child, ast.Call) and (dotted_name(child.func) or "").rsplit(".", 1)[-1] in ("import_module", "__import__")
        for child in ast.walk(node)
    )


def _binds(node: ast.stmt, near: bool) -> bool:
    """What the hint visitor may need from a statement with no hit: a name bound to a literal
    string, a list or tuple of them, text built from them, or another name; an import alias; the
    blocks of a compound statement (which may hold either); `raise` and `continue`, which say
    whether a handler survives the failure it catches. `near`: the statement is in a block that
    holds a hit, where a path a helper builds and a `return` matter too."""
    if isinstance(node, (ast.Raise, ast.Continue)):
        return True
    if isinstance(node, ast.Return):
        return near  # whether a loop of loads gives up quietly: only beside such a loop
    if isinstance(node, ast.ImportFrom):
        return any(alias.asname is not None for alias in node.names)
    if _blocks(node):
        return True
    if near and _builds_argv(node):
        return True
    if not isinstance(node, ast.Assign):
        return False
    value = node.value
    if isinstance(value, (ast.List, ast.Tuple)):
        return all(_is_text(element) or _is_number(element) for element in value.elts)
    if isinstance(value, ast.Call):
        # Beside a hit only: a path a helper builds, `"...".format(v)`, or a name bound to what a
        # call returns (`prober = get_prober_name()`), which may head an argv.
        return near
    return _is_text(value) or isinstance(value, (ast.Name, ast.JoinedStr, ast.BinOp))


def _builds_argv(node: ast.stmt) -> bool:
    """`cmd = [TOOL, x]`, `cmd = []`, `cmd += (TOOL, x)`, `cmd.append(x)`, `cmd.extend(xs)`: an
    argument list built in steps, whose first item names the program."""
    if isinstance(node, ast.AugAssign):
        return isinstance(node.op, ast.Add) and isinstance(node.target, ast.Name)
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        func = node.value.func
        return isinstance(func, ast.Attribute) and func.attr in ("append", "extend") and isinstance(func.value, ast.Name)
    if isinstance(node, ast.Assign):
        value = node.value.left if isinstance(node.value, ast.BinOp) else node.value
        return isinstance(value, (ast.List, ast.Tuple))
    return False


def _is_text(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _is_number(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


def _shares_a_line(body: list[ast.stmt], position: int) -> bool:
    """`a = f(); B = "x"`: blanking lines would take the kept statement too."""
    node = body[position]
    before = body[position - 1] if position else None
    after = body[position + 1] if position + 1 < len(body) else None
    return (before is not None and (before.end_lineno or before.lineno) >= node.lineno) or (
        after is not None and after.lineno <= (node.end_lineno or node.lineno)
    )


def _blocks(node: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists nested in a class or a compound statement."""
    if not isinstance(node, _COMPOUND):
        return []  # asked of every statement in the cut: the simple ones (nearly all) at once
    blocks = [getattr(node, name, None) for name in ("body", "orelse", "finalbody")]
    blocks += [handler.body for handler in getattr(node, "handlers", ())]
    blocks += [case.body for case in getattr(node, "cases", ())]
    return [block for block in blocks if isinstance(block, list) and block and isinstance(block[0], ast.stmt)]


def _within(hits: list[int], first: int, last: int) -> list[int]:
    """The hits (sorted) on lines first..last: by bisection, as a file of 100,000 imports asks
    this once per statement."""
    return hits[bisect.bisect_left(hits, first) : bisect.bisect_right(hits, last)]


def _line_numbers(source: bytes, offsets: list[int]) -> list[int]:
    numbers, line, position = [], 1, 0
    for offset in offsets:  # finditer yields them in order
        line += source.count(b"\n", position, offset)
        position = offset
        numbers.append(line)
    return numbers
