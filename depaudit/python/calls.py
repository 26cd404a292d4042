"""Calls into library functions: what a service's calls run inside the wheels.

`torchaudio.load(...)` runs `load`'s body, which imports torchcodec: an import module reach
alone calls "inside a function not known to be called". From each call the service makes of a
third-party name, the callee is found as Python would (through re-exports, aliases, a class's
`__init__` on instantiation, its class and static methods), and its body is reached with the
caller's tier: its imports become starts of module reach, its calls are followed in turn, and
the native hints in it (ctypes, subprocess) are as sure as it is. A guard around a call (a try
whose handler survives ImportError, OSError, FileNotFoundError, CalledProcessError…) weakens
what it reaches to optional.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from depaudit.collect.model import CallRecord
from depaudit.evidence import EvidenceStep, StepKind, Tier
from depaudit.cache import MISSING, ResultCache
from depaudit.python.functions import (
    Binding,
    FunctionBody,
    ModuleDefs,
    body_from_row,
    body_to_row,
    bindings_from_row,
    defs_to_row,
    module_defs,
)
from depaudit.python.model import ResolvedImport
from depaudit.python.module_imports import ImportContext, ModuleImport, import_statement

# How far calls are followed, and how many function bodies one scan reads at most: both are
# reported when hit (as the reach's `limits`), and nothing past them is guessed.
MAX_DEPTH = 6
BUDGET = 4000
_MAX_HOPS = 12  # re-exports followed to find one name


@dataclass(frozen=True, order=True)
class CallStart:
    """A call the service's own code makes of a third-party name."""

    target: str  # absolute dotted: "torchaudio.load", "pydub.AudioSegment.from_file"
    tier: Tier
    file: str  # display path of the service's file
    line: int


@dataclass(frozen=True)
class ReachedFunction:
    module: str
    name: str  # "load", "Class.method"
    relative: str  # its file, relative to site-packages
    line: int
    end: int
    tier: Tier
    steps: tuple[EvidenceStep, ...]  # the calls from the service's to this function


@dataclass(frozen=True)
class ImportStart:
    """An import in a reached function's body: a start of module reach."""

    module: str
    names: tuple[str, ...]
    tier: Tier
    via: tuple[EvidenceStep, ...]  # the calls to the function, then the import


@dataclass(frozen=True, order=True)
class Limit:
    """Where the walk stopped following calls: reported, never guessed past."""

    relative: str  # the file of the function not followed further
    line: int
    reason: str


@dataclass
class CallReach:
    functions: dict[tuple[str, str], ReachedFunction] = field(default_factory=dict)
    imports: list[ImportStart] = field(default_factory=list)
    limits: list[Limit] = field(default_factory=list)  # the depth or the budget, where hit
    _by_file: dict[str, list[ReachedFunction]] | None = field(default=None, repr=False, compare=False)

    def function_tier(self, relative: str, line: int) -> ReachedFunction | None:
        """The surest reached function whose body holds `line` of the file at `relative` (of
        nested ones, the innermost)."""
        if self._by_file is None:
            self._by_file = {}
            for found in self.functions.values():
                self._by_file.setdefault(found.relative, []).append(found)
        best: ReachedFunction | None = None
        for found in self._by_file.get(relative, ()):
            if found.line < line <= found.end:
                if best is None or found.tier.rank < best.tier.rank or (found.tier is best.tier and found.line > best.line):
                    best = found
        return best


class Sources(Protocol):
    """What the call walk needs of the module graph: where a module is, its source, and the
    absolute name an import in it names."""

    def module_file(self, module: str) -> tuple[str, bool] | None: ...  # (relative, extension)

    def source(self, module: str) -> bytes | None: ...

    def absolute(self, module: str, imported: ModuleImport) -> str: ...

    def digest(self, module: str) -> str | None: ...  # the content key of its file, where known


_DEFS = "module-defs"  # content key of a module → what it binds, and the functions it defines
_BODY = "function-body"  # content key and function name → its body's imports and calls


@dataclass
class _Module:
    bindings: dict[str, Binding]
    names: frozenset[str]  # its functions and methods: "f", "Class.method"
    digest: str | None
    parsed: ModuleDefs | None = None  # its `ast`, read only where a body is not in the cache


class CallGraph:
    """Function bodies of one environment's modules, read once per scan (and kept in the cache by
    content: a warm run parses none), and the walks from calls."""

    def __init__(self, sources: Sources, cache: ResultCache | None = None) -> None:
        self.sources = sources
        self.cache = cache if cache is not None else ResultCache(None)
        self._defs: dict[str, _Module] = {}
        self._walks: dict[frozenset[CallStart], CallReach] = {}
        self._callees: dict[str, tuple[str, str] | None] = {}

    def defs(self, module: str) -> _Module:
        if module not in self._defs:
            found = self.sources.module_file(module)
            if found is None or found[1]:
                self._defs[module] = _Module({}, frozenset(), None)
                return self._defs[module]
            digest = self.sources.digest(module)
            row = self.cache.get(_DEFS, digest)
            if row is not MISSING:
                self._defs[module] = _Module(*bindings_from_row(row), digest)
            else:
                parsed = module_defs(self.sources.source(module) or b"")
                self._defs[module] = _Module(parsed.bindings, frozenset(parsed.nodes), digest, parsed)
                self.cache.put(_DEFS, digest, defs_to_row(parsed))
        return self._defs[module]

    def body(self, module: str, name: str) -> FunctionBody | None:
        known = self.defs(module)
        if name not in known.names:
            return None
        key = None if known.digest is None else f"{known.digest}|{name}"
        row = self.cache.get(_BODY, key)
        if row is not MISSING:
            return body_from_row(row)
        if known.parsed is None:
            known.parsed = module_defs(self.sources.source(module) or b"")
        body = known.parsed.function(name)
        if body is not None:
            self.cache.put(_BODY, key, body_to_row(body))
        return body

    def reach(self, starts: Iterable[CallStart]) -> CallReach:
        key = frozenset(starts)
        if key not in self._walks:
            self._walks[key] = _CallWalk(self).run(sorted(key, key=lambda s: (s.tier.rank, s.target, s.file, s.line)))
        return self._walks[key]

    def resolve(self, module: str, dotted: str, local: dict[str, Binding] | None = None, hops: int = 0) -> tuple[str, str] | None:
        """The function (module, qualified name) that calling `dotted` in `module` runs, or None."""
        if hops > _MAX_HOPS:
            return None
        head, _, rest = dotted.partition(".")
        binding = (local or {}).get(head) or self.defs(module).bindings.get(head)
        if binding is None:
            return None
        parts = rest.split(".") if rest else []
        if binding.kind == "def":
            if not parts:
                return (module, binding.target)
            # A method of what the function returns, where its annotation names a class.
            returned = self.defs(module).bindings.get(f"{binding.target}()")
            return None if returned is None else self.resolve(module, ".".join([returned.target, *parts]), None, hops + 1)
        if binding.kind == "class":
            return self._method(module, binding.target, parts, hops)
        if binding.kind == "alias":
            return self.resolve(module, ".".join([binding.target, *parts]), None, hops + 1)
        assert binding.imported is not None
        base = self.sources.absolute(module, binding.imported)
        if binding.kind == "import":
            return self.in_module(base, parts, hops + 1)
        submodule = f"{base}.{binding.target}" if base else binding.target
        if self.sources.module_file(submodule) is not None:
            return self.in_module(submodule, parts, hops + 1)
        return self.resolve(base, ".".join([binding.target, *parts]), None, hops + 1)

    def callee(self, target: str) -> tuple[str, str] | None:
        """The function an absolute dotted name (`torchaudio.load`) names; once per scan: the
        services of a monorepo make the same calls."""
        if target not in self._callees:
            top, _, rest = target.partition(".")
            self._callees[target] = self.in_module(top, rest.split(".")) if rest else None
        return self._callees[target]

    def in_module(self, module: str, parts: list[str], hops: int = 0) -> tuple[str, str] | None:
        """The function `module.parts…` names: the module's own bindings first, then its submodules."""
        if not parts or self.sources.module_file(module) is None:
            return None
        if parts[0] in self.defs(module).bindings:
            return self.resolve(module, ".".join(parts), None, hops + 1)
        return self.in_module(f"{module}.{parts[0]}", parts[1:], hops + 1)

    def _method(self, module: str, cls: str, parts: list[str], hops: int) -> tuple[str, str] | None:
        name = f"{cls}.{parts[0] if parts else '__init__'}"
        if len(parts) <= 1 and name in self.defs(module).names:
            return (module, name)
        alias = self.defs(module).bindings.get(name) if parts else None
        if alias is not None and alias.kind == "alias":  # `transcribe = transcribe_function` in the class
            return self.resolve(module, ".".join([alias.target, *parts[1:]]), None, hops + 1)
        return None


class _CallWalk:
    def __init__(self, graph: CallGraph) -> None:
        self.graph = graph
        self.reach = CallReach()
        self.queues: dict[Tier, deque[tuple[str, str, Tier, tuple[EvidenceStep, ...], int]]] = {
            Tier.REQUIRED: deque(),
            Tier.OPTIONAL: deque(),
        }

    def run(self, starts: list[CallStart]) -> CallReach:
        for start in starts:
            found = self.graph.callee(start.target)
            if found is not None:
                step = EvidenceStep(StepKind.CALL, f"calls {start.target}", start.file, start.line, start.target)
                self.queues[start.tier].append((*found, start.tier, (step,), 1))
        for tier in (Tier.REQUIRED, Tier.OPTIONAL):
            queue = self.queues[tier]
            while queue:
                self.visit(*queue.popleft())
        return self.reach

    def visit(self, module: str, name: str, tier: Tier, steps: tuple[EvidenceStep, ...], depth: int) -> None:
        known = self.reach.functions.get((module, name))
        if known is not None and known.tier.rank <= tier.rank:
            return
        body = self.graph.body(module, name)
        located = self.graph.sources.module_file(module)
        if body is None or located is None:
            return
        relative = located[0]
        if len(self.reach.functions) >= BUDGET:
            self._limit(relative, body.line, f"calls into library functions are followed through at most {BUDGET} functions a service; {module}.{name} and what it calls were not followed")
            return
        self.reach.functions[module, name] = ReachedFunction(module, name, relative, body.line, body.end, tier, steps)
        local = self._local_bindings(body)
        for imported in body.imports:
            if imported.context is ImportContext.LAZY:
                continue  # in a nested function: runs only if that is called
            sure = tier if imported.context is ImportContext.MODULE else Tier.OPTIONAL
            target = self.graph.sources.absolute(module, imported)
            self.reach.imports.append(ImportStart(target, imported.names, sure, (*steps, _import_step(relative, imported))))
        if depth >= MAX_DEPTH:
            if body.calls:
                self._limit(relative, body.line, f"calls into library functions are followed {MAX_DEPTH} deep; what {module}.{name} calls was not followed")
            return
        cls = name.rpartition(".")[0]
        for call in body.calls:
            callee = self._callee(module, cls, call.name, local)
            if callee is None:
                continue
            sure = Tier.OPTIONAL if call.guarded else tier
            step = EvidenceStep(StepKind.CALL, f"calls {callee[0]}.{callee[1]}" + (", inside a try that survives its failure" if call.guarded else ""), relative, call.line, callee[0])
            self.queues[sure].append((*callee, sure, (*steps, step), depth + 1))

    def _callee(self, module: str, cls: str, dotted: str, local: dict[str, Binding]) -> tuple[str, str] | None:
        head, _, rest = dotted.partition(".")
        if head in ("self", "cls") and cls and rest and "." not in rest:
            name = f"{cls}.{rest}"
            return (module, name) if name in self.graph.defs(module).names else None
        return self.graph.resolve(module, dotted, local)

    def _local_bindings(self, body: FunctionBody) -> dict[str, Binding]:
        """Names the function's own imports bind: `from torchcodec.decoders import AudioDecoder`."""
        local: dict[str, Binding] = {}
        for imported in body.imports:
            if imported.context is ImportContext.LAZY:
                continue
            if imported.names:
                for name in imported.names:
                    local.setdefault(name, Binding("from", name, imported))
            elif imported.level == 0 and not imported.dynamic:
                top = imported.module.split(".")[0]
                local.setdefault(top, Binding("import", top, ModuleImport(imported.line, top, 0, (), imported.context)))
        return local

    def _limit(self, relative: str, line: int, reason: str) -> None:
        if not any(limit.relative == relative and limit.line == line for limit in self.reach.limits):
            self.reach.limits.append(Limit(relative, line, reason))


def _import_step(relative: str, imported: ModuleImport) -> EvidenceStep:
    return EvidenceStep(StepKind.IMPORT, import_statement(imported), relative, imported.line, imported.module)


def service_calls(calls: Iterable[CallRecord], imports: Iterable[ResolvedImport]) -> list[CallStart]:
    """The starts of the call walk: each call the service makes into a third-party name, as sure
    as the call and the import that binds its name (a call of a name only a guarded import
    binds runs only if that import worked)."""
    sure = {item.record.top_level for item in imports if not item.record.guarded and not item.record.type_checking}
    return [
        CallStart(call.target, Tier.OPTIONAL if call.guarded or call.target.split(".")[0] not in sure else Tier.REQUIRED, call.file, call.line)
        for call in calls
    ]
