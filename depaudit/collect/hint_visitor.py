"""The libcst walk that finds a file's native hints (see hints.py for what they are).

Kept apart from hints.py so that a run whose results all come from the cache never loads libcst.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import MetadataWrapper, PositionProvider

from depaudit.collect.handlers import caught_names, handler_escapes
from depaudit.collect.hint_calls import BARE_EXCEPT, CALL_FAILURES, LIBRARY_CALLS, RESULT_OF, NativeHint, absence_caught, may_report
from depaudit.collect.hint_text import bind, formatted, joined, other_platform_values, program
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
        # Names bound to a path a helper builds from literals (`p = _extension_path(name)`): read
        # only where a library is loaded, never as a program.
        self._paths: list[dict[str, tuple[str, ...]]] = [{}]
        self._must_load: dict[int, int] = {}  # id of a `for` that raises when no candidate loads → its number
        # Argument lists built in steps (`cmd = []`, `cmd += (TOOL, x)`, `cmd.append(y)`): per scope,
        # name → the programs that may be its first item, whether it may still be empty, and the
        # block it was bound in (an addition in a nested block may not run).
        self._argv: list[dict[str, tuple[tuple[str, ...], bool, int]]] = [{}]
        self._block: list[int] = [0]
        # Names bound to what a call returns (`prober = get_prober_name()`), per scope, and the
        # class attributes so bound (`converter = get_encoder_name()` in a class body): an argv
        # headed by one names the callee's returns, which the packages stage reads.
        self._results: list[dict[str, str]] = [{}]
        self._classes: list[dict[str, str]] = []
        self._class_body: list[bool] = [False]
        # A module-level function whose body holds a hint, called at module level
        # (`if not load_library(): raise ...`): its hints run at import. Per hint, the function
        # it is in; per function name, whether every module-level call of it is guarded.
        self._owner: str | None = None
        self._owners: list[str | None] = []
        self._called_at_import: dict[str, bool] = {}
        self._attempts: list[int] = []  # the numbers of the must-load loops around the current node
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
        # In a loop that raises once every candidate failed, a handler only moves on to the next
        # candidate: it survives nothing.
        attempt = bool(self._attempts) and self._attempts[-1] > 0
        self._caught.append(frozenset() if attempt else frozenset(name for handler in node.handlers for name in _handled(handler)))
        node.body.visit(self)
        self._caught.pop()
        for part in (*node.handlers, node.orelse, node.finalbody):
            if part is not None:
                part.visit(self)
        return False

    # Scopes -------------------------------------------------------------------------
    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append({})
        self._class_body.append(True)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._classes.pop()
        self._class_body.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        # Decorators, default values and annotations run where the `def` is (at import, for a
        # module-level one): they are read in the scope around it, in source order.
        for decorator in node.decorators:
            decorator.visit(self)
        type_parameters = getattr(node, "type_parameters", None)  # `def f[T]()`: Python 3.12
        if type_parameters is not None:
            type_parameters.visit(self)
        node.params.visit(self)
        if node.returns is not None:
            node.returns.visit(self)
        if self._functions == 0 and not self._classes:
            self._owner = node.name.value
        self._functions += 1
        self._locals.append({})
        self._paths.append({})
        self._argv.append({})
        self._results.append({})
        self._class_body.append(False)
        # A function runs when called, not where it is defined: a try around the `def` guards nothing in it.
        self._outer_caught.append(self._caught)
        self._caught = []
        self._attempts.append(0)
        node.body.visit(self)
        return False  # leave_FunctionDef still runs

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
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

    def visit_Module(self, node: cst.Module) -> None:
        self._find_must_load(node.body)

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._find_must_load(node.body)
        self._block.append(id(node))

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock) -> None:
        self._block.pop()

    # `if x: cmd += [y]`: a block too, though on its header's line (it may not run).
    def visit_SimpleStatementSuite(self, node: cst.SimpleStatementSuite) -> None:
        self._block.append(id(node))

    def leave_SimpleStatementSuite(self, original_node: cst.SimpleStatementSuite) -> None:
        self._block.pop()

    # Argument lists built in steps ------------------------------------------------------
    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.target, cst.Name) and isinstance(node.operator, cst.AddAssign):
            self._extend(node.target.value, node.value)

    def visit_Expr(self, node: cst.Expr) -> None:
        call = node.value
        if (
            isinstance(call, cst.Call)
            and isinstance(call.func, cst.Attribute)
            and isinstance(call.func.value, cst.Name)
            and call.func.attr.value in ("append", "extend")
            and len(call.args) == 1
        ):
            value = call.args[0].value
            if call.func.attr.value == "append":
                value = cst.List([cst.Element(value)])
            self._extend(call.func.value.value, value)

    def _bind_argv(self, name: str, value: cst.BaseExpression) -> None:
        scope = self._argv[-1]
        scope.pop(name, None)
        if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, cst.Add):
            value = value.left  # `[TOOL, "-x"] + rest`
        if not isinstance(value, (cst.List, cst.Tuple)):
            return
        if not value.elements:
            scope[name] = ((), True, self._block[-1])
            return
        head = self._head(value)
        if head is not None:
            scope[name] = ((head,), False, self._block[-1])

    def _extend(self, name: str, value: cst.BaseExpression) -> None:
        scope = self._argv[-1]
        known = scope.get(name)
        if known is None or not known[1] or not isinstance(value, (cst.List, cst.Tuple)) or not value.elements:
            return
        heads, _, block = known
        certain = block == self._block[-1]  # not in a nested block: it surely runs
        head = self._head(value)
        if head is None:
            if certain:
                del scope[name]  # the first item is something we cannot know
            return
        # A head added for sure is started for sure, after a wrapper a branch may put before it
        # (pytesseract's `nice -n N` prefix): it alone stands for the list.
        scope[name] = ((head,) if certain else tuple(dict.fromkeys((*heads, head))), not certain, block)

    def _head(self, value: cst.List | cst.Tuple) -> str | None:
        first = value.elements[0]
        if isinstance(first, cst.StarredElement):
            return None
        found = _strings(first.value, self._lookup)
        if found and len(found) == 1 and found[0].strip():
            return program(found[0])
        item = first.value
        if isinstance(item, cst.Name) and item.value in self._results[-1]:
            return RESULT_OF + self._results[-1][item.value]
        if (
            isinstance(item, cst.Attribute)
            and isinstance(item.value, cst.Name)
            and item.value.value in ("self", "cls")
            and self._classes
            and item.attr.value in self._classes[-1]
        ):
            return RESULT_OF + self._classes[-1][item.attr.value]
        return None

    def _find_must_load(self, body: Sequence[cst.BaseStatement]) -> None:
        for position, statement in enumerate(body):
            if isinstance(statement, cst.For) and _raises_after(statement, body[position + 1 :]):
                self._must_load[id(statement)] = len(self._must_load) + 1

    def visit_Assign(self, node: cst.Assign) -> None:
        callee = _callee(node.value)
        texts = _strings(node.value, self._lookup)
        values = texts
        if values is None and isinstance(node.value, (cst.Tuple, cst.List)):
            values = _numbers(node.value)  # `VERSIONS = (9, 8, 7)`: what a loop may walk
        paths = _helper_path(node.value, self._lookup, self._aliases) if values is None else None
        for target in node.targets:
            if not isinstance(target.target, cst.Name):
                continue
            name = target.target.value
            self._bind_argv(name, node.value)
            # Each binding a name may hold is set, or forgotten: a rebinding to what cannot be
            # known means the old value no longer holds.
            bind(self._classes[-1] if self._class_body[-1] and self._classes else self._results[-1], name, callee)
            bind(self._paths[-1], name, paths)
            bind(self._locals[-1] if self._locals else self._constants, name, values)
            if texts is not None and isinstance(node.value, (cst.List, cst.Tuple)):
                self._sequences.add(name)

    def visit_For(self, node: cst.For) -> None:
        values = _strings(node.iter, self._lookup)
        if values is None and isinstance(node.iter, (cst.Tuple, cst.List)):
            values = _numbers(node.iter)
        frame = {node.target.value: values} if values is not None and isinstance(node.target, cst.Name) else {}
        self._loops.append(frame)
        self._attempts.append(self._must_load.get(id(node), 0))

    def leave_For(self, original_node: cst.For) -> None:
        self._loops.pop()
        self._attempts.pop()

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
        if self._functions == 0 and isinstance(node.func, cst.Name):
            guarded = any(BARE_EXCEPT in caught or not caught.isdisjoint(CALL_FAILURES) for caught in self._caught)
            name = node.func.value
            self._called_at_import[name] = self._called_at_import.get(name, True) and guarded
        full = get_full_name_for_node(node.func) or ""
        full = self._aliases.get(full, full)
        if not node.args or not may_report(full):
            return
        first = node.args[0].value
        if full.rsplit(".", 1)[-1] in LIBRARY_CALLS:
            names = _strings(first, self._lookup)
            if names:
                # numpy's load_library(name, folder) and torch.ops.load_library(path) open a file
                # by path, never by a search of the loader's folders.
                self._add(node, "library", names, full, by_path=full.rsplit(".", 1)[-1] == "load_library")
                return
            paths = _helper_path(first, self._lookup, self._aliases)
            if paths is None and isinstance(first, cst.Name):
                paths = next((frame[first.value] for frame in reversed(self._paths) if first.value in frame), None)
            if paths:
                self._add(node, "library", paths, full, by_path=True)
            return
        argv = self._argv[-1].get(first.value) if isinstance(first, cst.Name) else None
        if argv is not None and argv[0] and full.rsplit(".", 1)[-1] != "which":
            self._add(node, "program", argv[0], full)
            return
        if isinstance(first, cst.Name) and first.value in self._sequences and not self._is_loop_variable(first.value):
            bound = self._lookup(first.value)
            programs: tuple[str, ...] | None = (program(bound[0]),) if bound and bound[0].strip() else None
        else:
            programs = _program_names(first, self._lookup)
        if programs:
            self._add(node, "program", programs, full)

    def _add(self, node: cst.CSTNode, kind: str, names: tuple[str, ...], call: str, by_path: bool = False) -> None:
        guarded = any(absence_caught(call, caught) for caught in self._caught)
        loop = self._attempts[-1] if self._attempts else 0
        names = tuple(dict.fromkeys(names))  # `run(f"which {m}")` over four managers: one program
        self.hints.append(NativeHint(self._line(node), kind, names, call, self._functions > 0, guarded, loop, by_path))
        self._owners.append(self._owner)

    def at_import(self) -> list[NativeHint]:
        """The hints, those in a function the module calls at import made as sure as that call."""
        found = []
        for hint, owner in zip(self.hints, self._owners):
            if owner is not None and owner in self._called_at_import and hint.lazy:
                hint = replace(hint, lazy=False, guarded=hint.guarded or self._called_at_import[owner])
            found.append(hint)
        return found

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


def _other_platform(test: cst.BaseExpression) -> bool:
    """A comparison of a platform value with == (or `in`) against another OS's name, or an `and`
    holding one."""
    if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.And):
        return _other_platform(test.left) or _other_platform(test.right)
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    operator = test.comparisons[0].operator
    if not isinstance(operator, (cst.Equal, cst.In)):
        return False
    subject = cst.Module([]).code_for_node(test.left).lower()
    if "platform" not in subject and "os.name" not in subject:
        return False
    literal = test.comparisons[0].comparator
    return other_platform_values(_strings(literal, lambda _name: None))


def _callee(node: cst.BaseExpression) -> str | None:
    """The dotted name a call's result comes from: `get_encoder_name()` → "get_encoder_name"."""
    if isinstance(node, cst.Call) and isinstance(node.func, (cst.Name, cst.Attribute)):
        return get_full_name_for_node(node.func)
    return None


def _raises_after(loop: cst.For, rest: Sequence[cst.BaseStatement]) -> bool:
    """Whether the code raises once the loop ends without leaving early: its `else:` raises, or
    a `raise` follows it in the same block before any `return` (conditional code passed over)."""
    if loop.orelse is not None:
        body = loop.orelse.body  # `else: raise ...` on the `else:` line is one line of its own
        if any(_simple_raise(statement) for statement in (body.body if isinstance(body, cst.IndentedBlock) else [body])):
            return True
    for statement in rest:
        if isinstance(statement, cst.SimpleStatementLine):
            if any(isinstance(small, cst.Return) for small in statement.body):
                return False
            if _simple_raise(statement):
                return True
    return False


def _simple_raise(statement: cst.BaseStatement | cst.BaseSuite) -> bool:
    return isinstance(statement, (cst.SimpleStatementLine, cst.SimpleStatementSuite)) and any(
        isinstance(small, cst.Raise) for small in statement.body
    )


def _numbers(node: cst.Tuple | cst.List) -> tuple[str, ...] | None:
    """A literal tuple/list of integers, as the text a loop over it formats into names."""
    values = []
    for element in node.elements:
        if not isinstance(element.value, cst.Integer):
            return None
        values.append(str(element.value.evaluated_value))
    return tuple(values) or None


def _helper_path(node: cst.BaseExpression, lookup, aliases: dict[str, str]) -> tuple[str, ...] | None:  # type: ignore[no-untyped-def]
    """The name a call builds a path from: `_extension_path("libx7")`,
    `os.path.join(os.path.dirname(__file__), "libx.so")` — its last positional argument, when
    that is known text."""
    if not isinstance(node, cst.Call) or not node.args:
        return None
    full = get_full_name_for_node(node.func) or ""
    if may_report(aliases.get(full, full)):
        return None  # `find_library("x")` is a hint of its own, not a path
    positional = [argument for argument in node.args if argument.keyword is None and argument.star == ""]
    return _strings(positional[-1].value, lookup) if positional else None


def _strings(node: cst.BaseExpression, lookup) -> tuple[str, ...] | None:  # type: ignore[no-untyped-def]
    """A literal string, a literal tuple/list of strings, or a name bound to one; also text built
    from those (an f-string, `+`, `%`, `.format`), once per value of the one name that varies."""
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return (value,) if isinstance(value, str) else None
    if isinstance(node, cst.ConcatenatedString):  # `"lib" "x.so"`: one string, as Python reads it
        left, right = _strings(node.left, lookup), _strings(node.right, lookup)
        return None if left is None or right is None else joined([left, right])
    if isinstance(node, (cst.FormattedString, cst.BinaryOperation, cst.Call)):
        return _built(node, lookup)
    if isinstance(node, (cst.Tuple, cst.List)):
        values = []
        for element in node.elements:
            value = _literal(element.value)
            if value is None:
                return None
            values.append(value)
        return tuple(values)
    if isinstance(node, cst.Name):
        return lookup(node.value)
    return None


def _literal(node: cst.BaseExpression) -> str | None:
    """The text of a string literal (implicitly concatenated ones too), not of an f-string."""
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    if isinstance(node, cst.ConcatenatedString):
        left, right = _literal(node.left), _literal(node.right)
        return None if left is None or right is None else left + right
    return None


def _built(node: cst.BaseExpression, lookup) -> tuple[str, ...] | None:  # type: ignore[no-untyped-def]
    """Text an expression builds from literals and names bound to them; None when any part is
    unknown, or when two parts vary (which pairs go together is not known)."""
    parts: list[tuple[str, ...]] = []
    if isinstance(node, cst.FormattedString):
        for part in node.parts:
            if isinstance(part, cst.FormattedStringText):
                parts.append((part.value,))
            elif isinstance(part, cst.FormattedStringExpression) and part.conversion is None and part.format_spec is None:
                value = _value(part.expression, lookup)
                if value is None:
                    return None
                parts.append(value)
            else:
                return None
        return joined(parts)
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
        left, right = _strings(node.left, lookup), _strings(node.right, lookup)
        return None if left is None or right is None else joined([left, right])
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Modulo):
        template, value = _strings(node.left, lookup), _value(node.right, lookup)
        if template is None or value is None or len(template) != 1:
            return None
        return formatted(lambda v: template[0] % v, value)
    if (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == "format"
        and len(node.args) == 1
        and node.args[0].keyword is None
        and node.args[0].star == ""
    ):
        template, value = _strings(node.func.value, lookup), _value(node.args[0].value, lookup)
        if template is None or value is None or len(template) != 1:
            return None
        return formatted(lambda v: template[0].format(v), value)
    return None


def _value(node: cst.BaseExpression, lookup) -> tuple[str, ...] | None:  # type: ignore[no-untyped-def]
    if isinstance(node, cst.Integer):
        return (str(node.evaluated_value),)
    if isinstance(node, (cst.Tuple, cst.List)):
        return None  # `"%s" % (a, b)`: not one value
    return _strings(node, lookup)


def _program_names(node: cst.BaseExpression, lookup) -> tuple[str, ...] | None:  # type: ignore[no-untyped-def]
    """argv[0] of a literal list, or the first word of a literal command string."""
    if isinstance(node, (cst.List, cst.Tuple)):
        if not node.elements:
            return None
        head = _strings(node.elements[0].value, lookup)  # a literal, or a constant naming the program
        return (program(head[0]),) if head and len(head) == 1 and head[0].strip() else None
    values = _strings(node, lookup)
    if not values:
        return None
    return tuple(program(v) for v in values if v.strip())


def scan(source: bytes) -> list[NativeHint]:
    """Hints of one file; raises what libcst raises on a file it cannot parse."""
    module = cst.parse_module(source)
    visitor = _HintVisitor()
    module.visit(visitor)
    found = lines(source, visitor.counter)
    if found is not None:
        return sorted(replace(hint, line=found[hint.line]) for hint in visitor.at_import())
    positioned = _PositionedHintVisitor()
    MetadataWrapper(module, unsafe_skip_copy=True).visit(positioned)
    return sorted(positioned.at_import())
