"""The fleet as the scan sees it: services, family images, and which family each service runs in.

From a config (`depaudit.toml`) where there is one, else from conventions: each subfolder of a
scanned path is a service, its own `Dockerfile`'s `FROM` names its family, and family
Dockerfiles are found by name below the folder that holds the services.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from depaudit.collect.model import Service
from depaudit.collect.services import discover_services, entry_service, folder_service
from depaudit.dockerfile.model import Dockerfile, Dockerfiles
from depaudit.dockerfile.parse import BuildContext
from depaudit.findings import Finding, FindingKind
from depaudit.fleet.config import ConfigError, FleetConfig, load_config, one_line, toml_key
from depaudit.fleet.families import BaseChain, family_dockerfile_claims, family_name
from depaudit.options import InputError, ScanOptions
from depaudit.paths import shown_path


@dataclass(frozen=True)
class FamilySpec:
    name: str
    source: Dockerfile  # the family's Dockerfile as the scan read it; shown relative to the fleet's folder
    parent: str | None
    site_packages: tuple[Path, ...] = ()
    python: Path | None = None  # an interpreter whose environment its image has
    base_image: str | None = None  # a profile reference, or an absolute rootfs / image path
    env: Mapping[str, str] = field(default_factory=dict)
    gpu: bool | None = None
    keep: tuple[str, ...] = ()  # the config's: packages the plan leaves alone

    @property
    def dockerfile(self) -> Path:
        """Where its Dockerfile is."""
        return self.source.path

    @property
    def display(self) -> str:
        """Its Dockerfile as reports show it: posix, relative to the fleet's folder."""
        return self.source.display


@dataclass(frozen=True)
class Placement:
    """Where one service runs: its own Dockerfile, if any, and the nearest family image."""

    source: Dockerfile | None  # the service's own Dockerfile as the scan read it
    family: str | None


@dataclass(frozen=True)
class Fleet:
    services: tuple[Service, ...]
    placements: tuple[Placement, ...]  # one per service, same order
    families: Mapping[str, FamilySpec]
    findings: tuple[Finding, ...] = ()
    config: FleetConfig | None = None

    def chain(self, placement: Placement) -> BaseChain | None:
        """The family images from the service's up to the external base image, nearest first."""
        names: list[str] = []
        current = placement.family
        while current is not None and current in self.families and current not in names:
            names.append(current)
            current = self.families[current].parent
        dockerfiles = [self.families[name].source for name in names]
        if placement.source is not None:
            dockerfiles.insert(0, placement.source)
        if not dockerfiles:
            return None
        top = dockerfiles[-1].image()
        # The top's FROM is the external base unless it names a family again (a cycle).
        external = top is not None and top.base and family_name(top.base) not in self.families
        return BaseChain(tuple(names), tuple(dockerfiles), top.base if external and top is not None else None)

    def lineage(self, family: str | None) -> list[FamilySpec]:
        """The family and its ancestors, nearest first."""
        found: list[FamilySpec] = []
        while family is not None and family in self.families and self.families[family] not in found:
            found.append(self.families[family])
            family = self.families[family].parent
        return found


def fleet_from_paths(paths: Sequence[Path]) -> Fleet:
    """The conventions alone: each PATH holds services (or is one); families are found by name
    below the folder above the services."""
    services: list[Service] = []
    findings: list[Finding] = []
    for path in paths:
        found, problems = discover_services(path.resolve())
        services.extend(found)
        findings.extend(problems)
    indexes: dict[Path, dict[str, list[Path]]] = {}
    for service in services:
        root = _family_root(service)
        if root not in indexes:
            indexes[root] = family_dockerfile_claims(root)
    return _assemble(services, {}, indexes, None, findings)


def _family_root(service: Service) -> Path:
    """Where family Dockerfiles are looked for: the folder above the scanned one, but never
    above the repository that holds the service. Scanning a repository that is itself one
    service (`depaudit scan ~/code/svc`) would otherwise walk all of ~/code, and could take
    another project's Dockerfile for a family."""
    above = service.display_root.parent
    for folder in (service.root, *service.root.parents):
        if folder == above:
            break
        if (folder / ".git").exists():  # a folder, or a file in a worktree or a submodule
            return folder
    if above == above.parent:
        # `depaudit scan /app`: the folder above is the file system's root, and walking it would
        # take any Dockerfile of the machine for a family (and --write would patch it).
        return service.display_root
    return above


def fleet_from_config(config: FleetConfig, paths: Sequence[Path] = ()) -> Fleet:
    """The config's families and services, plus the services its `paths` (or the given PATHs,
    which replace them) hold by convention. A configured service wins over a found one."""
    services: dict[str, Service] = {}
    findings: list[Finding] = list(config.findings)
    for path in paths or config.paths:
        if not path.is_dir():
            raise ConfigError(f"paths: not a folder: {one_line(path)}")
        found, problems = discover_services(path.resolve())
        services.update((service.name, service) for service in found)
        findings.extend(problems)
    configured: dict[str, str | None] = {}
    for name, spec in config.services.items():
        where = f"[services.{toml_key(name)}]"
        if spec.entry is not None:
            if not spec.entry.is_file():
                raise ConfigError(f"{where} entry: no such file: {one_line(spec.entry)}")
            services[name] = entry_service(name, spec.entry, spec.source_roots, config.root, spec.requirements or ())
            for root in spec.source_roots:
                if not root.is_dir():
                    raise ConfigError(f"{where} source-roots: not a folder: {one_line(root)}")
        else:
            assert spec.path is not None
            if not spec.path.is_dir():
                raise ConfigError(f"{where} path: not a folder: {one_line(spec.path)}")
            service, problems = folder_service(spec.path, config.root, name)
            if spec.requirements is not None:
                service = replace(service, requirement_files=tuple(sorted(p.resolve() for p in spec.requirements)))
            services[name] = service
            findings.extend(problems)
        configured[name] = spec.family
    index = family_dockerfile_claims(config.root, config.family_globs)
    for name, family in config.families.items():
        if family.dockerfile is not None:
            if not family.dockerfile.is_file():
                raise ConfigError(f"[families.{toml_key(name)}] dockerfile: no such file: {one_line(family.dockerfile)}")
            index[name] = [family.dockerfile]  # the config decides: no other file claims it
        elif name not in index:
            globs = ", ".join(config.family_globs)
            raise ConfigError(f"[families.{toml_key(name)}]: no dockerfile given, and none of {one_line(globs)} finds one named {toml_key(name)}")
    for name, family in config.families.items():
        if family.parent is not None and family.parent not in index:
            raise ConfigError(f"[families.{toml_key(name)}] parent: no family named {family.parent!r}")
    for name, family_of in configured.items():
        if family_of is not None and family_of not in index:
            raise ConfigError(f"[services.{toml_key(name)}] family: no family named {family_of!r}")
    ordered = sorted(services.values(), key=lambda s: s.name)
    return _assemble(ordered, configured, {config.root: index}, config, findings)


def _assemble(
    services: Sequence[Service],
    configured_family: Mapping[str, str | None],
    indexes: Mapping[Path, Mapping[str, list[Path]]],
    config: FleetConfig | None,
    findings: list[Finding],
) -> Fleet:
    claims: dict[str, dict[str, tuple[Path, Path]]] = {}  # family → real path → (Dockerfile, the fleet folder it is shown from)
    for root, found in indexes.items():
        for name, paths in found.items():
            for path in paths:
                claims.setdefault(name, {}).setdefault(os.path.realpath(path), (path, root))
    index = {name: next(iter(found.values())) for name, found in claims.items()}
    dockerfiles = Dockerfiles()  # every Dockerfile of the scan is read here, once, and handed on
    placements: list[Placement] = []
    families: dict[str, FamilySpec] = {}
    for service in services:
        own = _own_dockerfile(service, config)
        # A service's own Dockerfile linked out of its project: refused like a family's.
        dockerfile = dockerfiles.read(own, boundary=service.root) if own is not None else None
        family = configured_family.get(service.name)
        if family is None and dockerfile is not None:
            family = _from_family(dockerfile, index)
        placements.append(Placement(dockerfile, family))
        _add_family(family, index, config, families, dockerfiles)
        if family is None and dockerfile is not None:
            shown = shown_path(dockerfile.path, service.display_root, resolve=True)
            findings += _unresolved_from(dockerfile, shown, f"the service {service.name} is", config)
    for name in config.families if config else ():
        _add_family(name, index, config, families, dockerfiles)
    # Every parent is a family of the fleet, so the plan never meets one it does not know.
    families = {name: replace(spec, parent=spec.parent if spec.parent in families else None) for name, spec in families.items()}
    families = _in_context(families)
    circles = _cycles(families)
    # Cut each circle at the family its finding is on: every later stage walks parents upward
    # and needs a top (the planner failed with a KeyError on a circle).
    families = {name: replace(spec, parent=None) if spec.display in {f.path for f in circles} else spec for name, spec in families.items()}
    findings += _shadowed(families, claims) + _unresolved(families, config) + circles
    return Fleet(tuple(services), tuple(placements), families, tuple(findings), config)


def _cycles(families: Mapping[str, FamilySpec]) -> list[Finding]:
    """Families built FROM one another in a circle (by FROM or the config's `parent`): no image
    can be built so, and its base is unknown. One finding per circle, on its first family."""
    findings: list[Finding] = []
    reported: set[str] = set()
    for start in sorted(families):
        path: list[str] = []
        name: str | None = start
        while name is not None and name in families and name not in path:
            path.append(name)
            name = families[name].parent
        if name is None or name not in path:
            continue
        circle = path[path.index(name):]
        if reported.intersection(circle):
            continue
        reported.update(circle)
        first = families[min(circle)]
        image = first.source.image()
        around = " → ".join([*(circle[circle.index(min(circle)):] + circle[: circle.index(min(circle))]), min(circle)])
        findings.append(Finding(
            FindingKind.DOCKERFILE, first.display, image.line if image is not None else None,
            f"the families are built from one another in a circle ({around}): no image can be built so, and "
            "their base image is unknown; fix the FROM lines or the config's `parent`",
        ))
    return findings


def _shadowed(families: Mapping[str, FamilySpec], claims: Mapping[str, Mapping[str, tuple[Path, Path]]]) -> list[Finding]:
    """A family of the fleet that two Dockerfiles claim: the first is read, the others are named."""
    found = []
    for name in sorted(families):
        for path, root in list(claims.get(name, {}).values())[1:]:
            found.append(Finding(
                FindingKind.DOCKERFILE, shown_path(path, root, resolve=True), None,
                f"this Dockerfile and {families[name].display} both claim the family {name}: depaudit reads"
                f" {families[name].display} and not this one; name the one you mean in the config"
                f" ([families.{toml_key(name)}] dockerfile)",
            ))
    return found


def _unresolved(families: Mapping[str, FamilySpec], config: FleetConfig | None) -> list[Finding]:
    """A family whose FROM names no image (a variable with no value), and no parent family."""
    found = []
    for name, spec in sorted(families.items()):
        if spec.parent is None:
            found += _unresolved_from(spec.source, spec.display, f"the services built on {name} are", config, spec.base_image)
    return found


def _unresolved_from(
    dockerfile: Dockerfile, shown: str, who: str, config: FleetConfig | None, own_base: str | None = None
) -> list[Finding]:
    """A finding when the Dockerfile's FROM names no image: what `who` ("the service x is") is audited against then."""
    image = dockerfile.image()
    if image is None or not image.unresolved:
        return []
    base = own_base or (config.base_image if config else None)
    against = f"audited against {base}, the config's base-image" if base else (
        "audited against the distro's base packages only; give it a value with the config's build-args, or set base-image"
    )
    return [Finding(
        FindingKind.DOCKERFILE, shown, image.line,
        f"FROM {image.unresolved}: no ARG default or build-arg gives it a value, so the base image is unknown; {who} {against}",
    )]


def _in_context(families: Mapping[str, FamilySpec]) -> dict[str, FamilySpec]:
    """Each family's Dockerfile read with the ENV of the family images it is built on (its
    build-args it was read with)."""
    result = {}
    for name, spec in families.items():
        lineage: list[FamilySpec] = []
        parent = spec.parent
        while parent is not None and parent in families and families[parent] not in lineage:
            lineage.append(families[parent])
            parent = families[parent].parent
        inherited: dict[str, str] = {}
        for ancestor in reversed(lineage):
            image = ancestor.source.image(inherited)
            inherited = image.env if image is not None else inherited
        if inherited:
            spec = replace(spec, source=replace(spec.source, context=BuildContext(inherited, spec.source.context.build_args)))
        result[name] = spec
    return result


def _add_family(
    name: str | None,
    index: Mapping[str, tuple[Path, Path]],
    config: FleetConfig | None,
    families: dict[str, FamilySpec],
    dockerfiles: Dockerfiles,
) -> None:
    """The family and, through its parents, every family above it."""
    while name is not None and name in index and name not in families:
        path, root = index[name]
        # A family Dockerfile is what --write changes: one linked out of the project is refused.
        dockerfile = dockerfiles.read(path, shown_path(path, root, resolve=True), boundary=root)
        own = config.families.get(name) if config else None
        build_args = {**(config.build_args if config else {}), **(own.build_args if own else {})}
        if build_args:  # FROM as well as the apt lists may name them
            dockerfile = replace(dockerfile, context=BuildContext({}, build_args))
        parent = own.parent if own is not None and own.parent is not None else _from_family(dockerfile, index)
        families[name] = FamilySpec(
            name=name,
            source=dockerfile,
            parent=parent if parent != name else None,
            site_packages=own.site_packages if own else (),
            python=own.python if own else None,
            base_image=own.base_image if own else None,
            env=own.env if own else {},
            gpu=own.gpu if own else None,
            keep=own.keep if own else (),
        )
        name = families[name].parent


def _own_dockerfile(service: Service, config: FleetConfig | None) -> Path | None:
    spec = config.services.get(service.name) if config else None
    if spec is not None and spec.dockerfile is not None:
        return spec.dockerfile if spec.dockerfile.is_file() else None
    if service.entry is not None:
        return None  # a script in a shared folder: that folder's Dockerfile is not its own
    candidate = service.root / "Dockerfile"
    return candidate if candidate.is_file() else None


def _from_family(dockerfile: Dockerfile, index: Mapping[str, tuple[Path, Path]]) -> str | None:
    """The family a Dockerfile's FROM names (ARG defaults substituted), if it is one of ours."""
    image = dockerfile.image()
    if image is None or not image.base:
        return None
    name = family_name(image.base)
    return name if name in index and index[name][0] != dockerfile.path else None


def load_fleet(options: ScanOptions) -> Fleet:
    """The fleet a scan audits: the config's when one is given, else the conventions; a fleet
    with no service, or a config that does not hold, is an input error."""
    try:
        fleet = fleet_from_paths(options.paths) if options.config is None else fleet_from_config(
            load_config(options.config), options.paths
        )
    except ConfigError as error:
        raise InputError(str(error)) from error
    if not fleet.services:
        where = ", ".join(map(str, options.paths)) if options.paths or fleet.config is None else str(fleet.config.path)
        raise InputError(f"no Python services found in {where}")
    return fleet
