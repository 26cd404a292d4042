"""The import visitor of import_visitor.py, on the stdlib's `ast` tree the import stage parses
anyway: a scan whose files `ast` reads never imports or runs libcst (~0.2 s to import, ~10x
slower to parse). It finds what libcst's visitor finds, in the same order (source order, an
outer call before the calls in its arguments: the order lines.py matches the two trees by),
with the same lines (libcst's visitor takes its lines from `ast` too).

Where the trees can differ, the walk raises Unsure and the caller asks libcst: `ast` reads
identifiers NFKC-normalised (`ﬁle` is `file`) and libcst keeps their text, so an import
statement, an import_module()/__import__() call, a TYPE_CHECKING test or a handler that guards
must be ASCII in the file's text. tests/collect/test_plain_imports.py holds both to the same
answers over a corpus.
"""

from __future__ import annotations

import ast

from depaudit.collect.hint_ast import Unsure, _caught_names, _Source
from depaudit.collect.hint_calls import BARE_EXCEPT
from depaudit.collect.model import FoundImport, dynamic_target, resolve_relative
from depaudit.collect.units import full_name

# Handlers that swallow a failed import: the code after them runs without the module.
_GUARDING_EXCEPTIONS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_TRIES = (ast.Try, ast.TryStar)
# Nodes that hold no call and no import: the walk need not enter them.
_HOLD_NO_CALL = (ast.Name, ast.Constant, ast.alias, ast.Pass, ast.expr_context, ast.Break, ast.Continue, ast.Global, ast.Nonlocal)

_Position = tuple[int, int, int, int]


def ast_imports(tree: ast.Module, source: bytes, package: str) -> list[FoundImport]:
    """What import_visitor.parse_imports finds in `source` (whose tree is `tree`); raises
    Unsure where the trees may differ, RecursionError on a tree too deep for this walk."""
    walk = _Walk(source, package)
    walk.statements(tree.body)
    # A stable sort by position: libcst meets the nodes in that order (see lines.py), and the
    # imports of one statement stay in their own order.
    walk.found.sort(key=lambda item: item[0])
    return [found for _, found in walk.found]


class _Walk:
    def __init__(self, source: bytes, package: str) -> None:
        self.source = _Source(source)
        self.ascii = source.isascii()
        self.package = package  # the file's own package inside the service; "" at its root
        self.found: list[tuple[_Position, FoundImport]] = []
        self.guards = 0  # enclosing try bodies whose handlers catch a failed import
        self.functions = 0  # enclosing function and lambda bodies
        self.type_checking = 0  # enclosing `if TYPE_CHECKING:` bodies
        # Names that call importlib.import_module (see import_visitor.py), in the order met.
        self.import_module_names: set[str] = {"importlib.import_module"}
        # Whether a call can be one to report: an import_module() or __import__() call, or one
        # of a name bound to import_module, which its import statement spells out. Python reads
        # a fullwidth `__ｉmport__` as `__import__`, libcst not: neither word, and neither reports it.
        self.calls = b"__import__" in source or b"import_module" in source

    def statements(self, body: list[ast.stmt]) -> None:
        for node in body:
            self.visit(node)

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, _HOLD_NO_CALL):
            return
        if not self.calls:
            if isinstance(node, ast.stmt):
                self._statement(node)
            return
        if isinstance(node, ast.Call):
            self._call(node)  # then its function and arguments, below
        elif isinstance(node, ast.Import):
            self._import(node)
            return
        elif isinstance(node, ast.ImportFrom):
            self._import_from(node)
            return
        elif isinstance(node, _TRIES):
            self._try(node)
            return
        elif isinstance(node, ast.If):
            self._if(node)
            return
        elif isinstance(node, _FUNCTIONS):
            self._function(node)
            return
        elif isinstance(node, ast.ClassDef):
            self._class(node)
            return
        elif isinstance(node, ast.Lambda):
            self.visit(node.args)  # defaults run when the lambda is made
            self.functions += 1
            self.visit(node.body)
            self.functions -= 1
            return
        for child in ast.iter_child_nodes(node):
            self.visit(child)

    def _statement(self, node: ast.stmt) -> None:
        """A statement, in a file that makes no call to report: only the statements in it."""
        if isinstance(node, ast.Import):
            self._import(node)
        elif isinstance(node, ast.ImportFrom):
            self._import_from(node)
        elif isinstance(node, _TRIES):
            self._try(node)
        elif isinstance(node, ast.If):
            self._if(node)
        elif isinstance(node, _FUNCTIONS):
            self._function(node)
        elif isinstance(node, ast.ClassDef):
            self._class(node)
        elif isinstance(node, ast.Match):
            for case in node.cases:
                self.statements(case.body)
        else:  # for, while, with: the body, then the else
            for name in ("body", "orelse"):
                block = getattr(node, name, None)
                if block:
                    self.statements(block)

    # Context: each visits the part it governs with its flag raised --------------------------

    def _try(self, node: ast.Try | ast.TryStar) -> None:
        # Only the body is protected by the handlers; handlers, else and finally are not.
        guarding = any(self._handler_guards(handler) for handler in node.handlers)
        self.guards += guarding
        self.statements(node.body)
        self.guards -= guarding
        for handler in node.handlers:
            if self.calls:
                self.visit(handler)
            else:
                self.statements(handler.body)
        self.statements(node.orelse)
        self.statements(node.finalbody)

    def _if(self, node: ast.If) -> None:
        self.visit(node.test)
        checking = _is_type_checking(node.test)
        if checking:
            self._must_be_ascii(node.test)
        self.type_checking += checking
        self.statements(node.body)
        self.type_checking -= checking
        self.statements(node.orelse)  # an `elif TYPE_CHECKING:` there is its own If

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # Decorators, defaults and annotations run when the `def` runs: not lazy.
        for decorator in node.decorator_list:
            self.visit(decorator)
        for parameter in getattr(node, "type_params", ()):
            self.visit(parameter)
        self.visit(node.args)
        if node.returns is not None:
            self.visit(node.returns)
        self.functions += 1
        self.statements(node.body)
        self.functions -= 1

    def _class(self, node: ast.ClassDef) -> None:
        # In source order, as libcst meets them: `ast` lists the decorators after the body, and
        # an import in the body can name import_module anew.
        for part in (*node.decorator_list, *getattr(node, "type_params", ()), *node.bases, *node.keywords):
            self.visit(part)
        self.statements(node.body)

    def _handler_guards(self, handler: ast.ExceptHandler) -> bool:
        if _raises(handler.body):
            return False  # `except ImportError: raise RuntimeError("install x")`: the failure goes on
        caught = _caught_names(handler)
        guards = BARE_EXCEPT in caught or not _GUARDING_EXCEPTIONS.isdisjoint(caught)
        if guards and handler.type is not None:
            self._must_be_ascii(handler.type)
        return guards

    # Imports ------------------------------------------------------------------------------

    def _import(self, node: ast.Import) -> None:
        self._must_be_ascii(node)
        for alias in node.names:
            if alias.name == "importlib" and alias.asname is not None:
                self.import_module_names.add(f"{alias.asname}.import_module")
            self._add(node, alias.name, (), relative=False, dynamic=False)

    def _import_from(self, node: ast.ImportFrom) -> None:
        self._must_be_ascii(node)
        module = node.module or ""
        names: tuple[str, ...] = ()
        if node.names[0].name != "*":
            names = tuple(alias.name for alias in node.names)
            if module == "importlib" and not node.level:
                for alias in node.names:
                    if alias.name == "import_module":
                        self.import_module_names.add(alias.asname or alias.name)
        if node.level:
            self._add(node, resolve_relative(module, node.level, self.package), names, relative=True, dynamic=False)
        else:
            self._add(node, module, names, relative=False, dynamic=False)

    def _call(self, node: ast.Call) -> None:
        function = full_name(node.func)
        if function == "__import__":
            anchor: str | None = None  # a relative __import__ needs globals and a level: not resolved
        elif function in self.import_module_names:
            anchor = self._anchor(_argument(node, 1, "package"))
        else:
            return
        self._must_be_ascii(node)
        target = dynamic_target(_literal(_argument(node, 0, "name")), anchor)
        if target is not None:
            self._add(node, target[0], (), relative=target[1], dynamic=True)

    def _anchor(self, argument: ast.expr | None) -> str | None:
        """The package of `import_module(".x", package)`: a literal, or `__package__`."""
        if isinstance(argument, ast.Name) and argument.id == "__package__":
            return self.package
        return _literal(argument)

    def _add(self, node: ast.stmt | ast.expr, module: str, names: tuple[str, ...], *, relative: bool, dynamic: bool) -> None:
        position = (node.lineno, node.col_offset, -(node.end_lineno or 0), -(node.end_col_offset or 0))
        found = FoundImport(
            node.lineno, module, names, relative, self.guards > 0, self.functions > 0, dynamic, self.type_checking > 0
        )
        self.found.append((position, found))

    def _must_be_ascii(self, node: ast.stmt | ast.expr) -> None:
        """A name read from this node is the file's text only where that text is ASCII."""
        if not self.ascii and not self.source.segment(node).isascii():  # type: ignore[arg-type]
            raise Unsure


def _raises(body: list[ast.stmt]) -> bool:
    """Whether a handler's body raises, not counting the functions and classes it only defines."""
    for statement in body:
        if isinstance(statement, ast.Raise):
            return True
        if isinstance(statement, (*_FUNCTIONS, ast.ClassDef)):
            continue
        blocks = [getattr(statement, name, None) for name in ("body", "orelse", "finalbody")]
        blocks += [handler.body for handler in getattr(statement, "handlers", ())]
        blocks += [case.body for case in getattr(statement, "cases", ())]
        if any(_raises(block) for block in blocks if isinstance(block, list)):
            return True
    return False


def _is_type_checking(test: ast.expr) -> bool:
    name = full_name(test)
    return name is not None and name.rsplit(".", 1)[-1] == "TYPE_CHECKING"


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    positional = [arg for arg in call.args if not isinstance(arg, ast.Starred)]
    if position < len(positional):
        return positional[position]
    for item in call.keywords:
        if item.arg == keyword:
            return item.value
    return None


def _literal(node: ast.expr | None) -> str | None:
    """A str literal's value (concatenated parts too); None for bytes, f-strings, the rest."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None
