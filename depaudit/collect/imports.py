"""Every import a service's source files make, with the context that decides its tier.

The source is parsed with libcst, never imported or run. A file libcst rejects is reported
as a `parse_error` finding and read again by the line-level fallback.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import MetadataWrapper, PositionProvider

from depaudit.collect.fallback import fallback_imports
from depaudit.collect.lines import NodeCounter, lines
from depaudit.collect.model import ImportRecord, ImportScope, Service, ServiceImports
from depaudit.cache import MISSING, ResultCache, content_key
from depaudit.collect.units import import_units
from depaudit.collect.local import EXTENSION, LocalFinder
from depaudit.findings import Finding, FindingKind
from depaudit.parallel import Workers
from depaudit.paths import shown_path

# Handlers that swallow a failed import: the code after them runs without the module.
_GUARDING_EXCEPTIONS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
_STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}


@dataclass(frozen=True)
class _Found:
    """An import as the visitor sees it; its scope is decided once the file's place is known."""

    line: int
    module: str  # absolute, or with leading dots when it could not be resolved
    names: tuple[str, ...]
    relative: bool
    guarded: bool = False
    lazy: bool = False
    dynamic: bool = False
    type_checking: bool = False


class _ImportVisitor(cst.CSTVisitor):
    def __init__(self, package: str) -> None:
        super().__init__()
        self.counter = NodeCounter()
        self.package = package  # the file's own package inside the service; "" at its root
        self.found: list[_Found] = []
        self._guards = 0  # enclosing try bodies whose handlers catch a failed import
        self._functions = 0  # enclosing function and lambda bodies
        self._type_checking = 0  # enclosing `if TYPE_CHECKING:` bodies
        # Names that call importlib.import_module: `importlib.import_module`, `il.import_module`
        # after `import importlib as il`, `load` after `from importlib import import_module as load`.
        self._import_module_names: set[str] = {"importlib.import_module"}

    def _add(self, node: cst.CSTNode, module: str, names: tuple[str, ...], relative: bool, dynamic: bool) -> None:
        self.found.append(
            _Found(
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

    # Imports ---------------------------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> None:
        self.counter.meet()
        for alias in node.names:
            name = get_full_name_for_node(alias.name)
            if not name:
                continue
            if name == "importlib" and alias.asname is not None:
                self._import_module_names.add(f"{_bound_name(alias)}.import_module")
            self._add(node, name, (), relative=False, dynamic=False)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
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
            self._add(node, _resolve(module or "", level, self.package), names, relative=True, dynamic=False)
        else:
            self._add(node, module or "", names, relative=False, dynamic=False)

    def visit_Call(self, node: cst.Call) -> None:
        self.counter.meet()
        function = get_full_name_for_node(node.func)
        if function == "__import__":
            anchor: str | None = None  # a relative __import__ needs globals and a level: not resolved
        elif function in self._import_module_names:
            anchor = self._anchor(_argument(node, 1, "package"))
        else:
            return
        text = _literal(_argument(node, 0, "name"))
        if text is None or not text.strip("."):
            return  # a computed name is reported as nothing rather than guessed
        module = text.lstrip(".")
        level = len(text) - len(module)
        if level:
            resolved = _resolve(module, level, anchor) if anchor is not None else text
            self._add(node, resolved, (), relative=True, dynamic=True)
        else:
            self._add(node, module, (), relative=False, dynamic=True)

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


def _resolve(name: str, level: int, package: str) -> str:
    """The absolute name of a relative import, as importlib computes it.

    When the file has no package inside the service (a script at its root), or the dots
    climb above the top-level package, the dotted text is kept as written.
    """
    bits = package.rsplit(".", level - 1) if package else []
    if len(bits) < level:
        return "." * level + name
    return f"{bits[0]}.{name}" if name else bits[0]


def _handler_guards(handler: cst.ExceptHandler | cst.ExceptStarHandler) -> bool:
    if handler.type is None:
        return True  # a bare `except:`
    types = handler.type.elements if isinstance(handler.type, cst.Tuple) else [handler.type]
    for item in types:
        node = item.value if isinstance(item, cst.BaseElement) else item
        name = get_full_name_for_node(node)
        if name and name.rsplit(".", 1)[-1] in _GUARDING_EXCEPTIONS:
            return True
    return False


def _is_type_checking(test: cst.BaseExpression) -> bool:
    name = get_full_name_for_node(test)
    return name is not None and name.rsplit(".", 1)[-1] == "TYPE_CHECKING"


def _parse(source: bytes, package: str) -> list[_Found]:
    # Bytes, not text: libcst then honours the coding cookie and a UTF-8 BOM.
    module = cst.parse_module(source)
    visitor = _ImportVisitor(package)
    module.visit(visitor)
    found = lines(source, visitor.counter)
    if found is not None:
        return [replace(item, line=found[item.line]) for item in visitor.found]
    positioned = _PositionedImportVisitor(package)
    MetadataWrapper(module, unsafe_skip_copy=True).visit(positioned)
    return positioned.found


# Lines that may hold an import: `import`, `from x import`, import_module(), __import__().
_IMPORT_LINE = re.compile(rb"import")
# `from importlib import import_module as load`: `load("x")` holds no such word. Read it whole.
_RENAMED_IMPORT_MODULE = re.compile(rb"import_module\s+as\b")


def _parse_cut(source: bytes, package: str) -> list[_Found]:
    """libcst on the import statements and the blocks around them only (see units.py); the
    whole file where the cut cannot stand for it."""
    unit = None if _RENAMED_IMPORT_MODULE.search(source) else import_units(source, _IMPORT_LINE)
    if unit is not None:
        try:
            return [replace(item, line=unit.original(item.line)) for item in _parse(unit.source, package)]
        except Exception:
            pass  # a cut libcst rejects (a body on its header's line): the whole file decides
    return _parse(source, package)


def _fallback(source: bytes, package: str) -> list[_Found]:
    text = source.decode("utf-8-sig", errors="replace")
    found = []
    for item in fallback_imports(text):
        if item.level:
            found.append(_Found(item.line, _resolve(item.module, item.level, package), item.names, True))
        else:
            found.append(_Found(item.line, item.module, item.names, False))
    return found


def _parse_error(error: Exception) -> tuple[int | None, str]:
    line = error.raw_line if isinstance(error, cst.ParserSyntaxError) else None
    if isinstance(error, RecursionError):
        reason = "the file nests too deeply to parse"
    else:
        # libcst's message spans lines (summary, detail, the source line, a caret): keep the
        # first two, which say where and why, on one line.
        lines = [text.strip() for text in str(error).strip().splitlines() if text.strip()]
        reason = " ".join(lines[:2]) or type(error).__name__
    return line, f"libcst could not parse this file: {reason}; its imports were read line by line"


def _module_names(service: Service) -> dict[Path, frozenset[str]]:
    """Per folder of the service: the modules importable when that folder is on sys.path.

    A `.py` file, a folder holding Python files (a package, or a namespace package), or an
    extension module built in place (`fast.cpython-311-x86_64-linux-gnu.so`, `fast.abi3.so`).
    Computed from the service's own file lists, so skipped folders (venvs, caches) never count.
    """
    names: dict[Path, set[str]] = {}
    for path in (*service.files, *(p for p in service.elf_files if EXTENSION.match(p.name))):
        module = path.name.split(".", 1)[0]
        child, folder = module, path.parent
        while True:
            if child.isidentifier():
                names.setdefault(folder, set()).add(child)
            if folder == service.root or folder == folder.parent:
                break
            child, folder = folder.name, folder.parent
    return {folder: frozenset(found) for folder, found in names.items()}


def _package_of(path: Path, root: Path) -> str:
    """The dotted package a file belongs to inside the service ("" for a file at its root)."""
    return ".".join(path.relative_to(root).parent.parts)


def _scope(item: _Found, local: frozenset[str]) -> ImportScope:
    if item.relative:
        return ImportScope.LOCAL
    top = item.module.split(".", 1)[0]
    if top in _STDLIB:
        return ImportScope.STDLIB
    return ImportScope.LOCAL if top in local else ImportScope.THIRD_PARTY


def _records(found: Iterable[_Found], shown: str, local: frozenset[str], fallback: bool) -> list[ImportRecord]:
    return [
        ImportRecord(
            file=shown,
            line=item.line,
            module=item.module,
            names=item.names,
            scope=_scope(item, local),
            guarded=item.guarded,
            lazy=item.lazy,
            dynamic=item.dynamic,
            type_checking=item.type_checking,
            fallback=fallback,
        )
        for item in found
    ]


def collect_imports(
    service: Service,
    cache: ResultCache | None = None,
    workers: Workers | None = None,
    finder: LocalFinder | None = None,
) -> ServiceImports:
    """Every import of the service's files; unreadable and unparsable files become findings.

    Each file's result is cached by its content and the package it sits in; the files a run
    must parse are parsed by `workers`, in parallel."""
    cache = cache if cache is not None else ResultCache(None)
    workers = workers or Workers(1)
    if service.entry is not None:
        return _collect_entry(service, cache, workers, finder or LocalFinder())
    modules = _module_names(service)
    at_root = modules.get(service.root, frozenset())
    records: list[ImportRecord] = []
    findings: list[Finding] = []
    files = [(path, _package_of(path, service.root)) for path in service.files]
    for (path, _), parsed in zip(files, _parse_files(files, cache, workers)):
        # A script's own folder is sys.path[0]: its siblings are importable by bare name.
        local = at_root | modules.get(path.parent, frozenset())
        records.extend(_outcome(path, parsed, service.display_root, local, findings))
    # At most one finding per file, so Finding's ordering never has to compare a None line.
    return ServiceImports(
        service, tuple(sorted(records)), tuple(sorted(findings)), service.files, service.elf_files
    )


def _collect_entry(service: Service, cache: ResultCache, workers: Workers, finder: LocalFinder) -> ServiceImports:
    """An entry script and the local modules it reaches, transitively: each file read once,
    each level of the import graph parsed in parallel."""
    assert service.entry is not None
    sys_path = service.sys_path
    local = frozenset().union(*(finder.top_level_names(folder) for folder in sys_path))
    records: list[ImportRecord] = []
    findings: list[Finding] = []
    extensions: set[Path] = set()
    level: list[tuple[Path, str]] = [(service.entry, "")]
    seen = {service.entry}
    while level:
        following: list[tuple[Path, str]] = []
        for (path, _), parsed in zip(level, _parse_files(level, cache, workers)):
            records.extend(_outcome(path, parsed, service.display_root, local, findings))
            for item in parsed.found:
                if _scope(item, local) is not ImportScope.LOCAL or item.module.startswith("."):
                    continue  # a relative import that climbs out of its package names no file
                for target in finder.local_files(item.module, item.names, sys_path):
                    if target.extension:
                        extensions.add(target.path)
                    elif target.path not in seen:
                        seen.add(target.path)
                        following.append((target.path, target.package))
        level = following
    return ServiceImports(
        service, tuple(sorted(records)), tuple(sorted(findings)), tuple(sorted(seen)), tuple(sorted(extensions))
    )


@dataclass(frozen=True)
class _Parsed:
    """One file's imports as a worker returns them (and the cache keeps them)."""

    found: tuple[_Found, ...] = ()
    fallback: bool = False  # libcst failed: `found` comes from the line-level fallback
    error: tuple[int | None, str] | None = None  # libcst's complaint: (line, message)
    unreadable: str | None = None  # the file could not be read: why


_KIND = "imports"


def _parse_files(files: Sequence[tuple[Path, str]], cache: ResultCache, workers: Workers) -> list[_Parsed]:
    results: list[_Parsed | None] = []
    todo: list[tuple[int, bytes, str, str]] = []
    for path, package in files:
        try:
            source = path.read_bytes()
        except OSError as error:  # a dangling symlink, no permission, a folder named x.py
            results.append(_Parsed(unreadable=f"cannot read: {error.strerror or error}"))
            continue
        key = content_key(source, package)
        cached = cache.get(_KIND, key)
        if cached is MISSING:
            todo.append((len(results), source, package, key))
            results.append(None)
        else:
            results.append(_from_row(cached))
    parsed = workers.map(_parse_source, [(source, package) for _, source, package, _ in todo])
    for (position, _, _, key), result in zip(todo, parsed):
        results[position] = result
        cache.put(_KIND, key, _to_row(result))
    return [result for result in results if result is not None]


def _parse_source(item: tuple[bytes, str]) -> _Parsed:
    """Runs in a worker process."""
    source, package = item
    try:
        return _Parsed(tuple(_parse_cut(source, package)))
    except Exception as error:  # libcst raises syntax, decoding, encoding and recursion errors
        return _Parsed(tuple(_fallback(source, package)), fallback=True, error=_parse_error(error))


def _outcome(
    path: Path, parsed: _Parsed, display_root: Path, local: frozenset[str], findings: list[Finding]
) -> list[ImportRecord]:
    shown = shown_path(path, display_root)
    if parsed.unreadable is not None:
        findings.append(Finding(FindingKind.UNREADABLE_FILE, shown, None, parsed.unreadable))
    if parsed.error is not None:
        findings.append(Finding(FindingKind.PARSE_ERROR, shown, parsed.error[0], parsed.error[1]))
    return _records(parsed.found, shown, local, parsed.fallback)


def _to_row(parsed: _Parsed) -> list[Any]:
    found = [[f.line, f.module, list(f.names), f.relative, f.guarded, f.lazy, f.dynamic, f.type_checking] for f in parsed.found]
    return [found, parsed.fallback, list(parsed.error) if parsed.error else None, parsed.unreadable]


def _from_row(row: list[Any]) -> _Parsed:
    found, fallback, error, unreadable = row
    items = tuple(_Found(line, module, tuple(names), *flags) for line, module, names, *flags in found)
    return _Parsed(items, fallback, (error[0], error[1]) if error else None, unreadable)
