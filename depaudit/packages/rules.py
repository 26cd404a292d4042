"""Load and validate the distro knowledge in rules/*.toml."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from depaudit.packages.driver import DriverDataError, DriverFiles, driver_path, load_driver_files
from depaudit.packages.tables import check_keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_TOP_LEVEL = {
    "distro": str,
    "codename": str,
    "source": str,
    "libc_package": str,
    "present": list,
    "driver": list,
    "sonames": dict,
    "executables": dict,
    "depends": dict,
    "python_runtime": list,
}
_OPTIONAL = frozenset({"executables", "depends", "python_runtime"})


class RulesError(Exception):
    """The rules data is missing, malformed, or names an unknown distro."""


@dataclass(frozen=True)
class SonameRule:
    package: str
    source: str
    # The CUDA major whose packages ship this soname (libcufft.so.12 is CUDA 13's cuFFT; CUDA 12's
    # is .so.11): `{cuda}` names a package only for an image of that major.
    cuda: str | None = None


@dataclass(frozen=True)
class DistroRules:
    distro: str
    codename: str
    source: str
    libc_package: str
    present: frozenset[str]
    driver_patterns: tuple[str, ...]
    sonames: Mapping[str, SonameRule]
    executables: Mapping[str, SonameRule] = field(default_factory=dict)  # program → package
    depends: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # package → runtime Depends
    python_runtime: frozenset[str] = frozenset()  # the interpreter's packages: always used
    # The driver's files by capability (rules/driver/, shared by every distro); None: only the
    # `driver` patterns, each file then the `compute` capability's.
    driver_files: DriverFiles | None = None


def rules_dir() -> Path:
    """The packaged `depaudit/rules/`; in a source checkout (editable install), `rules/`."""
    packaged = Path(str(resources.files("depaudit"))) / "rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "rules"


def known_distros(directory: Path | None = None) -> tuple[str, ...]:
    folder = directory or rules_dir()
    return tuple(sorted(p.stem for p in folder.glob("*.toml")))


def load_rules(distro: str, directory: Path | None = None) -> DistroRules:
    folder = directory or rules_dir()
    known = known_distros(folder)
    # Only names of files in the folder: "--distro ../x" must not reach another file.
    if distro not in known:
        raise RulesError(f"unknown distro {distro!r} (known: {', '.join(known) or 'none'})")
    path = folder / f"{distro}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise RulesError(f"{path.name}: cannot read: {error}") from error
    rules = _validate(path.name, distro, data)
    try:
        # Shared by every distro: always the packaged file, whatever folder the distro's came from.
        driver_files = load_driver_files(driver_path(rules_dir()))
    except DriverDataError as error:
        raise RulesError(str(error)) from error
    return replace(rules, driver_files=driver_files)


def _validate(name: str, distro: str, data: dict[str, Any]) -> DistroRules:
    check_keys(name, data, _TOP_LEVEL, set(_TOP_LEVEL) - _OPTIONAL, RulesError)
    if data["distro"] != distro:
        raise RulesError(f"{name}: 'distro' is {data['distro']!r}, but the file is named for {distro!r}")
    for key in ("present", "driver", "python_runtime"):
        if not all(isinstance(item, str) and item for item in data.get(key, [])):
            raise RulesError(f"{name}: {key!r} must be a list of strings")
    sonames = _rule_table(name, "sonames", data["sonames"], data["source"])
    executables = _rule_table(name, "executables", data.get("executables", {}), data["source"])
    depends: dict[str, tuple[str, ...]] = {}
    for package, needed in data.get("depends", {}).items():
        if not isinstance(needed, list) or not all(isinstance(n, str) for n in needed):
            raise RulesError(f"{name}: depends.{package!r} must be a list of package names")
        depends[package] = tuple(needed)
    return DistroRules(
        distro=data["distro"],
        codename=data["codename"],
        source=data["source"],
        libc_package=data["libc_package"],
        present=frozenset(data["present"]),
        driver_patterns=tuple(data["driver"]),
        sonames=sonames,
        executables=executables,
        depends=depends,
        python_runtime=frozenset(data.get("python_runtime", [])),
    )


def _rule_table(name: str, table: str, entries: dict[str, Any], default_source: str) -> dict[str, SonameRule]:
    return {key: _rule(name, f"{table}.{key!r}", entry, default_source) for key, entry in entries.items()}


def _rule(name: str, where: str, entry: object, default_source: str) -> SonameRule:
    """A package name, or `{ package = ..., source = ... }` when the entry was checked elsewhere."""
    if isinstance(entry, str) and entry:
        return SonameRule(entry, default_source)
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - {"package", "source", "cuda"})
        if unknown:
            raise RulesError(f"{name}: {where}: unknown key {unknown[0]!r}")
        package, source, cuda = entry.get("package"), entry.get("source", default_source), entry.get("cuda")
        if cuda is not None and not (isinstance(cuda, str) and cuda.isdigit() and "{cuda}" in str(package)):
            raise RulesError(f"{name}: {where}: cuda must be the CUDA major (\"13\") of a package named with {{cuda}}")
        if isinstance(package, str) and package and isinstance(source, str):
            return SonameRule(package, source, cuda)
    raise RulesError(f"{name}: {where} must be a package name or {{ package = ..., source = ... }}")
