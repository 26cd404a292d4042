"""The minimal apt diff per family: what its services need, less what is already there."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from dataclasses import dataclass, replace

from depaudit.dockerfile.model import Dockerfile
from depaudit.dockerfile.parse import AptInstall, AptPackage, Instruction
from depaudit.dockerfile.programs import programs_run
from depaudit.evidence import NeedKind, NeedStatus, Tier
from depaudit.fleet.layout import FamilySpec
from depaudit.packages.classify import package_for_program
from depaudit.packages.depends import depths_from, pulled_in
from depaudit.packages.index import PackageIndex
from depaudit.packages.rules import DistroRules
from depaudit.packages.sizes import PackageSizes
from depaudit.plan.model import BaseProvides, FamilyPlan, PlanItem
from depaudit.packages.model import Need, ServiceReport

# Packages that build software: they have no place in a runtime image.
_BUILD_TOOLS = frozenset(
    {"build-essential", "cmake", "pkg-config", "pkgconf", "gcc", "g++", "make", "ninja-build", "autoconf",
     "automake", "libtool", "gfortran", "clang", "meson", "swig", "cython3"}
)


def plan_families(
    families: Mapping[str, FamilySpec],
    services: Sequence[ServiceReport],
    rules: DistroRules,
    index: PackageIndex | None = None,
    *,
    hoist: bool = False,
    cpu_families: frozenset[str] = frozenset(),
    provided: Mapping[str, BaseProvides] | None = None,
    sizes: PackageSizes | None = None,
    service_dockerfiles: Sequence[tuple[str, Dockerfile]] = (),
) -> list[FamilyPlan]:
    """`provided`: per family, what its base image installs already (none known: nothing)."""
    lists = {name: _apt_lists(family) for name, family in families.items()}
    installs = {name: [package for install in found for package in install.packages] for name, found in lists.items()}
    needs = {name: _needed([s for s in services if name in s.families]) for name in families}  # its services and its children's
    # What each family's plan keeps of what it installs: only these pull other packages in, so
    # no package is called redundant because of one the same plan removes.
    runs = _programs(families, lists, service_dockerfiles)
    kept = {
        name: {p.name for p in installs[name] if p.name in needs[name] or _runtime(p.name, rules)}
        | _run_by_images(name, families, runs, {p.name for p in installs[name]}, rules, index)
        | _configured_keep(families[name], installs[name])
        for name in families
    }
    # What each family's own services need and the plan adds where it is missing.
    wanted_by = {name: set(_wanted([s for s in services if s.families and s.families[0] == name])) for name in families}
    # A listed package the base image provides is dropped from the list: it pulls nothing in for the plan.
    base = {name: (provided or {})[name].packages if name in (provided or {}) else frozenset() for name in families}
    for name in families:
        kept[name] -= base[name]
    for name in _top_down(families):
        above = {p for a in _ancestors(name, families) for p in (*kept[a], *wanted_by[a])}
        optional = _optional([s for s in services if name in s.families])
        kept[name] |= _providers(
            installs[name], kept[name] | wanted_by[name], above, optional, rules, index, sizes, (provided or {}).get(name)
        )
    plans = []
    added: dict[str, set[str]] = {}  # what each family's plan adds: parents are planned first
    dropped: dict[str, set[str]] = {}  # what each family's plan calls unused
    for name in _top_down(families):
        family = families[name]
        ancestors = _ancestors(name, families)
        own = [s for s in services if s.families and s.families[0] == name]
        # What a parent family installs and its plan keeps: a package its plan drops is no reason here.
        from_ancestors = {p.name: a for a in reversed(ancestors) for p in installs[a] if p.name not in dropped[a]}
        own_packages = [p.name for p in installs[name]]
        needed = needs[name]
        wanted = _wanted(own)

        chosen = set(own_packages) | set(from_ancestors)
        kept_above = {p for a in ancestors for p in (*kept[a], *added[a])}
        added_above = {p: a for a in reversed(ancestors) for p in added[a]}  # the nearest ancestor wins
        add_candidates = {p: e for p, e in wanted.items() if p not in chosen and p not in kept_above}
        pulls = pulled_in(kept[name] | set(add_candidates) | kept_above, rules, index, sizes, base[name])
        virtual = _virtual(installs[name], kept[name] | set(pulls) | kept_above | base[name], sizes)
        add = [
            PlanItem(package, Tier.REQUIRED, because)
            for package, because in sorted(add_candidates.items())
            if package not in pulls
        ]
        added[name] = {item.package for item in add}

        groups: dict[str, list[PlanItem]] = {"redundant": [], "build_only": [], "unused": []}
        seen: set[str] = set()
        for package in installs[name]:
            if package.name not in seen:
                seen.add(package.name)
                elsewhere = _Elsewhere(from_ancestors, added_above, (provided or {}).get(name), pulls, virtual)
                verdict = _classify_own(package, name, elsewhere, needed, kept[name], family.keep)
                if verdict is not None:
                    groups[verdict[0]].append(verdict[1])
        dropped[name] = {item.package for item in groups["unused"]}
        plans.append(
            FamilyPlan(
                name=name,
                dockerfile=family.display,
                parent=family.parent,
                distro=rules.distro,
                installs=tuple(dict.fromkeys(own_packages)),
                services=tuple(sorted(s.name for s in own)),
                add=tuple(add),
                unused=tuple(groups["unused"]),
                redundant=tuple(groups["redundant"]),
                build_only=tuple(groups["build_only"]),
                apt_line=lists[name][0].instruction.line if lists[name] else None,
                source=family.source,
            )
        )
    plans.sort(key=lambda plan: plan.name)
    return _hoisted(plans, families, cpu_families) if hoist else plans


def _hoisted(plans: list[FamilyPlan], families: Mapping[str, FamilySpec], cpu: frozenset[str]) -> list[FamilyPlan]:
    """A package two or more families would add moves to their nearest common parent family,
    unless a CPU family is built on that parent: CPU images never gain a package."""
    by_name = {plan.name: plan for plan in plans}
    wanting: dict[str, list[str]] = {}
    for plan in plans:
        for item in plan.add:
            wanting.setdefault(item.package, []).append(plan.name)
    moves: dict[str, tuple[str, list[str]]] = {}  # package → (ancestor, the families it leaves)
    for package, names in wanting.items():
        if len(names) < 2:
            continue
        lines = [_ancestors(name, families) for name in names]
        common = [a for a in lines[0] if all(a in line for line in lines[1:])]
        if common and common[0] in by_name and not _feeds_cpu(common[0], families, cpu):
            moves[package] = (common[0], sorted(names))
    if not moves:
        return plans
    result = []
    for plan in plans:
        add = [item for item in plan.add if item.package not in moves]
        add += [
            PlanItem(package, Tier.REQUIRED, f"hoisted: {', '.join(children)} all need it")
            for package, (ancestor, children) in sorted(moves.items())
            if ancestor == plan.name and package not in plan.installs
        ]
        result.append(replace(plan, add=tuple(sorted(add))))
    return result


def _feeds_cpu(ancestor: str, families: Mapping[str, FamilySpec], cpu: frozenset[str]) -> bool:
    """Whether the ancestor is a CPU family or one is built on it, at any depth."""
    return any(name in cpu and (name == ancestor or ancestor in _ancestors(name, families)) for name in families)


@dataclass(frozen=True)
class _Elsewhere:
    """What else puts a family's listed packages into its image, as the plan leaves it."""

    parents: Mapping[str, str]  # package → the parent family that installs it and keeps it
    parents_add: Mapping[str, str]  # package → the parent family this plan adds it to
    base: BaseProvides | None  # what the base image has
    pulls: Mapping[str, str]  # package → the kept package whose Depends bring it in
    virtual: Mapping[str, str]  # virtual package → the kept package that provides it


def _classify_own(
    package: AptPackage,
    family: str,
    elsewhere: _Elsewhere,
    needed: Mapping[str, tuple[Tier, str]],
    kept: set[str],
    keep: tuple[str, ...],
) -> tuple[str, PlanItem] | None:
    name = package.name
    tier = needed[name][0] if name in needed else Tier.OPTIONAL

    def redundant(because: str) -> tuple[str, PlanItem]:
        return "redundant", PlanItem(name, tier, because, package.line)

    if _matches(name, keep):
        return None  # the config says so: no verdict on it
    if name in elsewhere.parents:
        return redundant(f"already installed by the parent family {elsewhere.parents[name]}")
    if name in elsewhere.parents_add:
        return redundant(f"this plan adds it to the parent family {elsewhere.parents_add[name]}")
    if elsewhere.base is not None and name in elsewhere.base.packages:
        return redundant(f"the base image {elsewhere.base.image} provides it")
    if name in elsewhere.pulls and elsewhere.pulls[name] != name:
        return redundant(f"installed anyway as a dependency of {elsewhere.pulls[name]}")
    if name in elsewhere.virtual:
        return redundant(f"a virtual package that {elsewhere.virtual[name]} provides, and it stays")
    if name.endswith("-dev") or name in _BUILD_TOOLS:
        return "build_only", PlanItem(name, tier, "a build-time package in a runtime image", package.line)
    if name not in kept:  # no service needs it; not the runtime; no program the image runs
        return "unused", PlanItem(
            name, Tier.OPTIONAL, f"no service built on {family} needs it: no import, library or program leads to it", package.line
        )
    return None


def _programs(
    families: Mapping[str, FamilySpec], lists: Mapping[str, list[AptInstall]], services: Sequence[tuple[str, Dockerfile]]
) -> dict[str, dict[str, int]]:
    """What each family's image runs itself: its Dockerfile's last stage (RUN lines after its
    first install), and the Dockerfiles of the services built on it (every RUN line)."""
    runs = {}
    for name, family in families.items():
        after = lists[name][0].instruction.line if lists[name] else 0
        runs[name] = programs_run(_last_stage(family.source), after)
    for family_name, dockerfile in services:
        if family_name in runs:
            for program, line in programs_run(_last_stage(dockerfile)).items():
                runs[family_name].setdefault(program, line)
    return runs


def _last_stage(dockerfile: Dockerfile) -> list[Instruction]:
    instructions = list(dockerfile.instructions)
    starts = [i for i, instruction in enumerate(instructions) if instruction.keyword == "FROM"]
    return instructions[starts[-1] if starts else 0 :]


def _run_by_images(
    name: str,
    families: Mapping[str, FamilySpec],
    runs: Mapping[str, Mapping[str, int]],
    installed: set[str],
    rules: DistroRules,
    index: PackageIndex | None,
) -> set[str]:
    """The family's installed packages whose programs its image, or one built on it, runs itself
    (tini as the ENTRYPOINT, curl in a HEALTHCHECK): the program's package, else the package of
    the same name."""
    kept = set()
    for family in families:
        if family != name and name not in _ancestors(family, families):
            continue
        for program in runs[family]:
            package = package_for_program(rules, program, index) or program
            if package in installed:
                kept.add(package)
    return kept


def _needed(services: Sequence[ServiceReport]) -> dict[str, tuple[Tier, str]]:
    """Package → its strongest evidence, over the services built on a family."""
    needed: dict[str, tuple[Tier, str]] = {}
    for service in services:
        for need in service.needs:
            if need.status is NeedStatus.MISSING and need.package and need.tier is not Tier.HINT:
                _strongest(needed, need.package, need.tier, _because(service.name, need))
            elif need.status is NeedStatus.LOADED and need.package and need.tier is not Tier.HINT:
                # An earlier import loads it first, so nothing adds the package; but where the
                # family installs it, the image may still load it from there: never unused.
                _strongest(needed, need.package, Tier.OPTIONAL, _because(service.name, need))
    return needed


def _runtime(package: str, rules: DistroRules) -> bool:
    """The Python interpreter's own packages, in every spelling of its version (python3.11,
    libpython3.11-minimal): never unused. A -dev package is a build package, never runtime."""
    return not package.endswith("-dev") and _matches(package, rules.python_runtime)


def _providers(
    installs: Sequence[AptPackage],
    kept: set[str],
    above: set[str],
    optional: set[str],
    rules: DistroRules,
    index: PackageIndex | None,
    sizes: PackageSizes | None,
    provided: BaseProvides | None,
) -> set[str]:
    """Listed packages that are the only way a needed package gets into the image: an optional
    need is never added, so the package that brings it stays (one that surely does before one
    that may, through a group of alternatives; then the nearest, the first by name)."""
    base = frozenset(provided.packages if provided is not None else ())
    have = kept | above | base | set(pulled_in(kept | above, rules, index, sizes, base))
    candidates = [p.name for p in installs if p.name not in kept and p.name not in base]
    surely = {name: depths_from(name, rules, index, sizes, base) for name in candidates}
    # Every package it may bring: keeping one that only might is the safe mistake.
    maybe = {name: depths_from(name, rules, index, sizes, base, maybe=True) for name in candidates}
    chosen: set[str] = set()
    for package in sorted(optional):
        if package in have:
            continue
        providers = sorted((package not in surely[p], maybe[p][package], p) for p in candidates if package in maybe[p])
        if providers:
            provider = providers[0][2]
            chosen.add(provider)
            have |= {provider, *surely[provider]}
    return chosen


def _virtual(installs: Sequence[AptPackage], present: set[str], sizes: PackageSizes | None) -> dict[str, str]:
    """Listed virtual packages (libasound2 on noble) that a package the image keeps provides."""
    found = {}
    for package in installs:
        providers = sizes.providers(package.name) if sizes is not None else ()
        provider = next((p for p in providers if p in present), None)
        if provider is not None:
            found[package.name] = provider
    return found


def _top_down(families: Mapping[str, FamilySpec]) -> list[str]:
    """Families with every parent before its children."""
    return sorted(families, key=lambda name: (len(_ancestors(name, families)), name))


def _configured_keep(family: FamilySpec, installs: Sequence[AptPackage]) -> set[str]:
    """The family's packages its config's `keep` names (a name or a glob)."""
    return {p.name for p in installs if _matches(p.name, family.keep)}


def _matches(package: str, patterns: Iterable[str]) -> bool:
    return any(package == pattern or ("*" in pattern and fnmatchcase(package, pattern)) for pattern in patterns)


def _optional(services: Sequence[ServiceReport]) -> set[str]:
    """The packages the services need that no plan adds: optional needs, and what an earlier load
    already gives (a required need is added to the family the service runs in)."""
    return {
        need.package
        for service in services
        for need in service.needs
        if need.package and need.tier is not Tier.HINT and (
            need.status is NeedStatus.LOADED or need.status is NeedStatus.MISSING and need.tier is Tier.OPTIONAL
        )
    }


def _wanted(services: Sequence[ServiceReport]) -> dict[str, str]:
    """Package → why: the required needs the services lack."""
    return {package: because for service in services for package, because in _required(service).items()}


def _required(service: ServiceReport) -> dict[str, str]:
    return {
        need.package: _because(service.name, need)
        for need in service.needs
        if need.status is NeedStatus.MISSING and need.package and need.tier is Tier.REQUIRED
    }


def _because(service: str, need: Need) -> str:
    what = "program" if need.kind is NeedKind.PROGRAM else "library"
    origin = need.origin
    return f"{service} needs the {what} {need.name} ({need.tier.value}): {origin if origin is not None else service}"


def _strongest(table: dict[str, tuple[Tier, str]], package: str, tier: Tier, because: str) -> None:
    current = table.get(package)
    if current is None or (tier is Tier.REQUIRED and current[0] is not Tier.REQUIRED):
        table[package] = (tier, because)


def _ancestors(name: str, families: Mapping[str, FamilySpec]) -> list[str]:
    chain, current = [], families[name].parent
    while current is not None and current in families and current not in chain:
        chain.append(current)
        current = families[current].parent
    return chain


def _apt_lists(family: FamilySpec) -> list[AptInstall]:
    # As the fleet read it: none when it could not be read (the scan reports it, unreadable_file).
    return list(family.source.apt_installs)
