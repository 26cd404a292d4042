"""Every ELF file's dynamic info and dlopen evidence, read once per scan and cached between runs.

Many walks meet the same file (torch's libraries from torchvision's walk and from torch's own),
so one store serves them all. Files are keyed by their real path: a soname symlink and the file
it names are one object, as for the loader.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from depaudit import consulted
from depaudit.cache import MISSING, ResultCache, file_stamp, stat_key
from depaudit.findings import FindingKind
from depaudit.native.dlopen import DlopenEvidence, dlopen_evidence, evidence_in
from depaudit.native.elf import ElfError, is_extension_module, read_elf_stream, read_elf_then
from depaudit.native.headers import ElfHeaders
from depaudit.evidence import Tier
from depaudit.native.model import ElfInfo
from depaudit.parallel import Workers
from depaudit.paths import RealPaths

_ELF, _DLOPEN = "elf", "dlopen"
T = TypeVar("T")


class ElfStore:
    def __init__(self, cache: ResultCache | None = None, workers: Workers | None = None) -> None:
        self.cache = cache if cache is not None else ResultCache(None)
        self.workers = workers or Workers(1)
        self._elf: dict[str, ElfInfo | ElfError] = {}
        self._dlopen: dict[tuple[str, bool, frozenset[str]], list[DlopenEvidence]] = {}
        # Files do not change during a scan; the walks ask for the same real paths many times.
        self._real: dict[str, str] = {}
        self._resolve = RealPaths()
        self._is_file: dict[str, bool] = {}
        # While a walk that is to be cached runs: every path it looked at (see reports.py).
        self.consulted: set[str] | None = None
        self._stamps: dict[str, str] = {}

    def stamp(self, path: str) -> str:
        """`file_stamp`, once per scan."""
        if path not in self._stamps:
            self._stamps[path] = file_stamp(path)
        return self._stamps[path]

    def realpath(self, path: Path | str) -> str:
        return self._ask(self._real, path, self._resolve)

    def is_file(self, path: Path | str) -> bool:
        return self._ask(self._is_file, path, consulted.is_file)

    def _ask(self, answers: dict[str, T], path: Path | str, question: Callable[[str], T]) -> T:
        """The answer for `path`, once per scan; noted as consulted while a cached walk runs."""
        key = str(path)
        if self.consulted is not None:
            self.consulted.add(key)
        if key not in answers:
            answers[key] = question(key)
        return answers[key]

    def read(self, path: Path) -> ElfInfo:
        """What `read_elf` says of the file; raises its ElfError."""
        real = self.realpath(path)
        if real not in self._elf:
            self.prefetch([path])
        result = self._elf[real]
        if isinstance(result, ElfError):
            raise result
        return result

    def prefetch(self, paths: Sequence[Path]) -> None:
        """Read the files not known yet, in parallel: the cache first, then the workers."""
        self.start_prefetch(paths)()

    def start_prefetch(self, paths: Sequence[Path]) -> Callable[[], None]:
        """`prefetch`, returning once the reads are handed to the workers: call the result to
        wait for them."""
        todo: dict[str, str | None] = {}
        for path in paths:
            real = self.realpath(path)
            if real in self._elf or real in todo:
                continue
            key = stat_key(Path(real))
            cached = self.cache.get(_ELF, key)
            if cached is MISSING:
                todo[real] = key
            else:
                self._elf[real] = _elf_from_row(real, cached)
        given = {self.realpath(path): path for path in paths}
        pending = self.workers.start(
            _read, [(real, is_extension_module(given[real].name)) for real in todo], crashed=_crashed, unit="ELF objects read"
        )

        def finish() -> None:
            for (real, key), (result, evidence) in zip(todo.items(), pending()):
                if real in self._elf:
                    continue  # already stored by an earlier call to this finish
                self._elf[real] = result
                self.cache.put(_ELF, key, _elf_row(result))
                if evidence is not None and isinstance(result, ElfInfo):
                    # The walk asks for the same evidence next: it was read in the worker too.
                    strings = is_extension_module(given[real].name)
                    self._remember_dlopen(given[real], strings, frozenset(result.needed), evidence)

        return finish

    def dlopened(self, path: Path, *, strings: bool, needed: frozenset[str]) -> list[DlopenEvidence]:
        real = self.realpath(path)
        memo = (real, strings, needed)
        if memo not in self._dlopen:
            cached = self.cache.get(_DLOPEN, _dlopen_key(real, strings, needed))
            if cached is MISSING:
                self._remember_dlopen(path, strings, needed, dlopen_evidence(path, strings=strings, needed=needed))
            else:
                self._dlopen[memo] = [DlopenEvidence(soname, Tier(tier), rule) for soname, tier, rule in cached]
        return self._dlopen[memo]

    def _remember_dlopen(self, path: Path, strings: bool, needed: frozenset[str], found: list[DlopenEvidence]) -> None:
        real = self.realpath(path)
        self._dlopen[real, strings, needed] = found
        self.cache.put(_DLOPEN, _dlopen_key(real, strings, needed), [[e.soname, e.tier.value, e.rule] for e in found])


def _dlopen_key(real: str, strings: bool, needed: frozenset[str]) -> str | None:
    digest = hashlib.blake2b("\0".join(sorted(needed)).encode(), digest_size=8).hexdigest()
    return stat_key(Path(real), str(strings), digest)


def _read(item: tuple[str, bool]) -> tuple[ElfInfo | ElfError, list[DlopenEvidence] | None]:
    """Runs in a worker process: the dynamic info, and the dlopen evidence the walk will ask for."""
    real, strings = item
    try:
        return read_elf_then(Path(real), _evidence(strings))
    except ElfError as error:
        return error, None


def _evidence(strings: bool) -> Callable[[BinaryIO, ElfHeaders, ElfInfo], list[DlopenEvidence]]:
    def evidence(stream: BinaryIO, headers: ElfHeaders, info: ElfInfo) -> list[DlopenEvidence]:
        return evidence_in(stream, headers, strings=strings, needed=frozenset(info.needed))

    return evidence


def read_as_the_store_does(name: str, stream: BinaryIO) -> None:
    """Read of an open ELF file all that the store reads of a file so named: the dynamic info and
    the dlopen evidence (soname strings of an extension module too). Over a recording stream,
    this says which bytes of the file the native stage needs (native/ranges.py)."""
    try:
        read_elf_stream(Path(name), stream, _evidence(is_extension_module(name)))
    except ElfError:
        pass  # what it read before giving up is all the store would read too


def _crashed(item: tuple[str, bool]) -> tuple[ElfInfo | ElfError, list[DlopenEvidence] | None]:
    message = "reading it killed depaudit's ELF reader (its worker process died): nothing it needs is counted"
    return ElfError(FindingKind.BAD_ELF, message), None


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
