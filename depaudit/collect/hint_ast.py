"""The hint visitor of hint_visitor.py, on the stdlib's `ast` tree: for an installed wheel's files.

libcst parses ~10× slower than `ast`, and a wheel's files are read for their hints only (never
for a finding about the file itself), so they are walked on the `ast` tree the cut (units.py)
parses anyway. The walk gives what libcst's gives, statement by statement and in the same order
(tests/collect/test_hint_ast.py compares both over the stdlib, the test sources and real
wheels). One place the trees differ is left to libcst: an f-string's text parts are raw text to
libcst (`\\x41`, `{{`) and `f"{x=}"` is no conversion there; where such a part is read, the walk
raises Unsure and the caller asks libcst.
"""

from __future__ import annotations

import ast
import bisect
import io
import re
import tokenize
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from depaudit.collect.hint_calls import BARE_EXCEPT, CALL_FAILURES, LIBRARY_CALLS, PROGRAM_CALLS, RESULT_OF, NativeHint, absence_caught, may_report
from depaudit.collect.hint_text import bind, formatted, joined, other_platform_values, program
from depaudit.collect.units import full_name

Lookup = Callable[[str], "tuple[str, ...] | None"]

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_LOOPS = (ast.For, ast.AsyncFor)
_TRIES = (ast.Try, ast.TryStar)
_SEQUENCES = (ast.Tuple, ast.List)


class Unsure(Exception):
    """The file holds syntax on which the two trees say different things and the text does not
    settle it cheaply: libcst reads the file instead."""


def scan_tree(tree: ast.Module, source: bytes) -> list[NativeHint]:
    """Hints of one file from its `ast` tree; raises Unsure (see above)."""
    text = _Source(source)
    walk = _Walk(text, text.lines_naming(_WORDS))
    walk.module(tree)
    return sorted(walk.at_import())


# Where a call the walk reports may be: a line naming one of may_report's last names (or a
# `from x import y as z` alias of one, added once the walk meets it). Statements are all walked;
# expressions inside functions only on such lines — most of a module's nodes are there. Found
# with str.find, as words in text (a superset: `callback` holds `call`), ~20× faster than re.
_WORDS = tuple(sorted({*LIBRARY_CALLS, *PROGRAM_CALLS, "exec"}))


class _Source:
    """The file's lines as UTF-8 (what `ast`'s column offsets count), decoded on first use."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._text: str | None = None
        self._searched: str | None = None
        self._lines: list[bytes] | None = None

    def text(self) -> str:
        """The file's text, its line ends made `\\n` as Python's tokenizer makes them."""
        if self._text is None:
            try:
                encoding, _ = tokenize.detect_encoding(io.BytesIO(self._data).readline)
                text = self._data.decode(encoding)
            except (SyntaxError, LookupError, UnicodeDecodeError):
                raise Unsure from None  # `ast` read it: cannot happen, but never a guess
            text = text.removeprefix("\ufeff")
            self._text = text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
        return self._text

    def line(self, number: int) -> bytes:
        if self._lines is None:
            text = self.text()
            self._lines = text.encode().split(b"\n") if text.isascii() else [line.encode() for line in text.split("\n")]
        return self._lines[number - 1] if 0 < number <= len(self._lines) else b""

    def lines_naming(self, words: Iterable[str]) -> list[int]:
        """The numbers of the lines where one of `words` is, in order. Python reads identifiers
        NFKC-normalised (`ｒｕｎ` is `run`): so is the text searched, where it is not ASCII."""
        if self._searched is None:
            text = self.text()
            self._searched = text if text.isascii() else unicodedata.normalize("NFKC", text)
        text = self._searched
        starts: list[int] = []
        for word in words:
            at = text.find(word)
            while at >= 0:
                starts.append(at)
                at = text.find(word, at + len(word))
        found: list[int] = []
        line, position = 1, 0
        for start in sorted(starts):
            line += text.count("\n", position, start)
            position = start
            if not found or found[-1] != line:
                found.append(line)
        return found

    def segment(self, node: ast.expr) -> bytes:
        first, last = node.lineno, node.end_lineno or node.lineno
        start, end = node.col_offset, node.end_col_offset or 0
        if first == last:
            return self.line(first)[start:end]
        parts = [self.line(first)[start:], *(self.line(n) for n in range(first + 1, last)), self.line(last)[:end]]
        return b"\n".join(parts)


class _Walk:
    """hint_visitor._HintVisitor's state and decisions; see there for the why of each."""

    def __init__(self, source: _Source, lines: list[int]) -> None:
        self.source = source
        self._lines = lines  # where a call the walk must see may be (see _words)
        self.hints: list[NativeHint] = []
        self._constants: dict[str, tuple[str, ...]] = {}
        self._sequences: set[str] = set()
        self._loops: list[dict[str, tuple[str, ...]]] = [{}]
        self._locals: list[dict[str, tuple[str, ...]]] = []
        self._paths: list[dict[str, tuple[str, ...]]] = [{}]
        self._must_load: dict[int, int] = {}
        self._argv: list[dict[str, tuple[tuple[str, ...], bool, int]]] = [{}]
        self._block: list[int] = [0]
        self._blocks = 0
        self._results: list[dict[str, str]] = [{}]
        self._classes: list[dict[str, str]] = []
        self._class_body: list[bool] = [False]
        self._owner: str | None = None
        self._owners: list[str | None] = []
        self._called_at_import: dict[str, bool] = {}
        self._attempts: list[int] = []
        self._functions = 0
        self._aliases: dict[str, str] = {}
        self._caught: list[frozenset[str]] = []
        self._outer_caught: list[list[frozenset[str]]] = []

    # Statements ---------------------------------------------------------------------
    def module(self, tree: ast.Module) -> None:
        self._find_must_load(tree.body)
        for statement in tree.body:
            self._statement(statement)

    def _body(self, body: list[ast.stmt]) -> None:
        if not body:
            return
        self._find_must_load(body)
        self._blocks += 1
        self._block.append(self._blocks)
        for statement in body:
            self._statement(statement)
        self._block.pop()

    def _statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Assign):
            self._assign(node)
            self._expressions(*node.targets, node.value)
        elif isinstance(node, ast.Expr):
            self._appended(node.value)
            self._expressions(node.value)
        elif isinstance(node, ast.AugAssign):
            if isinstance(node.target, ast.Name) and isinstance(node.op, ast.Add):
                self._extend(node.target.id, node.value)
            self._expressions(node.target, node.value)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    break
                if alias.asname is not None:
                    self._aliases[alias.asname] = alias.name
                    if may_report(alias.name):  # `fl("x")` after `from ctypes.util import find_library as fl`
                        self._lines = sorted({*self._lines, *self.source.lines_naming([alias.asname])})
        elif isinstance(node, ast.Import):
            pass
        elif isinstance(node, ast.If):
            if self._other_platform(node.test):
                self._body(node.orelse)
            else:
                self._expressions(node.test)
                self._body(node.body)
                self._body(node.orelse)
        elif isinstance(node, _LOOPS):
            self._for(node)
        elif isinstance(node, _TRIES):
            self._try(node)
        elif isinstance(node, _FUNCTIONS):
            self._function(node)
        elif isinstance(node, ast.ClassDef):
            self._classes.append({})
            self._class_body.append(True)
            self._expressions(*node.decorator_list, *node.bases, *(k.value for k in node.keywords))
            self._body(node.body)
            self._classes.pop()
            self._class_body.pop()
        elif isinstance(node, ast.While):
            self._expressions(node.test)
            self._body(node.body)
            self._body(node.orelse)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            self._expressions(*(part for item in node.items for part in (item.context_expr, item.optional_vars) if part))
            self._body(node.body)
        elif isinstance(node, ast.Match):
            self._expressions(node.subject)
            for case in node.cases:
                if case.guard is not None:
                    self._expressions(case.guard)
                self._body(case.body)
        else:
            self._expressions(node)  # a simple statement: only its calls matter

    def _for(self, node: ast.For | ast.AsyncFor) -> None:
        values = self._strings(node.iter, self._lookup)
        if values is None and isinstance(node.iter, _SEQUENCES):
            values = _numbers(node.iter)
        frame = {node.target.id: values} if values is not None and isinstance(node.target, ast.Name) else {}
        self._loops.append(frame)
        self._attempts.append(self._must_load.get(id(node), 0))
        self._expressions(node.target, node.iter)
        self._body(node.body)
        self._body(node.orelse)
        self._loops.pop()
        self._attempts.pop()

    def _try(self, node: ast.Try | ast.TryStar) -> None:
        attempt = bool(self._attempts) and self._attempts[-1] > 0
        self._caught.append(frozenset() if attempt else frozenset(name for handler in node.handlers for name in _handled(handler)))
        self._body(node.body)
        self._caught.pop()
        for handler in node.handlers:
            if handler.type is not None:
                self._expressions(handler.type)
            self._body(handler.body)
        self._body(node.orelse)
        self._body(node.finalbody)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # Decorators, default values and annotations run where the `def` is.
        self._expressions(*node.decorator_list, node.args, *([node.returns] if node.returns else []))
        if self._functions == 0 and not self._classes:
            self._owner = node.name
        self._functions += 1
        self._locals.append({})
        self._paths.append({})
        self._argv.append({})
        self._results.append({})
        self._class_body.append(False)
        self._outer_caught.append(self._caught)
        self._caught = []
        self._attempts.append(0)
        self._body(node.body)
        self._functions -= 1
        if self._functions == 0:
            self._owner = None
        self._locals.pop()
        self._paths.pop()
        self._argv.pop()
        self._results.pop()
        self._class_body.pop()
        self._caught = self._outer_caught.pop()
        self._attempts.pop()

    def _find_must_load(self, body: list[ast.stmt]) -> None:
        for position, statement in enumerate(body):
            if isinstance(statement, _LOOPS) and self._raises_after(statement, body[position + 1 :]):
                self._must_load[id(statement)] = len(self._must_load) + 1

    def _raises_after(self, loop: ast.For | ast.AsyncFor, rest: list[ast.stmt]) -> bool:
        if any(_simple_raise(line) for line in _logical_lines(loop.orelse)):
            return True
        for line in _logical_lines(rest):
            if not line:
                continue  # a compound statement: passed over
            if any(isinstance(small, ast.Return) for small in line):
                return False
            if _simple_raise(line):
                return True
        return False

    # Argument lists built in steps ----------------------------------------------------
    def _appended(self, call: ast.expr) -> None:
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name)):
            return
        if call.func.attr not in ("append", "extend"):
            return
        arguments = _arguments(call)
        if len(arguments) != 1:
            return
        value = arguments[0]
        if call.func.attr == "append":
            value = ast.List(elts=[value], ctx=ast.Load())
        self._extend(call.func.value.id, value)

    def _bind_argv(self, name: str, value: ast.expr) -> None:
        scope = self._argv[-1]
        scope.pop(name, None)
        if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
            value = value.left
        if not isinstance(value, _SEQUENCES):
            return
        if not value.elts:
            scope[name] = ((), True, self._block[-1])
            return
        head = self._head(value)
        if head is not None:
            scope[name] = ((head,), False, self._block[-1])

    def _extend(self, name: str, value: ast.expr) -> None:
        scope = self._argv[-1]
        known = scope.get(name)
        if known is None or not known[1] or not isinstance(value, _SEQUENCES) or not value.elts:
            return
        heads, _, block = known
        certain = block == self._block[-1]
        head = self._head(value)
        if head is None:
            if certain:
                del scope[name]
            return
        scope[name] = ((head,) if certain else tuple(dict.fromkeys((*heads, head))), not certain, block)

    def _head(self, value: ast.Tuple | ast.List) -> str | None:
        item = value.elts[0]
        if isinstance(item, ast.Starred):
            return None
        found = self._strings(item, self._lookup)
        if found and len(found) == 1 and found[0].strip():
            return program(found[0])
        if isinstance(item, ast.Name) and item.id in self._results[-1]:
            return RESULT_OF + self._results[-1][item.id]
        if (
            isinstance(item, ast.Attribute)
            and isinstance(item.value, ast.Name)
            and item.value.id in ("self", "cls")
            and self._classes
            and item.attr in self._classes[-1]
        ):
            return RESULT_OF + self._classes[-1][item.attr]
        return None

    def _assign(self, node: ast.Assign) -> None:
        callee = _callee(node.value)
        texts = self._strings(node.value, self._lookup)
        values = texts
        if values is None and isinstance(node.value, _SEQUENCES):
            values = _numbers(node.value)
        paths = self._helper_path(node.value, self._lookup) if values is None else None
        for target in node.targets:
            if not isinstance(target, ast.Name):
                continue
            name = target.id
            self._bind_argv(name, node.value)
            bind(self._classes[-1] if self._class_body[-1] and self._classes else self._results[-1], name, callee)
            bind(self._paths[-1], name, paths)
            bind(self._locals[-1] if self._locals else self._constants, name, values)
            if texts is not None and isinstance(node.value, _SEQUENCES):
                self._sequences.add(name)

    def _is_loop_variable(self, name: str) -> bool:
        return any(name in frame for frame in self._loops)

    def _lookup(self, name: str) -> tuple[str, ...] | None:
        for frame in reversed(self._loops):
            if name in frame:
                return frame[name]
        if self._locals and name in self._locals[-1]:
            return self._locals[-1][name]
        return self._constants.get(name)

    # Calls ----------------------------------------------------------------------------
    def _expressions(self, *nodes: ast.AST) -> None:
        for node in nodes:
            for call in self._calls(node):
                self._call(call)

    def _calls(self, node: ast.AST) -> Iterator[ast.Call]:
        """The calls in an expression (or a simple statement), lambdas and comprehensions
        included, that are on the lines the walk must read: all of them outside functions,
        where a call of the file's own function may say that its hints run at import."""
        lines, count = self._lines, len(self._lines)
        everywhere = self._functions == 0
        todo = [node]
        while todo:
            item = todo.pop()
            first = None if everywhere else getattr(item, "lineno", None)
            if first is not None:
                at = bisect.bisect_left(lines, first)
                if at == count or lines[at] > (item.end_lineno or first):  # type: ignore[attr-defined]
                    continue
            if isinstance(item, ast.JoinedStr):
                # Python 3.11 places what an f-string holds less surely than the f-string itself.
                yield from (child for child in ast.walk(item) if isinstance(child, ast.Call))
                continue
            if isinstance(item, ast.Call):
                yield item
            todo.extend(ast.iter_child_nodes(item))

    def _call(self, node: ast.Call) -> None:
        if self._functions == 0 and isinstance(node.func, ast.Name):
            guarded = any(BARE_EXCEPT in caught or not caught.isdisjoint(CALL_FAILURES) for caught in self._caught)
            name = node.func.id
            self._called_at_import[name] = self._called_at_import.get(name, True) and guarded
        full = full_name(node.func) or ""
        full = self._aliases.get(full, full)
        if not (node.args or node.keywords) or not may_report(full):
            return
        first = _arguments(node)[0]
        if full.rsplit(".", 1)[-1] in LIBRARY_CALLS:
            names = self._strings(first, self._lookup)
            if names:
                self._add(node, "library", names, full, by_path=full.rsplit(".", 1)[-1] == "load_library")
                return
            paths = self._helper_path(first, self._lookup)
            if paths is None and isinstance(first, ast.Name):
                paths = next((frame[first.id] for frame in reversed(self._paths) if first.id in frame), None)
            if paths:
                self._add(node, "library", paths, full, by_path=True)
            return
        argv = self._argv[-1].get(first.id) if isinstance(first, ast.Name) else None
        if argv is not None and argv[0] and full.rsplit(".", 1)[-1] != "which":
            self._add(node, "program", argv[0], full)
            return
        if isinstance(first, ast.Name) and first.id in self._sequences and not self._is_loop_variable(first.id):
            bound = self._lookup(first.id)
            programs: tuple[str, ...] | None = (program(bound[0]),) if bound and bound[0].strip() else None
        else:
            programs = self._program_names(first, self._lookup)
        if programs:
            self._add(node, "program", programs, full)

    def _add(self, node: ast.Call, kind: str, names: tuple[str, ...], call: str, by_path: bool = False) -> None:
        guarded = any(absence_caught(call, caught) for caught in self._caught)
        loop = self._attempts[-1] if self._attempts else 0
        names = tuple(dict.fromkeys(names))
        self.hints.append(NativeHint(node.lineno, kind, names, call, self._functions > 0, guarded, loop, by_path))
        self._owners.append(self._owner)

    def at_import(self) -> list[NativeHint]:
        found = []
        for hint, owner in zip(self.hints, self._owners):
            if owner is not None and owner in self._called_at_import and hint.lazy:
                hint = replace(hint, lazy=False, guarded=hint.guarded or self._called_at_import[owner])
            found.append(hint)
        return found

    # Text -----------------------------------------------------------------------------
    def _other_platform(self, test: ast.expr) -> bool:
        if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
            return any(self._other_platform(value) for value in test.values)
        if not isinstance(test, ast.Compare) or len(test.ops) != 1 or not isinstance(test.ops[0], (ast.Eq, ast.In)):
            return False
        subject = self.source.segment(test.left).decode("utf-8", "replace").lower()
        if "platform" not in subject and "os.name" not in subject:
            return False
        return other_platform_values(self._strings(test.comparators[0], lambda _name: None))

    def _helper_path(self, node: ast.expr, lookup: Lookup) -> tuple[str, ...] | None:
        if not isinstance(node, ast.Call) or not (node.args or node.keywords):
            return None
        full = full_name(node.func) or ""
        if may_report(self._aliases.get(full, full)):
            return None
        positional = [argument for argument in node.args if not isinstance(argument, ast.Starred)]
        return self._strings(positional[-1], lookup) if positional else None

    def _strings(self, node: ast.expr, lookup: Lookup) -> tuple[str, ...] | None:
        if isinstance(node, ast.Constant):
            return (node.value,) if isinstance(node.value, str) else None
        if isinstance(node, (ast.JoinedStr, ast.BinOp, ast.Call)):
            return self._built(node, lookup)
        if isinstance(node, _SEQUENCES):
            values = []
            for element in node.elts:
                item = element.value if isinstance(element, ast.Starred) else element
                if not (isinstance(item, ast.Constant) and isinstance(item.value, str)):
                    return None
                values.append(item.value)
            return tuple(values)
        if isinstance(node, ast.Name):
            return lookup(node.id)
        return None

    def _built(self, node: ast.expr, lookup: Lookup) -> tuple[str, ...] | None:
        if isinstance(node, ast.JoinedStr):
            return self._f_string(node, lookup)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self._strings(node.left, lookup), self._strings(node.right, lookup)
            return None if left is None or right is None else joined([left, right])
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            template, value = self._strings(node.left, lookup), self._value(node.right, lookup)
            if template is None or value is None or len(template) != 1:
                return None
            return formatted(lambda v: template[0] % v, value)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and len(node.args) == 1
            and not node.keywords
            and not isinstance(node.args[0], ast.Starred)
        ):
            template, value = self._strings(node.func.value, lookup), self._value(node.args[0], lookup)
            if template is None or value is None or len(template) != 1:
                return None
            return formatted(lambda v: template[0].format(v), value)
        return None

    def _f_string(self, node: ast.JoinedStr, lookup: Lookup) -> tuple[str, ...] | None:
        text = self.source.segment(node)
        # libcst keeps a text part as written: where escapes or doubled braces make that differ
        # from the value, or `{x=}` is a conversion to `ast` only, libcst is asked.
        raw = b"\\" in text or b"{{" in text or b"}}" in text
        parts: list[tuple[str, ...]] = []
        unsure = False
        for part in node.values:
            if isinstance(part, ast.Constant):
                if raw:
                    unsure = True
                parts.append((str(part.value),))
            elif isinstance(part, ast.FormattedValue):
                if part.conversion != -1 or part.format_spec is not None:
                    if _DEBUG_FIELD.search(text):
                        unsure = True
                        continue
                    return None
                value = self._value(part.value, lookup)
                if value is None:
                    return None
                parts.append(value)
            else:
                return None
        if unsure:
            raise Unsure
        return joined(parts)

    def _value(self, node: ast.expr, lookup: Lookup) -> tuple[str, ...] | None:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return (str(node.value),)
        if isinstance(node, _SEQUENCES):
            return None
        return self._strings(node, lookup)

    def _program_names(self, node: ast.expr, lookup: Lookup) -> tuple[str, ...] | None:
        if isinstance(node, _SEQUENCES):
            if not node.elts:
                return None
            first = node.elts[0]
            head = self._strings(first.value if isinstance(first, ast.Starred) else first, lookup)
            return (program(head[0]),) if head and len(head) == 1 and head[0].strip() else None
        values = self._strings(node, lookup)
        if not values:
            return None
        return tuple(program(v) for v in values if v.strip())


# Helpers ------------------------------------------------------------------------------
def _arguments(call: ast.Call) -> list[ast.expr]:
    """The values of a call's arguments in source order, as libcst lists them: `*xs` and
    `**kw` by what they unpack, keywords by their value."""
    if not call.keywords:
        return [a.value if isinstance(a, ast.Starred) else a for a in call.args]
    items: list[ast.AST] = [*call.args, *call.keywords]
    if call.args:
        items.sort(key=lambda item: (item.lineno, item.col_offset))  # type: ignore[attr-defined]
    return [item.value if isinstance(item, (ast.Starred, ast.keyword)) else item for item in items]  # type: ignore[misc]


def _callee(node: ast.expr) -> str | None:
    if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
        return full_name(node.func)
    return None


def _numbers(node: ast.Tuple | ast.List) -> tuple[str, ...] | None:
    values = []
    for element in node.elts:
        item = element.value if isinstance(element, ast.Starred) else element
        if not (isinstance(item, ast.Constant) and type(item.value) is int):
            return None
        values.append(str(item.value))
    return tuple(values) or None


def _logical_lines(body: list[ast.stmt]) -> list[list[ast.stmt]]:
    """`body` as libcst's statements: the simple statements of one line (`a; b`) together, and
    an empty list for a compound statement."""
    lines: list[list[ast.stmt]] = []
    previous: ast.stmt | None = None
    for statement in body:
        if _is_compound(statement):
            lines.append([])
            previous = None
            continue
        if previous is not None and statement.lineno == (previous.end_lineno or previous.lineno):
            lines[-1].append(statement)
        else:
            lines.append([statement])
        previous = statement
    return lines


_COMPOUND = (
    ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.For, ast.AsyncFor, ast.While,
    ast.With, ast.AsyncWith, ast.Try, ast.TryStar, ast.Match,
)  # fmt: skip


def _is_compound(statement: ast.stmt) -> bool:
    return isinstance(statement, _COMPOUND)


def _simple_raise(line: list[ast.stmt]) -> bool:
    return any(isinstance(small, ast.Raise) for small in line)


def _handled(handler: ast.ExceptHandler) -> tuple[str, ...]:
    return () if _escapes(handler.body) else _caught_names(handler)


def _caught_names(handler: ast.ExceptHandler) -> tuple[str, ...]:
    if handler.type is None:
        return (BARE_EXCEPT,)
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    names = (full_name(item.value if isinstance(item, ast.Starred) else item) for item in types)
    return tuple(name.rsplit(".", 1)[-1] for name in names if name)


def _escapes(body: list[ast.stmt]) -> bool:
    """Whether a handler's body raises or continues, not counting what it only defines."""
    for statement in body:
        if isinstance(statement, (ast.Raise, ast.Continue)):
            return True
        if isinstance(statement, (*_FUNCTIONS, ast.ClassDef)):
            continue
        for block in _statement_blocks(statement):
            if _escapes(block):
                return True
    return False


def _statement_blocks(node: ast.stmt) -> list[list[ast.stmt]]:
    blocks: list[list[ast.stmt]] = [getattr(node, name) for name in ("body", "orelse", "finalbody") if isinstance(getattr(node, name, None), list)]
    blocks += [handler.body for handler in getattr(node, "handlers", ())]
    blocks += [case.body for case in getattr(node, "cases", ())]
    return blocks


# `{x=}`, `{x = !s}`, `{x=:>4}`: a self-documenting field (not `==`, `!=`, `<=`, `>=`).
_DEBUG_FIELD = re.compile(rb"(?<![=!<>])=\s*[!:}]")
