"""The calls a service's file makes of names its imports bind, read from the `ast` tree the
import cut already builds (libcst would have to parse every statement that holds a call: on a
monorepo's shared packages, most of them).

`torchaudio.load(p)` after `import torchaudio`, `read(p)` after `from torchaudio import load as
read`: each is named through the import (`torchaudio.load`) and says whether a try around it
survives its failure. Which of them reach a wheel is decided later, once the file's local
modules are known.
"""

from __future__ import annotations

import ast
import bisect
import re
import sys
from collections.abc import Iterator

from depaudit.collect.hint_calls import CALL_FAILURES
from depaudit.collect.model import FoundCall
from depaudit.collect.units import dotted_name

_STDLIB = frozenset(sys.stdlib_module_names)
# A word (the UTF-8 of an identifier) followed by a call or an attribute. The lookbehind makes
# each word match from its start only, so a word that is not followed is passed over in one try.
_WORD_USED = re.compile(rb"(?<![\w\x80-\xff])[\w\x80-\xff]+(?=\s*[.(])")
_DOT = ord(".")
_COMPOUND = (
    ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.For, ast.AsyncFor, ast.While,
    ast.With, ast.AsyncWith, ast.Try, ast.TryStar, ast.Match,
)  # fmt: skip
_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def call_sites(tree: ast.Module, source: bytes, own: str = "") -> list[FoundCall]:
    """The file's calls of names a non-relative import binds (the stdlib's left out: no wheel
    holds it; and `own`, the top-level package the file is in, which is the service's own).
    Only statements on a line that names such a name are walked: a file's statements are few
    beside its expression nodes."""
    imported, made = _bindings(tree)
    bound = {name: target for name, target in imported.items() if (top := target.split(".")[0]) not in _STDLIB and top != own}
    if not bound:
        return []
    bound.update(_instances(made, bound))
    offsets = _uses(source, {name.encode() for name in bound})
    if not offsets:
        return []
    numbers, line, counted = [], 1, 0
    for offset in offsets:
        line += source.count(b"\n", counted, offset)
        counted = offset
        numbers.append(line)
    lines = set(numbers)
    ordered = sorted(lines)
    found: list[FoundCall] = []

    def calls_in(node: ast.AST, guarded: bool) -> None:
        for inner in ast.walk(node):
            if isinstance(inner, ast.Call) and isinstance(inner.func, (ast.Name, ast.Attribute)) and inner.lineno in lines:
                head, _, rest = (dotted_name(inner.func) or "").partition(".")
                if head in bound:
                    found.append(FoundCall(inner.lineno, f"{bound[head]}.{rest}" if rest else bound[head], guarded))

    def visit(body: list[ast.stmt], guarded: bool) -> None:
        for statement in body:
            first = bisect.bisect_left(ordered, statement.lineno)
            if first == len(ordered) or ordered[first] > (statement.end_lineno or statement.lineno):
                continue  # names no bound name
            if isinstance(statement, (ast.Try, ast.TryStar)):
                survives = any(_survives(handler) for handler in statement.handlers)
                visit(statement.body, guarded or survives)
                for handler in statement.handlers:
                    visit(handler.body, guarded)
                visit(statement.orelse, guarded)
                visit(statement.finalbody, guarded)
                continue
            blocks = _blocks(statement)
            if not blocks:
                calls_in(statement, guarded)
                continue
            for part in _header(statement):
                calls_in(part, guarded)  # decorators, tests, iterables, with items
            for block in blocks:
                visit(block, guarded)

    visit(tree.body, False)
    return sorted(found, key=lambda call: (call.line, call.target))


def _blocks(statement: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists nested in a compound statement (a try's handlers apart)."""
    if not isinstance(statement, _COMPOUND):
        return []
    blocks = [getattr(statement, name, None) for name in ("body", "orelse", "finalbody")]
    blocks += [case.body for case in getattr(statement, "cases", ())]
    return [block for block in blocks if block]


def _uses(source: bytes, names: set[bytes]) -> list[int]:
    """Where one of `names` is called or has an attribute taken (`np.zeros(`, `load (`), not
    after a name character or a dot: one pass over the source's words, whatever the number of
    names (a file of 100,000 `import x as xN` binds 100,000; a search per name is quadratic).
    A word's tail after a non-ASCII byte is a name of its own too, as a search for the name
    would find it there."""
    found: list[int] = []
    longest = max(map(len, names), default=0)
    for match in _WORD_USED.finditer(source):
        start, word = match.start(), match.group()
        if word in names and (start == 0 or source[start - 1] != _DOT):
            found.append(start)
        if not word.isascii():
            tails = range(max(1, len(word) - longest), len(word))  # no longer than a name: linear
            found.extend(start + k for k in tails if word[k - 1] >= 0x80 and word[k:] in names)
    return found


def _header(statement: ast.stmt) -> list[ast.AST]:
    """The expressions of a compound statement outside its blocks."""
    parts: list[ast.AST] = [*getattr(statement, "decorator_list", ()), *getattr(statement, "bases", ())]
    parts += [*getattr(statement, "keywords", ()), *getattr(statement, "items", ())]
    for name in ("test", "iter", "target", "subject", "args", "returns"):
        value = getattr(statement, name, None)
        if isinstance(value, ast.AST):
            parts.append(value)
    return parts


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    for statement in body:
        yield statement
        for block in _blocks(statement):
            yield from _statements(block)
        for handler in getattr(statement, "handlers", ()):
            yield from _statements(handler.body)


def _instances(made: list[tuple[str, str]], bound: dict[str, str]) -> dict[str, str]:
    """Names bound to what a call of an imported name returns (`seg = AudioSegment.from_file(p)`,
    `reader = initlike.Reader(p)`): `seg.export()` then names `pydub.AudioSegment.export`, which
    the call walk finds when the callee is a class (a method) and drops otherwise. A name is taken
    where the file first binds it so; an import of the same name wins."""
    found: dict[str, str] = {}
    for name, callee in made:
        head, _, rest = callee.partition(".")
        if head in bound and name not in bound:
            target = f"{bound[head]}.{rest}" if rest else bound[head]
            # A classmethod constructor returns an instance of its class: `Cls.from_file(p)`.
            found.setdefault(name, target.rsplit(".", 1)[0] if rest and rest[:1].islower() and head[:1].isupper() else target)
    return found


def _bindings(tree: ast.Module) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Name → the absolute dotted name a non-relative import binds it to, wherever the import is
    (the first binding of a name wins); and (name, callee) of each `name = callee(...)`. Both
    are statements: expressions are not walked."""
    bound: dict[str, str] = {}
    made: list[tuple[str, str]] = []
    for node in _statements(tree.body):
        if isinstance(node, ast.Assign):
            if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Call):
                func = node.value.func
                if isinstance(func, (ast.Name, ast.Attribute)) and (callee := dotted_name(func)) is not None:
                    made.append((node.targets[0].id, callee))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bound.setdefault(alias.asname, alias.name)
                else:
                    top = alias.name.split(".")[0]
                    bound.setdefault(top, top)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            for alias in node.names:
                if alias.name != "*":
                    bound.setdefault(alias.asname or alias.name, f"{node.module}.{alias.name}")
    return bound, made


def _survives(handler: ast.ExceptHandler) -> bool:
    """Whether the handler catches what a failed call into a library raises and goes on (no
    `raise` at its own level: functions it only defines do not count)."""
    if _raises(handler.body):
        return False
    return catches(handler.type, CALL_FAILURES)


def catches(kind: ast.expr | None, names: frozenset[str]) -> bool:
    """Whether an `except` clause of type `kind` (None: a bare one) catches one of `names`."""
    if kind is None:
        return True
    if isinstance(kind, ast.Tuple):
        return any(catches(element, names) for element in kind.elts)
    name = dotted_name(kind)
    return name is not None and name.rsplit(".", 1)[-1] in names


def _raises(body: list[ast.stmt]) -> bool:
    pending: list[ast.AST] = list(body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Raise):
            return True
        if not isinstance(node, _NESTED):
            pending.extend(ast.iter_child_nodes(node))
    return False
