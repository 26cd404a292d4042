"""What a scan consulted: each file it read, each folder it listed, each path whose existence it
asked about, and each environment variable it looked at. The whole-scan memo (memo.py) holds a
report for as long as one pass of lstat over this set finds nothing changed.

Readers say what they consult where they consult it (`note_read`, `listdir`, `exists`, …); while
no scan records, each call costs one global lookup. Paths are kept as the strings the readers
used: the memo's key holds the working folder, so a relative one names the same file again.

Three kinds, because what an answer depends on differs:
- read: the file's identity, size and times (a file replaced or rewritten is another);
- listed: the folder's identity and times — creating, removing or renaming an entry changes its
  mtime — and, when those changed, the sorted names and kinds of its entries: a report written
  into a listed folder (temporary file, then rename) leaves the names as they were;
- probed: only whether the path is there, and as what (file, folder, link): `.git` changes its
  times with every git command, and only its existence was asked.

A path read or listed is stamped through symbolic links too (lstat, and stat when it is a link):
a link turned elsewhere, and a change to the file it leads to, both show.
"""

from __future__ import annotations

import os
import pickle
import stat as stat_module
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Union

StrPath = Union[str, "os.PathLike[str]"]
# A change within this long before the scan started could share its timestamp with what the
# scan saw (filesystem clocks tick coarsely; FAT and network filesystems by up to a second or
# two): a scan that consulted such a path is not memoised — "racy git", solved as git does.
RACY_NS = 2_000_000_000

Stamp = tuple[object, ...]


@dataclass
class Consulted:
    """One scan's consulted set, as recorded (paths only; stamps are taken once, at the end)."""

    read: set[str] = field(default_factory=set)
    listed: set[str] = field(default_factory=set)
    probed: set[str] = field(default_factory=set)
    environ: dict[str, str | None] = field(default_factory=dict)
    started_ns: int = field(default_factory=time.time_ns)
    # Why the inputs cannot be told from this set (a worker died before saying what it read):
    # such a scan is never memoised.
    untold: str | None = None
    # Files read outside a `sourcing()` reader: their bytes may reach the report by any route.
    plain: set[str] = field(default_factory=set)
    # What each `sourcing()` reader took from a file: path → {kind: value} (memo_edit.py).
    facts: dict[str, dict[object, object]] = field(default_factory=dict)
    # Above 0 inside `sourcing()`. On the record, not the process: a worker forked meanwhile
    # records afresh. (The scan reads in one thread; the display's thread reads nothing.)
    sourcing: int = 0

    def merge(self, other: Consulted) -> None:
        self.read |= other.read
        self.listed |= other.listed
        self.probed |= other.probed
        self.environ.update(other.environ)
        self.untold = self.untold or other.untold
        self.plain |= other.plain
        for path, kinds in other.facts.items():
            self.facts.setdefault(path, {}).update(kinds)


_current: list[Consulted] = []  # the innermost recording last
# depaudit's own scratch folders (copies out of an image): what is read there was noted where
# it came from (the image), and the copies are gone by the next run.
_scratch: list[str] = []


@contextmanager
def recording() -> Iterator[Consulted]:
    consulted = Consulted()
    _current.append(consulted)
    try:
        yield consulted
    finally:
        _current.remove(consulted)


def scratch(folder: StrPath) -> None:
    _scratch.append(os.path.join(os.fspath(folder), ""))


def absorb(other: Consulted) -> None:
    """What a worker process consulted, into this process's record."""
    if _current:
        _current[-1].merge(other)


def active() -> bool:
    return bool(_current)


def note_read(path: StrPath) -> None:
    if _current:
        name = os.fspath(path)
        _current[-1].read.add(name)
        if not _current[-1].sourcing:
            _current[-1].plain.add(name)


@contextmanager
def sourcing() -> Iterator[None]:
    """A reader of service source files runs in here: each file it reads, it gives all it takes
    from it to `note_facts` (memo_edit.py: an edit that changes none of that changes no report)."""
    if not _current:
        yield
        return
    record = _current[-1]
    record.sourcing += 1
    try:
        yield
    finally:
        record.sourcing -= 1


def note_facts(path: StrPath, kind: object, value: object) -> None:
    """What a `sourcing()` reader took from the file at `path` (as it named it), under `kind`."""
    if _current:
        _current[-1].facts.setdefault(os.fspath(path), {})[kind] = value


def note_listed(folder: StrPath) -> None:
    if _current:
        _current[-1].listed.add(os.fspath(folder))


def note_probed(path: StrPath) -> None:
    if _current:
        _current[-1].probed.add(os.fspath(path))


def note_untold(reason: str) -> None:
    if _current and _current[-1].untold is None:
        _current[-1].untold = reason


def getenv(name: str) -> str | None:
    value = os.environ.get(name)
    if _current:
        _current[-1].environ[name] = value
    return value


class Environ(Mapping[str, str]):
    """os.environ as the scan sees it: each variable looked at is noted with its value."""

    def __getitem__(self, name: str) -> str:
        value = getenv(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        raise TypeError("the scan names the variables it reads, one by one")

    def __len__(self) -> int:
        return len(os.environ)


# --- the readers' helpers: the call and its note together -------------------------------


def listdir(folder: StrPath) -> list[str]:
    note_listed(folder)
    return os.listdir(folder)


def scandir(folder: StrPath) -> Iterator[os.DirEntry[str]]:
    note_listed(folder)
    return os.scandir(folder)  # type: ignore[return-value]  # a context manager too, as os.scandir's


def walk(top: StrPath, onerror: object = None) -> Iterator[tuple[str, list[str], list[str]]]:
    """os.walk (top-down, links to folders not followed), each folder it lists noted."""

    def failed(error: OSError) -> None:
        if error.filename is not None:
            note_listed(error.filename)  # unlistable now; made listable, it says more
        if callable(onerror):
            onerror(error)

    note_listed(top)
    for folder, dirs, files in os.walk(top, onerror=failed):
        note_listed(folder)
        yield folder, dirs, files
        # the caller may prune dirs: only those walked into are listed, and noted as they are


def glob(folder: Path, pattern: str) -> list[Path]:
    """Path.glob for patterns of plain and wildcard parts (no `**`), sorted, each folder it
    lists and each path it probes noted."""
    import fnmatch

    current = [folder]
    for part in pattern.split("/"):
        following: list[Path] = []
        for here in current:
            if any(char in part for char in "*?["):
                try:
                    names = listdir(here)
                except OSError:
                    continue
                following.extend(here / name for name in sorted(fnmatch.filter(names, part)))  # dot names too, as pathlib
            else:
                candidate = here / part
                if exists(candidate):
                    following.append(candidate)
        current = following
    return current


def exists(path: StrPath) -> bool:
    note_probed(path)
    return os.path.exists(path)


def lexists(path: StrPath) -> bool:
    note_probed(path)
    return os.path.lexists(path)


def is_file(path: StrPath) -> bool:
    note_probed(path)
    return os.path.isfile(path)


def is_dir(path: StrPath) -> bool:
    note_probed(path)
    return os.path.isdir(path)


def is_link(path: StrPath) -> bool:
    note_probed(path)
    return os.path.islink(path)


def read_text(path: Path, encoding: str = "utf-8", errors: str = "strict") -> str:
    note_read(path)
    return path.read_text(encoding=encoding, errors=errors)


# --- stamps ---------------------------------------------------------------------------


def file_stamp(path: str) -> Stamp | None:
    """What says a read or listed path is as it was: None for nothing there."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        return ("error", getattr(error, "errno", None))
    own = (status.st_mode, status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
    if not stat_module.S_ISLNK(status.st_mode):
        return own
    try:
        target = os.readlink(path)
        followed = os.stat(path)
    except (OSError, ValueError):
        return (*own, "dangling")
    return (
        *own, target, followed.st_mode, followed.st_dev, followed.st_ino, followed.st_size,
        followed.st_mtime_ns, followed.st_ctime_ns,
    )


def kind_stamp(path: str) -> int | None:
    """What a probe asked: what kind of thing is there (links followed, as exists/is_file do),
    and whether it is a link; None for nothing there. One lstat; a stat more for a link."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return -1  # there, or not: we cannot tell — as it was told then
    if not stat_module.S_ISLNK(mode):
        return stat_module.S_IFMT(mode)
    try:
        return stat_module.S_IFMT(os.stat(path).st_mode) | 1 << 30
    except FileNotFoundError:
        return -2  # a dangling link
    except (OSError, ValueError):
        return -1


def names_digest(folder: str) -> str | None:
    """The sorted names of a folder's entries and whether each is a folder (as the directory
    entry says: no stat per entry)."""
    try:
        with os.scandir(folder) as entries:
            names = sorted(f"{entry.name}\0{'d' if entry.is_dir(follow_symlinks=False) else 'f'}" for entry in entries)
    except (OSError, ValueError):
        return None
    import hashlib  # here: a warm run whose folders kept their times never needs it

    return hashlib.blake2b("\n".join(names).encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Stamps:
    """The consulted set with a stamp for each path: what a memo entry holds."""

    read: tuple[tuple[str, Stamp | None], ...]
    listed: tuple[tuple[str, Stamp | None, str | None], ...]
    probed: tuple[tuple[str, int | None], ...]
    environ: tuple[tuple[str, str | None], ...]


def take_stamps(consulted: Consulted) -> Stamps | str:
    """Stamps of everything consulted; or why a memo of this scan could be wrong — a path
    changed so recently that a later change could keep its times (see RACY_NS), or a worker's
    reads are unknown."""
    if consulted.untold is not None:
        return consulted.untold
    since = consulted.started_ns - RACY_NS
    own = tuple(_scratch)
    read = []
    for path in sorted(consulted.read):
        if own and path.startswith(own):
            continue
        found = file_stamp(path)
        if racy(found, since):
            return f"{path} changed less than {RACY_NS // 10**9} s before the scan"
        read.append((path, found))
    listed = []
    for path in sorted(consulted.listed):
        if own and path.startswith(own):
            continue
        found = file_stamp(path)
        if racy(found, since):
            return f"{path} changed less than {RACY_NS // 10**9} s before the scan"
        listed.append((path, found, names_digest(path)))
    probed = tuple((path, kind_stamp(path)) for path in sorted(consulted.probed) if not (own and path.startswith(own)))
    return Stamps(tuple(read), tuple(listed), probed, tuple(sorted(consulted.environ.items(), key=lambda item: item[0])))


def racy(found: Stamp | None, since_ns: int) -> bool:
    """Whether a stamp's times are at or after `since_ns`: too late to be trusted (RACY_NS)."""
    if found is None or found[0] == "error":
        return False
    if found[4] >= since_ns:  # type: ignore[operator]
        return True
    return len(found) > 7 and found[11] >= since_ns  # type: ignore[operator]  # a link's target


def unchanged_entry(stream: BinaryIO, key: str) -> tuple[Stamps, bool] | None:
    """The stamps a memo entry opens with (pickled as (key, stamps)), and whether a listed
    folder's times alone moved (see first_change), when the entry is `key`'s and every input
    they stamp is as it was; None otherwise. Raises what unpickling raises."""
    stored_key, stamps = pickle.load(stream)
    if stored_key != key or not isinstance(stamps, Stamps):
        return None
    changed, moved = first_change(stamps)
    return (stamps, moved) if changed is None else None


def entry_changes(stream: BinaryIO, key: str) -> tuple[Stamps, list[int], bool] | None:
    """As unchanged_entry, with the files read that changed: the stamps, the indexes in
    `stamps.read` of the files no longer as stamped, and whether a listed folder's times alone
    moved; None when the entry is not `key`'s or anything but a file read changed. One pass."""
    stored_key, stamps = pickle.load(stream)
    if stored_key != key or not isinstance(stamps, Stamps):
        return None
    found = changed_reads(stamps)
    return None if found is None else (stamps, *found)


def changed_reads(stamps: Stamps) -> tuple[list[int], bool] | None:
    """first_change, going on past files read that changed: their indexes in `stamps.read`, and
    whether a listed folder's times alone moved; None when anything else changed."""
    environ = os.environ
    for name, value in stamps.environ:
        if environ.get(name) != value:
            return None
    for path, kind in stamps.probed:
        if kind_stamp(path) != kind:
            return None
    changed = [index for index, (path, found) in enumerate(stamps.read) if file_stamp(path) != found]
    moved = False
    for path, found, names in stamps.listed:
        now = file_stamp(path)
        if now != found:
            if now is None or found is None or now[:3] != found[:3] or names_digest(path) != names:
                return None
            moved = True
    return changed, moved


def first_change(stamps: Stamps) -> tuple[str | None, bool]:
    """The first consulted input that is no longer as stamped ("env NAME", "read PATH", …), or
    None when nothing changed; and whether a listed folder's times moved though its entries did
    not (worth stamping anew). One lstat per path; a listed folder whose times changed is listed
    once more, and passes when its entries are the same."""
    environ = os.environ
    for name, value in stamps.environ:
        if environ.get(name) != value:
            return f"env {name}", False
    for path, kind in stamps.probed:
        if kind_stamp(path) != kind:
            return f"probed {path}", False
    for path, found in stamps.read:
        if file_stamp(path) != found:
            return f"read {path}", False
    moved = False
    for path, found, names in stamps.listed:
        now = file_stamp(path)
        if now != found:
            if now is None or found is None or now[:3] != found[:3] or names_digest(path) != names:
                return f"listed {path}", False
            moved = True
    return None, moved
