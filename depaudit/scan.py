"""`depaudit scan`: the stages wired in order. Each stage decides; this module only hands values on.

fleet (services, families, bases) → collect (imports) → python (reach) → native (ELF walks and
hints of the reached wheels) → packages (each service's needs as package answers) → plan (the
apt diff per family, and the final verdict on each need). No rendering happens here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from depaudit import consulted, stage_memo
from depaudit.cache import ResultCache
from depaudit.collect.imports import ImportMemo, collect_imports
from depaudit.collect.local import LocalFinder
from depaudit.collect.model import ImportScope, Service, ServiceImports
from depaudit.findings import Finding, FindingKind
from depaudit.memo import memo_key
from depaudit.fleet.bases import Bases, ServiceBase, distro_rules
from depaudit.fleet.layout import load_fleet
from depaudit.native.distribution import analyse_folder
from depaudit.native.hints import OwnHints
from depaudit.native.store import ElfStore
from depaudit.native.wheels import WheelNatives
from depaudit.options import InputError, ScanOptions
from depaudit.packages.cuda import load_cuda_rules
from depaudit.packages.image_cuda import ImageCuda, image_cuda
from depaudit.packages.index import default_cache_dir, load_index
from depaudit.packages.model import ServiceReport
from depaudit.packages.mounts import DriverMounts
from depaudit.packages.python_rules import PackageRule, load_python_rules
from depaudit.packages.resolver import PackageResolver
from depaudit.packages.rules import DistroRules
from depaudit.packages.service import service_needs
from depaudit.packages.sizes import load_sizes
from depaudit.packages.walk_tiers import WalkTiers
from depaudit.packages.index import PackageIndex
from depaudit.parallel import Workers
from depaudit.plan.cuda import ServiceCuda, cuda_findings, service_cuda
from depaudit.plan.fleet import plan_fleet, prune_findings
from depaudit.plan.model import BaseProvides
from depaudit.progress import NoProgress, ScanProgress
from depaudit.python.environment import PythonEnvironment, infer_target, load_environment
from depaudit.python.locate import only_the_tool
from depaudit.python.model import TargetPython
from depaudit.python.calls import service_calls
from depaudit.python.modules import ModuleGraph, ModuleReach, service_starts
from depaudit.python.reach import Reach, ServiceReach, with_module_imports
from depaudit.python.requirements import RequirementFiles, check_declarations
from depaudit.report import ScanReport
from depaudit.suppress import apply_suppressions

__all__ = ["InputError", "ScanOptions", "run_scan"]


@dataclass(frozen=True)
class _Environment:
    """One Python environment the scan resolves against, with its stages' per-scan memos."""

    env: PythonEnvironment
    target: TargetPython
    reach: Reach
    natives: WheelNatives
    modules: ModuleGraph | None  # None under --no-module-reach
    tiers: WalkTiers  # its wheels' walk records ranked by module reach
    loaded: consulted.Consulted  # what loading `env` and `target` consulted


@dataclass(frozen=True)
class _Knowledge:
    """What the packages stage answers with: the same for every service of the scan."""

    rules: DistroRules
    index: PackageIndex | None
    python_rules: dict[str, PackageRule]
    # One resolver per base, which keeps its answers for the next service on that base. The
    # image and profile are the scan's own objects (Bases opens each once): their identity is the base's.
    resolvers: dict[tuple[int, int, str | None, tuple[str, ...], DriverMounts | None], PackageResolver] = field(default_factory=dict)

    def resolver(self, base: ServiceBase) -> PackageResolver:
        key = (id(base.image), id(base.profile), base.cuda_version, base.ld_library_path, base.driver_mounts)
        if key not in self.resolvers:
            self.resolvers[key] = PackageResolver(
                self.rules, self.index, base.image, base.profile, base.cuda_version, base.ld_library_path, base.driver_mounts
            )
        return self.resolvers[key]


def run_scan(options: ScanOptions, progress: ScanProgress | None = None) -> ScanReport:
    """The report of the scan `options` ask for; each stage is told to `progress` as it runs."""
    # None leaves the workers' per-result counting out entirely: a scan nobody watches pays nothing.
    told = progress or NoProgress()
    told.stage("fleet")
    _check_inputs(options)
    fleet = load_fleet(options)
    bases = Bases(options, fleet)
    services = [(service, bases.of(service, placement)) for service, placement in zip(fleet.services, fleet.placements)]
    rules = bases.rules()
    knowledge = _Knowledge(rules, load_index(rules.distro, options.cache_dir), load_python_rules())
    cache = ResultCache((options.cache_dir or default_cache_dir()) if options.use_cache else None)
    environments: dict[tuple[tuple[Path, ...], int], _Environment] = {}
    requirements = RequirementFiles()
    finder, memo = LocalFinder(), ImportMemo()
    told.done("fleet", f"{len(services)} services, {len(fleet.families)} families")
    with Workers(options.processes, progress) as workers:
        store = ElfStore(cache, workers)
        own_hints = OwnHints(cache, workers)  # the services' own files' hints, each file's found once
        reached = []  # (service, base, environment, imports, reach): every import read before any wheel
        loaded_before = 0
        told.stage("collect")
        told.count("services", 0, expected=len(services))
        told.count("files read", 0)
        for service, base in services:
            told.stage("python")
            key = (base.site_packages, id(base.image))
            if key not in environments:
                env, target, loaded, kept = _load_environment(options, cache, base)
                loaded_before += kept
                # Read in this process, while the workers read ELF files (natives.read below).
                modules = ModuleGraph(env, cache) if options.module_reach else None
                environments[key] = _Environment(
                    env, target, Reach(env, target, cache), WheelNatives(env, store, base.image), modules, WalkTiers(), loaded
                )
            environment = environments[key]
            told.stage("collect")
            imports = collect_imports(service, cache, workers, finder, memo)
            told.count("services")
            told.count("files read", len(imports.files))
            told.stage("python")
            reached.append((service, base, environment, imports, environment.reach.of(imports.imports)))
        told.done("collect")
        distributions = len({(id(environment), item.key) for _, _, environment, _, reach in reached for item in reach.reached})
        as_kept = f" ({loaded_before} as kept by a scan before)" if loaded_before else ""
        told.done("python", f"{len(environments)} environment(s){as_kept}, {distributions} distributions reached")
        _refuse_empty_environments(reached)
        _refuse_the_tools_own(reached)
        # The module walk (python's) runs in here while the workers read ELF files: it is native's time.
        told.stage("native")
        walked = kept = 0
        module_walks: dict[int, ModuleReach] = {}  # position in `reached` → what its imports run in the wheels
        for (site_packages, _), environment in environments.items():
            wanted: dict[tuple[str, ...], set[str]] = {}
            for _, base, owner, _, reach in reached:
                if owner is environment:
                    wanted.setdefault(base.ld_library_path, set()).update(item.key for item in reach.reached)
            walked += sum(len(keys) for keys in wanted.values())
            mine = [(position, i, r) for position, (_, _, o, i, r) in enumerate(reached) if o is environment]
            meanwhile = partial(_module_reach, environment, mine, module_walks)
            kept += _read_natives(options, cache, site_packages, environment, wanted, meanwhile)
        told.done("native", f"{walked} distribution walks" + (f", {kept} environment(s) as kept by a scan before" if kept else ""))
        told.stage("packages")
        told.count("services", 0, expected=len(reached))
        reports = []
        cuda_rules = load_cuda_rules()
        cuda: list[ServiceCuda] = []
        image_libraries: dict[int, ImageCuda] = {}  # base image → its CUDA libraries, read once
        for position, (service, base, environment, imports, reach) in enumerate(reached):
            modules = module_walks[position] if position in module_walks else _walk_modules(environment, imports, reach)
            reports.append(_service_report(service, base, environment, imports, reach, modules, knowledge, requirements, store, own_hints))
            owner = environment.env.relative_owner
            held = None
            if base.image is not None and base.cuda_version is not None:
                if id(base.image) not in image_libraries:
                    image_libraries[id(base.image)] = image_cuda(base.image, cuda_rules, base.profile)
                held = image_libraries[id(base.image)]
            cuda.append(service_cuda(
                reports[-1], owner, cuda_rules, cuda_version=base.cuda_version, profile=base.profile, image=held,
                distro=base.image.distro if base.image is not None else None,
            ))
            told.count("services")
        told.done("packages", f"{sum(len(report.needs) for report in reports)} needs")
    cache.save()
    told.stage("plan")

    findings: list[Finding] = list(fleet.findings)
    for environment in environments.values():
        findings.extend(environment.env.findings)
    for choice in dict.fromkeys(base.environment for _, base in services):
        findings.extend(choice.findings)  # a lock's: pins without a wheel, refused hashes
    for image in bases.images.values():
        findings.extend(image.findings)
        findings.extend(image.dpkg.findings)
        findings.extend(image.fs.findings)  # symlink loops met while resolving
    for family in fleet.families.values():
        findings.extend(family.source.findings())
    cpu = frozenset(name for name in fleet.families if not bases.is_gpu(name))
    provided = {name: BaseProvides(*bases.provided(name, rules)) for name in fleet.families}
    sizes = load_sizes(rules.distro)
    if knowledge.index is not None and knowledge.index.sizes is not None:
        sizes = knowledge.index.sizes.merged(sizes)  # the index's own snapshot first
    plan = plan_fleet(
        fleet.families, reports, rules, knowledge.index, hoist=options.hoist, cpu_families=cpu, provided=provided, sizes=sizes,
        service_dockerfiles=[(p.family, p.source) for p in fleet.placements if p.family is not None and p.source is not None],
    )
    findings.extend(prune_findings(plan.families))
    findings.extend(cuda_findings(fleet.families, cuda, cuda_rules))
    told.done("plan", f"{len(plan.families)} families, {sum(len(family.add) for family in plan.families)} package(s) to add")
    first = next(iter(environments.values()))
    labels = {base.label for _, base in services}
    report = ScanReport(
        distro=rules.distro,
        python_version=first.target.python_version,
        distribution_count=len({key for environment in environments.values() for key in environment.env.distributions}),
        services=plan.services,
        findings=tuple(sorted(set(findings))),
        base_image=labels.pop() if len(labels) == 1 else None,
        families=plan.families,
        environments=tuple(dict.fromkeys(base.environment for _, base in services)),
    )
    # Last: what the fleet decided to live with leaves the verdict, listed with its reason.
    return apply_suppressions(report, fleet.config.ignores if fleet.config is not None else ())


def _refuse_empty_environments(
    reached: list[tuple[Service, ServiceBase, _Environment, ServiceImports, ServiceReach]],
) -> None:
    """An environment with no installed distribution, audited for a service that imports
    third-party modules, audits nothing and would pass every gate: an input error, naming the
    folders read, never a silent green."""
    for service, base, environment, imports, _ in reached:
        if environment.env.distributions:
            continue
        third = next((r for r in imports.imports if r.scope is ImportScope.THIRD_PARTY and not r.type_checking), None)
        if third is not None and base.environment.findings:  # a lock none of whose pins could be laid out
            first = base.environment.findings[0].message
            more = len(base.environment.findings) - 1
            raise InputError(
                f"nothing could be audited of {base.environment.source}, yet {service.name} imports {third.top_level} "
                f"({third.file}:{third.line}): {first}" + (f" (and {more} more such finding(s))" if more else "")
            )
        if third is not None:
            shown = ", ".join(str(path) for path in base.site_packages) or "(none)"
            raise InputError(
                f"no installed distribution in {shown}, yet {service.name} imports {third.top_level} "
                f"({third.file}:{third.line}): give --site-packages the environment the services run in "
                "(a site-packages folder or a venv root)"
            )


def _refuse_the_tools_own(
    reached: list[tuple[Service, ServiceBase, _Environment, ServiceImports, ServiceReach]],
) -> None:
    """Nothing named an environment and depaudit's own holds nothing but depaudit (pipx, `uv
    tool`): auditing it would report the services' every import as missing. An input error that
    says how to name the right one."""
    for _, base, environment, _, _ in reached:
        if base.environment.fallback and only_the_tool(environment.env.distributions):
            shown = ", ".join(str(path) for path in base.site_packages)
            raise InputError(
                f"no Python environment named, and the one depaudit runs from ({shown}) holds only depaudit: "
                "give --site-packages (a site-packages folder or a venv root) or --python (the services' "
                "interpreter), activate the services' venv, or run where their ./.venv is"
            )


def _read_natives(
    options: ScanOptions,
    cache: ResultCache,
    site_packages: tuple[Path, ...],
    environment: _Environment,
    wanted: dict[tuple[str, ...], set[str]],
    meanwhile: Callable[[], None],
) -> bool:
    """The native stage of one environment; given back by the stage memo (stage_memo.py) when
    the environment and every wheel file the stage looked at are as they were — a scan that
    misses the whole-scan memo because a service file was edited then skips the 33 walks of a
    CUDA venv. Not where `_stage_cache` says no.
    Whether the result was given back."""
    natives = environment.natives
    cache_dir = _stage_cache(cache, site_packages, natives.image)
    if cache_dir is None:
        natives.read(wanted, meanwhile)
        return False
    # The results file's name holds depaudit's version and its code's fingerprint.
    key = repr(("native", memo_key(options), cache.path.name, site_packages, sorted((path, sorted(keys)) for path, keys in wanted.items())))
    kept = stage_memo.recall(cache_dir, key)
    if kept is not None:
        natives.restore(*kept)
        meanwhile()
        return True
    with stage_memo.scope() as read:
        natives.read(wanted, meanwhile)
    recorded = consulted.Consulted(started_ns=environment.loaded.started_ns)
    recorded.merge(environment.loaded)  # the environment's RECORDs say which files a walk reads
    recorded.merge(read)
    stage_memo.keep(cache_dir, key, recorded, natives.kept())
    return False


def _load_environment(
    options: ScanOptions, cache: ResultCache, base: ServiceBase
) -> tuple[PythonEnvironment, TargetPython, consulted.Consulted, bool]:
    """The environment a service's base names, and what loading it consulted (the native
    stage's memo depends on it too). Given back by the stage memo while every RECORD, METADATA
    and folder it read is as it was: reading a CUDA venv's 34 RECORDs costs ~0.2 s. Whether it
    was given back."""
    cache_dir = _stage_cache(cache, base.site_packages, base.image)
    key = repr(("environment", memo_key(options), cache.path.name if cache.path else None, base.site_packages))
    with stage_memo.scope() as loaded:
        kept = stage_memo.recall(cache_dir, key) if cache_dir is not None else None
        if kept is not None:
            return (*kept, loaded, True)
        env = load_environment(base.site_packages)
        target = infer_target(base.site_packages)
    if cache_dir is not None:
        recorded = consulted.Consulted(started_ns=loaded.started_ns)
        recorded.merge(loaded)
        stage_memo.keep(cache_dir, key, recorded, (env, target))
    return env, target, loaded, False


def _stage_cache(cache: ResultCache, site_packages: tuple[Path, ...], image: object) -> Path | None:
    """Where the stage memo keeps an environment's stages; None when it may not: no cache, no
    recording of what the scan consults, an image's environment (read out of scratch copies,
    never stamped), or one laid out in the cache folder (a lock's: nothing there is stamped)."""
    if cache.path is None or not consulted.active() or image is not None:
        return None
    folder = cache.path.parent
    own = os.path.join(os.path.abspath(folder), "")
    if any(os.path.join(os.path.abspath(path), "").startswith(own) for path in site_packages):
        return None
    return folder


def _module_reach(
    environment: _Environment, reaches: list[tuple[int, ServiceImports, ServiceReach]], walks: dict[int, ModuleReach]
) -> None:
    """Walk every service's modules once, kept for its report by its position in the scan."""
    for position, imports, reach in reaches:
        found = _walk_modules(environment, imports, reach)
        if found is not None:
            walks[position] = found


def _walk_modules(environment: _Environment, imports: ServiceImports, reach: ServiceReach) -> ModuleReach | None:
    """What the service's imports and calls run in the wheels; None under --no-module-reach."""
    if environment.modules is None:
        return None
    return environment.modules.reach(service_starts(reach.imports), service_calls(imports.calls, reach.imports))


def _check_inputs(options: ScanOptions) -> None:
    """Usage errors before any work."""
    for path in (*options.paths, *options.site_packages, *filter(None, [options.rootfs])):
        if not consulted.is_dir(path):
            raise InputError(f"not a folder: {path}")
    if options.image is not None and not consulted.exists(options.image):
        raise InputError(f"no such image: {options.image}")
    if options.distro:
        distro_rules(options.distro, None)


def _service_report(
    service: Service,
    base: ServiceBase,
    environment: _Environment,
    imports: ServiceImports,
    reach: ServiceReach,
    modules: ModuleReach | None,
    knowledge: _Knowledge,
    requirements: RequirementFiles,
    store: ElfStore,
    own_hints: OwnHints,
) -> ServiceReport:
    """Stages three and four of one service, and its requirements checked against its reach."""
    natives = environment.natives
    if modules is not None:
        # Distributions only the wheels' own imports lead to: read now, on their own (few).
        reach = with_module_imports(reach, modules, environment.env)
    walks = {item.key: natives.walk(item.key, base.ld_library_path) for item in reach.reached}
    hints = {item.key: natives.hints(item.key) for item in reach.reached}
    in_own_code = own_hints.of(imports.files, service.display_root)
    own_elf = None
    if imports.elf_files:
        own_elf = analyse_folder(service.name, imports.elf_files, service.display_root, base.ld_library_path, base.image, store)
    resolver = knowledge.resolver(base)
    needs, findings = service_needs(
        service.name,
        reach,
        resolver,
        distributions=environment.env.distributions,
        natives=walks,
        hints=hints,
        python_rules=knowledge.python_rules,
        first_imports=environment.reach.first_imports.of,
        modules=modules,
        own_hints=in_own_code,
        own_elf=own_elf,
        tiers=environment.tiers,
    )
    declared, declared_findings = requirements.read(service.requirement_files, service.display_root, environment.target)
    findings += [*imports.findings, *reach.findings, *declared_findings]
    if modules is not None:
        findings += [Finding(FindingKind.REACH_LIMIT, limit.relative, limit.line, limit.reason) for limit in modules.calls.limits]
    findings += check_declarations(
        declared,
        reach.first_import,
        {item.key for item in reach.reached},
        environment.env,
        has_requirements=bool(service.requirement_files),
    )
    return ServiceReport(
        name=service.name,
        imports=reach.imports,
        needs=needs,
        findings=tuple(sorted(set(findings))),
        base_image=base.label,
        families=base.families,
        display_root=service.display_root,
    )

