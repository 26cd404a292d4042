"""The typed verdict vocabulary every stage shares: tiers, need statuses and kinds, evidence steps.

It sits at the bottom of the house (it imports nothing of depaudit), so that the native stage can
say a tier, the packages stage a status, the plan and the emitters read both, and no one compares
a spelling or cuts a string apart to learn what a step of evidence was.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Tier(str, Enum):
    """How strong the evidence for a need is: the strongest path to it decides."""

    REQUIRED = "required"  # reached through unguarded imports: the service dies without it
    OPTIONAL = "optional"  # only through guarded imports or fallbacks
    HINT = "hint"  # weak evidence: a feature that may never run

    @property
    def rank(self) -> int:
        """0 for the strongest tier."""
        return _TIER_RANK[self]

    def weakest(self, other: Tier) -> Tier:
        """A need reached through a path is no stronger than the path's weakest link."""
        return self if self.rank >= other.rank else other


_TIER_RANK = {Tier.REQUIRED: 0, Tier.OPTIONAL: 1, Tier.HINT: 2}


class NeedStatus(str, Enum):
    """What the image does about a need. The order is the report's: what to act on first."""

    MISSING = "missing"  # an apt package the image lacks
    UNMAPPED = "unmapped"  # the image lacks it and no package is known: never guessed
    # The NVIDIA driver ships it, but the image's NVIDIA_DRIVER_CAPABILITIES does not ask for the
    # capability that mounts it: an ENV line fixes it, never a package.
    CAPABILITY = "capability"
    INSTALLED = "installed"  # a family Dockerfile on the service's FROM chain installs it
    DRIVER = "driver"  # mounted by the NVIDIA container runtime: never apt-install it
    BASE_IMAGE = "base-image"  # the base image (or its profile) has it
    LIBC = "libc"  # glibc's own
    LOADED = "loaded"  # already in the process: an earlier import loaded an object of that name
    OTHER_WHEEL = "other-wheel"  # another installed distribution ships it
    BUNDLED = "bundled"  # the same distribution (or service folder) ships it

    @property
    def fails(self) -> bool:
        """The image lacks it: a required need in this status kills the service."""
        return self in (NeedStatus.MISSING, NeedStatus.UNMAPPED, NeedStatus.CAPABILITY)

    @property
    def rank(self) -> int:
        return _STATUS_RANK[self]


_STATUS_ORDER = tuple(NeedStatus)
_STATUS_RANK = {status: rank for rank, status in enumerate(_STATUS_ORDER)}  # asked per need per sort


class NeedKind(str, Enum):
    SONAME = "soname"  # a shared library, by DT_NEEDED, dlopen or find_library
    PROGRAM = "program"  # an executable a process starts


class StepKind(str, Enum):
    """What one step of an evidence chain is."""

    SERVICE = "service"  # the service the chain starts from
    IMPORT = "import"  # an import statement in the service's code
    DISTRIBUTION = "distribution"  # the installed distribution an import reaches
    REQUIRES = "requires"  # a distribution reached through a parent's Requires-Dist
    MODULE = "module"  # a module of a wheel that nothing the service runs imports
    CALL = "call"  # a call that loads a library or starts a program (ctypes, subprocess, ...)
    RULE = "rule"  # a curated rule of rules/ that says a distribution needs it
    OBJECT = "object"  # an ELF object on the loader's way to the need
    NEED = "need"  # the soname or program needed
    FOUND = "found"  # the file it resolved to
    DRIVER = "driver"  # the NVIDIA driver's file: whether the image's capabilities mount it
    LOADED = "loaded"  # the earlier import whose extension modules loaded it first
    PACKAGE = "package"  # the apt package that provides it on the target distro
    INSTALLED_BY = "installed-by"  # the family Dockerfile that installs that package


@dataclass(frozen=True, order=True)
class EvidenceStep:
    """One step from a service to what it needs. `str()` is the step as reports print it."""

    kind: StepKind
    label: str  # what the step says, without its place
    file: str | None = None  # posix display path of the source file the step stands in
    line: int | None = None
    name: str | None = None  # what the step names (a module, a distribution), for `depaudit why`

    def __str__(self) -> str:
        if self.file is None:
            return self.label
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where} {self.label}"


def service_step(name: str) -> EvidenceStep:
    return EvidenceStep(StepKind.SERVICE, name, name=name)


def import_step(file: str, line: int, module: str) -> EvidenceStep:
    return EvidenceStep(StepKind.IMPORT, f"import {module}", file, line, module)


def chain_text(chain: tuple[EvidenceStep, ...]) -> tuple[str, ...]:
    """The chain as reports print it, one string per step."""
    return tuple(str(step) for step in chain)
