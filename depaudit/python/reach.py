"""Which installed distributions a service reaches from its imports, and how strongly.

An unguarded import of a distribution makes it, and its Requires-Dist closure, `required`; a
distribution reached only through guarded imports is `optional`. Each reached distribution keeps
the chain of evidence that put it there: the import line, then the distributions down to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from depaudit.cache import ResultCache
from depaudit.collect.model import GuardedImport, ImportRecord, ImportScope
from depaudit.evidence import EvidenceStep, StepKind, Tier, import_step
from depaudit.findings import Finding, FindingKind
from depaudit.python.closure import requires_closure
from depaudit.python.environment import PythonEnvironment
from depaudit.python.first_imports import FirstImports
from depaudit.python.model import RequirementEdge, ResolvedImport, TargetPython
from depaudit.python.modules import ModuleReach


@dataclass(frozen=True)
class ImportRoot:
    """The strongest import through which a service reaches a distribution."""

    record: ImportRecord
    required: bool


@dataclass(frozen=True)
class Reached:
    """A distribution in a service's runtime closure, with the evidence that put it there."""

    key: str
    tier: Tier
    chain: tuple[EvidenceStep, ...]  # the import line, then the distributions down to this one


@dataclass(frozen=True)
class ServiceReach:
    """A service's third-party imports and the distributions they reach: known before any wheel is read."""

    imports: tuple[ResolvedImport, ...]
    roots: dict[str, ImportRoot]  # distribution key → the import that reaches it most strongly
    reached: tuple[Reached, ...]  # sorted by key
    findings: tuple[Finding, ...]  # imports nothing installed provides

    @property
    def first_import(self) -> dict[str, tuple[str, int]]:
        """Distribution key → (file, line) of the import through which the service reaches it."""
        return {key: (root.record.file, root.record.line) for key, root in self.roots.items()}


class Reach:
    """Imports → distributions in one Python environment; closures are shared by the services
    that import the same distributions."""

    def __init__(self, env: PythonEnvironment, target: TargetPython, cache: ResultCache | None = None) -> None:
        self.env = env
        self.target = target
        self.first_imports = FirstImports(env, cache)  # what each distribution imports before itself
        self._closures: dict[frozenset[str], dict[str, tuple[RequirementEdge, ...]]] = {}

    def of(self, records: Iterable[ImportRecord]) -> ServiceReach:
        findings: list[Finding] = []
        imports, roots = self._resolve(records, findings)
        return ServiceReach(tuple(imports), roots, tuple(self._closure(roots)), tuple(findings))

    def _resolve(
        self, records: Iterable[ImportRecord], findings: list[Finding]
    ) -> tuple[list[ResolvedImport], dict[str, ImportRoot]]:
        imports: list[ResolvedImport] = []
        roots: dict[str, ImportRoot] = {}
        for record in records:
            if record.scope is not ImportScope.THIRD_PARTY:
                continue
            providers = self.env.providers(record.module, record.names)
            imports.append(ResolvedImport(record, providers[0].name if providers else None))
            if not providers:
                findings.append(_unresolved(record))
                continue
            if record.type_checking:
                continue  # never executed at run time
            required = not record.guarded
            for dist in providers:
                known = roots.get(dist.key)
                if known is None or (required and not known.required):
                    roots[dist.key] = ImportRoot(record, required)
        return imports, roots

    def _closure(self, roots: dict[str, ImportRoot]) -> list[Reached]:
        required = self._requires(frozenset(k for k, r in roots.items() if r.required))
        everything = self._requires(frozenset(roots))
        reached = []
        for key in sorted(everything):
            edges = required.get(key, everything[key])
            tier = Tier.REQUIRED if key in required else Tier.OPTIONAL
            reached.append(Reached(key, tier, self._chain(roots, key, edges)))
        return reached

    def _requires(self, roots: frozenset[str]) -> dict[str, tuple[RequirementEdge, ...]]:
        # The closure sorts its roots: services importing the same distributions share one walk.
        if roots not in self._closures:
            self._closures[roots] = requires_closure(self.env, roots, self.target)
        return self._closures[roots]

    def _chain(self, roots: dict[str, ImportRoot], key: str, edges: tuple[RequirementEdge, ...]) -> tuple[EvidenceStep, ...]:
        root_key = edges[0].parent if edges else key
        record = roots[root_key].record
        chain = [] if record.via is None else [_guard_step(record.via)]
        chain += [import_step(record.file, record.line, record.module), self._step(StepKind.DISTRIBUTION, root_key)]
        chain.extend(self._step(StepKind.REQUIRES, edge.child, f" (Requires-Dist: {edge.requirement})") for edge in edges)
        return tuple(chain)

    def _step(self, kind: StepKind, key: str, note: str = "") -> EvidenceStep:
        dist = self.env.distributions[key]
        return EvidenceStep(kind, f"{dist.label}{note}", name=dist.name)


def with_module_imports(reach: ServiceReach, modules: ModuleReach, env: PythonEnvironment) -> ServiceReach:
    """`reach` with the distributions the wheels' own imports run that no Requires-Dist on the
    way declares: an import is an edge whether or not its wheel's metadata says so."""
    known = {item.key for item in reach.reached}
    extra = []
    for key, name in sorted(modules.by_distribution.items()):
        dist = env.distributions.get(key)
        if key in known or dist is None:
            continue
        step = EvidenceStep(StepKind.DISTRIBUTION, f"{dist.label} (imported; no Requires-Dist declares it)", name=dist.name)
        extra.append(Reached(key, modules.modules[name].tier, (*_service_import(reach, modules, name), *modules.steps(name), step)))
    for key, name in sorted(modules.lazily.items()):
        dist, lazily = env.distributions.get(key), modules.lazy_tier(key)
        if key in known or dist is None or lazily is None:
            continue
        parent = modules.lazy[name].parent
        assert parent is not None
        step = EvidenceStep(StepKind.DISTRIBUTION, f"{dist.label} (imported; no Requires-Dist declares it)", name=dist.name)
        extra.append(Reached(key, lazily[0], (*_service_import(reach, modules, parent), *lazily[1], step)))
    if not extra:
        return reach
    return replace(reach, reached=tuple(sorted((*reach.reached, *extra), key=lambda item: item.key)))


def _service_import(reach: ServiceReach, modules: ModuleReach, module: str) -> tuple[EvidenceStep, ...]:
    """The service's own import that module reach started from on its way to `module`."""
    root = modules.root(module)
    top = root.split(".")[0]
    for item in reach.imports:
        record = item.record
        if record.module == root or record.module.split(".")[0] == top:
            return (import_step(record.file, record.line, record.module),)
    return ()


def _guard_step(via: GuardedImport) -> EvidenceStep:
    """The guarded local import a service's file runs behind: the chain starts there."""
    return EvidenceStep(StepKind.IMPORT, f"{via.statement}, inside a try that survives its failure", via.file, via.line, via.module)


def _unresolved(record: ImportRecord) -> Finding:
    if record.via is not None:
        message = (
            f"imports {record.module}, which no installed distribution provides; this file runs only "
            f"behind `{record.via.statement}` ({record.via.file}:{record.via.line}), inside a try that "
            "survives its failure: the guarded fallback runs (not an error)"
        )
    elif record.guarded:
        message = (
            f"imports {record.module} inside a try/except, and no installed distribution "
            "provides it: the guarded fallback runs (not an error)"
        )
    elif record.lazy:
        message = (
            f"imports {record.module} inside a function, and no installed distribution provides it: "
            "the service fails when that function runs; install the distribution that provides it"
        )
    else:
        message = (
            f"imports {record.module}, which no installed distribution provides: "
            "the service fails at this import; install the distribution that provides it"
        )
        return Finding(FindingKind.MISSING_MODULE, record.file, record.line, message)
    return Finding(FindingKind.UNRESOLVED_IMPORT, record.file, record.line, message)
