"""The functions of one third-party module and what their bodies do when called, read with `ast`.

Module reach knows what importing a module runs; an import or a call inside a function runs only
when something calls it. This reads, per module, the names it binds at module level (its `def`s,
classes, imports and plain aliases: how `torchaudio.load` leads to `_backend.utils.load`) and,
per function and method, the imports and calls of its body with the try that guards each. Only
files on a call path are read: few, so `ast` (exact, and never run) is fast enough.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass, field
from typing import Any

from depaudit.collect.call_sites import catches
from depaudit.collect.hint_calls import CALL_FAILURES
from depaudit.python.module_imports import ImportContext, ModuleImport, import_from_row, import_to_row

_IMPORT_FAILURES = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


@dataclass(frozen=True)
class Call:
    line: int
    name: str  # the callee, dotted as written: "load_with_torchcodec", "decoders.AudioDecoder", "self.open"
    guarded: bool  # inside a try of its function that survives the call's failure


@dataclass(frozen=True)
class FunctionBody:
    name: str  # "load", or "Class.method"
    line: int  # of the `def`
    end: int  # last line of the body
    imports: tuple[ModuleImport, ...]  # MODULE: runs when called; GUARDED; LAZY: in a nested def
    calls: tuple[Call, ...]
    # What it returns, when every `return` gives a literal text: pydub's get_encoder_name gives
    # "avconv" or "ffmpeg". Empty otherwise.
    returns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Binding:
    """What a module-level name is."""

    kind: str  # "def", "class", "import" (of a module), "from" (a name of a module), "alias",
    # "returns" (keyed "f()": the class a function's return annotation names)
    target: str  # def/class: the qualified name; import: the module; from/alias/returns: the dotted name
    imported: ModuleImport | None = None  # for "import" and "from": the statement (for relative ones)


@dataclass
class ModuleDefs:
    bindings: dict[str, Binding]
    nodes: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]  # "f", "Class.method"
    _bodies: dict[str, FunctionBody] = field(default_factory=dict, repr=False)

    def function(self, name: str) -> FunctionBody | None:
        """The body of function or method `name`, read on first use: a call path touches a few
        of a module's functions (torch/__init__.py holds hundreds)."""
        if name not in self._bodies:
            node = self.nodes.get(name)
            if node is None:
                return None
            self._bodies[name] = _body(name, node)
        return self._bodies[name]


def _empty() -> ModuleDefs:
    return ModuleDefs({}, {})


def module_defs(source: bytes) -> ModuleDefs:
    """A module's bindings and function bodies; nothing for a file `ast` cannot read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _empty()
    bindings: dict[str, Binding] = {}
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for statement in _module_level(tree.body):
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            bindings[statement.name] = Binding("def", statement.name)
            functions[statement.name] = statement
            returned = _annotation(statement.returns)
            if returned is not None:
                # `def load_model(...) -> Whisper`: what a call of it returns, for the methods
                # later called on the result (`model.transcribe(...)`).
                bindings[f"{statement.name}()"] = Binding("returns", returned)
        elif isinstance(statement, ast.ClassDef):
            bindings[statement.name] = Binding("class", statement.name)
            for inner in statement.body:
                if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    name = f"{statement.name}.{inner.name}"
                    functions[name] = inner
                elif isinstance(inner, ast.Assign) and (dotted := _dotted(inner.value)) is not None:
                    # `transcribe = transcribe_function` in a class body: a method defined elsewhere.
                    for target in inner.targets:
                        if isinstance(target, ast.Name):
                            bindings.setdefault(f"{statement.name}.{target.id}", Binding("alias", dotted))
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            for bound, binding in import_bindings(statement, ImportContext.MODULE):
                bindings.setdefault(bound, binding)  # a fallback branch's import does not replace the first
        elif isinstance(statement, ast.Assign) and (dotted := _dotted(statement.value)) is not None:
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    bindings.setdefault(target.id, Binding("alias", dotted))
    return ModuleDefs(bindings, functions)


def import_bindings(statement: ast.Import | ast.ImportFrom, context: ImportContext) -> list[tuple[str, Binding]]:
    """The names an import statement binds, and to what."""
    found: list[tuple[str, Binding]] = []
    if isinstance(statement, ast.Import):
        for alias in statement.names:
            imported = ModuleImport(statement.lineno, alias.name, 0, (), context)
            if alias.asname:
                found.append((alias.asname, Binding("import", alias.name, imported)))
            else:
                top = alias.name.split(".")[0]
                found.append((top, Binding("import", top, ModuleImport(statement.lineno, top, 0, (), context))))
        return found
    for alias in statement.names:
        if alias.name == "*":
            continue
        imported = ModuleImport(statement.lineno, statement.module or "", statement.level, (alias.name,), context)
        found.append((alias.asname or alias.name, Binding("from", alias.name, imported)))
    return found


def _module_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements that run at import, through if/try blocks (not under TYPE_CHECKING)."""
    found: list[ast.stmt] = []
    for statement in body:
        if isinstance(statement, ast.If):
            if not _is_type_checking(statement.test):
                found += _module_level(statement.body)
            found += _module_level(statement.orelse)
        elif isinstance(statement, (ast.Try, ast.TryStar)):
            found += _module_level(statement.body)
            for handler in statement.handlers:
                found += _module_level(handler.body)
            found += _module_level(statement.orelse) + _module_level(statement.finalbody)
        else:
            found.append(statement)
    return found


def _body(name: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> FunctionBody:
    imports: list[ModuleImport] = []
    calls: list[Call] = []
    made: dict[str, str] = {}  # local name → the callee whose result it holds: `d = AudioDecoder(p)`

    def visit(child: ast.AST, import_guard: bool, call_guard: bool, nested: bool) -> None:
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            for part in ast.iter_child_nodes(child):
                visit(part, import_guard, call_guard, True)
            return
        if isinstance(child, (ast.Try, ast.TryStar)):
            survives = [h for h in child.handlers if not any(isinstance(s, ast.Raise) for s in h.body)]
            guards_import = any(catches(h.type, _IMPORT_FAILURES) for h in survives)
            guards_call = any(catches(h.type, CALL_FAILURES) for h in survives)
            for part in child.body:
                visit(part, import_guard or guards_import, call_guard or guards_call, nested)
            for part in [*child.handlers, *child.orelse, *child.finalbody]:
                visit(part, True, True, nested)  # runs only on the way the try went: a fallback
            return
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for part in child.orelse:
                visit(part, import_guard, call_guard, nested)
            return
        context = ImportContext.LAZY if nested else ImportContext.GUARDED if import_guard else ImportContext.MODULE
        if isinstance(child, ast.Assign) and not nested and len(child.targets) == 1 and isinstance(child.targets[0], ast.Name):
            if isinstance(child.value, ast.Call) and (made_by := _dotted(child.value.func)) is not None:
                made.setdefault(child.targets[0].id, made_by)
        if isinstance(child, ast.Import):
            imports.extend(ModuleImport(child.lineno, alias.name, 0, (), context) for alias in child.names)
        elif isinstance(child, ast.ImportFrom):
            names = tuple(alias.name for alias in child.names)
            imports.append(ModuleImport(child.lineno, child.module or "", child.level, names, context))
        elif isinstance(child, ast.Call) and not nested:
            for line, name in _dispatched(child):
                calls.append(Call(line, name, call_guard))
            callee = _dotted(child.func)
            if callee in ("importlib.import_module", "import_module", "__import__"):
                first = child.args[0] if child.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.strip("."):
                    bare = first.value.lstrip(".")
                    imports.append(ModuleImport(child.lineno, bare, len(first.value) - len(bare), (), context, True))
            elif callee is not None:
                head, _, rest = callee.partition(".")
                if rest and head in made:  # a method of an object made here: `d.decode()` → `AudioDecoder.decode`
                    callee = f"{made[head]}.{rest}"
                calls.append(Call(child.lineno, callee, call_guard))
        for part in ast.iter_child_nodes(child):
            visit(part, import_guard, call_guard, nested)

    for statement in node.body:
        visit(statement, False, False, False)
    end = getattr(node, "end_lineno", None) or node.lineno
    return FunctionBody(name, node.lineno, end, tuple(imports), tuple(calls), _literal_returns(node))


def _literal_returns(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, ...]:
    """The texts the function returns, in order, when each of its `return`s gives one."""
    found: list[str] = []
    pending: list[ast.AST] = list(node.body)
    while pending:
        child = pending.pop(0)
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(child, ast.Return):
            if not (isinstance(child.value, ast.Constant) and isinstance(child.value.value, str)):
                return ()
            found.append(child.value.value)
            continue
        pending.extend(ast.iter_child_nodes(child))
    return tuple(dict.fromkeys(found))


def _dispatched(call: ast.Call) -> list[tuple[int, str]]:
    """`{A: lambda: f(x), B: lambda: f(y)}[key]()`: one of the lambdas runs, so what every one of
    them calls runs (pytesseract's image_to_string picks its output type so). (line, callee) of
    those calls, as the first lambda makes them."""
    table = call.func.value if isinstance(call.func, ast.Subscript) else None
    if not isinstance(table, ast.Dict) or not table.values or not all(isinstance(v, ast.Lambda) for v in table.values):
        return []
    made = [
        {name: node.lineno for node in ast.walk(value.body) if isinstance(node, ast.Call) and (name := _dotted(node.func))}
        for value in table.values
        if isinstance(value, ast.Lambda)
    ]
    common = set(made[0]).intersection(*made[1:])
    return sorted((made[0][name], name) for name in common)


def _annotation(node: ast.expr | None) -> str | None:
    """A return annotation that names one class: `Whisper`, `model.Whisper`, `"Whisper"`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.replace(".", "").isidentifier():
        return node.value
    return _dotted(node) if isinstance(node, (ast.Name, ast.Attribute)) else None


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _is_type_checking(test: ast.expr) -> bool:
    dotted = _dotted(test)
    return dotted is not None and dotted.rsplit(".", 1)[-1] == "TYPE_CHECKING"


def defs_to_row(defs: ModuleDefs) -> list[Any]:
    """A cache row of what a module binds and which functions it defines (bodies apart)."""
    bindings = [[name, b.kind, b.target, None if b.imported is None else import_to_row(b.imported)] for name, b in defs.bindings.items()]
    return [bindings, sorted(defs.nodes)]


def bindings_from_row(row: list[Any]) -> tuple[dict[str, Binding], frozenset[str]]:
    bindings, names = row
    found = {
        name: Binding(kind, target, None if imported is None else import_from_row(imported))
        for name, kind, target, imported in bindings
    }
    return found, frozenset(names)


def body_to_row(body: FunctionBody) -> list[Any]:
    calls = [[c.line, c.name, c.guarded] for c in body.calls]
    return [body.name, body.line, body.end, [import_to_row(i) for i in body.imports], calls, list(body.returns)]


def body_from_row(row: list[Any]) -> FunctionBody:
    name, line, end, imports, calls, returns = row
    return FunctionBody(name, line, end, tuple(import_from_row(i) for i in imports), tuple(Call(*c) for c in calls), tuple(returns))
