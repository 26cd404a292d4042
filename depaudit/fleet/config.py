"""The fleet config: `depaudit.toml`, or `[tool.depaudit]` in `pyproject.toml`.

It names what the conventions cannot guess: families with their Dockerfile, parent, Python
environment and base image; services as a folder or as an entry script with source roots;
which family each service runs in. Paths are relative to the config file. A mistake in the
file is a `ConfigError` naming the key, never a silently ignored setting.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from depaudit import consulted
from depaudit.codes import CODES
from depaudit.findings import Finding, FindingKind
from depaudit.paths import project_root, within
from depaudit.fleet.ignores import IgnoreError, IgnoreRule, read_ignores
from depaudit.fleet.settings import SETTING_KEYS, RunSettings, SettingError, read_settings

CONFIG_NAMES = ("depaudit.toml", "pyproject.toml")
# Where family Dockerfiles are looked for when the config names no glob: `docker/<family>/Dockerfile`
# and `Dockerfile.<family>` anywhere below the fleet's folder.
DEFAULT_FAMILY_GLOBS = ("**/Dockerfile", "**/Dockerfile.*")


class ConfigError(Exception):
    """The config file cannot be used as written."""


@dataclass(frozen=True)
class FamilyConfig:
    name: str
    dockerfile: Path | None  # None: found by the family-dockerfiles glob
    parent: str | None = None  # another family; None: the Dockerfile's FROM decides
    site_packages: tuple[Path, ...] = ()
    python: Path | None = None  # an interpreter whose environment its image has (read, never run)
    lock: Path | None = None  # a lock its image installs, audited from its wheels instead of an environment
    python_version: str | None = None  # "X.Y" of its image's interpreter: which wheels of the lock
    find_links: tuple[Path, ...] = ()  # folders of wheels the lock's pins are taken from
    base_image: str | None = None  # a profile reference, or a rootfs folder / image tar (absolute)
    env: Mapping[str, str] = field(default_factory=dict)
    gpu: bool | None = None  # None: a CUDA base image makes it a GPU family
    keep: tuple[str, ...] = ()  # packages (names or globs) the plan never calls unused or redundant
    build_args: Mapping[str, str] = field(default_factory=dict)  # `docker build --build-arg`s of its image


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    path: Path | None  # a service folder ...
    entry: Path | None  # ... or an entry script whose local imports are followed
    source_roots: tuple[Path, ...] = ()  # sys.path entries besides the entry script's folder
    family: str | None = None  # None: its own Dockerfile's FROM decides
    dockerfile: Path | None = None  # the service's own Dockerfile (default: <path>/Dockerfile)
    requirements: tuple[Path, ...] | None = None  # None: requirements*.txt of the folder


@dataclass(frozen=True)
class FleetConfig:
    path: Path  # the file it was read from
    root: Path  # its folder: every relative path is taken from here
    distro: str | None = None
    paths: tuple[Path, ...] = ()  # folders of services found by convention
    family_globs: tuple[str, ...] = DEFAULT_FAMILY_GLOBS
    site_packages: tuple[Path, ...] = ()
    python: Path | None = None
    lock: Path | None = None
    python_version: str | None = None
    find_links: tuple[Path, ...] = ()
    index_url: str | None = None  # a simple index a lock's wheels missing from find-links come from
    base_image: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    build_args: Mapping[str, str] = field(default_factory=dict)  # of every family's build
    families: Mapping[str, FamilyConfig] = field(default_factory=dict)
    services: Mapping[str, ServiceConfig] = field(default_factory=dict)
    settings: RunSettings = field(default_factory=RunSettings)  # the command line's options it sets
    ignores: tuple[IgnoreRule, ...] = ()  # [[ignore]]: results the fleet lives with, and why
    findings: tuple[Finding, ...] = ()  # what it names outside the project, dropped (see _confined)


_TOP_KEYS = (
    "distro", "paths", "family-dockerfiles", "site-packages", "python", "lock", "python-version", "find-links", "index-url",
    "base-image", "env", "build-args", "families", "services", "ignore", *SETTING_KEYS,
)
_FAMILY_KEYS = (
    "dockerfile", "parent", "site-packages", "python", "lock", "python-version", "find-links", "base-image", "env", "gpu",
    "keep", "build-args",
)
_SERVICE_KEYS = ("path", "entry", "source-roots", "family", "dockerfile", "requirements")


def find_config(folder: Path) -> Path | None:
    """`depaudit.toml` in `folder`, else a `pyproject.toml` there with a `[tool.depaudit]`
    table. A pyproject.toml that cannot be read as TOML is a `ConfigError` naming its line: it
    may hold our table, and a gate that silently drops its settings would audit something else."""
    candidate = folder / "depaudit.toml"
    if consulted.is_file(candidate):
        return candidate
    pyproject = folder / "pyproject.toml"
    if consulted.is_file(pyproject):
        data, _ = _read_toml(pyproject)
        if isinstance(data.get("tool"), dict) and "depaudit" in data["tool"]:
            return pyproject
    return None


def load_config(path: Path) -> FleetConfig:
    path = path.resolve()
    data, text = _read_toml(path)
    where = "top level"
    if path.name == "pyproject.toml":
        tool = data.get("tool")
        table = tool.get("depaudit") if isinstance(tool, dict) else None
        if table is None:
            raise ConfigError(f"{path} has no [tool.depaudit] table")
        data, where = table, "[tool.depaudit]"
    try:
        return _confined(_fleet(path, _table(data, where, _TOP_KEYS)), text)
    except ConfigError as error:
        line = _line_of(text, str(error))
        raise ConfigError(f"{one_line(path)}{f', line {line}' if line else ''}: {error}") from error


def lock_option_unused(config: FleetConfig) -> str | None:
    """The first key the config sets that only a lock uses (`python-version`, `find-links`,
    `index-url`) when neither it nor any of its families names a lock; None otherwise. A key
    nothing reads would leave the user thinking it was applied."""
    if config.lock is not None or any(family.lock is not None for family in config.families.values()):
        return None
    prefix = "[tool.depaudit]" if config.path.name == "pyproject.toml" else None
    tables: list[tuple[str, str, object]] = [
        (prefix or "top level", key, value)
        for key, value in (("python-version", config.python_version), ("find-links", config.find_links), ("index-url", config.index_url))
    ]
    for family in config.families.values():
        where = f"[families.{toml_key(family.name)}]"
        if prefix:
            where = f"[tool.depaudit.{where[1:]}"
        tables += [(where, "python-version", family.python_version), (where, "find-links", family.find_links)]
    for where, key, value in tables:
        if value:
            try:
                line = _key_line(consulted.read_text(config.path, errors="replace"), where, key)
            except OSError:
                line = None
            return (
                f"{one_line(config.path)}{f', line {line}' if line else ''}: {where} {key} is for the wheels of a lock, "
                "and no lock is given (--lock, or `lock` in the config or a family)"
            )
    return None


def _confined(config: FleetConfig, text: str) -> FleetConfig:
    """The config as a file of the project: what it names to read as the project's own (service
    folders and scripts, Dockerfiles, requirements, a base image on disk) lies inside the project
    (its git repository, else the config's folder). An auto-found config in a pull request could
    otherwise have /etc/passwd read as a service and quoted in the CI artifact. What leaves it is
    dropped with a finding, and the rest of the scan goes on; a family Dockerfile outside is kept
    by name only, for read_dockerfile refuses it. Where reports are written must lie inside too,
    or nothing runs. The Python environment (site-packages, python) may lie anywhere: it is read
    as metadata, never quoted. The command line's options may point anywhere."""
    project = project_root(config.root)
    findings: list[Finding] = []

    def inside(where: str, key: str, path: Path | str | None) -> bool:
        if path is None or within(Path(path), project):
            return True
        line = _key_line(text, where, key)
        message = f"{where} {key}: {one_line(path)} lies outside the project ({project}): not read; a config may name only the project's own files"
        findings.append(Finding(FindingKind.UNSAFE_MEMBER, config.path.name, line, message))
        return False

    for key, written in (("output", config.settings.output), ("output-dir", config.settings.output_dir)):
        if written is not None and not within(Path(written), project):
            raise ConfigError(
                f"top level {key}: {one_line(written)} lies outside the project ({project}): a config may name only "
                "the project's own files; give it on the command line instead"
            )
    paths = tuple(folder for folder in config.paths if inside("top level", "paths", folder))
    base_image = config.base_image if inside("top level", "base-image", _on_disk(config.base_image)) else None
    families = {}
    for name, family in config.families.items():
        where = f"[families.{toml_key(name)}]"
        inside(where, "dockerfile", family.dockerfile)  # kept: read_dockerfile refuses to read it
        kept = family.base_image if inside(where, "base-image", _on_disk(family.base_image)) else None
        families[name] = replace(family, base_image=kept)
    services = {}
    for name, service in config.services.items():
        where = f"[services.{toml_key(name)}]"
        if not all([inside(where, key, value) for key, value in (("path", service.path), ("entry", service.entry), ("dockerfile", service.dockerfile))]):
            continue  # a service read from outside the project is no service of it
        roots = tuple(root for root in service.source_roots if inside(where, "source-roots", root))
        requirements = service.requirements
        if requirements is not None:
            requirements = tuple(file for file in requirements if inside(where, "requirements", file))
        services[name] = replace(service, source_roots=roots, requirements=requirements)
    return replace(
        config, paths=paths, base_image=base_image, families=families, services=services, findings=tuple(findings)
    )


def _on_disk(reference: str | None) -> str | None:
    """A base-image value that names a file or folder (made absolute when read), else None."""
    return reference if reference is not None and Path(reference).is_absolute() else None


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = consulted.read_text(path)
        return tomllib.loads(text), text
    except OSError as error:
        raise ConfigError(f"cannot read {one_line(path)}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{one_line(path)} is not UTF-8 text: {error.reason}") from error
    except RecursionError as error:
        raise ConfigError(f"{one_line(path)}: not read: its tables or arrays nest too deep") from error
    except tomllib.TOMLDecodeError as error:
        # tomllib says where as "(at line 3, column 5)": the file and line lead the message.
        found = re.search(r"\(at line (\d+), column \d+\)", str(error))
        at = f", line {found.group(1)}" if found else ""
        raise ConfigError(f"{one_line(path)}{at}: not valid TOML: {error}") from error


def _key_line(text: str, where: str, key: str) -> int | None:
    """The line assigning `key` in the table `where` names ("top level" or "[services.x]", as
    written by toml_key); None where it cannot be placed (a dotted or inline-table spelling)."""
    table = None if where == "top level" else where
    current: str | None = None
    assigns = re.compile(rf"\s*(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')\s*=")
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"\s*\[([^\[\]]+)\]\s*(?:#.*)?$", line)
        if header is not None:
            current = "[" + ".".join(part.strip() for part in header.group(1).split(".")) + "]"
        elif current == table and assigns.match(line):
            return number
    return None


def _line_of(text: str, message: str) -> int | None:
    """The line of the key an error names (`… unknown key 'x'`, `where key: …`), found by
    its assignment; None where it cannot be placed."""
    named = re.search(r"unknown key '([^']+)'", message) or re.match(r"(?:top level|\[[^\]]*\]) ([\w.-]+?)(?:\.[^.:\s]+)?:", message)
    if named is None:
        return None
    key = re.escape(named.group(1))
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(rf"\s*(?:{key}|\"{key}\"|'{key}')\s*=", line):
            return number
    return None


def _fleet(path: Path, data: dict[str, Any]) -> FleetConfig:
    root = path.parent
    families = {
        name: _family(name, _table(value, f"[families.{toml_key(name)}]", _FAMILY_KEYS), root)
        for name, value in _table(data.get("families", {}), "[families]", None).items()
    }
    services = {
        name: _service(name, _table(value, f"[services.{toml_key(name)}]", _SERVICE_KEYS), root)
        for name, value in _table(data.get("services", {}), "[services]", None).items()
    }
    for family in families.values():
        if family.parent is not None and family.parent == family.name:
            raise ConfigError(f"[families.{toml_key(family.name)}] parent: a family cannot be its own parent")
    # A service's `family` may also name a family found by the Dockerfile glob: the fleet
    # layout checks it once those are known.
    globs = _strings(data, "family-dockerfiles", "top level")
    try:
        settings = read_settings(data, "top level", root)
        ignores = read_ignores(data.get("ignore", []), path.name, frozenset(CODES))
    except (SettingError, IgnoreError) as error:
        raise ConfigError(str(error)) from error
    return FleetConfig(
        path=path,
        root=root,
        distro=_string(data, "distro", "top level"),
        paths=tuple(root / p for p in _paths(data, "paths", "top level") or ()),
        family_globs=tuple(globs) if globs is not None else DEFAULT_FAMILY_GLOBS,
        site_packages=tuple(root / p for p in _paths(data, "site-packages", "top level") or ()),
        python=_optional_path(data, "python", "top level", root),
        lock=_optional_path(data, "lock", "top level", root),
        python_version=_python_version(data, "top level"),
        find_links=tuple(root / p for p in _paths(data, "find-links", "top level") or ()),
        index_url=_string(data, "index-url", "top level"),
        base_image=_base_image(_string(data, "base-image", "top level"), root),
        env=_env(data, "top level"),
        build_args=_env(data, "top level", "build-args"),
        families=families,
        services=services,
        settings=settings,
        ignores=ignores,
    )


def _family(name: str, data: dict[str, Any], root: Path) -> FamilyConfig:
    where = f"[families.{toml_key(name)}]"
    dockerfile = _path(data, "dockerfile", where)
    gpu = data.get("gpu")
    if gpu is not None and not isinstance(gpu, bool):
        raise ConfigError(f"{where} gpu: expected true or false, got {gpu!r}")
    return FamilyConfig(
        name=name,
        dockerfile=root / dockerfile if dockerfile is not None else None,
        parent=_string(data, "parent", where),
        site_packages=tuple(root / p for p in _paths(data, "site-packages", where) or ()),
        python=_optional_path(data, "python", where, root),
        lock=_optional_path(data, "lock", where, root),
        python_version=_python_version(data, where),
        find_links=tuple(root / p for p in _paths(data, "find-links", where) or ()),
        base_image=_base_image(_string(data, "base-image", where), root),
        env=_env(data, where),
        gpu=gpu,
        keep=tuple(_strings(data, "keep", where) or ()),
        build_args=_env(data, where, "build-args"),
    )


def _service(name: str, data: dict[str, Any], root: Path) -> ServiceConfig:
    where = f"[services.{toml_key(name)}]"
    folder, entry = _path(data, "path", where), _path(data, "entry", where)
    if (folder is None) == (entry is None):
        raise ConfigError(f"{where}: give exactly one of `path` (a service folder) or `entry` (a script)")
    roots = _paths(data, "source-roots", where)
    if roots is not None and entry is None:
        raise ConfigError(f"{where} source-roots: only an `entry` service has source roots")
    dockerfile = _path(data, "dockerfile", where)
    requirements = _paths(data, "requirements", where)
    return ServiceConfig(
        name=name,
        path=root / folder if folder is not None else None,
        entry=root / entry if entry is not None else None,
        source_roots=tuple(root / r for r in roots or ()),
        family=_string(data, "family", where),
        dockerfile=root / dockerfile if dockerfile is not None else None,
        requirements=tuple(root / r for r in requirements) if requirements is not None else None,
    )


def _base_image(value: str | None, root: Path) -> str | None:
    """A path that exists (rootfs folder, image tar, OCI layout) becomes absolute; anything
    else stays an image reference, answered by an embedded profile."""
    if value is None:
        return None
    if not _usable_path(value):
        return value  # no file could have this name: a reference
    candidate = root / value
    return str(candidate.resolve()) if consulted.exists(candidate) else value


def _table(value: Any, where: str, known: tuple[str, ...] | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
    if known is not None:
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(known)})")
    return value


def _string(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{where} {key}: expected a non-empty string, got {value!r}")
    return value


def _python_version(data: Mapping[str, Any], where: str) -> str | None:
    value = _string(data, "python-version", where)
    if value is not None and not re.fullmatch(r"3\.\d+", value):
        raise ConfigError(f"{where} python-version: expected X.Y (e.g. \"3.11\"), got {value!r}")
    return value


def _path(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = _string(data, key, where)
    if value is not None and not _usable_path(value):
        raise ConfigError(f"{where} {key}: {value[:80]!r} cannot name a file (a NUL byte, or a name too long)")
    return value


def _optional_path(data: Mapping[str, Any], key: str, where: str, root: Path) -> Path | None:
    value = _path(data, key, where)
    return root / value if value is not None else None


def _paths(data: Mapping[str, Any], key: str, where: str) -> list[str] | None:
    values = _strings(data, key, where)
    for value in values or ():
        if not _usable_path(value):
            raise ConfigError(f"{where} {key}: {value[:80]!r} cannot name a file (a NUL byte, or a name too long)")
    return values


def toml_key(name: str) -> str:
    """A key as TOML writes it: bare when it can be, else quoted with escapes, so that an error
    naming it stays one line."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def one_line(text: object) -> str:
    """A path or value for an error message: as it is, or quoted with escapes when it holds a
    line break or another control character (the error must stay one line)."""
    shown = str(text)
    return json.dumps(shown) if any(ord(c) < 32 or ord(c) == 127 for c in shown) else shown


def _usable_path(value: str) -> bool:
    """Whether a file could have this name: asking the file system about one that cannot raises
    instead of answering no (ENAMETOOLONG, embedded NUL)."""
    encoded = os.fsencode(value)
    return b"\0" not in encoded and len(encoded) < 4096 and all(len(part) <= 255 for part in encoded.split(b"/"))


def _strings(data: Mapping[str, Any], key: str, where: str) -> list[str] | None:
    """A list of strings; a single string is accepted as a list of one."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"{where} {key}: expected a list of non-empty strings, got {value!r}")
    return value


def _env(data: Mapping[str, Any], where: str, key: str = "env") -> dict[str, str]:
    """A table of strings: `env`, `build-args`."""
    value = _table(data.get(key, {}), f"{where} {key}", None)
    for name, item in value.items():
        if not isinstance(item, str):
            raise ConfigError(f"{where} {key}.{toml_key(name)}: expected a string, got {item!r}")
    return dict(value)
