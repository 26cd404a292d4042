"""The NVIDIA driver's files by capability (rules/driver/nvidia.toml): which NVIDIA_DRIVER_CAPABILITIES
value makes the NVIDIA container runtime mount each library and program into a container."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from depaudit import consulted
from depaudit.evidence import NeedKind
from depaudit.packages.tables import check_keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_KEYS = {"source": str, "default": list, "unlisted": str, "capabilities": dict, "libraries": dict, "programs": dict}


class DriverDataError(ValueError):
    """The driver data is missing, malformed, or names a capability the toolkit does not know."""


@dataclass(frozen=True)
class DriverFiles:
    source: str
    default: tuple[str, ...]  # what an unset or empty NVIDIA_DRIVER_CAPABILITIES asks for
    unlisted: str  # the capability of a driver file the distro's patterns match and no list names
    mounts: Mapping[str, frozenset[str]]  # capability asked for → capabilities whose files it mounts
    libraries: Mapping[str, str]  # name prefix (`libcuda.so`) → capability
    programs: Mapping[str, str]  # program → capability

    def match(self, kind: NeedKind, name: str) -> tuple[str, str] | None:
        """(the list's entry, the capability that mounts it) for this library or program; None
        when the lists do not name it."""
        if kind is NeedKind.PROGRAM:
            return (name, self.programs[name]) if name in self.programs else None
        # libnvidia-container matches by prefix; the `.` keeps an entry to itself and its versions.
        for prefix, capability in self.libraries.items():
            if name == prefix or name.startswith(prefix + "."):
                return prefix, capability
        return None

    def mounted(self, asked: frozenset[str]) -> frozenset[str]:
        """The capabilities whose files are mounted when `asked` (known names only) are asked for."""
        return frozenset(c for name in asked for c in self.mounts.get(name, ()))


def driver_path(rules_folder: Path) -> Path:
    return rules_folder / "driver" / "nvidia.toml"


def load_driver_files(path: Path) -> DriverFiles:
    try:
        data = tomllib.loads(consulted.read_text(path))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise DriverDataError(f"driver/{path.name}: cannot read: {error}") from error
    return parse_driver_files(f"driver/{path.name}", data)


def parse_driver_files(name: str, data: dict[str, Any]) -> DriverFiles:
    check_keys(name, data, _KEYS, _KEYS, DriverDataError)
    if not data["source"].strip():
        raise DriverDataError(f"{name}: 'source' must say where the lists were read")
    known = set(data["capabilities"])

    def capability(where: str, value: object) -> str:
        if not isinstance(value, str) or value not in known:
            raise DriverDataError(f"{name}: {where}: unknown capability {value!r} (known: {', '.join(sorted(known))})")
        return value

    mounts = {}
    for asked, listed in data["capabilities"].items():
        if not isinstance(listed, list) or asked not in listed:
            raise DriverDataError(f"{name}: capabilities.{asked} must be a list of capabilities that holds {asked!r}")
        mounts[asked] = frozenset(capability(f"capabilities.{asked}", item) for item in listed)
    libraries = {lib: capability(f"libraries.{lib!r}", cap) for lib, cap in data["libraries"].items()}
    for lib in libraries:
        if not lib.endswith(".so"):
            raise DriverDataError(f"{name}: libraries.{lib!r}: a library name prefix ends with .so")
    return DriverFiles(
        source=data["source"],
        default=tuple(capability("default", item) for item in data["default"]),
        unlisted=capability("unlisted", data["unlisted"]),
        mounts=mounts,
        libraries=libraries,
        programs={program: capability(f"programs.{program!r}", cap) for program, cap in data["programs"].items()},
    )
