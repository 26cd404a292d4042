"""Every import a service's source files make, with the context that decides its tier.

The source is parsed, never imported or run: with `ast` once, whose tree answers every import
and the context that decides its tier (import_ast.py). libcst reads a file `ast` rejects, and
the blocks of one whose text the trees may read differently (the cut, below); libcst is then
imported by the worker that meets such a file, never before. A file libcst rejects is reported
as a `parse_error` finding and read again by the line-level fallback.
"""

from __future__ import annotations

import ast
import bisect
import gc
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from pathlib import Path
from typing import Any

from depaudit.collect.fallback import fallback_imports
from depaudit.collect.guards import LocalEdge, guarded_only, guarded_within
from depaudit.collect.model import (
    CallRecord,
    FoundCall,
    FoundImport,
    GuardedImport,
    ImportRecord,
    ImportScope,
    Service,
    ServiceImports,
    resolve_relative,
)
from depaudit import consulted
from depaudit.cache import MISSING, ResultCache
from depaudit.collect.call_sites import call_sites
from depaudit.collect.hint_ast import Unsure
from depaudit.collect.import_ast import ast_imports
from depaudit.collect.units import TooDeep, counted_nodes, import_cut, plain_imports, syntax_error, tree_of
from depaudit.collect.local import EXTENSION, LocalFile, LocalFinder
from depaudit.findings import Finding, FindingKind
from depaudit.parallel import Workers
from depaudit.paths import shown_path
from depaudit.reading import read_regular

_STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}
# ImportRecord's own order (its fields in turn), without building two tuples per comparison.
_RECORD_ORDER = attrgetter(*(f.name for f in fields(ImportRecord) if f.compare))
_PARTS = attrgetter("parts")  # a sort key giving Path's own order


# Lines that may hold an import (`import`, `from x import`, import_module(), __import__()). The
# cut adds the `raise`s in the handlers around them, which say whether a failed import is survived.
_IMPORT_LINE = re.compile(rb"import")
# `from importlib import import_module as load`: `load("x")` holds no such word. Read it whole.
_RENAMED_IMPORT_MODULE = re.compile(rb"import_module\s+as\b")


def _parse(
    source: bytes, package: str, nodes: Sequence[ast.AST] | None = None, original: Callable[[int], int] | None = None
) -> list[FoundImport]:
    """libcst on `source` (see parse_imports)."""
    from depaudit.collect.import_visitor import parse_imports  # libcst: loaded only when a file is parsed

    return parse_imports(source, package, nodes, original)


def _parse_cut(source: bytes, package: str) -> list[FoundImport]:
    """libcst on the import statements and the blocks around them only (see units.py); the
    whole file where the cut cannot stand for it. Raises TooDeep before libcst sees a file
    Python's own parser gives up on."""
    return _read(source, package)[0]


def _read(source: bytes, package: str) -> tuple[list[FoundImport], list[FoundCall]]:
    """The file's imports and its calls of imported names, from one `ast` tree (calls: none
    where `ast` cannot parse the file). The imports are read from that tree (`ast_imports`);
    where it cannot settle them (import_ast.Unsure), module-level import statements outside any
    block still are (`plain_imports`), and libcst reads the cut of the rest (`import_cut`), or
    the whole file where the cut cannot stand for it."""
    with _no_collection():
        return _read_tree(source, package)


@contextmanager
def _no_collection() -> Iterator[None]:
    """No cyclic garbage collection while a file is read: the trees hold no cycles, and each
    collection walks every node of a large file's tree (a third of the time on 100,000 imports)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_tree(source: bytes, package: str) -> tuple[list[FoundImport], list[FoundCall]]:
    tree = tree_of(source)
    if tree is None:
        return _parse(source, package, nodes=()), []  # no tree: libcst's own positions, where it needs lines
    calls = call_sites(tree, source, package.split(".", 1)[0])
    try:
        return ast_imports(tree, source, package), calls
    except (Unsure, RecursionError):
        pass  # text on which the trees may differ, or a tree too deep for that walk: libcst reads it
    if _RENAMED_IMPORT_MODULE.search(source):
        return _parse(source, package, counted_nodes(tree)), calls
    plain = plain_imports(source, tree)
    unit = import_cut(source, _IMPORT_LINE, tree, plain)
    if unit is None:
        return _parse(source, package, counted_nodes(tree)), calls  # a cut would not keep the lines true
    found = [item for node in plain for item in _plain_found(node, package)]
    if not unit.source:
        return found, calls
    try:
        rest = _parse(unit.source, package, counted_nodes(tree, unit.removed), unit.original)
    except Exception:
        return _parse(source, package, counted_nodes(tree)), calls  # a cut libcst rejects (a body on its header's line)
    if not found:
        return rest, calls
    # In source order: by the module-level statement each import is in (libcst meets them in
    # that order; a plain import shares its statement, and its lines, with nothing else).
    firsts = [node.decorator_list[0].lineno if getattr(node, "decorator_list", None) else node.lineno for node in tree.body]
    return sorted([*rest, *found], key=lambda item: bisect.bisect_right(firsts, item.line)), calls


def _plain_found(node: ast.Import | ast.ImportFrom, package: str) -> list[FoundImport]:
    """What the import visitor finds in a statement outside any block, from its `ast` node."""
    if isinstance(node, ast.Import):
        return [FoundImport(node.lineno, alias.name, (), False) for alias in node.names]
    names = () if node.names[0].name == "*" else tuple(alias.name for alias in node.names)
    if node.level:
        return [FoundImport(node.lineno, resolve_relative(node.module or "", node.level, package), names, True)]
    return [FoundImport(node.lineno, node.module or "", names, False)]


def _fallback(source: bytes, package: str) -> list[FoundImport]:
    text = source.decode("utf-8-sig", errors="replace")
    found = []
    for item in fallback_imports(text):
        if item.level:
            found.append(FoundImport(item.line, resolve_relative(item.module, item.level, package), item.names, True))
        else:
            found.append(FoundImport(item.line, item.module, item.names, False))
    return found


def _parse_error(error: Exception, source: bytes) -> tuple[int | None, str]:
    """Python's own complaint where it has one (better worded and placed than libcst's)."""
    read = "its imports were read line by line"
    if isinstance(error, TooDeep):
        return error.line, f"Python cannot parse this file: {error.reason}; libcst was not run on it, {read}"
    python = syntax_error(source)
    if python is not None:
        line, reason = python
        return line, f"Python 3 cannot parse this file: {reason}; {read}"
    from depaudit.collect.import_visitor import parse_error  # Python reads it: libcst's own limit

    return parse_error(error)


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


def _scope(item: FoundImport, local: frozenset[str]) -> ImportScope:
    if item.relative:
        return ImportScope.LOCAL
    top = item.module.split(".", 1)[0]
    if top in _STDLIB:
        return ImportScope.STDLIB
    return ImportScope.LOCAL if top in local else ImportScope.THIRD_PARTY


def _calls(parsed: _Parsed, shown: str, local: frozenset[str]) -> list[CallRecord]:
    """The file's calls into third-party names."""
    # The stdlib's are left out where they are read (call_sites): only local ones are left to drop.
    return [CallRecord(shown, call.line, call.target, call.guarded) for call in parsed.calls if call.target.split(".", 1)[0] not in local]


def _calls_behind_guards(calls: dict[str, list[CallRecord]], behind: dict[str, GuardedImport]) -> tuple[CallRecord, ...]:
    """Every file's calls; those of a file that runs only behind a guarded local import are guarded."""
    return tuple(sorted({replace(c, guarded=True) if key in behind else c for key, found in calls.items() for c in found}))


def _records(found: Iterable[FoundImport], shown: str, local: frozenset[str], fallback: bool) -> list[ImportRecord]:
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


class ImportMemo:
    """What one scan has worked out per file, for the next service that reaches it: the services
    of a monorepo share most of their closure. Files do not change during a scan."""

    def __init__(self) -> None:
        self.parsed: dict[str, _Parsed] = {}  # cache key → the file's imports
        # (file, package, sys.path) → each local import with a file it runs
        self.targets: dict[tuple[str, str, tuple[str, ...]], list[tuple[FoundImport, LocalFile]]] = {}
        # (sys.path, display root) → the local import graph the entry services under it share
        self.graphs: dict[tuple[tuple[str, ...], str], _LocalGraph] = {}

    def graph(self, sys_path: tuple[Path, ...], display_root: Path, local: frozenset[str]) -> _LocalGraph:
        """The graph of files reached under `sys_path` (`local`: the names it makes local)."""
        key = (tuple(map(str, sys_path)), str(display_root))
        if key not in self.graphs:
            self.graphs[key] = _LocalGraph(sys_path, display_root, local)
        return self.graphs[key]

    def local_targets(
        self, path: Path, package: str, parsed: _Parsed, local: frozenset[str], sys_path: Sequence[Path], finder: LocalFinder
    ) -> list[tuple[FoundImport, LocalFile]]:
        """The local files the file's imports run (`local` follows from `sys_path`), each with
        its import: worked out once per scan, not once per service that reaches the file."""
        key = (str(path), package, tuple(map(str, sys_path)))  # strings: Path equality is slow
        if key not in self.targets:
            self.targets[key] = [
                (item, target)
                for item in parsed.found
                # A relative import that climbs out of its package names no file.
                if _scope(item, local) is ImportScope.LOCAL and not item.module.startswith(".")
                for target in finder.local_files(item.module, item.names, sys_path)
            ]
        return self.targets[key]


def collect_imports(
    service: Service,
    cache: ResultCache | None = None,
    workers: Workers | None = None,
    finder: LocalFinder | None = None,
    memo: ImportMemo | None = None,
) -> ServiceImports:
    """Every import of the service's files; unreadable and unparsable files become findings.

    Each file's result is cached by its content and the package it sits in; the files a run
    must parse are parsed by `workers`, in parallel."""
    cache = cache if cache is not None else ResultCache(None)
    workers = workers or Workers(1)
    memo = memo or ImportMemo()
    if service.entry is not None:
        return _collect_entry(service, cache, workers, finder or LocalFinder(), memo)
    modules = _module_names(service)
    at_root = modules.get(service.root, frozenset())
    finder = finder or LocalFinder()
    records: dict[str, list[ImportRecord]] = {}
    calls: dict[str, list[CallRecord]] = {}
    edges: list[LocalEdge] = []
    findings: list[Finding] = []
    files = [(path, _package_of(path, service.root)) for path in service.files]
    for (path, package), parsed in zip(files, _parse_files(files, cache, workers, memo)):
        # A script's own folder is sys.path[0]: its siblings are importable by bare name.
        local = at_root | modules.get(path.parent, frozenset())
        records[str(path)] = _outcome(path, parsed, service.display_root, local, findings)
        calls[str(path)] = _calls(parsed, shown_path(path, service.display_root), local)
        sys_path = tuple(dict.fromkeys((path.parent, service.root)))
        shown = shown_path(path, service.display_root)
        for item, target in memo.local_targets(path, package, parsed, local, sys_path, finder):
            if not target.extension and target.path != path:
                edges.append(_edge(str(path), str(target.path), item, shown))
    # Any file may be run on its own; one that another file imports runs through that import.
    imported = {edge.target for edge in edges}
    roots = [key for key in records if key not in imported]
    behind = guarded_only(roots, edges)
    # At most one finding per file, so Finding's ordering never has to compare a None line.
    return ServiceImports(
        service,
        tuple(sorted(_behind_guards(records, behind), key=_RECORD_ORDER)),
        tuple(sorted(findings)),
        service.files,
        service.elf_files,
        _calls_behind_guards(calls, behind),
    )


def _collect_entry(
    service: Service, cache: ResultCache, workers: Workers, finder: LocalFinder, memo: ImportMemo
) -> ServiceImports:
    """An entry script and the local modules it reaches, transitively: each file read once,
    each level of the import graph parsed in parallel. Services that share a sys.path share
    each file's part of the graph (`_Node`): this walk only strings the parts together."""
    assert service.entry is not None
    sys_path = service.sys_path
    local = frozenset().union(*(finder.top_level_names(folder) for folder in sys_path))
    graph = memo.graph(sys_path, service.display_root, local)
    visited: dict[str, _Node] = {}  # file key → its part of the graph, in the order walked
    level: list[tuple[Path, str]] = [(service.entry, "")]
    seen = {str(service.entry): service.entry}  # by string: Path equality is slow
    while level:
        following: list[tuple[Path, str]] = []
        for key, node in zip(map(str, (path for path, _ in level)), graph.nodes(level, cache, workers, finder, memo)):
            visited[key] = node
            for target in node.runs:
                if str(target[0]) not in seen:
                    seen[str(target[0])] = target[0]
                    following.append(target)
        level = following
    files = tuple(sorted(seen.values(), key=_PARTS))  # Path's own order, each key built once
    behind = guarded_within([str(service.entry)], {key: node.edges for key, node in visited.items()}, visited)
    records, calls = _assembled(visited, behind)
    return ServiceImports(
        service,
        records,
        tuple(sorted(finding for node in visited.values() for finding in node.findings)),
        files,
        tuple(sorted({path for node in visited.values() for path in node.extensions}, key=_PARTS)),
        calls,
    )


def _assembled(visited: dict[str, _Node], behind: dict[str, GuardedImport]) -> tuple[tuple[ImportRecord, ...], tuple[CallRecord, ...]]:
    """Every visited file's imports and calls in ImportRecord's and CallRecord's order. Both
    order by file first, so the files in the order of their shown paths, each with its own
    records sorted once per scan, give what sorting them all would give."""
    nodes = sorted(visited.items(), key=lambda item: item[1].shown)
    if len({node.shown for _, node in nodes}) < len(nodes):  # two files shown alike: sort them all
        records = {key: list(node.records) for key, node in visited.items()}
        calls = {key: list(node.calls) for key, node in visited.items()}
        return tuple(sorted(_behind_guards(records, behind), key=_RECORD_ORDER)), _calls_behind_guards(calls, behind)
    out_records: list[ImportRecord] = []
    out_calls: list[CallRecord] = []
    for key, node in nodes:
        via = behind.get(key)
        if via is None:
            out_records.extend(node.records)
            out_calls.extend(node.calls)
        else:
            out_records.extend(node.records_behind(via))
            out_calls.extend(node.calls_behind())
    return tuple(out_records), tuple(out_calls)


@dataclass(frozen=True)
class _Node:
    """One file of a local import graph (a sys.path, a display root): what every service whose
    walk reaches the file takes from it, worked out once per scan."""

    shown: str
    records: tuple[ImportRecord, ...]  # in ImportRecord's order
    calls: tuple[CallRecord, ...]  # in CallRecord's order, each once
    findings: tuple[Finding, ...]
    edges: tuple[LocalEdge, ...]  # the local imports that run a Python file, in the order found
    runs: tuple[tuple[Path, str], ...]  # (file, package) each edge runs, in the same order
    extensions: tuple[Path, ...]  # local extension modules it imports
    _behind: dict[GuardedImport, tuple[ImportRecord, ...]] = field(default_factory=dict, compare=False, repr=False)

    def records_behind(self, via: GuardedImport) -> tuple[ImportRecord, ...]:
        """The records of a file that runs only behind the guarded import `via`: guarded too."""
        if via not in self._behind:
            weakened = [record if record.guarded else replace(record, guarded=True, via=via) for record in self.records]
            self._behind[via] = tuple(sorted(weakened, key=_RECORD_ORDER))
        return self._behind[via]

    def calls_behind(self) -> tuple[CallRecord, ...]:
        return tuple(sorted({replace(call, guarded=True) for call in self.calls}))


class _LocalGraph:
    """The files reached under one sys.path and display root, each as a `_Node`."""

    def __init__(self, sys_path: tuple[Path, ...], display_root: Path, local: frozenset[str]) -> None:
        self.sys_path, self.display_root, self.local = sys_path, display_root, local
        self._nodes: dict[tuple[str, str], _Node] = {}

    def nodes(
        self, files: Sequence[tuple[Path, str]], cache: ResultCache, workers: Workers, finder: LocalFinder, memo: ImportMemo
    ) -> list[_Node]:
        """The nodes of `files` (path, package): the files no service has reached yet are
        parsed together, in parallel."""
        keys = [(str(path), package) for path, package in files]
        todo = [(key, item) for key, item in zip(keys, files) if key not in self._nodes]
        if todo:
            for (key, (path, package)), parsed in zip(todo, _parse_files([item for _, item in todo], cache, workers, memo)):
                self._nodes[key] = self._node(path, package, parsed, finder, memo)
        return [self._nodes[key] for key in keys]

    def _node(self, path: Path, package: str, parsed: _Parsed, finder: LocalFinder, memo: ImportMemo) -> _Node:
        findings: list[Finding] = []
        found = _outcome(path, parsed, self.display_root, self.local, findings)
        shown = shown_path(path, self.display_root)
        edges: list[LocalEdge] = []
        runs: list[tuple[Path, str]] = []
        extensions: list[Path] = []
        for item, target in memo.local_targets(path, package, parsed, self.local, self.sys_path, finder):
            if target.extension:
                extensions.append(target.path)
            else:
                edges.append(_edge(str(path), str(target.path), item, shown))
                runs.append((target.path, target.package))
        return _Node(
            shown,
            tuple(sorted(found, key=_RECORD_ORDER)),
            tuple(sorted(set(_calls(parsed, shown, self.local)))),
            tuple(findings),
            tuple(edges),
            tuple(runs),
            tuple(extensions),
        )


def _edge(source: str, target: str, item: FoundImport, shown: str) -> LocalEdge:
    return LocalEdge(source, target, item.guarded, GuardedImport(shown, item.line, item.module, item.names))


def _behind_guards(records: dict[str, list[ImportRecord]], behind: dict[str, GuardedImport]) -> list[ImportRecord]:
    """Every file's imports; those of a file that runs only behind a guarded local import are
    guarded too, and name that import."""
    out: list[ImportRecord] = []
    for key, found in records.items():
        via = behind.get(key)
        if via is None:
            out.extend(found)
        else:
            out.extend(record if record.guarded else replace(record, guarded=True, via=via) for record in found)
    return out


@dataclass(frozen=True)
class _Parsed:
    """One file's imports as a worker returns them (and the cache keeps them)."""

    found: tuple[FoundImport, ...] = ()
    fallback: bool = False  # libcst failed: `found` comes from the line-level fallback
    calls: tuple[FoundCall, ...] = ()  # calls of names its imports bind (none from the fallback)
    error: tuple[int | None, str] | None = None  # libcst's complaint: (line, message)
    unreadable: str | None = None  # the file could not be read: why


_KIND = "imports"
FACTS_KIND = _KIND  # a file's facts (consulted.note_facts) are under (FACTS_KIND, package)


def _parse_files(
    files: Sequence[tuple[Path, str]], cache: ResultCache, workers: Workers, memo: ImportMemo
) -> list[_Parsed]:
    results: list[_Parsed | None] = []
    todo: list[tuple[int, bytes, str, str]] = []
    with consulted.sourcing():  # all this takes from a file is its _Parsed: noted below
        for path, package in files:
            try:
                digest, source = cache.file_digest_and_source(path)
                key = f"{digest}|{package}"  # content_key(source, package)
                if key in memo.parsed:
                    results.append(memo.parsed[key])
                    continue
                cached = cache.get(_KIND, key)
                if cached is MISSING:
                    todo.append((len(results), source if source is not None else read_regular(path), package, key))
                    results.append(None)
                else:
                    results.append(memo.parsed.setdefault(key, _from_row(cached)))
            except OSError as error:  # a dangling symlink, no permission, a folder named x.py
                results.append(_Parsed(unreadable=f"cannot read: {error.strerror or error}"))
    parsed = workers.map(
        _parse_source, [(source, package) for _, source, package, _ in todo], crashed=_crashed, unit="files parsed"
    )
    for (position, _, _, key), result in zip(todo, parsed):
        results[position] = memo.parsed[key] = result
        cache.put(_KIND, key, _to_row(result))
    if consulted.active():
        for (path, package), result in zip(files, results):
            consulted.note_facts(path, (FACTS_KIND, package), result)
    return [result for result in results if result is not None]


def parsed_source(source: bytes, package: str) -> _Parsed:
    """What `_parse_files` gives for a file holding `source` in `package`, parsed here (libcst
    imported only when the file needs it): memo_edit.py compares it with a scan's."""
    return _parse_source((source, package))


def _parse_source(item: tuple[bytes, str]) -> _Parsed:
    """Runs in a worker process."""
    source, package = item
    try:
        found, calls = _read(source, package)
        return _Parsed(tuple(found), calls=tuple(calls))
    except Exception as error:  # libcst raises syntax, decoding, encoding and recursion errors
        return _Parsed(tuple(_fallback(source, package)), fallback=True, error=_parse_error(error, source))


def _crashed(item: tuple[bytes, str]) -> _Parsed:
    """The parser killed its worker process on this file: the fallback reads it."""
    source, package = item
    reason = "the parser crashed on this file (its worker process died)"
    return _Parsed(tuple(_fallback(source, package)), fallback=True, error=(None, f"{reason}; its imports were read line by line"))


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
    calls = [[c.line, c.target, c.guarded] for c in parsed.calls]
    return [found, parsed.fallback, list(parsed.error) if parsed.error else None, parsed.unreadable, calls]


def _from_row(row: list[Any]) -> _Parsed:
    found, fallback, error, unreadable, calls = row
    items = tuple(FoundImport(line, module, tuple(names), *flags) for line, module, names, *flags in found)
    called = tuple(FoundCall(line, target, guarded) for line, target, guarded in calls)
    return _Parsed(items, fallback, called, (error[0], error[1]) if error else None, unreadable)
