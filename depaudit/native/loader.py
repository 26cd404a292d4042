"""Resolve DT_NEEDED entries the way glibc's ld.so does, inside the scanned environment only."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from depaudit.findings import Finding, FindingKind
from depaudit.native.elf import ElfError, is_extension_module, looks_like_shared_object, read_elf
from depaudit.native.model import ElfInfo, LibraryStatus, NativeNeed, NativeReport, Tier

_TIER_ORDER = {Tier.REQUIRED: 0, Tier.OPTIONAL: 1, Tier.HINT: 2}
# Dynamic string tokens as glibc expands them on x86_64 Debian-family systems.
_LIB_TOKEN = "lib/x86_64-linux-gnu"
_PLATFORM_TOKEN = "x86_64"


class _Reader:
    """Reads each ELF file once per walk, keyed by its real path."""

    def __init__(self) -> None:
        self._cache: dict[str, ElfInfo | ElfError] = {}

    def read(self, path: Path) -> ElfInfo:
        key = os.path.realpath(path)
        if key not in self._cache:
            try:
                self._cache[key] = read_elf(path)
            except ElfError as error:
                self._cache[key] = error
        result = self._cache[key]
        if isinstance(result, ElfError):
            raise result
        return result


class _Walk:
    def __init__(
        self,
        owner: str,
        display: Callable[[Path], str],
        owner_of: Callable[[Path], str | None],
        search_roots: Sequence[Path],
        ld_library_path: Sequence[str],
    ) -> None:
        self.owner = owner
        self.display = display
        self.owner_of = owner_of
        self.roots = [Path(os.path.realpath(root)) for root in search_roots]
        self.ld_library_path = ld_library_path
        self.reader = _Reader()
        self.needs: dict[tuple[str, LibraryStatus], NativeNeed] = {}

    def inside(self, path: str) -> bool:
        candidate = Path(path)
        return any(candidate == root or root in candidate.parents for root in self.roots)

    def tree(self, root: Path, tier: Tier) -> set[str]:
        """Breadth-first from one root, as ld.so loads it; returns the real paths reached."""
        root_info = self.reader.read(root)
        loaded: dict[str, Path] = {}  # soname or file name → object, for "already loaded"
        self._register(loaded, root, root_info)
        reached = {os.path.realpath(root)}
        queue: deque[tuple[Path, ElfInfo, tuple[Path, ...]]] = deque([(root, root_info, (root,))])
        while queue:
            path, info, chain = queue.popleft()
            for name in info.needed:
                found = loaded.get(name) or self._search(name, info, chain)
                if found is None:
                    self._record(name, LibraryStatus.SYSTEM, tier, chain, None, None)
                    continue
                provider = self.owner_of(found)
                status = LibraryStatus.BUNDLED if provider in (None, self.owner) else LibraryStatus.OTHER_WHEEL
                self._record(
                    name,
                    status,
                    tier,
                    chain,
                    self.display(found),
                    provider if status is LibraryStatus.OTHER_WHEEL else None,
                )
                real = os.path.realpath(found)
                if real not in reached:
                    reached.add(real)
                    found_info = self.reader.read(found)
                    self._register(loaded, found, found_info)
                    queue.append((found, found_info, (*chain, found)))
        return reached

    def forest_tops(self, objects: Sequence[Path]) -> list[Path]:
        """The objects no other one among them links: walking from these first makes the
        evidence name the plugin itself rather than a library it pulls in."""
        below: set[str] = set()
        for path in objects:
            info = self.reader.read(path)
            for name in info.needed:
                found = self._search(name, info, (path,))
                if found is not None:
                    below.add(os.path.realpath(found))
        return [p for p in objects if os.path.realpath(p) not in below]

    def _register(self, loaded: dict[str, Path], path: Path, info: ElfInfo) -> None:
        loaded.setdefault(path.name, path)
        if info.soname:
            loaded.setdefault(info.soname, path)

    def _search(self, name: str, info: ElfInfo, chain: tuple[Path, ...]) -> Path | None:
        if "/" in name:
            return None  # a path in DT_NEEDED names a file of the image, not of this environment
        for directory in self._search_dirs(info, chain):
            found = self._candidate(Path(directory) / name, info)
            if found is not None:
                return found
        return None

    def _search_dirs(self, info: ElfInfo, chain: tuple[Path, ...]) -> Iterable[str]:
        requester = chain[-1]
        if not info.runpath:
            # DT_RPATH of the requester, then of each loader up the chain; glibc ignores the
            # RPATH of any object that has a RUNPATH, and ignores all RPATHs when the
            # requester itself has one.
            yield from _expand(info.rpath, requester)
            for loader in reversed(chain[:-1]):
                loader_info = self.reader.read(loader)
                if not loader_info.runpath:
                    yield from _expand(loader_info.rpath, loader)
        yield from self.ld_library_path
        yield from _expand(info.runpath, requester)

    def _candidate(self, path: Path, requester: ElfInfo) -> Path | None:
        normal = os.path.normpath(path)
        # Absolute RPATHs name directories of the image: never look on this machine.
        if not self.inside(normal) or not os.path.isfile(normal):
            return None
        if not self.inside(os.path.realpath(normal)):
            return None
        try:
            info = self.reader.read(Path(normal))
        except ElfError:
            return None  # ld.so skips files it cannot use and keeps searching
        if (info.elf_class, info.machine) != (requester.elf_class, requester.machine):
            return None
        return Path(normal)

    def _record(
        self,
        soname: str,
        status: LibraryStatus,
        tier: Tier,
        chain: tuple[Path, ...],
        found_at: str | None,
        provider: str | None,
    ) -> None:
        need = NativeNeed(soname, status, tier, tuple(self.display(p) for p in chain), found_at, provider)
        key = (soname, status)
        current = self.needs.get(key)
        if current is None or _rank(need) < _rank(current):
            self.needs[key] = need


def _rank(need: NativeNeed) -> tuple[int, int, tuple[str, ...]]:
    return (_TIER_ORDER[need.tier], len(need.chain), need.chain)


def _expand(entries: Sequence[str], obj: Path) -> list[str]:
    origin = os.path.dirname(os.path.realpath(obj))
    expanded = []
    for entry in entries:
        for token, value in (
            ("${ORIGIN}", origin),
            ("$ORIGIN", origin),
            ("${LIB}", _LIB_TOKEN),
            ("$LIB", _LIB_TOKEN),
            ("${PLATFORM}", _PLATFORM_TOKEN),
            ("$PLATFORM", _PLATFORM_TOKEN),
        ):
            entry = entry.replace(token, value)
        expanded.append(entry)
    return expanded


def resolve_needs(
    owner: str,
    candidates: Sequence[Path],
    *,
    display: Callable[[Path], str],
    owner_of: Callable[[Path], str | None],
    search_roots: Sequence[Path],
    ld_library_path: Sequence[str] = (),
) -> NativeReport:
    """Walk every ELF file an owner ships, starting from its Python extension modules."""
    walk = _Walk(owner, display, owner_of, search_roots, ld_library_path)
    findings: list[Finding] = []
    readable: list[Path] = []
    for path in sorted(candidates):
        try:
            walk.reader.read(path)
        except ElfError as error:
            if error.kind is FindingKind.NOT_ELF and not looks_like_shared_object(path.name):
                continue
            findings.append(Finding(error.kind, display(path), None, error.message))
            continue
        readable.append(path)

    reached: set[str] = set()
    for root in readable:
        if is_extension_module(root.name):
            reached |= walk.tree(root, Tier.REQUIRED)
    # What no extension module links is loaded with dlopen, if at all (plugins): optional.
    unreached = [p for p in readable if os.path.realpath(p) not in reached]
    for root in walk.forest_tops(unreached) + unreached:  # the rest: only reachable in a cycle
        if os.path.realpath(root) not in reached:
            reached |= walk.tree(root, Tier.OPTIONAL)

    needs = sorted(walk.needs.values(), key=lambda n: (n.soname, n.status.value))
    return NativeReport(owner, tuple(needs), tuple(sorted(findings)))
