"""Module-level reach inside the installed wheels: from the modules a service imports, the
modules Python's import system would run, across distributions, and how surely.

Importing `a.b.c` runs `a/__init__`, `a/b/__init__` and `a/b/c`; each runs its own imports. An
import at module level, outside any guard, is as sure as the module holding it; one inside a try
that survives its failure is optional. One inside a function runs only if something calls it:
the module it names is optional, and what that module imports is not followed (no call is).
The sources are read with the fast import reader (`module_imports`), never run.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from depaudit.cache import INSTALLED_DIGEST, MISSING, ResultCache, content_key, stat_key
from depaudit.evidence import EvidenceStep, StepKind, Tier
from depaudit.python.calls import CallGraph, CallReach, CallStart
from depaudit.python.environment import PythonEnvironment
from depaudit.python.module_imports import (
    CACHE_KIND,
    FileImports,
    ImportContext,
    ModuleImport,
    import_from_row,
    import_to_row,
    import_statement,
    imports_from_row,
    imports_to_row,
    module_imports,
)
from depaudit.python.model import ResolvedImport
from depaudit.python.module_names import module_name
from depaudit.paths import RealPaths
from depaudit.reading import read_regular


@dataclass(frozen=True)
class ModuleFile:
    key: str  # the distribution whose RECORD lists it
    relative: str  # posix, relative to its site-packages
    extension: bool
    path: str  # absolute


@dataclass(frozen=True)
class Start:
    """A module the service's own code imports."""

    module: str
    names: tuple[str, ...]  # `from module import names`: each may be a submodule
    tier: Tier
    via: tuple[EvidenceStep, ...] = ()  # the calls to the library function whose body imports it


@dataclass(frozen=True)
class ReachedModule:
    tier: Tier
    parent: str | None  # the module whose import reached it; None: the service's own import
    imported: ModuleImport | None  # that import, in the parent's file
    via: tuple[EvidenceStep, ...] = ()  # parent None: the calls whose function body imports it


@dataclass(frozen=True)
class ModuleReach:
    """What one service's imports run inside the wheels."""

    modules: dict[str, ReachedModule]  # dotted name → how strongly, and from where
    computed: dict[str, tuple[str, int]]  # distribution key → a computed import in a reached module (file, line)
    index: dict[str, ModuleFile]
    lazy: dict[str, ReachedModule]  # modules only imported inside functions of reached modules: not walked
    with_extensions: frozenset[str]  # keys of the distributions of which some extension module is reached
    by_distribution: dict[str, str]  # distribution key → its strongest reached module
    lazily: dict[str, str]  # distribution key (none of whose modules is reached) → a module of it imported inside a function
    calls: CallReach = field(default_factory=CallReach)  # the library functions the service's calls run
    # module → (module it imports at module level, outside any guard, line): what has run before
    # any function of it can be called.
    imports_of: Callable[[str], list[tuple[str, int]]] = field(default=lambda module: [], compare=False, repr=False)
    # (module, dotted callee as written there) → the texts that function returns; () when unknown.
    returns_of: Callable[[str, str], tuple[str, ...]] = field(default=lambda module, dotted: (), compare=False, repr=False)
    _answers: dict[tuple[str, str], tuple[Tier, tuple[EvidenceStep, ...]] | None] = field(default_factory=dict, compare=False, repr=False)
    _steps: dict[str, tuple[EvidenceStep, ...]] = field(default_factory=dict, compare=False, repr=False)

    def extension_tier(self, key: str, relative: str) -> tuple[Tier, tuple[EvidenceStep, ...]] | None:
        """How surely the extension module at `relative` (a file of distribution `key`) is
        imported, with the module steps to it; None when module reach says nothing about it.
        Asked once per walk record: many roots share one answer."""
        if (key, relative) not in self._answers:
            self._answers[key, relative] = self._extension_tier(key, relative)
        return self._answers[key, relative]

    def file_tier(self, relative: str) -> tuple[Tier, tuple[EvidenceStep, ...]] | None:
        """How surely the module whose source is `relative` runs, with the steps to it; None when
        no reached module is that file."""
        found = module_name(relative)
        if found is None or found[0] not in self.modules:
            return None
        return self.modules[found[0]].tier, self.steps(found[0])

    def distribution_tier(self, key: str, modules: Iterable[str] = ()) -> tuple[Tier, tuple[EvidenceStep, ...]] | None:
        """How surely some module of distribution `key` runs (its strongest reached module), with
        the steps to it; None when none does. `modules`: the distribution's own modules (from its
        RECORD), searched when the index names another distribution for them (two wheels
        shipping `cv2`)."""
        name = self.by_distribution.get(key)
        if name is None:
            reached = self.modules
            names = [n for n in modules if n in reached]
            if not names:
                return None
            name = min((reached[n].tier.rank, n) for n in names)[1]
        return self.modules[name].tier, self.steps(name)

    def lazy_tier(self, key: str) -> tuple[Tier, tuple[EvidenceStep, ...]] | None:
        """Optional, with the steps to the import inside a function of a reached module that
        names a module of distribution `key`; None when none does."""
        name = self.lazily.get(key)
        if name is None:
            return None
        how = self.lazy[name]
        assert how.parent is not None and how.imported is not None
        return Tier.OPTIONAL, (*self.steps(how.parent), _step(self.index[how.parent].relative, how.imported))

    def _extension_tier(self, key: str, relative: str) -> tuple[Tier, tuple[EvidenceStep, ...]] | None:
        found = module_name(relative)
        if found is None or not found[1]:
            return None  # not an extension module: only the loader reaches it
        reached = self.modules.get(found[0])
        if reached is not None:
            return reached.tier, self.steps(found[0])
        lazily = self.lazy.get(found[0])
        if lazily is not None and lazily.parent in self.modules and lazily.imported is not None:
            return Tier.OPTIONAL, (*self.steps(lazily.parent), _step(self.index[lazily.parent].relative, lazily.imported))
        if key not in self.with_extensions:
            # Reach saw none of this distribution's extension modules imported: they are loaded some
            # way an import statement does not show (cv2's loader, torch.ops.load_library), so
            # module reach cannot tell them apart.
            return None
        where = self.computed.get(key)
        if where is not None:
            reason = f"no module the service reaches imports {found[0]}; reach is undecided: a computed import at {where[0]}:{where[1]}"
        else:
            reason = f"no module the service reaches imports {found[0]}: not reached"
        return Tier.OPTIONAL, (EvidenceStep(StepKind.MODULE, reason, name=found[0]),)

    def root(self, module: str) -> str:
        """The module the service's own import reached first on the way to `module`."""
        seen: set[str] = set()
        current = module
        while current not in seen:
            seen.add(current)
            parent = self.modules[current].parent
            if parent is None:
                break
            current = parent
        return current

    def steps(self, module: str) -> tuple[EvidenceStep, ...]:
        """The imports inside the wheels from the service's import to `module`: once per module
        (asked for each hint and walk record there)."""
        if module not in self._steps:
            self._steps[module] = self._walk_back(module)
        return self._steps[module]

    def _walk_back(self, module: str) -> tuple[EvidenceStep, ...]:
        steps: list[EvidenceStep] = []
        seen: set[str] = set()
        current: str | None = module
        while current is not None and current not in seen:
            seen.add(current)
            reached = self.modules[current]
            if reached.parent is not None and reached.imported is not None:
                steps.append(_step(self.index[reached.parent].relative, reached.imported))
            elif reached.parent is None:
                steps.extend(reversed(reached.via))
            current = reached.parent
        return tuple(reversed(steps))


class ModuleGraph:
    """The modules of one Python environment and the imports in their sources, read once per scan."""

    def __init__(self, env: PythonEnvironment, cache: ResultCache | None = None) -> None:
        self.env = env
        self.cache = cache if cache is not None else ResultCache(None)
        self._index: dict[str, ModuleFile] | None = None
        self._imports: dict[str, FileImports] = {}
        self._edges: dict[str, list[tuple[str, bool, ModuleImport]]] = {}
        self._walks: dict[tuple[frozenset[Start], frozenset[CallStart]], ModuleReach] = {}
        self.calls = CallGraph(self, self.cache)
        self._closures: dict[str, _Walk | None] = {}
        self._roots: dict[str, str] = {}
        self._real = RealPaths()
        self._fingerprint: str | None = None
        self.stats: dict[str, str | None] = {}  # path → stat key, of each source read

    @property
    def index(self) -> dict[str, ModuleFile]:
        if self._index is None:
            index: dict[str, ModuleFile] = {}
            for key, dist in self.env.distributions.items():
                for relative, name, extension in dist.module_files:
                    if name not in index:
                        index[name] = ModuleFile(key, relative, extension, f"{dist.site_packages}/{relative}")
            self._index = index
        return self._index

    def reach(self, starts: Iterable[Start], calls: Iterable[CallStart] = ()) -> ModuleReach:
        """What the starts run, and the library functions the calls run; services that import
        the same modules and make the same calls share one walk."""
        key = (frozenset(starts), frozenset(calls))
        if key not in self._walks:
            called = self.calls.reach(key[1])
            started = [*key[0], *(Start(i.module, i.names, i.tier, i.via) for i in called.imports)]
            walk = _Walk(self, None)
            walk.run(sorted(started, key=lambda s: (s.tier.rank, s.module, s.names, len(s.via))))
            index = self.index
            with_extensions = frozenset(index[n].key for n in walk.modules if n in index and index[n].extension)
            best: dict[str, tuple[int, str]] = {}
            for name, how in walk.modules.items():
                found = index.get(name)
                if found is not None and (found.key not in best or (how.tier.rank, name) < best[found.key]):
                    best[found.key] = (how.tier.rank, name)
            by_distribution = {dist: name for dist, (_, name) in best.items()}
            lazy = {name: how for name, how in walk.lazy.items() if name not in walk.modules and how.parent in walk.modules}
            lazily: dict[str, str] = {}
            for name in sorted(lazy):
                owner = next((index[m] for m in reversed(_with_parents(name)) if m in index), None)
                if owner is not None and owner.key not in by_distribution:
                    lazily.setdefault(owner.key, name)
            self._walks[key] = ModuleReach(
                walk.modules, walk.computed, index, lazy, with_extensions, by_distribution, lazily, called, self.sure_imports,
                self.returns_of,
            )
        return self._walks[key]

    def closure(self, top: str) -> _Walk | None:
        """What importing the top-level module `top` runs, walked once per scan: every service's
        walk takes it whole rather than walking torch's thousands of modules again. None while
        it is being walked (a cycle among top-level packages): that walk goes on by itself."""
        if top not in self._closures:
            kept = self._kept_closure(top)
            if kept is not None:
                self._closures[top] = kept
                return kept
            self._closures[top] = None
            walk = _Walk(self, top)
            walk.run([Start(top, (), Tier.REQUIRED)])
            self._closures[top] = walk
            self.cache.put(_CLOSURE, self._closure_key(top), _closure_row(walk))
        return self._closures[top]

    def _closure_key(self, top: str) -> str:
        """The module index is part of the key: a module added or removed anywhere in the
        environment can change where `from pkg import name` leads."""
        if self._fingerprint is None:
            digest = hashlib.blake2b(digest_size=16)
            for name, found in sorted(self.index.items()):
                digest.update(f"{name}\0{found.path}\0{found.extension:d}\n".encode())
            self._fingerprint = digest.hexdigest()
        return f"{top}|{self._fingerprint}"

    def _kept_closure(self, top: str) -> _Walk | None:
        """A closure an earlier run walked, if no file it read has changed since: a warm run
        then stats torch's files instead of looking each one up."""
        row = self.cache.get(_CLOSURE, self._closure_key(top))
        if row is MISSING:
            return None
        files, modules, computed, lazy = row
        if any(self._stat(path) != stat for path, stat in files):
            return None
        walk = _Walk(self, top)
        walk.files = {path: stat for path, stat in files}
        walk.modules = {
            name: ReachedModule(Tier(tier), parent, None if imported is None else import_from_row(imported))
            for name, tier, parent, imported in modules
        }
        walk.computed = {key: (file, line) for key, file, line in computed}
        walk.lazy = {
            name: ReachedModule(Tier.OPTIONAL, parent, None if imported is None else import_from_row(imported))
            for name, parent, imported in lazy
        }
        return walk

    def module_file(self, module: str) -> tuple[str, bool] | None:
        """Where module `module` is (relative to its site-packages) and whether it is an extension."""
        found = self.index.get(module)
        return None if found is None else (found.relative, found.extension)

    def source(self, module: str) -> bytes | None:
        """The source of module `module`; None for one that cannot be read or links out of its
        site-packages (never opened)."""
        found = self.index.get(module)
        if found is None or not self._real(found.path).startswith(self._root(found.key) + os.sep):
            return None
        try:
            return read_regular(Path(found.path))
        except (OSError, ValueError):
            return None

    def digest(self, module: str) -> str | None:
        """The content key of module `module`'s file: through its stat (the table the import
        reader and the hint pass share), else read and hashed here."""
        found = self.index.get(module)
        if found is None:
            return None
        stat = self._stat(found.path)
        digest = self.cache.get(INSTALLED_DIGEST, stat)
        if digest is not MISSING:
            return str(digest)
        source = self.source(module)
        if source is None:
            return None
        digest = content_key(source)
        self.cache.put(INSTALLED_DIGEST, stat, digest)
        return digest

    def absolute(self, module: str, imported: ModuleImport) -> str:
        """The absolute name an import in module `module` names."""
        found = self.index.get(module)
        return _absolute(module, found.relative if found else "", imported)

    def edges(self, module: str, found: ModuleFile) -> list[tuple[str, bool, ModuleImport]]:
        """(module it imports, surely at import, the import) of one module's file: resolved once
        per scan, as every service walks the same wheels."""
        if module not in self._edges:
            self._edges[module] = [
                (target, imported.context is ImportContext.MODULE, imported)
                for imported in self.imports(found).imports
                for target in _targets(_absolute(module, found.relative, imported), imported.names, self.index)
            ]
        return self._edges[module]

    def returns_of(self, module: str, dotted: str) -> tuple[str, ...]:
        """The texts the function that `dotted`, called in `module`, runs returns (pydub's
        `get_encoder_name()`); () when it is not found or returns anything else."""
        found = self.calls.resolve(module, dotted)
        body = None if found is None else self.calls.body(*found)
        return () if body is None else body.returns

    def sure_imports(self, module: str) -> list[tuple[str, int]]:
        """(module, line) of what `module` imports at module level outside any guard."""
        found = self.index.get(module)
        if found is None or found.extension:
            return []
        return [(target, imported.line) for target, sure, imported in self.edges(module, found) if sure]

    def imports(self, found: ModuleFile) -> FileImports:
        """One module file's imports: from the cache through the file's stat and content key (the
        stat → content table is the hint pass's too), else read here, once per scan. Only the
        modules a walk reaches are read: about half of a CUDA torch environment's."""
        path = found.path
        if path not in self._imports:
            stat = self._stat(path)
            digest = self.cache.get(INSTALLED_DIGEST, stat)
            cached = self.cache.get(CACHE_KIND, digest) if digest is not MISSING else MISSING
            if cached is not MISSING:
                self._imports[path] = imports_from_row(cached)
            elif not self._real(path).startswith(self._root(found.key) + os.sep):
                self._imports[path] = _UNREAD  # links out of its site-packages: never opened
            else:
                digest, self._imports[path] = _read_imports(path)
                if digest is not None:
                    self.cache.put(INSTALLED_DIGEST, stat, digest)
                    self.cache.put(CACHE_KIND, digest, imports_to_row(self._imports[path]))
        return self._imports[path]

    def _stat(self, path: str) -> str | None:
        """A file's stat key, taken once per scan: torch's closure and its cycle partners' list
        the same thousands of files."""
        if path not in self.stats:
            self.stats[path] = stat_key(path)
        return self.stats[path]

    def _root(self, key: str) -> str:
        """The real site-packages folder the files of distribution `key` must lie in."""
        if key not in self._roots:
            self._roots[key] = os.path.realpath(self.env.distributions[key].site_packages)
        return self._roots[key]


_UNREAD = FileImports((), ())


def _read_imports(path: str) -> tuple[str | None, FileImports]:
    """One file's content key and imports (none for a file that cannot be read)."""
    try:
        source = read_regular(Path(path))
    except (OSError, ValueError):
        return None, _UNREAD
    return content_key(source), module_imports(source)


class _Walk:
    """One breadth-first walk: required paths first, so a module keeps its strongest one."""

    def __init__(self, graph: ModuleGraph, own: str | None) -> None:
        self.graph = graph
        self.own = own  # the top-level module this walk is the closure of: walked, not taken whole
        self.modules: dict[str, ReachedModule] = {}
        self.computed: dict[str, tuple[str, int]] = {}
        self.files: dict[str, str | None] = {}  # the sources read, with their stat keys
        # Imported only inside a function: runs only if something calls it, which is not followed
        # (half of what a CUDA torch environment's modules lead to lies behind such imports).
        self.lazy: dict[str, ReachedModule] = {}
        self.queues: dict[Tier, deque[tuple[str, ReachedModule]]] = {Tier.REQUIRED: deque(), Tier.OPTIONAL: deque()}

    def run(self, starts: Iterable[Start]) -> None:
        index = self.graph.index
        for start in starts:
            tier = Tier.REQUIRED if start.tier is Tier.REQUIRED else Tier.OPTIONAL
            for name in _targets(start.module, start.names, index):
                self.queues[tier].append((name, ReachedModule(tier, None, None, start.via)))
        for tier in (Tier.REQUIRED, Tier.OPTIONAL):
            queue = self.queues[tier]
            while queue:
                name, how = queue.popleft()
                self.visit(name, how)

    def _known(self, module: str, tier: Tier) -> bool:
        known = self.modules.get(module)
        return known is not None and known.tier.rank <= tier.rank

    def visit(self, name: str, how: ReachedModule) -> None:
        """Run module `name` (its packages first) and queue what it imports."""
        if self._known(name, how.tier):
            return  # most queued imports name a module some other import ran first
        index = self.graph.index
        for module in _with_parents(name):
            if self._known(module, how.tier):
                continue
            self.modules[module] = how
            if "." not in module and module != self.own and module in index:
                closure = self.graph.closure(module)
                if closure is not None:
                    self._take(module, closure, how.tier)
                    continue
            found = index.get(module)
            if found is None or found.extension:
                continue
            lines = self.graph.imports(found).computed
            self.files[found.path] = self.graph.stats.get(found.path)
            if lines and found.key not in self.computed:
                self.computed[found.key] = (found.relative, lines[0])
            for target, sure, imported in self.graph.edges(module, found):
                if imported.context is ImportContext.LAZY:
                    self.lazy.setdefault(target, ReachedModule(Tier.OPTIONAL, module, imported))
                    continue
                tier = how.tier if sure else Tier.OPTIONAL
                if not self._known(target, tier):
                    self.queues[tier].append((target, ReachedModule(tier, module, imported)))

    def _take(self, top: str, closure: _Walk, tier: Tier) -> None:
        """What importing `top` runs, at most as sure as `top` itself is here."""
        for module, how in closure.modules.items():
            if module != top:
                weaker = how if how.tier.rank >= tier.rank else ReachedModule(tier, how.parent, how.imported)
                if not self._known(module, weaker.tier):
                    self.modules[module] = weaker
        for key, where in closure.computed.items():
            self.computed.setdefault(key, where)
        for module, how in closure.lazy.items():
            self.lazy.setdefault(module, how)
        self.files.update(closure.files)


_CLOSURE = "module-closure"  # top-level module and module index → what importing it runs


def _closure_row(walk: _Walk) -> list[Any]:
    modules = [
        [name, how.tier.value, how.parent, None if how.imported is None else import_to_row(how.imported)]
        for name, how in walk.modules.items()
    ]
    computed = [[key, file, line] for key, (file, line) in walk.computed.items()]
    lazy = [[name, how.parent, None if how.imported is None else import_to_row(how.imported)] for name, how in walk.lazy.items()]
    return [[[path, stat] for path, stat in walk.files.items()], modules, computed, lazy]


def service_starts(imports: Iterable[ResolvedImport]) -> list[Start]:
    """The modules a service's third-party imports run: all of its own code counts as run, so
    only a guard weakens them."""
    return [
        Start(item.record.module, item.record.names, Tier.OPTIONAL if item.record.guarded else Tier.REQUIRED)
        for item in imports
        if not item.record.type_checking
    ]


def _with_parents(module: str) -> list[str]:
    """`a.b.c` runs `a`, then `a.b`, then `a.b.c`."""
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]


def _absolute(module: str, relative: str, imported: ModuleImport) -> str:
    """The absolute name an import in `module` (a file at `relative`) names."""
    if imported.level == 0:
        return imported.module
    package = module if relative.endswith("/__init__.py") else module.rpartition(".")[0]
    parts = package.split(".") if package else []
    base = parts[: len(parts) - (imported.level - 1)] if imported.level > 1 else parts
    return ".".join([*base, imported.module] if imported.module else base)


def _targets(module: str, names: tuple[str, ...], index: dict[str, ModuleFile]) -> list[str]:
    """The module, and each name of `from module import name` that is a submodule."""
    targets = [module] if module else []
    targets.extend(f"{module}.{name}" for name in names if name != "*" and f"{module}.{name}" in index)
    return targets


def _step(relative: str, imported: ModuleImport) -> EvidenceStep:
    return EvidenceStep(StepKind.IMPORT, import_statement(imported), relative, imported.line, imported.module)
