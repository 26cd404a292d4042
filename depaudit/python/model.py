"""Data that the python stage hands to the later stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from depaudit.collect.model import ImportRecord
from depaudit.findings import Finding
from depaudit.python.module_names import module_name


@dataclass(frozen=True)
class TargetPython:
    """What environment markers are evaluated against: the image, not this machine."""

    python_version: str = "3.10"  # "X.Y"
    python_full_version: str = "3.10.12"
    sys_platform: str = "linux"
    platform_system: str = "Linux"
    platform_machine: str = "x86_64"
    os_name: str = "posix"
    implementation_name: str = "cpython"
    platform_python_implementation: str = "CPython"

    def marker_environment(self, extra: str = "") -> dict[str, str]:
        return {
            "python_version": self.python_version,
            "python_full_version": self.python_full_version,
            "sys_platform": self.sys_platform,
            "platform_system": self.platform_system,
            "platform_machine": self.platform_machine,
            "os_name": self.os_name,
            "implementation_name": self.implementation_name,
            "platform_python_implementation": self.platform_python_implementation,
            "platform_release": "",
            "platform_version": "",
            "implementation_version": self.python_full_version,
            "extra": extra,
        }


@dataclass(frozen=True)
class Distribution:
    name: str  # as METADATA spells it, e.g. "opencv-python"
    key: str  # canonical (PEP 503) name, e.g. "opencv-python"
    version: str
    site_packages: Path  # absolute
    dist_info: Path  # absolute
    files: tuple[str, ...] = field(repr=False)  # RECORD entries, posix, relative to site_packages, normalised (no "..")
    requires: tuple[str, ...] = field(repr=False)  # raw Requires-Dist values
    top_level: tuple[str, ...] = field(repr=False)  # importable top-level names it provides (RECORD + top_level.txt)

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    @cached_property
    def module_files(self) -> tuple[tuple[str, str, bool], ...]:
        """(file, dotted module name, is an extension module) of each of its files that is a
        module, worked out once per scan: the module index and every service's reach ask."""
        return tuple((relative, found[0], found[1]) for relative in self.files if (found := module_name(relative)) is not None)

    @cached_property
    def modules(self) -> frozenset[str]:
        return frozenset(name for _, name, _ in self.module_files)

    @cached_property
    def shared_objects(self) -> tuple[str, ...]:
        """Its files named as shared objects (`x.so`, `x.so.1`): what a load by path may open.
        Worked out once: torch lists ~15,000 files and every service asks."""
        return tuple(f for f in self.files if f.endswith(".so") or ".so." in f[f.rfind("/") + 1 :])


@dataclass(frozen=True)
class RequirementEdge:
    """`parent` requires `child` (both canonical keys); the chain reason for closures."""

    parent: str
    child: str
    requirement: str  # the Requires-Dist text


@dataclass(frozen=True)
class DeclaredRequirement:
    key: str  # canonical name
    text: str  # the requirement as written, without options or comments
    file: str  # posix, relative to the service's display root
    line: int | None
    applies: bool  # marker true for the target (or no marker)


@dataclass
class EnvironmentFindings:
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class ResolvedImport:
    record: ImportRecord
    distribution: str | None  # name of the distribution providing it; None when unresolved
