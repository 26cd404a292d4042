"""The libcst walk that finds a file's native hints (see hints.py for what they are).

Kept apart from hints.py so that a run whose results all come from the cache never loads libcst.
"""

from __future__ import annotations

from dataclasses import replace

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import MetadataWrapper, PositionProvider

from depaudit.collect.handlers import caught_names, handler_escapes
from depaudit.collect.hint_calls import LIBRARY_CALLS, NativeHint, absence_caught, may_report
from depaudit.collect.lines import CallVisitor, NodeCounter, lines


class _HintVisitor(CallVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.counter = NodeCounter()
        self.hints: list[NativeHint] = []
        self._constants: dict[str, tuple[str, ...]] = {}  # module-level names bound to literals
        self._sequences: set[str] = set()  # names bound to a literal list/tuple (an argv, or candidates)
        self._loops: list[dict[str, tuple[str, ...]]] = [{}]  # loop variables over literal sequences
        self._locals: list[dict[str, tuple[str, ...]]] = []
        self._functions = 0
        self._aliases: dict[str, str] = {}  # `from ctypes.util import find_library as _find_library`
        self._caught: list[frozenset[str]] = []  # what the handlers of each enclosing try body catch
        self._outer_caught: list[list[frozenset[str]]] = []  # the same, outside each enclosing function

    # Both return False: an import statement holds no call, and walking its names costs.
    def visit_Import(self, node: cst.Import) -> bool:
        self.counter.meet()
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        self.counter.meet()
        if isinstance(node.names, cst.ImportStar):
            return False
        for alias in node.names:
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                original = get_full_name_for_node(alias.name)
                if original:
                    self._aliases[alias.asname.name.value] = original
        return False

    def visit_If(self, node: cst.If) -> bool:
        # `if sys.platform == "darwin":` / `platform.system() == "Windows"`: not this image's code.
        if _other_platform(node.test):
            self.counter.skip(node.test)
            self.counter.skip(node.body)
            if node.orelse is not None:
                node.orelse.visit(self)
            return False
        return True

    # Only a try's body is protected by its handlers; handlers, else and finally are not.
    def visit_Try(self, node: cst.Try) -> bool:
        return self._visit_try(node)

    def visit_TryStar(self, node: cst.TryStar) -> bool:
        return self._visit_try(node)

    def _visit_try(self, node: cst.Try | cst.TryStar) -> bool:
        self._caught.append(frozenset(name for handler in node.handlers for name in _handled(handler)))
        node.body.visit(self)
        self._caught.pop()
        for part in (*node.handlers, node.orelse, node.finalbody):
            if part is not None:
                part.visit(self)
        return False

    # Scopes -------------------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._functions += 1
        self._locals.append({})
        # A function runs when called, not where it is defined: a try around the `def` guards nothing in it.
        self._outer_caught.append(self._caught)
        self._caught = []

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._functions -= 1
        self._locals.pop()
        self._caught = self._outer_caught.pop()

    def visit_Assign(self, node: cst.Assign) -> None:
        values = _strings(node.value, self._lookup)
        if values is None:
            return
        for target in node.targets:
            if isinstance(target.target, cst.Name):
                scope = self._locals[-1] if self._locals else self._constants
                scope[target.target.value] = values
                if isinstance(node.value, (cst.List, cst.Tuple)):
                    self._sequences.add(target.target.value)

    def visit_For(self, node: cst.For) -> None:
        values = _strings(node.iter, self._lookup)
        frame = {node.target.value: values} if values is not None and isinstance(node.target, cst.Name) else {}
        self._loops.append(frame)

    def leave_For(self, original_node: cst.For) -> None:
        self._loops.pop()

    def _is_loop_variable(self, name: str) -> bool:
        return any(name in frame for frame in self._loops)

    def _lookup(self, name: str) -> tuple[str, ...] | None:
        for frame in reversed(self._loops):
            if name in frame:
                return frame[name]
        if self._locals and name in self._locals[-1]:
            return self._locals[-1][name]
        return self._constants.get(name)

    # Calls --------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        self.counter.meet()
        full = get_full_name_for_node(node.func) or ""
        full = self._aliases.get(full, full)
        if not node.args or not may_report(full):
            return
        first = node.args[0].value
        if full.rsplit(".", 1)[-1] in LIBRARY_CALLS:
            names = _strings(first, self._lookup)
            if names:
                self._add(node, "library", names, full)
            return
        if isinstance(first, cst.Name) and first.value in self._sequences and not self._is_loop_variable(first.value):
            bound = self._lookup(first.value)
            programs: tuple[str, ...] | None = (_program(bound[0]),) if bound and bound[0].strip() else None
        else:
            programs = _program_names(first, self._lookup)
        if programs:
            self._add(node, "program", programs, full)

    def _add(self, node: cst.CSTNode, kind: str, names: tuple[str, ...], call: str) -> None:
        guarded = any(absence_caught(call, caught) for caught in self._caught)
        self.hints.append(NativeHint(self._line(node), kind, names, call, self._functions > 0, guarded))

    def _line(self, node: cst.CSTNode) -> int:
        return self.counter.report(node)  # an ordinal until `scan_hints` puts the line in its place


class _PositionedHintVisitor(_HintVisitor):
    """The same walk, lines from libcst itself: for a file `ast` reads otherwise (see lines.py)."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line


def _handled(handler: cst.ExceptHandler | cst.ExceptStarHandler) -> tuple[str, ...]:
    """What a handler catches; nothing when it does not survive the failure: it raises, or it
    `continue`s to the next candidate of a loop (whose end then usually raises)."""
    return () if handler_escapes(handler, continues=True) else caught_names(handler)


_OTHER_PLATFORMS = ("darwin", "win32", "windows", "cygwin", "msys", "macos", "freebsd")


def _other_platform(test: cst.BaseExpression) -> bool:
    """A comparison of a platform value with == (or `in`) against another OS's name."""
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    operator = test.comparisons[0].operator
    if not isinstance(operator, (cst.Equal, cst.In)):
        return False
    subject = cst.Module([]).code_for_node(test.left).lower()
    if "platform" not in subject and "os.name" not in subject:
        return False
    literal = test.comparisons[0].comparator
    values = _strings(literal, lambda _name: None) or ()
    return bool(values) and all(v.lower() in _OTHER_PLATFORMS or v == "nt" for v in values)


def _strings(node: cst.BaseExpression, lookup) -> tuple[str, ...] | None:  # type: ignore[no-untyped-def]
    """A literal string, a literal tuple/list of strings, or a name bound to one."""
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return (value,) if isinstance(value, str) else None
    if isinstance(node, (cst.Tuple, cst.List)):
        values = []
        for element in node.elements:
            if not isinstance(element.value, cst.SimpleString):
                return None
            value = element.value.evaluated_value
            if not isinstance(value, str):
                return None
            values.append(value)
        return tuple(values)
    if isinstance(node, cst.Name):
        return lookup(node.value)
    return None


def _program_names(node: cst.BaseExpression, lookup) -> tuple[str, ...] | None:  # type: ignore[no-untyped-def]
    """argv[0] of a literal list, or the first word of a literal command string."""
    if isinstance(node, (cst.List, cst.Tuple)):
        if not node.elements:
            return None
        head = _strings(node.elements[0].value, lookup)  # a literal, or a constant naming the program
        return (_program(head[0]),) if head and len(head) == 1 and head[0].strip() else None
    values = _strings(node, lookup)
    if not values:
        return None
    return tuple(_program(v) for v in values if v.strip())


def _program(command: str) -> str:
    return command.strip().split()[0].rsplit("/", 1)[-1]


def scan(source: bytes) -> list[NativeHint]:
    """Hints of one file; raises what libcst raises on a file it cannot parse."""
    module = cst.parse_module(source)
    visitor = _HintVisitor()
    module.visit(visitor)
    found = lines(source, visitor.counter)
    if found is not None:
        return sorted(replace(hint, line=found[hint.line]) for hint in visitor.hints)
    positioned = _PositionedHintVisitor()
    MetadataWrapper(module, unsafe_skip_copy=True).visit(positioned)
    return sorted(positioned.hints)
