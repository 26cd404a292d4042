"""Findings: problems and observations reported as values, never raised."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import Enum


class FindingKind(str, Enum):
    """Stable finding codes; JSON carries ``.value``."""

    PARSE_ERROR = "parse_error"  # a source file libcst could not parse (fallback used)
    UNREADABLE_FILE = "unreadable_file"  # a file we could not open or read
    NOT_ELF = "not_elf"  # named like a shared object but not ELF (e.g. a linker script)
    BAD_ELF = "bad_elf"  # ELF magic, but the headers or dynamic segment are corrupt
    BAD_METADATA = "bad_metadata"  # a dist-info folder we could not read fully
    UNRESOLVED_IMPORT = "unresolved_import"  # no installed distribution provides it (guarded, or in a function)
    # An unguarded module-level import that no installed distribution and no local module
    # provides: the service dies at start-up, so it fails the default gate like a missing library.
    MISSING_MODULE = "missing_module"
    UNDECLARED_IMPORT = "undeclared_import"  # imported distribution not in requirements
    UNUSED_REQUIREMENT = "unused_requirement"  # declared, never imported nor needed
    NOT_INSTALLED = "not_installed"  # declared, absent from the environment
    BAD_REQUIREMENT = "bad_requirement"  # a requirements line we could not understand
    SYMLINK_LOOP = "symlink_loop"  # a path inside an image that never stops resolving
    BAD_IMAGE = "bad_image"  # image metadata we could not read (dpkg database, manifest, a layer)
    UNSAFE_MEMBER = "unsafe_member"  # a layer member that would land outside the image root
    DOCKERFILE = "dockerfile"  # a Dockerfile problem, or a part depaudit reads but will not patch
    REACH_LIMIT = "reach_limit"  # calls into library functions were followed no further: a depth or budget was hit
    CUDA_MAJOR_MISMATCH = "cuda_major_mismatch"  # the wheels load another CUDA major than the base image has
    UNUSED_BASE_CUDA = "unused_base_cuda"  # CUDA libraries of the base image that no service loads
    DUPLICATE_CUDA = "duplicate_cuda"  # base CUDA libraries the wheels ship too, and whose copies load first
    LOCK_NO_WHEEL = "lock_no_wheel"  # a pin of the lock with no wheel for the image's Python and platform
    LOCK_HASH_MISMATCH = "lock_hash_mismatch"  # a wheel whose sha256 the lock does not accept: not used
    LOCK_UNREADABLE = "lock_unreadable"  # a lock that cannot be parsed, or a line of it that pins no exact version


@functools.total_ordering
@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    path: str  # posix, relative to the scanned root or to its site-packages
    line: int | None
    message: str

    def __lt__(self, other: object) -> bool:
        # A finding about a whole file (no line) sorts before those about its lines: two stages
        # may say both of one file (a lock's reader, and what its wheels then showed).
        if not isinstance(other, Finding):
            return NotImplemented
        return self._order() < other._order()

    def _order(self) -> tuple[str, str, int, str]:
        return (self.kind.value, self.path, -1 if self.line is None else self.line, self.message)

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind.value, "path": self.path, "line": self.line, "message": self.message}
