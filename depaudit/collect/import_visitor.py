"""The libcst walk that finds a file's imports and the context that decides their tier.

Kept apart from imports.py so that a run whose results all come from the cache never loads
libcst.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import replace

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import MetadataWrapper, PositionProvider

from depaudit.collect.handlers import BARE_EXCEPT, caught_names, handler_escapes
from depaudit.collect.lines import CallVisitor, NodeCounter, lines
from depaudit.collect.model import FoundImport, dynamic_target, resolve_relative

# Handlers that swallow a failed import: the code after them runs without the module.
_GUARDING_EXCEPTIONS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


def parse_imports(
    source: bytes, package: str, nodes: Sequence[ast.AST] | None = None, original: Callable[[int], int] | None = None
) -> list[FoundImport]:
    """The imports of `source`, at their lines in the file: `original` maps a line of `source`
    (a cut of the file) to the file's. `nodes`: see `lines` (their lines are the file's)."""
    # Bytes, not text: libcst then honours the coding cookie and a UTF-8 BOM.
    module = cst.parse_module(source)
    visitor = _ImportVisitor(package)
    module.visit(visitor)
    found = lines(source, visitor.counter, nodes)
    if found is not None:
        if nodes is None and original is not None:
            return [_at(item, original(found[item.line])) for item in visitor.found]
        return [_at(item, found[item.line]) for item in visitor.found]
    positioned = _PositionedImportVisitor(package)
    MetadataWrapper(module, unsafe_skip_copy=True).visit(positioned)
    if original is not None:
        return [replace(item, line=original(item.line)) for item in positioned.found]
    return positioned.found


def _at(item: FoundImport, line: int) -> FoundImport:
    """`item` at `line` (dataclasses.replace, at a third of its cost: once per import)."""
    return FoundImport(line, item.module, item.names, item.relative, item.guarded, item.lazy, item.dynamic, item.type_checking)


def parse_error(error: Exception) -> tuple[int | None, str]:
    line = error.raw_line if isinstance(error, cst.ParserSyntaxError) else None
    if isinstance(error, RecursionError):
        reason = "the file nests too deeply to parse"
    else:
        # libcst's message spans lines (summary, detail, the source line, a caret): keep the
        # first two, which say where and why, on one line.
        lines = [text.strip() for text in str(error).strip().splitlines() if text.strip()]
        reason = " ".join(lines[:2]) or type(error).__name__
    return line, f"libcst could not parse this file: {reason}; its imports were read line by line"


class _ImportVisitor(CallVisitor):
    def __init__(self, package: str) -> None:
        super().__init__()
        self.counter = NodeCounter()
        self.package = package  # the file's own package inside the service; "" at its root
        self.found: list[FoundImport] = []
        self._guards = 0  # enclosing try bodies whose handlers catch a failed import
        self._functions = 0  # enclosing function and lambda bodies
        self._type_checking = 0  # enclosing `if TYPE_CHECKING:` bodies
        # Names that call importlib.import_module: `importlib.import_module`, `il.import_module`
        # after `import importlib as il`, `load` after `from importlib import import_module as load`.
        self._import_module_names: set[str] = {"importlib.import_module"}

    def _add(self, node: cst.CSTNode, module: str, names: tuple[str, ...], relative: bool, dynamic: bool) -> None:
        self.found.append(
            FoundImport(
                line=self._line(node),
                module=module,
                names=names,
                relative=relative,
                guarded=self._guards > 0,
                lazy=self._functions > 0,
                dynamic=dynamic,
                type_checking=self._type_checking > 0,
            )
        )

    def _line(self, node: cst.CSTNode) -> int:
        return self.counter.report(node)  # an ordinal until `_parse` puts the line in its place

    # Context ---------------------------------------------------------------------------
    # Each context visits its own children and returns False, so that only the part it
    # governs (a try body, an if body, a function body) is visited with the flag raised.

    def visit_Try(self, node: cst.Try) -> bool:
        return self._visit_try(node)

    def visit_TryStar(self, node: cst.TryStar) -> bool:
        return self._visit_try(node)

    def _visit_try(self, node: cst.Try | cst.TryStar) -> bool:
        # Only the body is protected by the handlers; handlers, else and finally are not.
        guarding = any(_handler_guards(handler) for handler in node.handlers)
        self._guards += guarding
        node.body.visit(self)
        self._guards -= guarding
        for part in (*node.handlers, node.orelse, node.finalbody):
            if part is not None:
                part.visit(self)
        return False

    def visit_If(self, node: cst.If) -> bool:
        if not _is_type_checking(node.test):
            return True
        node.test.visit(self)
        self._type_checking += 1
        node.body.visit(self)
        self._type_checking -= 1
        if node.orelse is not None:
            node.orelse.visit(self)  # an `elif TYPE_CHECKING:` there is its own If
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        # Decorators, defaults and annotations run when the `def` runs: not lazy.
        for decorator in node.decorators:
            decorator.visit(self)
        node.params.visit(self)
        if node.returns is not None:
            node.returns.visit(self)
        self._lazy_body(node.body)
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        node.params.visit(self)
        self._lazy_body(node.body)
        return False

    def _lazy_body(self, body: cst.CSTNode) -> None:
        self._functions += 1
        body.visit(self)
        self._functions -= 1

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
        # libcst's walk rebuilds every node whose children it visits, even for a visitor that
        # changes nothing: an import statement (whose names the visitor reads itself) is met here
        # instead, without that. On a block of 100,000 imports, that is most of the walk. The
        # line's comments and whitespace hold no import or call.
        for statement in node.body:
            if isinstance(statement, cst.Import):
                self.visit_Import(statement)
            elif isinstance(statement, cst.ImportFrom):
                self.visit_ImportFrom(statement)
            else:
                statement.visit(self)
        return False

    # Imports ---------------------------------------------------------------------------
    # Each returns False: an import statement holds no call or import, and libcst's walk over its
    # names and whitespace costs more than the rest of the import unit.
    def visit_Import(self, node: cst.Import) -> bool:
        self.counter.meet()
        for alias in node.names:
            name = get_full_name_for_node(alias.name)
            if not name:
                continue
            if name == "importlib" and alias.asname is not None:
                self._import_module_names.add(f"{_bound_name(alias)}.import_module")
            self._add(node, name, (), relative=False, dynamic=False)
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        self.counter.meet()
        module = get_full_name_for_node(node.module) if node.module is not None else ""
        names: tuple[str, ...] = ()
        if not isinstance(node.names, cst.ImportStar):
            names = tuple(n for n in (get_full_name_for_node(a.name) for a in node.names) if n)
            if module == "importlib" and not node.relative:
                for alias in node.names:
                    if get_full_name_for_node(alias.name) == "import_module":
                        self._import_module_names.add(_bound_name(alias))
        level = len(node.relative)
        if level:
            self._add(node, resolve_relative(module or "", level, self.package), names, relative=True, dynamic=False)
        else:
            self._add(node, module or "", names, relative=False, dynamic=False)
        return False

    def visit_Call(self, node: cst.Call) -> None:
        self.counter.meet()
        function = get_full_name_for_node(node.func)
        if function == "__import__":
            anchor: str | None = None  # a relative __import__ needs globals and a level: not resolved
        elif function in self._import_module_names:
            anchor = self._anchor(_argument(node, 1, "package"))
        else:
            return
        target = dynamic_target(_literal(_argument(node, 0, "name")), anchor)
        if target is not None:
            self._add(node, target[0], (), relative=target[1], dynamic=True)

    def _anchor(self, argument: cst.BaseExpression | None) -> str | None:
        """The package of `import_module(".x", package)`: a literal, or `__package__`."""
        if isinstance(argument, cst.Name) and argument.value == "__package__":
            return self.package
        return _literal(argument)


class _PositionedImportVisitor(_ImportVisitor):
    """The same walk, lines from libcst itself: for a file `ast` reads otherwise (see lines.py)."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line


def _bound_name(alias: cst.ImportAlias) -> str:
    bound = alias.asname.name if alias.asname is not None else alias.name
    return get_full_name_for_node(bound) or ""


def _argument(call: cst.Call, position: int, keyword: str) -> cst.BaseExpression | None:
    positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
    if position < len(positional):
        return positional[position].value
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    return None


def _literal(node: cst.BaseExpression | None) -> str | None:
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None  # bytes or an f-string part: not a name
    return None


def _handler_guards(handler: cst.ExceptHandler | cst.ExceptStarHandler) -> bool:
    if handler_escapes(handler, continues=False):
        return False  # `except ImportError: raise RuntimeError("install x")`: the failure goes on
    caught = caught_names(handler)
    return BARE_EXCEPT in caught or not _GUARDING_EXCEPTIONS.isdisjoint(caught)


def _is_type_checking(test: cst.BaseExpression) -> bool:
    name = get_full_name_for_node(test)
    return name is not None and name.rsplit(".", 1)[-1] == "TYPE_CHECKING"
