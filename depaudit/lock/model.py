"""What a lock pins, and the target its wheels are chosen for."""

from __future__ import annotations

from dataclasses import dataclass, field

from depaudit.findings import Finding
from depaudit.python.model import TargetPython


@dataclass(frozen=True)
class LockedFile:
    """A file the lock names for a pin: a wheel (or an sdist), where to get it, its digest."""

    filename: str
    url: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    where: str  # the lock file and line (or package entry) that pins it, for the findings
    hashes: frozenset[str] = frozenset()  # sha256 hex digests the lock accepts; empty: none given
    files: tuple[LockedFile, ...] = ()  # what the lock itself names (pylock.toml, uv.lock)
    # What the lock installs it from when that is no wheel or sdist of an index (a VCS checkout,
    # a local directory, a source archive): built by an installer, never by depaudit.
    built_from: str | None = None
    # The lock names the one file to install (a wheel's URL or path): no other file of the same
    # name and version is offered for it, from a wheel folder or an index.
    exact_files: bool = False

    def shown(self) -> str:
        """`name version`, or the name alone when the lock gives no version (a VCS checkout)."""
        return f"{self.name} {self.version}" if self.version else self.name


@dataclass(frozen=True)
class LockRead:
    pins: tuple[Pin, ...]  # what the image installs, in the lock's order, one per distribution
    findings: tuple[Finding, ...]
    # Versions a requirements file's `-c` constraints pin: used for a distribution that a pinned
    # wheel requires and the requirements leave out, as pip's resolver would pick it.
    constraints: dict[str, Pin] = field(default_factory=dict)
    closed: bool = False  # the lock lists the whole closure (pylock.toml, uv.lock): nothing to add


@dataclass(frozen=True)
class WheelTarget:
    """The image's interpreter and platform: which wheel of a pin it would install."""

    python: TargetPython
    tags: tuple[str, ...]  # most preferred first, as `packaging.tags` spells them
    platform: str  # the newest platform tag the image takes: manylinux_2_35_x86_64

    def shown(self) -> str:
        """The target as a finding names it: interpreter tags and platform tags, in short."""
        major, minor = self.python.python_version.split(".")
        return f"CPython {major}.{minor} on {self.platform} (tags cp{major}{minor}-cp{major}{minor}, cp{major}{minor}-abi3, py3-none; {self.platform} down to manylinux1, or any)"
