"""Wire the stages together for `depaudit scan`. No rendering happens here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from depaudit.collect.imports import ImportMemo, collect_imports
from depaudit.collect.local import LocalFinder
from depaudit.collect.model import ImportRecord, ImportScope, Service, ServiceImports
from depaudit.findings import Finding, FindingKind
from depaudit.fleet.config import ConfigError, load_config
from depaudit.fleet.families import BaseChain, chain_env
from depaudit.fleet.layout import FamilySpec, Fleet, Placement, fleet_from_config, fleet_from_paths
from depaudit.image.model import BaseImage, ImageFormatError
from depaudit.image.open import open_image, open_rootfs
from depaudit.collect.hints import linux_candidates
from depaudit.native.distribution import analyse_folder
from depaudit.native.reads import read_by_the_scan
from depaudit.native.hints import FileHint, distributions_hints, folder_hints, runs_at_import, start_distributions_hints
from depaudit.cache import ResultCache
from depaudit.native.reports import analyse_environment, start_environment
from depaudit.native.store import ElfStore
from depaudit.parallel import Workers
from depaudit.native.model import LibraryStatus, NativeNeed, NativeReport, Tier
from depaudit.packages.classify import (
    PackageAnswer,
    SystemStatus,
    classify_image_file,
    classify_soname,
    package_for_program,
    soname_for_library,
)
from depaudit.packages.python_rules import PackageRule, load_python_rules
from depaudit.plan.model import FamilyPlan
from depaudit.plan.planner import plan_families
from depaudit.packages.depends import pulled_in
from depaudit.packages.index import PackageIndex, default_cache_dir, load_index
from depaudit.packages.profiles import BaseProfile, load_profile
from depaudit.packages.rules import DistroRules, RulesError, known_distros, load_rules
from depaudit.python.closure import requires_closure
from depaudit.python.environment import PythonEnvironment, infer_target, load_environment
from depaudit.python.model import DeclaredRequirement, RequirementEdge, TargetPython
from depaudit.python.requirements import check_declarations, read_requirements
from depaudit.report import FAILING_STATUSES, NEED_STATUSES, Need, ResolvedImport, ScanReport, ServiceReport

_TIER_ORDER = {Tier.REQUIRED: 0, Tier.OPTIONAL: 1, Tier.HINT: 2}


class InputError(Exception):
    """A usage or top-level input problem: the scan cannot start (exit code 2)."""


DEFAULT_DISTRO = "ubuntu-22.04"  # nvidia/cuda:12.x images


@dataclass(frozen=True)
class ScanOptions:
    paths: tuple[Path, ...]
    site_packages: tuple[Path, ...] = ()  # empty: the image's own, else this interpreter's
    distro: str | None = None  # None: the image's /etc/os-release, else DEFAULT_DISTRO
    rootfs: Path | None = None  # an unpacked base image
    image: Path | None = None  # a docker save tarball or an OCI layout (folder or tar)
    base_image: str | None = None  # a known image described by an embedded profile
    env: Mapping[str, str] = field(default_factory=dict)  # overrides the image's Env
    cache_dir: Path | None = None  # where `depaudit index` keeps its indexes (None: the default)
    hoist: bool = False  # move a package several families need to their common parent family
    config: Path | None = None  # depaudit.toml or a pyproject.toml with [tool.depaudit]
    use_cache: bool = True  # per-file results kept in cache_dir between runs
    processes: int | None = None  # worker processes (None: the cores this process may use)


@dataclass(frozen=True)
class _Root:
    """The strongest import through which a service reaches a distribution."""

    record: ImportRecord
    required: bool


@dataclass(frozen=True)
class _Reached:
    """A distribution in a service's runtime closure, with the evidence that put it there."""

    key: str
    tier: Tier
    chain: tuple[str, ...]  # import line, then the distributions down to this one


@dataclass(frozen=True)
class _Collected:
    """A service's imports and the distributions they reach: read before any wheel is."""

    service: ServiceImports
    imports: tuple[ResolvedImport, ...]
    roots: dict[str, _Root]
    reached: tuple[_Reached, ...]
    findings: list[Finding]


@dataclass(frozen=True)
class _ServiceBase:
    """What one service's image is built on, as its Dockerfile's FROM chain says."""

    label: str | None  # the base it is audited against: an image path or a profiled reference
    families: tuple[str, ...]  # family images between the service and that base
    profile: BaseProfile | None
    ld_library_path: tuple[str, ...]
    cuda_version: str | None = None  # CUDA_VERSION of the image: names NVIDIA's CUDA packages
    chain: BaseChain | None = None  # the Dockerfiles it is built from
    image: BaseImage | None = None  # the base image read as files, when one is given
    site_packages: tuple[Path, ...] = ()  # the Python environment of its image


class _Audit:
    """The state shared by every service of one scan: environment, rules, per-wheel results."""

    def __init__(
        self,
        env: PythonEnvironment,
        target: TargetPython,
        rules: DistroRules,
        image: BaseImage | None,
        index: PackageIndex | None = None,
        store: ElfStore | None = None,
        workers: Workers | None = None,
    ) -> None:
        self.env = env
        self.target = target
        self.rules = rules
        self.image = image
        self.index = index
        self.python_rules = load_python_rules()
        self.store = store or ElfStore()
        self.cache = self.store.cache
        self.workers = workers or Workers(1)
        self.finder = LocalFinder()
        self.import_memo = ImportMemo()
        self._closures: dict[frozenset[str], dict[str, tuple[RequirementEdge, ...]]] = {}
        self._native: dict[tuple[str, tuple[str, ...]], NativeReport] = {}
        self._hints: dict[str, list[FileHint]] = {}
        self._requirements: dict[tuple[tuple[Path, ...], Path], tuple[list[DeclaredRequirement], list[Finding]]] = {}

    def requirements(
        self, files: tuple[Path, ...], display_root: Path
    ) -> tuple[list[DeclaredRequirement], list[Finding]]:
        """`read_requirements`, once per scan for each set of files: the services of a monorepo
        often share one requirements file, and parsing one of 100 lines takes ~14 ms."""
        key = (files, display_root)
        if key not in self._requirements:
            self._requirements[key] = read_requirements(files, display_root, self.target)
        declared, findings = self._requirements[key]
        return list(declared), list(findings)

    def hints(self, key: str) -> list[FileHint]:
        if key not in self._hints:
            self._hints[key] = distributions_hints([self.env.distributions[key]], self.cache, self.workers)[0]
        return self._hints[key]

    def native(self, key: str, ld_library_path: tuple[str, ...]) -> NativeReport:
        # Wheels are shared by many services: walk each one's ELF files once per environment.
        if (key, ld_library_path) not in self._native:
            self._walk([key], ld_library_path)
        return self._native[key, ld_library_path]

    def _walk(self, keys: Iterable[str], ld_library_path: tuple[str, ...]) -> None:
        todo = sorted(key for key in keys if (key, ld_library_path) not in self._native)
        found = analyse_environment(self.env, todo, self.store, ld_library_path=ld_library_path, image=self.image)
        self._native.update(((key, ld_library_path), report) for key, report in found.items())

    def collect(self, service: Service) -> _Collected:
        """Stage one of a service: its imports, and the distributions they reach."""
        collected = collect_imports(service, self.cache, self.workers, self.finder, self.import_memo)
        findings: list[Finding] = list(collected.findings)
        imports, roots = self._resolve_imports(collected.imports, findings)
        return _Collected(collected, tuple(imports), roots, tuple(self._closure(roots)), findings)

    def prefetch(self, services: Sequence[tuple[_Collected, _ServiceBase]]) -> None:
        """Read every reached wheel's ELF files, then its hint files, each in one parallel batch
        (per distribution, the batches are too small to keep the workers busy); the ELF walks
        run here while the workers read the hint files."""
        walks: dict[tuple[str, ...], set[str]] = {}
        for collected, base in services:
            walks.setdefault(base.ld_library_path, set()).update(item.key for item in collected.reached)
        started = [
            (ld_library_path, start_environment(
                self.env,
                sorted(key for key in keys if (key, ld_library_path) not in self._native),
                self.store,
                ld_library_path=ld_library_path,
                image=self.image,
            ))
            for ld_library_path, keys in sorted(walks.items())
        ]
        keys = sorted({item.key for collected, _ in services for item in collected.reached} - set(self._hints))
        hints = start_distributions_hints([self.env.distributions[key] for key in keys], self.cache, self.workers)
        for ld_library_path, walk in started:
            self._native.update(((key, ld_library_path), report) for key, report in walk().items())
        self._hints.update(zip(keys, hints()))

    def service(self, service: Service, base: _ServiceBase, collected: _Collected) -> ServiceReport:
        findings = list(collected.findings)
        imports, roots, reached = collected.imports, collected.roots, collected.reached
        needs: list[Need] = []
        for item in reached:
            native = self.native(item.key, base.ld_library_path)
            findings.extend(native.findings)
            for need in native.needs:
                tier = item.tier if _TIER_ORDER[item.tier] > _TIER_ORDER[need.tier] else need.tier
                needs.append(self._need(need, tier, (service.name, *item.chain), base))
            needs.extend(self._distribution_hint_needs(item, service.name, base))
        for hint in folder_hints(collected.service.files, service.display_root, self.cache, self.workers):
            # The service's own code: whatever it loads or runs, it needs.
            needs.extend(self._hint_needs(hint, Tier.REQUIRED, (service.name,), base))
        if collected.service.elf_files:
            local = analyse_folder(
                service.name, collected.service.elf_files, service.display_root, base.ld_library_path, self.image, self.store
            )
            findings.extend(local.findings)
            needs.extend(self._need(n, n.tier, (service.name,), base) for n in local.needs)

        declared, req_findings = self.requirements(service.requirement_files, service.display_root)
        findings.extend(req_findings)
        first_import = {key: (root.record.file, root.record.line) for key, root in roots.items()}
        findings.extend(
            check_declarations(
                declared,
                first_import,
                {item.key for item in reached},
                self.env,
                has_requirements=bool(service.requirement_files),
            )
        )
        return ServiceReport(
            name=service.name,
            imports=tuple(imports),
            needs=_best_needs(needs),
            findings=tuple(sorted(set(findings))),
            base_image=base.label,
            families=base.families,
        )

    def _distribution_hint_needs(self, item: _Reached, service: str, base: _ServiceBase) -> list[Need]:
        dist = self.env.distributions[item.key]
        rule: PackageRule | None = self.python_rules.get(item.key)
        if rule is not None and not rule.applies(dist.version, frozenset(dist.files)):
            rule = None
        needs: list[Need] = []
        found: set[tuple[str, str]] = set()
        for hint in self.hints(item.key):
            tier = item.tier if runs_at_import(hint) else Tier.HINT  # else: only if that feature runs
            for need in self._hint_needs(hint, tier, (service, *item.chain), base):
                key = (need.kind, need.name)
                if rule is not None and key in rule.ignore:
                    continue
                if rule is not None and key in rule.needs:
                    need = replace(need, tier=item.tier)  # the rule confirms it is really needed
                found.add(key)
                needs.append(need)
        for kind, name in rule.needs if rule is not None else ():
            if (kind, name) not in found and rule is not None:
                evidence = f"rules/python/packages.toml [{item.key}]: {rule.source}"
                needs.append(self._named_need(kind, name, item.tier, (service, *item.chain, evidence), base))
        return needs

    def _hint_needs(self, hint: FileHint, tier: Tier, prefix: tuple[str, ...], base: _ServiceBase) -> list[Need]:
        call = hint.hint
        candidates = linux_candidates(call)
        if call.kind == "program":  # each program started is needed
            return [
                self._named_need("program", name, tier, (*prefix, f"{hint.where} {call.call}({name!r})"), base)
                for name in candidates
            ]
        # Libraries are tried in turn: the first one that means a known soname stands for the need.
        for candidate in candidates:
            soname = soname_for_library(candidate, self.rules, self.index)
            if soname is not None:
                evidence = f"{hint.where} {call.call}({candidate!r})"
                return [self._named_need("soname", soname, tier, (*prefix, evidence), base)]
        if not candidates:
            return []
        first = candidates[0].rsplit("/", 1)[-1]
        return [self._named_need("soname", first, tier, (*prefix, f"{hint.where} {call.call}({candidates[0]!r})"), base)]

    def _named_need(self, kind: str, name: str, tier: Tier, prefix: tuple[str, ...], base: _ServiceBase) -> Need:
        """A library or program needed by name (not through DT_NEEDED): what provides it?"""
        found_at = None
        if self.image is not None:
            found_at = (
                self.image.find_library(name, base.ld_library_path) if kind == "soname" else self.image.find_program(name)
            )
        if found_at is not None and self.image is not None:
            answer = classify_image_file(self.rules, name, self.image.owner_of(found_at))
        elif kind == "soname":
            answer = classify_soname(
                self.rules,
                name,
                image_given=self.image is not None,
                profile=base.profile,
                index=self.index,
                cuda_version=base.cuda_version,
            )
        else:
            answer = self._program_answer(name, base)
        chain = [*prefix, name]
        if found_at is not None:
            chain.append(found_at)
        if answer.package is not None:
            chain.append(f"{answer.package} ({self.rules.distro})")
        return Need(kind, name, answer.status.value, answer.package, tier, tuple(chain), found_at)

    def _program_answer(self, program: str, base: _ServiceBase) -> PackageAnswer:
        package = package_for_program(self.rules, program, self.index)
        if package is None:
            return PackageAnswer(SystemStatus.UNMAPPED, None)
        present = self.rules.present | (base.profile.packages if base.profile else frozenset())
        if package in present and self.image is None:
            return PackageAnswer(SystemStatus.BASE_IMAGE, package)
        return PackageAnswer(SystemStatus.MISSING, package)

    def _resolve_imports(
        self, records: Iterable[ImportRecord], findings: list[Finding]
    ) -> tuple[list[ResolvedImport], dict[str, _Root]]:
        imports: list[ResolvedImport] = []
        roots: dict[str, _Root] = {}
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
                    roots[dist.key] = _Root(record, required)
        return imports, roots

    def _closure(self, roots: dict[str, _Root]) -> list[_Reached]:
        required = self._requires(frozenset(k for k, r in roots.items() if r.required))
        everything = self._requires(frozenset(roots))
        reached = []
        for key in sorted(everything):
            edges = required.get(key, everything[key])
            tier = Tier.REQUIRED if key in required else Tier.OPTIONAL
            reached.append(_Reached(key, tier, self._dist_chain(roots, key, edges)))
        return reached

    def _requires(self, roots: frozenset[str]) -> dict[str, tuple[RequirementEdge, ...]]:
        # The closure sorts its roots: services importing the same distributions share one walk.
        if roots not in self._closures:
            self._closures[roots] = requires_closure(self.env, roots, self.target)
        return self._closures[roots]

    def _dist_chain(
        self, roots: dict[str, _Root], key: str, edges: tuple[RequirementEdge, ...]
    ) -> tuple[str, ...]:
        root_key = edges[0].parent if edges else key
        record = roots[root_key].record
        chain = [f"{record.file}:{record.line} import {record.module}", self._label(root_key)]
        chain.extend(f"{self._label(edge.child)} (Requires-Dist: {edge.requirement})" for edge in edges)
        return tuple(chain)

    def _label(self, key: str) -> str:
        return self.env.distributions[key].label

    def _need(self, need: NativeNeed, tier: Tier, prefix: tuple[str, ...], base: _ServiceBase) -> Need:
        chain = [*prefix, *need.chain, need.soname]
        if need.status in (LibraryStatus.SYSTEM, LibraryStatus.IMAGE):
            if need.status is LibraryStatus.IMAGE and self.image is not None and need.found_at:
                answer = classify_image_file(self.rules, need.soname, self.image.owner_of(need.found_at))
                chain.append(need.found_at)
            else:
                answer = classify_soname(
                    self.rules,
                    need.soname,
                    image_given=self.image is not None,
                    profile=base.profile,
                    index=self.index,
                    cuda_version=base.cuda_version,
                )
            status, package = answer.status.value, answer.package
            if package is not None:
                chain.append(f"{package} ({self.rules.distro})")
        else:
            status, package = need.status.value, None
            if need.found_at is not None:
                chain.append(need.found_at)
        # Where the loader looked explains an absence; for a library the base provides it is noise.
        tried = need.tried if status in FAILING_STATUSES else ()
        return Need("soname", need.soname, status, package, tier, tuple(chain), need.found_at, need.rule, tried)


def _unresolved(record: ImportRecord) -> Finding:
    if record.guarded:
        message = (
            f"imports {record.module} inside a try/except, and no installed distribution "
            "provides it: the guarded fallback runs (not an error)"
        )
    else:
        message = (
            f"imports {record.module}, which no installed distribution provides: "
            "the service fails at this import; install the distribution that provides it"
        )
    return Finding(FindingKind.UNRESOLVED_IMPORT, record.file, record.line, message)


def _best_needs(needs: Iterable[Need]) -> tuple[Need, ...]:
    """One need per file it resolves to (or per package, when it resolves nowhere): the
    strongest, shortest evidence wins. A wheel's library seen from its own walk and from a
    dependent's is one library."""
    best: dict[tuple[str, str | None, str | None], Need] = {}
    for need in needs:
        key = (need.name, need.found_at, None) if need.found_at else (need.name, need.status, need.package)
        rank = (_TIER_ORDER[need.tier], len(need.chain), need.chain)
        current = best.get(key)
        if current is None or rank < (_TIER_ORDER[current.tier], len(current.chain), current.chain):
            best[key] = need
    return tuple(
        sorted(best.values(), key=lambda n: (NEED_STATUSES.index(n.status), _TIER_ORDER[n.tier], n.name))
    )


def run_scan(options: ScanOptions) -> ScanReport:
    for path in (*options.paths, *options.site_packages, *filter(None, [options.rootfs])):
        if not path.is_dir():
            raise InputError(f"not a folder: {path}")
    if options.image is not None and not options.image.exists():
        raise InputError(f"no such image: {options.image}")
    if options.distro:
        _rules(options.distro, None)  # a usage error before any work
    fleet = _fleet(options)
    if not fleet.services:
        where = ", ".join(map(str, options.paths)) if options.paths or fleet.config is None else str(fleet.config.path)
        raise InputError(f"no Python services found in {where}")
    bases = _Bases(options, fleet)
    services = [(service, bases.of(service, placement)) for service, placement in zip(fleet.services, fleet.placements)]
    rules = bases.rules()

    index = load_index(rules.distro, options.cache_dir)
    cache = ResultCache((options.cache_dir or default_cache_dir()) if options.use_cache else None)
    audits: dict[tuple[tuple[Path, ...], int], _Audit] = {}
    reports = []
    with Workers(options.processes) as workers:
        store = ElfStore(cache, workers)
        collected = []
        for service, base in services:
            key = (base.site_packages, id(base.image))
            if key not in audits:
                env = load_environment(base.site_packages)
                audits[key] = _Audit(env, infer_target(base.site_packages), rules, base.image, index, store, workers)
            collected.append((audits[key], audits[key].collect(service), base))
        for audit in audits.values():
            audit.prefetch([(found, base) for owner, found, base in collected if owner is audit])
        for (service, base), (audit, found, _) in zip(services, collected):
            reports.append(audit.service(service, base, found))
    cache.save()

    findings: list[Finding] = list(fleet.findings)
    for audit in audits.values():
        findings.extend(audit.env.findings)
    for image in bases.images.values():
        findings.extend(image.findings)
        findings.extend(image.dpkg.findings)
        findings.extend(image.fs.findings)  # symlink loops met while resolving
    families = {  # a parent outside the fleet is none
        name: replace(spec, parent=spec.parent if spec.parent in fleet.families else None)
        for name, spec in fleet.families.items()
    }
    findings.extend(_dockerfile_findings(families))
    cpu = frozenset(name for name in families if not bases.is_gpu(name))
    plans = tuple(plan_families(families, reports, rules, index, hoist=options.hoist, cpu_families=cpu))
    first = next(iter(audits.values()))
    labels = {base.label for _, base in services}
    return ScanReport(
        distro=rules.distro,
        python_version=first.target.python_version,
        distribution_count=len({key for audit in audits.values() for key in audit.env.distributions}),
        services=tuple(_installed_by_families(service, plans, rules, index) for service in reports),
        findings=tuple(sorted(set(findings))),
        base_image=labels.pop() if len(labels) == 1 else None,
        families=plans,
    )


def _fleet(options: ScanOptions) -> Fleet:
    if options.config is None:
        return fleet_from_paths(options.paths)
    try:
        return fleet_from_config(load_config(options.config), options.paths)
    except ConfigError as error:
        raise InputError(str(error)) from error


class _Bases:
    """What each service's image is built on: FROM chain, base image, Python environment, ENV.

    The command line wins over the config, a family's own setting over its parent's, and the
    config's top level over the conventions (the image's own site-packages, a profile of the
    FROM chain's external image)."""

    def __init__(self, options: ScanOptions, fleet: Fleet) -> None:
        self.options = options
        self.fleet = fleet
        self.config = fleet.config
        self.images: dict[str, BaseImage] = {}
        self.profiles: set[str] = set()  # distros of the profiles used
        self.given = _open_base_image(options)  # --rootfs / --image
        if self.given is not None:
            self.images[str(self.given.label)] = self.given
        self.fixed = _profile(options.base_image)  # --base-image
        self._profiles: dict[str, BaseProfile | None] = {}  # reference → profile, read once
        self._environments: dict[tuple[int, str], Path | None] = {}  # (image, its path) → copied out
        self.explicit = _rules(options.distro, self.given) if options.distro else None  # a usage error first

    def of(self, service: Service, placement: Placement) -> _ServiceBase:
        chain = self.fleet.chain(placement)
        lineage = self.fleet.lineage(placement.family)
        image, profile = self._base(chain, lineage)
        base_env = image.env if image else (profile.env if profile else {})
        environment = chain_env(chain, base_env) if chain else dict(base_env)
        if self.config is not None:
            environment.update(self.config.env)
        for family in reversed(lineage):  # the farthest ancestor first, the nearest family last
            environment.update(family.env)
        environment.update(self.options.env)
        if profile is not None:
            self.profiles.add(profile.distro)
        label = image.label if image else (profile.image if profile else None)
        return _ServiceBase(
            label=label,
            families=chain.families if chain else (),
            profile=profile,
            ld_library_path=tuple(p for p in environment.get("LD_LIBRARY_PATH", "").split(":") if p),
            cuda_version=environment.get("CUDA_VERSION"),
            chain=chain,
            image=image,
            site_packages=self._site_packages(lineage, image),
        )

    def rules(self) -> DistroRules:
        if self.explicit is not None:
            return self.explicit
        distro = self.config.distro if self.config is not None else None
        if distro is None:
            distros = {image.distro for image in self.images.values() if image.distro in known_distros()}
            distros |= self.profiles
            distro = distros.pop() if len(distros) == 1 else None
        return _rules(distro, None)

    def is_gpu(self, family: str) -> bool:
        """A GPU family: configured so, or built on a CUDA image (an unknown base counts as GPU:
        only a family known to be CPU is kept from gaining a hoisted package)."""
        for spec in self.fleet.lineage(family):
            if spec.gpu is not None:
                return spec.gpu
        chain = self.fleet.chain(Placement(None, family))
        image, profile = self._base(chain, self.fleet.lineage(family))
        if profile is not None:
            return "CUDA_VERSION" in profile.env or "cuda" in profile.image
        if image is not None:
            return "CUDA_VERSION" in image.env or "cuda" in image.label.lower()
        reference = chain.image if chain else None
        return reference is None or "cuda" in reference.lower()

    def _base(self, chain: BaseChain | None, lineage: Sequence[FamilySpec]) -> tuple[BaseImage | None, BaseProfile | None]:
        if self.given is not None or self.fixed is not None:
            return self.given, self.fixed
        configured = next((f.base_image for f in lineage if f.base_image), None)
        if configured is None and self.config is not None:
            configured = self.config.base_image
        if configured is not None:
            return self._configured(configured)
        if chain is not None and chain.image:
            if chain.image not in self._profiles:  # every service of a family asks again
                self._profiles[chain.image] = _known_profile(chain.image)
            return None, self._profiles[chain.image]
        return None, None

    def _configured(self, reference: str) -> tuple[BaseImage | None, BaseProfile | None]:
        path = Path(reference)
        if path.is_absolute() and path.exists():
            if reference not in self.images:
                try:
                    self.images[reference] = open_image(path)
                except ImageFormatError as error:
                    raise InputError(f"base-image {reference}: {error}") from error
            return self.images[reference], None
        if reference not in self._profiles:
            self._profiles[reference] = _profile(reference)
        return None, self._profiles[reference]

    def _site_packages(self, lineage: Sequence[FamilySpec], image: BaseImage | None) -> tuple[Path, ...]:
        chosen: tuple[Path, ...] = self.options.site_packages
        if not chosen:
            chosen = next((f.site_packages for f in lineage if f.site_packages), ())
        if not chosen and self.config is not None:
            chosen = self.config.site_packages
        for path in chosen:
            if not path.is_dir():
                raise InputError(f"site-packages: not a folder: {path}")
        if not chosen and image is not None:
            chosen = tuple(filter(None, (self._image_environment(image, path) for path in image.site_packages)))
        return tuple(p.resolve() for p in chosen) or default_site_packages()

    def _image_environment(self, image: BaseImage, path: str) -> Path | None:
        """A site-packages of the image, readable here (copied out of a layered image once)."""
        key = (id(image), path)
        if key not in self._environments:
            self._environments[key] = image.fs.python_environment(path, read_by_the_scan)
        return self._environments[key]


def _dockerfile_findings(families: Mapping[str, FamilySpec]) -> list[Finding]:
    """What each family Dockerfile, as the fleet read it, says a person should fix."""
    findings = []
    for family in families.values():
        dockerfile = family.source
        if dockerfile.text is None:
            findings.append(Finding(FindingKind.UNREADABLE_FILE, dockerfile.display, None, f"cannot read: {dockerfile.error}"))
            continue
        findings.extend(Finding(FindingKind.DOCKERFILE, dockerfile.display, line, message) for line, message in dockerfile.problems)
    return findings


def _installed_by_families(
    service: ServiceReport, plans: tuple[FamilyPlan, ...], rules: DistroRules, index: PackageIndex | None
) -> ServiceReport:
    """A package a family Dockerfile on the service's FROM chain installs, or one such a package
    depends on, is not missing from the image the service runs in: only what the plan would
    add stays `missing`."""
    installs = {plan.name: plan.installs for plan in plans}
    by: dict[str, str] = {}
    for family in service.families:  # nearest first
        for package in installs.get(family, ()):
            by.setdefault(package, family)
    for package, root in pulled_in(list(by), rules, index).items():
        by.setdefault(package, f"{by[root]} (a dependency of {root})")
    needs = tuple(
        replace(need, status="installed", chain=(*need.chain, f"installed by {by[need.package]}"), tried=())
        if need.status == "missing" and need.package in by
        else need
        for need in service.needs
    )
    return replace(service, needs=_best_needs(needs))


def _known_profile(reference: str) -> BaseProfile | None:
    try:
        return load_profile(reference)
    except RulesError:
        return None  # an image we carry no profile of: the distro's base packages are assumed


def _open_base_image(options: ScanOptions) -> BaseImage | None:
    if options.rootfs is not None:
        return open_rootfs(options.rootfs.resolve(), options.env)
    if options.image is not None:
        try:
            return open_image(options.image.resolve(), options.env)
        except ImageFormatError as error:
            raise InputError(str(error)) from error
    return None


def _profile(reference: str | None) -> BaseProfile | None:
    if reference is None:
        return None
    try:
        return load_profile(reference)
    except RulesError as error:
        raise InputError(str(error)) from error


def _rules(distro: str | None, image: BaseImage | None) -> DistroRules:
    if distro is None:
        distro = image.distro if image and image.distro in known_distros() else DEFAULT_DISTRO
    try:
        return load_rules(distro)
    except RulesError as error:
        raise InputError(str(error)) from error


def default_site_packages() -> tuple[Path, ...]:
    """The site-packages of the interpreter running depaudit (purelib, then platlib)."""
    import sysconfig

    paths = sysconfig.get_paths()
    unique: list[Path] = []
    for name in ("purelib", "platlib"):
        path = Path(paths[name])
        if path not in unique:
            unique.append(path)
    return tuple(unique)
