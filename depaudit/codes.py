"""depaudit's own finding codes: one stable id per kind of result, for JSON, SARIF and suppressions.

Codes group by hundreds: DA1xx Python imports and requirements, DA2xx native needs, DA3xx the
apt plan of a family Dockerfile, DA4xx Dockerfiles, DA5xx input depaudit could not read, DA6xx the
lock an environment is audited from. An id
never changes meaning once published: a new kind of result gets a new id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from depaudit.evidence import NeedStatus, Tier
from depaudit.findings import FindingKind

Level = Literal["error", "warning", "note"]  # SARIF's result levels


@dataclass(frozen=True)
class Code:
    id: str  # "DA101"
    name: str  # kebab-case, SARIF's rule name
    summary: str  # one sentence: what a result of this code means
    level: Level  # SARIF defaultConfiguration.level


def _table(*codes: Code) -> dict[str, Code]:
    return {code.id: code for code in codes}


CODES: dict[str, Code] = _table(
    Code("DA101", "missing-module", "An unguarded start-up import that no installed distribution and no local module provides: the service dies at start-up", "error"),
    Code("DA102", "unresolved-import", "No installed distribution provides an import that is guarded or inside a function", "warning"),
    Code("DA103", "undeclared-import", "A service imports a distribution its requirements files do not declare", "warning"),
    Code("DA104", "unused-requirement", "A declared requirement is neither imported nor needed by what is imported", "note"),
    Code("DA105", "not-installed", "A declared requirement is absent from the environment", "warning"),
    Code("DA201", "missing-library", "A required library or program the image lacks, whose apt package is known", "error"),
    Code("DA202", "unmapped-library", "A required library or program the image lacks, and no apt package is known to provide it", "error"),
    Code("DA203", "optional-library-missing", "A library or program the image lacks that only a guarded import, a fallback or a rarely used feature needs", "note"),
    Code("DA204", "driver-capability", "A required file of the NVIDIA driver that the image's NVIDIA_DRIVER_CAPABILITIES does not ask the runtime to mount: an ENV line fixes it, never a package", "error"),
    Code("DA210", "reach-limit", "Calls into library functions were followed no further: a depth or budget was hit", "note"),
    Code("DA220", "cuda-major-mismatch", "The wheels load another CUDA major than the base image has: the host driver must run the wheels' major", "warning"),
    Code("DA221", "unused-base-cuda", "CUDA libraries of the base image that no service of the family loads, and the lighter base that would serve", "note"),
    Code("DA222", "duplicate-cuda", "CUDA libraries of the base image that the wheels ship too and load first: the base's copies are dead weight", "note"),
    Code("DA301", "add-package", "A package the family's services need and its Dockerfile does not install", "error"),
    Code("DA302", "unused-package", "An installed package no service built on the family needs", "warning"),
    Code("DA303", "redundant-package", "An installed package a parent family, a dependency or the base image already provides", "note"),
    Code("DA304", "build-only-package", "A build-time package in a runtime image", "warning"),
    Code("DA401", "dockerfile", "A Dockerfile problem, or a part depaudit reads but will not patch", "warning"),
    Code("DA501", "parse-error", "A source file libcst could not parse: its imports were read line by line", "warning"),
    Code("DA502", "unreadable-file", "A file or folder that could not be read", "warning"),
    Code("DA503", "not-elf", "A file named like a shared object that is not ELF (e.g. a linker script)", "note"),
    Code("DA504", "bad-elf", "A file with the ELF magic whose headers or dynamic segment are corrupt", "warning"),
    Code("DA505", "bad-metadata", "A distribution's dist-info that could not be read fully", "warning"),
    Code("DA506", "bad-requirement", "A requirements line that could not be understood", "warning"),
    Code("DA507", "symlink-loop", "A path inside the base image whose symbolic links never end", "warning"),
    Code("DA508", "bad-image", "Base image content that could not be read (a manifest, a layer, the dpkg database)", "warning"),
    Code("DA509", "unsafe-member", "A path that leads out of where it must stay (an image member out of the image root; a file the project names out of the project): rejected, never read", "warning"),
    Code("DA601", "lock-no-wheel", "A pin of the lock with no wheel for the image's Python and platform (an sdist only, no build for its tags, or a VCS checkout, directory or source archive): it is not audited", "warning"),
    Code("DA602", "lock-hash-mismatch", "A wheel whose sha256 is not one the lock accepts: it is not used", "error"),
    Code("DA603", "lock-unreadable", "A lock that cannot be parsed, or a line of it that pins no exact version", "warning"),
)

_FINDING_CODES: dict[FindingKind, str] = {
    FindingKind.MISSING_MODULE: "DA101",
    FindingKind.UNRESOLVED_IMPORT: "DA102",
    FindingKind.UNDECLARED_IMPORT: "DA103",
    FindingKind.UNUSED_REQUIREMENT: "DA104",
    FindingKind.NOT_INSTALLED: "DA105",
    FindingKind.REACH_LIMIT: "DA210",
    FindingKind.CUDA_MAJOR_MISMATCH: "DA220",
    FindingKind.UNUSED_BASE_CUDA: "DA221",
    FindingKind.DUPLICATE_CUDA: "DA222",
    FindingKind.DOCKERFILE: "DA401",
    FindingKind.PARSE_ERROR: "DA501",
    FindingKind.UNREADABLE_FILE: "DA502",
    FindingKind.NOT_ELF: "DA503",
    FindingKind.BAD_ELF: "DA504",
    FindingKind.BAD_METADATA: "DA505",
    FindingKind.BAD_REQUIREMENT: "DA506",
    FindingKind.SYMLINK_LOOP: "DA507",
    FindingKind.BAD_IMAGE: "DA508",
    FindingKind.UNSAFE_MEMBER: "DA509",
    FindingKind.LOCK_NO_WHEEL: "DA601",
    FindingKind.LOCK_HASH_MISMATCH: "DA602",
    FindingKind.LOCK_UNREADABLE: "DA603",
}

# The plan's four lists of a family, by their JSON key.
PLAN_CODES: dict[str, str] = {"add": "DA301", "unused": "DA302", "redundant": "DA303", "build_only": "DA304"}

# What makes `--fail-on missing` (the default) exit 1: a required need the image lacks and an
# unguarded start-up import nothing provides; an addition stands for such a need. `--fail-on
# unused` also fails on what the plan would remove.
DEFAULT_GATE: frozenset[str] = frozenset({"DA101", "DA201", "DA202", "DA204", "DA301"})
UNUSED_GATE: frozenset[str] = frozenset({"DA302", "DA303", "DA304"})


class _NeedLike(Protocol):
    """What need_code reads of a need (packages.model.Need, a stage above this module)."""

    @property
    def tier(self) -> Tier: ...

    @property
    def status(self) -> NeedStatus: ...


def finding_code(kind: FindingKind) -> str:
    return _FINDING_CODES[kind]


def need_code(need: _NeedLike) -> str | None:
    """The code of a need the image lacks; None for one it has (or the runtime mounts)."""
    if not need.status.fails:
        return None
    if need.tier is not Tier.REQUIRED:
        return "DA203"
    if need.status is NeedStatus.CAPABILITY:
        return "DA204"
    return "DA201" if need.status is NeedStatus.MISSING else "DA202"


def gate(code: str) -> str:
    """Which `--fail-on` makes a result of this code exit 1, as the README's table says it."""
    if code in DEFAULT_GATE:
        return "yes"
    if code in UNUSED_GATE:
        return "with `--fail-on unused`"
    return "no"
