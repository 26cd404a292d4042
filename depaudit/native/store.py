"""Every ELF file's dynamic info and dlopen evidence, read once per scan and cached between runs.

Many walks meet the same file (torch's libraries from torchvision's walk and from torch's own),
so one store serves them all. Files are keyed by their real path: a soname symlink and the file
it names are one object, as for the loader.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from depaudit.cache import MISSING, ResultCache, stat_key
from depaudit.findings import FindingKind
from depaudit.native.dlopen import DlopenEvidence, dlopen_evidence
from depaudit.native.elf import ElfError, read_elf
from depaudit.native.model import ElfInfo, Tier
from depaudit.parallel import Workers

_ELF, _DLOPEN = "elf", "dlopen"


class ElfStore:
    def __init__(self, cache: ResultCache | None = None, workers: Workers | None = None) -> None:
        self.cache = cache if cache is not None else ResultCache(None)
        self.workers = workers or Workers(1)
        self._elf: dict[str, ElfInfo | ElfError] = {}
        self._dlopen: dict[tuple[str, bool, frozenset[str]], list[DlopenEvidence]] = {}

    def read(self, path: Path) -> ElfInfo:
        """What `read_elf` says of the file; raises its ElfError."""
        real = os.path.realpath(path)
        if real not in self._elf:
            self.prefetch([path])
        result = self._elf[real]
        if isinstance(result, ElfError):
            raise result
        return result

    def prefetch(self, paths: Sequence[Path]) -> None:
        """Read the files not known yet, in parallel: the cache first, then the workers."""
        todo: dict[str, str | None] = {}
        for path in paths:
            real = os.path.realpath(path)
            if real in self._elf or real in todo:
                continue
            key = stat_key(Path(real))
            cached = self.cache.get(_ELF, key)
            if cached is MISSING:
                todo[real] = key
            else:
                self._elf[real] = _elf_from_row(real, cached)
        results = self.workers.map(_read, list(todo))
        for (real, key), result in zip(todo.items(), results):
            self._elf[real] = result
            self.cache.put(_ELF, key, _elf_row(result))

    def dlopened(self, path: Path, *, strings: bool, needed: frozenset[str]) -> list[DlopenEvidence]:
        real = os.path.realpath(path)
        memo = (real, strings, needed)
        if memo not in self._dlopen:
            digest = hashlib.blake2b("\0".join(sorted(needed)).encode(), digest_size=8).hexdigest()
            key = stat_key(Path(real), str(strings), digest)
            cached = self.cache.get(_DLOPEN, key)
            if cached is MISSING:
                found = dlopen_evidence(path, strings=strings, needed=needed)
                self.cache.put(_DLOPEN, key, [[e.soname, e.tier.value, e.rule] for e in found])
            else:
                found = [DlopenEvidence(soname, Tier(tier), rule) for soname, tier, rule in cached]
            self._dlopen[memo] = found
        return self._dlopen[memo]


def _read(real: str) -> ElfInfo | ElfError:
    """Runs in a worker process."""
    try:
        return read_elf(Path(real))
    except ElfError as error:
        return error


def _elf_row(result: ElfInfo | ElfError) -> list[Any]:
    if isinstance(result, ElfError):
        return ["error", result.kind.value, result.message]
    return [
        "elf", result.elf_class, result.machine, result.soname,
        list(result.needed), list(result.rpath), list(result.runpath), result.osabi,
    ]


def _elf_from_row(real: str, row: list[Any]) -> ElfInfo | ElfError:
    if row[0] == "error":
        return ElfError(FindingKind(row[1]), row[2])
    _, elf_class, machine, soname, needed, rpath, runpath, osabi = row
    return ElfInfo(Path(real), elf_class, machine, soname, tuple(needed), tuple(rpath), tuple(runpath), osabi)
