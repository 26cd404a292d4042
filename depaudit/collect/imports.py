"""Every import a service's source files make, with the context that decides its tier."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import MetadataWrapper, PositionProvider

from depaudit.collect.fallback import fallback_imports
from depaudit.collect.model import ImportRecord, ImportScope, Service, ServiceImports
from depaudit.findings import Finding, FindingKind

# Handlers that swallow a failed import: the code after them runs without the module.
_GUARDING_EXCEPTIONS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
_STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}


class _Raw:
    """An import as the visitor sees it, before scope is decided."""

    __slots__ = ("line", "module", "names", "level", "guarded", "lazy", "dynamic", "type_checking")

    def __init__(self, line: int, module: str, names: tuple[str, ...], level: int, **flags: bool) -> None:
        self.line, self.module, self.names, self.level = line, module, names, level
        self.guarded = flags.get("guarded", False)
        self.lazy = flags.get("lazy", False)
        self.dynamic = flags.get("dynamic", False)
        self.type_checking = flags.get("type_checking", False)


class _ImportVisitor(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self) -> None:
        super().__init__()
        self.found: list[_Raw] = []
        self._guards = 0
        self._functions = 0
        self._type_checking = 0
        self._import_module_aliases: set[str] = set()

    def _add(self, node: cst.CSTNode, module: str, names: tuple[str, ...], level: int, dynamic: bool = False) -> None:
        line = self.get_metadata(PositionProvider, node).start.line
        self.found.append(
            _Raw(
                line,
                module,
                names,
                level,
                guarded=self._guards > 0,
                lazy=self._functions > 0,
                dynamic=dynamic,
                type_checking=self._type_checking > 0,
            )
        )

    # Context -------------------------------------------------------------------------
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
        for handler in node.handlers:
            handler.visit(self)
        for part in (node.orelse, node.finalbody):
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
            node.orelse.visit(self)
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._functions += 1

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._functions -= 1

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._functions += 1

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self._functions -= 1

    # Imports -------------------------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = get_full_name_for_node(alias.name)
            if name:
                self._add(node, name, (), 0)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = get_full_name_for_node(node.module) if node.module is not None else ""
        names: tuple[str, ...] = ()
        if not isinstance(node.names, cst.ImportStar):
            names = tuple(n for n in (get_full_name_for_node(a.name) for a in node.names) if n)
            if module == "importlib":
                for alias in node.names:
                    if get_full_name_for_node(alias.name) == "import_module":
                        bound = alias.asname.name if alias.asname else alias.name
                        self._import_module_aliases.add(get_full_name_for_node(bound) or "import_module")
        self._add(node, module or "", names, len(node.relative))

    def visit_Call(self, node: cst.Call) -> None:
        function = get_full_name_for_node(node.func)
        dynamic = function in ("importlib.import_module", "__import__") or function in self._import_module_aliases
        if not dynamic or not node.args:
            return
        first = node.args[0].value
        if not isinstance(first, cst.SimpleString):
            return  # a computed name: reported as nothing rather than guessed
        text = first.evaluated_value
        if not isinstance(text, str) or not text.strip("."):
            return
        level = len(text) - len(text.lstrip("."))
        self._add(node, text.lstrip("."), (), level, dynamic=True)


def _handler_guards(handler: cst.ExceptHandler | cst.ExceptStarHandler) -> bool:
    if handler.type is None:
        return True  # a bare `except:`
    types = handler.type.elements if isinstance(handler.type, cst.Tuple) else [handler.type]
    for item in types:
        node = item.value if isinstance(item, cst.Element) else item
        name = get_full_name_for_node(node)
        if name and name.rsplit(".", 1)[-1] in _GUARDING_EXCEPTIONS:
            return True
    return False


def _is_type_checking(test: cst.BaseExpression) -> bool:
    name = get_full_name_for_node(test)
    return name is not None and name.rsplit(".", 1)[-1] == "TYPE_CHECKING"


def _parse(source: bytes) -> list[_Raw]:
    module = cst.parse_module(source)
    visitor = _ImportVisitor()
    MetadataWrapper(module, unsafe_skip_copy=True).visit(visitor)
    return visitor.found


def _parse_error_finding(path: str, error: Exception) -> Finding:
    line = getattr(error, "raw_line", None) if isinstance(error, cst.ParserSyntaxError) else None
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    first = " ".join(lines[:2]) or type(error).__name__
    if isinstance(error, RecursionError):
        first = "the file nests too deeply to parse"
    return Finding(
        FindingKind.PARSE_ERROR,
        path,
        line,
        f"libcst could not parse this file: {first}; its imports were read line by line",
    )


def _local_names(folder: Path) -> set[str]:
    """Modules importable from a sys.path entry: `x.py` files and package folders."""
    names: set[str] = set()
    try:
        entries = list(folder.iterdir())
    except OSError:
        return names
    for entry in entries:
        if entry.suffix == ".py" and entry.stem.isidentifier():
            names.add(entry.stem)
        elif entry.is_dir() and entry.name.isidentifier() and any(entry.glob("*.py")):
            names.add(entry.name)
    return names


def _package_of(relative: Sequence[str], level: int) -> str | None:
    """The package a relative import with `level` dots names, from the file's path parts."""
    package = list(relative[:-1])
    if level - 1 > len(package):
        return None
    return ".".join(package[: len(package) - (level - 1)])


def collect_imports(service: Service) -> ServiceImports:
    root_names = _local_names(service.root)
    records: list[ImportRecord] = []
    findings: list[Finding] = []
    sibling_cache: dict[Path, set[str]] = {}
    for path in service.files:
        shown = path.relative_to(service.display_root).as_posix()
        try:
            source = path.read_bytes()
        except OSError as error:
            findings.append(Finding(FindingKind.UNREADABLE_FILE, shown, None, f"cannot read: {error.strerror or error}"))
            continue
        fallback = False
        try:
            raw = _parse(source)
        except Exception as error:  # libcst raises syntax, decoding and recursion errors
            findings.append(_parse_error_finding(shown, error))
            text = source.decode("utf-8", errors="replace")
            raw = [_Raw(line, module, names, level) for line, module, names, level in fallback_imports(text)]
            fallback = True
        if path.parent not in sibling_cache:
            sibling_cache[path.parent] = _local_names(path.parent)
        local = root_names | sibling_cache[path.parent]
        parts = path.relative_to(service.root).with_suffix("").parts
        for item in raw:
            records.append(_record(item, shown, parts, local, fallback))
    return ServiceImports(service, tuple(sorted(records)), tuple(sorted(findings)))


def _record(item: _Raw, shown: str, parts: Sequence[str], local: set[str], fallback: bool) -> ImportRecord:
    module = item.module
    if item.level:
        scope = ImportScope.LOCAL
        package = _package_of(parts, item.level)
        if package is None:
            module = "." * item.level + module
        else:
            module = ".".join(p for p in (package, module) if p)
    else:
        top = module.split(".", 1)[0]
        if top in _STDLIB:
            scope = ImportScope.STDLIB
        elif top in local:
            scope = ImportScope.LOCAL
        else:
            scope = ImportScope.THIRD_PARTY
    return ImportRecord(
        file=shown,
        line=item.line,
        module=module,
        names=item.names,
        scope=scope,
        guarded=item.guarded,
        lazy=item.lazy,
        dynamic=item.dynamic,
        type_checking=item.type_checking,
        fallback=fallback,
    )
