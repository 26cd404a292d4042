"""Resolve DT_NEEDED entries the way glibc's ld.so does.

Two places hold files: the Python environment on this machine (site-packages folders), and the
base image, whose paths are resolved only through the image reader, never on this machine.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from depaudit.findings import Finding, FindingKind
from depaudit.image.model import DEFAULT_DIRS, BaseImage
from depaudit.native.dlopen import DlopenEvidence
from depaudit.native.elf import ElfError, dangling_link, is_extension_module, looks_like_shared_object
from depaudit.native.store import ElfStore
from depaudit.evidence import Tier
from depaudit.native.model import ElfInfo, LibraryStatus, NativeNeed, NativeReport

_TIER_ORDER = {Tier.REQUIRED: 0, Tier.OPTIONAL: 1, Tier.HINT: 2}
# Dynamic string tokens as glibc expands them on x86_64 Debian-family systems. Like glibc's
# is_dst(), a bare $NAME only counts when no identifier character follows ($ORIGINAL is not one).
_TOKEN = re.compile(r"\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))")
_TOKEN_VALUES = {"LIB": "lib/x86_64-linux-gnu", "PLATFORM": "x86_64"}
_HOST, _IMAGE = "host", "image"
# The OS ABIs glibc's loader accepts on Linux; a FreeBSD or Solaris object is skipped.
_LINUX_ABIS = frozenset({"ELFOSABI_SYSV", "ELFOSABI_LINUX"})
_TARGET = (64, "EM_X86_64")  # the images audited are x86-64 Linux ones ($PLATFORM, multiarch dirs)
LOAD_ORDER = "already loaded"  # found by no search of its own: only because it was loaded first


@dataclass(frozen=True)
class _Object:
    host: Path  # where we read it on this machine
    image: str | None  # its path inside the base image, when it lives there
    info: ElfInfo


@dataclass(frozen=True)
class _SearchDir:
    space: str  # _HOST: a folder of this machine inside the environment; _IMAGE: an image path
    path: str
    rule: str


class _Walk:
    def __init__(
        self,
        owner: str,
        display: Callable[[Path], str],
        owner_of: Callable[[Path], str | None],
        search_roots: Sequence[Path],
        ld_library_path: Sequence[str],
        image: BaseImage | None,
        store: ElfStore,
    ) -> None:
        self.owner = owner
        self.display = display
        self.owner_of = owner_of
        # $ORIGIN is a real path; the caller names its roots maybe through symlinks. Both
        # spellings are inside, and found files are shown and owned in the caller's spelling.
        self.spellings = [(Path(os.path.realpath(r)), Path(os.path.normpath(r))) for r in search_roots]
        self.roots = sorted({path for pair in self.spellings for path in pair})
        self._prefixes = tuple(str(root).rstrip("/") + "/" for root in self.roots)
        # Files copied out of a layered image are the image's wherever the temporary folder lies
        # (TMPDIR inside the project once made them "bundled"), but for those of a root copied
        # out of it (the image's own site-packages).
        self._copies = (str(image.fs.root).rstrip("/") + "/",) if image is not None and image.fs.copies else ()
        self._copied_roots = tuple(prefix for prefix in self._prefixes if prefix.startswith(self._copies))
        self._shown: dict[Path, str] = {}
        self._shown_folders: dict[str, str] = {}
        self._expanded: dict[tuple[Path, str | None, tuple[str, ...], str], list[_SearchDir]] = {}
        self.ld_library_path = tuple(ld_library_path)
        self.image = image
        self.store = store
        # One record per root object too: which extension modules a service really imports is
        # decided later, per service, so each root's own evidence must survive.
        self.needs: dict[tuple[str, LibraryStatus, str], NativeNeed] = {}
        # Who finds a library only through load order; the best evidence alone would hide it.
        self.load_order: dict[tuple[str, LibraryStatus, str], str] = {}

    # Places -----------------------------------------------------------------------------
    def in_environment(self, path: str | Path) -> bool:
        """Lexically inside a root (both are normalised absolute paths): a string test, as the
        walk asks it thousands of times."""
        text = str(path).rstrip("/") + "/"
        if text.startswith(self._copies):
            return text.startswith(self._copied_roots)
        return text.startswith(self._prefixes)

    def as_given(self, path: Path) -> Path:
        """`path` under the root's spelling the caller used (owner_of and display know that one)."""
        for real, given in self.spellings:
            if real != given and (path == real or real in path.parents):
                return given / path.relative_to(real)
        return path

    def image_path(self, host: Path | str) -> str | None:
        """Lexically: the path inside the image of a file copied out of it (strings: the walk
        asks this thousands of times)."""
        if self.image is None:
            return None
        root = str(self.image.fs.root).rstrip("/")
        normal = os.path.normpath(host)
        if normal == root:
            return "/"
        return normal[len(root):] if normal.startswith(root + "/") else None

    def make(self, host: Path, image: str | None = None) -> _Object:
        return _Object(host, image if image is not None else self.image_path(host), self.store.read(host))

    def show(self, obj: _Object) -> str:
        if obj.image is not None and not self.in_environment(os.path.normpath(obj.host)):
            return obj.image
        if obj.host not in self._shown:
            self._shown[obj.host] = self.display(obj.host)
        return self._shown[obj.host]

    # The walk ---------------------------------------------------------------------------
    def tree(self, root: Path, tier: Tier) -> set[str]:
        """Breadth-first from one root, as ld.so loads it; returns the real paths reached."""
        start = self.make(root)
        loaded: dict[str, _Object] = {}  # soname or file name → object, for "already loaded"
        _register(loaded, start)
        real = self.store.realpath
        reached = {real(root)}
        queue: deque[tuple[_Object, ...]] = deque([(start,)])
        while queue:
            chain = queue.popleft()
            for name in chain[-1].info.needed:
                found, rule, tried = self.search(name, chain)
                earlier = loaded.get(name)
                if earlier is not None and (found is None or real(found.host) != real(earlier.host)):
                    found, rule = earlier, LOAD_ORDER
                self.record(name, chain, tier, found, rule, tried)
                if found is not None and real(found.host) not in reached:
                    reached.add(real(found.host))
                    _register(loaded, found)
                    queue.append((*chain, found))
            for evidence in self.dlopened(chain[-1]):
                # dlopen from this object searches as its DT_NEEDED would; the evidence sets the tier.
                found, rule, tried = self.search(evidence.soname, chain)
                weakest = max(tier, evidence.tier, key=_TIER_ORDER.__getitem__)
                how = f"{evidence.rule}; found by {rule}" if rule else evidence.rule
                self.record(evidence.soname, chain, weakest, found, how, tried)
        return reached

    def dlopened(self, obj: _Object) -> list[DlopenEvidence]:
        return self.store.dlopened(obj.host, strings=is_extension_module(obj.host.name), needed=frozenset(obj.info.needed))

    def search(self, name: str, chain: tuple[_Object, ...]) -> tuple[_Object | None, str | None, tuple[str, ...]]:
        if "/" in name:
            return None, None, ()  # a path in DT_NEEDED: not a search; the image must have it
        requester = chain[-1]
        searched: list[_SearchDir] = []
        for directory in self.search_dirs(chain):
            searched.append(directory)
            found = self.candidate(directory, name, requester.info)
            if found is not None:
                return found, directory.rule, ()
        # Where it looked, shown only when it was not found: most searches succeed.
        tried: dict[str, None] = {}  # ordered, and linear in the folders searched (a RUNPATH may list 100,000)
        for directory in searched:
            tried[directory.path if directory.space == _IMAGE else self.shown_folder(directory.path)] = None
        return None, None, capped_folders(tuple(tried))

    def shown_folder(self, path: str) -> str:
        if path not in self._shown_folders:
            self._shown_folders[path] = self.display(self.as_given(Path(path)))
        return self._shown_folders[path]

    def search_dirs(self, chain: tuple[_Object, ...]) -> Iterable[_SearchDir]:
        requester = chain[-1]
        if not requester.info.runpath:
            # DT_RPATH of the requester, then of each loader up the chain; glibc ignores the
            # RPATH of any object that has a RUNPATH, and all RPATHs if the requester has one.
            yield from self.expand(requester, requester.info.rpath, "DT_RPATH")
            for loader in reversed(chain[:-1]):
                if not loader.info.runpath:
                    yield from self.expand(loader, loader.info.rpath, f"DT_RPATH of {self.show(loader)}")
        for path in self.ld_library_path:
            yield _SearchDir(_IMAGE, path, "LD_LIBRARY_PATH")
        yield from self.expand(requester, requester.info.runpath, "DT_RUNPATH")
        if self.image is not None:
            for path in self.image.ld_so_conf:
                yield _SearchDir(_IMAGE, path, "ld.so.conf")
            for path in DEFAULT_DIRS:
                yield _SearchDir(_IMAGE, path, "default directories")

    def expand(self, obj: _Object, entries: Sequence[str], rule: str) -> list[_SearchDir]:
        """The folders an RPATH or RUNPATH names, for this object: each search from it asks again."""
        key = (obj.host, obj.image, tuple(entries), rule)
        if key not in self._expanded:
            self._expanded[key] = self._expand(obj, entries, rule)
        return self._expanded[key]

    def _expand(self, obj: _Object, entries: Sequence[str], rule: str) -> list[_SearchDir]:
        dirs = []
        for entry in entries:
            uses_origin = any("ORIGIN" in match.groups() for match in _TOKEN.finditer(entry))
            if uses_origin and obj.image is not None and self.image is not None:
                # Inside the image, $ORIGIN is the object's folder there, resolved there.
                origin, space = self.image.fs.resolve(posixpath.dirname(obj.image)) or "/", _IMAGE
            elif uses_origin:
                # glibc's l_origin is the folder of the path the object was found by, not of a
                # symlink's target; the kernel then resolves that folder physically.
                origin, space = self.store.realpath(os.path.dirname(obj.host)), _HOST
            elif entry.startswith("/"):
                origin, space = "", _IMAGE  # an absolute entry names a folder of the image
            else:
                continue  # relative to the process's working directory: unknowable statically
            dirs.append(_SearchDir(space, os.path.normpath(_expand(entry, origin)), rule))
        return dirs

    def candidate(self, directory: _SearchDir, name: str, requester: ElfInfo) -> _Object | None:
        if directory.space == _HOST:
            host = os.path.normpath(os.path.join(directory.path, name))
            if not self.in_environment(host):
                image_path = self.image_path(host)
                if image_path is None:
                    return None  # outside the environment and not in the image: never this host
                return self.candidate(_SearchDir(_IMAGE, posixpath.dirname(image_path), directory.rule), name, requester)
            if not self.store.is_file(host) or not self.in_environment(self.store.realpath(host)):
                return None
            found_host, found_image = self.as_given(Path(host)), self.image_path(host)
        else:
            if self.image is None:
                return None
            image_path = posixpath.normpath(posixpath.join(directory.path, name))
            if not self.image.fs.is_file(image_path):
                return None
            resolved = self.image.fs.host_path(image_path)
            if resolved is None:
                return None
            found_host, found_image = resolved, image_path
        try:
            found = self.make(found_host, found_image)
        except ElfError:
            return None  # ld.so skips files it cannot use and keeps searching
        if (found.info.elf_class, found.info.machine) != (requester.elf_class, requester.machine):
            return None  # wrong class or machine: ld.so skips it too
        if found.info.osabi not in _LINUX_ABIS:
            return None
        return found

    def record(
        self,
        soname: str,
        chain: tuple[_Object, ...],
        tier: Tier,
        found: _Object | None,
        rule: str | None,
        tried: tuple[str, ...],
    ) -> None:
        shown_chain = tuple(self.show(obj) for obj in chain)
        if found is None:
            need = NativeNeed(soname, LibraryStatus.SYSTEM, tier, shown_chain, None, None, rule, tried)
        else:
            provider = self.owner_of(found.host)
            if provider not in (None, self.owner):
                status = LibraryStatus.OTHER_WHEEL
            elif provider is None and found.image is not None and not self.in_environment(os.path.normpath(found.host)):
                status = LibraryStatus.IMAGE
            else:
                status = LibraryStatus.BUNDLED
            need = NativeNeed(
                soname,
                status,
                tier,
                shown_chain,
                self.show(found),
                provider if status is LibraryStatus.OTHER_WHEEL else None,
                rule,
            )
        key = (soname, need.status, shown_chain[0])
        if rule == LOAD_ORDER:
            self.load_order.setdefault(key, shown_chain[-1])
        current = self.needs.get(key)
        if current is None or _rank(need) < _rank(current):
            self.needs[key] = need

    def results(self) -> list[NativeNeed]:
        needs = []
        for key, need in sorted(self.needs.items(), key=lambda item: (item[0][0], item[0][1].value, item[0][2])):
            requester = self.load_order.get(key)
            if requester is not None and need.rule != LOAD_ORDER:
                note = f"{requester} finds it only because it was loaded first (load order)"
                need = replace(need, rule=f"{need.rule}; {note}")
            needs.append(need)
        return needs

    def forest_tops(self, objects: Sequence[Path]) -> list[Path]:
        """The objects no other one among them links: walking from these first makes the
        evidence name the plugin itself rather than a library it pulls in."""
        below: set[str] = set()
        for path in objects:
            obj = self.make(path)
            for name in obj.info.needed:
                found, _, _ = self.search(name, (obj,))
                if found is not None:
                    below.add(self.store.realpath(found.host))
        return [p for p in objects if self.store.realpath(p) not in below]


def _expand(entry: str, origin: str) -> str:
    def value(match: re.Match[str]) -> str:
        return _TOKEN_VALUES.get(match.group(1) or match.group(2), origin)

    return _TOKEN.sub(value, entry)


def _loadable(info: ElfInfo) -> bool:
    """Whether an x86-64 Linux process (the only target) can load it at all."""
    return (info.elf_class, info.machine) == _TARGET and info.osabi in _LINUX_ABIS


def _foreign_message(path: Path, info: ElfInfo) -> str:
    what = f"a {info.elf_class}-bit {info.machine} ELF file"
    if info.osabi not in _LINUX_ABIS:
        what += f" for {info.osabi}"
    lost = []
    if is_extension_module(path.name):
        lost.append("importing it fails")
    if info.needed:
        shown = ", ".join(info.needed[:3]) + (f" and {len(info.needed) - 3} more" if len(info.needed) > 3 else "")
        lost.append(f"the libraries it needs ({shown}) are not counted")
    return f"{what}, which an x86-64 Linux process cannot load: {' and '.join(lost)}; replace it with an x86-64 Linux build or remove it"


def _register(loaded: dict[str, _Object], obj: _Object) -> None:
    loaded.setdefault(obj.host.name, obj)
    if obj.info.soname:
        loaded.setdefault(obj.info.soname, obj)


def _rank(need: NativeNeed) -> tuple[int, int, tuple[str, ...]]:
    return (_TIER_ORDER[need.tier], len(need.chain), need.chain)


def resolve_needs(
    owner: str,
    candidates: Sequence[Path],
    *,
    display: Callable[[Path], str],
    owner_of: Callable[[Path], str | None],
    search_roots: Sequence[Path],
    ld_library_path: Sequence[str] = (),
    image: BaseImage | None = None,
    store: ElfStore | None = None,
) -> NativeReport:
    """Walk every ELF file an owner ships, starting from its Python extension modules."""
    walk = _Walk(owner, display, owner_of, search_roots, ld_library_path, image, store or ElfStore())
    walk.store.prefetch(sorted(candidates))
    findings: list[Finding] = []
    readable: list[Path] = []
    for path in sorted(candidates):
        try:
            info = walk.store.read(path)
        except ElfError as error:
            if error.kind is FindingKind.NOT_ELF and not looks_like_shared_object(path.name):
                continue
            if error.kind is FindingKind.UNREADABLE_FILE:
                error = dangling_link(path) or error  # the store read the link's target: name the link
            findings.append(Finding(error.kind, display(path), None, error.message))
            continue
        if not _loadable(info):
            # Never walked: its needs are not this image's. Said when something is lost by it.
            if info.needed or is_extension_module(path.name):
                findings.append(Finding(FindingKind.BAD_ELF, display(path), None, _foreign_message(path, info)))
            continue
        readable.append(path)

    reached: set[str] = set()
    for root in readable:
        if is_extension_module(root.name):
            reached |= walk.tree(root, Tier.REQUIRED)
    # What no extension module links is loaded with dlopen, if at all (plugins): optional.
    unreached = [p for p in readable if walk.store.realpath(p) not in reached]
    for root in walk.forest_tops(unreached) + unreached:  # the rest: only reachable in a cycle
        if walk.store.realpath(root) not in reached:
            reached |= walk.tree(root, Tier.OPTIONAL)

    return NativeReport(owner, tuple(walk.results()), tuple(sorted(findings)))


TRIED_CAP = 64  # folders a report lists for one need: enough to see the search, bounded whatever the RUNPATH


def capped_folders(folders: tuple[str, ...]) -> tuple[str, ...]:
    """The folders searched, the first TRIED_CAP of them and a count of the rest."""
    if len(folders) <= TRIED_CAP:
        return folders
    return (*folders[:TRIED_CAP], f"… and {len(folders) - TRIED_CAP} more folders")
