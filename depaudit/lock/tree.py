"""A wheel laid out as pip would install it into site-packages, holding only what the stages read.

Which bytes of which member are kept is `native.reads.read_by_the_scan`'s answer, the same one
that decides what is copied out of a layered image: metadata and Python source whole, of a
possible ELF object the ranges the native stage reads (in a sparse file of the member's size),
nothing of data files. The stages then read the folder as an installed site-packages, so a lock
audit gives the installed audit's answers by construction. Nothing from the wheel is run.

Trees are kept in depaudit's cache under the wheel's sha256: a wheel is read once, whichever lock
names it next.
"""

from __future__ import annotations

import csv
import io
import json
import os
import posixpath
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from depaudit.cache import code_version
from depaudit.findings import Finding, FindingKind
from depaudit.lock.members import CountingFile, MemberError, open_member
from depaudit.python.environment import MAX_METADATA_BYTES
from depaudit.reading import MAX_SOURCE_BYTES

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

Ranges = Callable[[BinaryIO], list[tuple[int, int]]]
Reads = Callable[[str], "bool | Ranges"]
_DONE = ".depaudit-tree.json"  # written last: a tree without it is unfinished
# No stage reads more of a file it reads whole than this (one byte past its cap, to tell it is
# larger): of a larger member, that much is kept in a sparse file of its size.
_WHOLE_CAP = max(MAX_METADATA_BYTES, MAX_SOURCE_BYTES) + 1


class WheelError(Exception):
    """The wheel cannot be read as a zip, or holds no dist-info."""


@dataclass(frozen=True)
class WheelTree:
    folder: Path  # the files as installed into site-packages
    sha256: str
    wheel_bytes: int  # the wheel's size
    bytes_read: int  # of the wheel, when this tree was laid out (earlier, if it came from the cache), repeats counted
    bytes_touched: int  # of the wheel's bytes, how many were read at least once
    findings: tuple[Finding, ...]
    cached: bool = False


def wheel_tree(wheel: Path, sha256: str, cache: Path, reads: Reads, filename: str | None = None) -> WheelTree:
    """The wheel's installed layout in `cache`, laid out now unless an earlier run did.
    `filename`: the wheel's name, when its file is named otherwise (a body in pip's cache)."""
    folder = trees_root(cache) / sha256[:2] / sha256
    done = folder / _DONE
    if done.is_file():
        try:
            meta = json.loads(done.read_text())
            findings = tuple(Finding(FindingKind(k), p, line, m) for k, p, line, m in meta["findings"])
            return WheelTree(folder, sha256, meta["wheel_bytes"], meta["bytes_read"], meta["bytes_touched"], findings, cached=True)
        except (OSError, ValueError, KeyError, TypeError):
            shutil.rmtree(folder, ignore_errors=True)  # a record we cannot read: lay the wheel out again
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=sha256[:16] + "-", dir=folder.parent))
    try:
        name = filename or wheel.name
        read, touched, findings = _lay_out(wheel, staging, reads, name)
        size = wheel.stat().st_size
        rows = [[f.kind.value, f.path, f.line, f.message] for f in findings]
        (staging / _DONE).write_text(json.dumps({"wheel": name, "wheel_bytes": size, "bytes_read": read, "bytes_touched": touched, "findings": rows}))
        try:
            staging.rename(folder)
        except OSError:
            if not done.is_file():  # another run finished it meanwhile: theirs is as good
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return WheelTree(folder, sha256, size, read, touched, tuple(findings))


def trees_root(cache: Path) -> Path:
    """Where this depaudit keeps wheel trees: by its version and code, since what a tree holds is
    what this code's stages read (another depaudit may read other bytes). Another's are removed."""
    current = code_version()
    root = cache / "wheel-trees" / current
    if not root.is_dir():
        for kind in ("wheel-trees", "lock-envs"):  # a lock environment links to trees
            for other in (cache / kind).glob("*"):
                if other.name != current:  # another worker of this run may have made it meanwhile
                    shutil.rmtree(other, ignore_errors=True)
    return root


def _lay_out(wheel: Path, into: Path, reads: Reads, name: str) -> tuple[int, int, list[Finding]]:
    counting = CountingFile(wheel)
    findings: list[Finding] = []
    try:
        try:
            archive = zipfile.ZipFile(counting)  # type: ignore[arg-type]
        except (zipfile.BadZipFile, OSError) as error:
            raise WheelError(f"{name} is not a readable zip: {error}") from error
        members = [info for info in archive.infolist() if not info.is_dir()]
        data_dir = _data_dir(name, members)
        made: set[Path] = set()
        record: zipfile.ZipInfo | None = None
        for info in members:
            installed = _installed_path(info.filename, data_dir)
            if installed is None:
                continue  # scripts, headers, data: installed outside site-packages
            if not _safe(installed):
                message = f"a wheel member that would land outside site-packages ({info.filename}): not laid out"
                findings.append(Finding(FindingKind.UNSAFE_MEMBER, f"{name}!{info.filename}", None, message))
                continue
            if installed.endswith(".dist-info/RECORD") and installed.count("/") == 1:
                record = info
                continue
            decision = reads(installed)
            if decision is False:
                continue
            target = into / installed
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            try:
                if decision is True:
                    _whole_copy(archive, info, target)
                else:
                    _sparse_copy(counting, info, target, decision)
            except (OSError, MemberError, zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as error:
                # NotImplementedError: a compression zipfile lacks; RuntimeError: an encrypted member
                findings.append(Finding(FindingKind.UNREADABLE_FILE, f"{name}!{info.filename}", None, f"cannot read it from the wheel: {error}"))
        if record is not None:
            _write_record(archive.read(record), into / record.filename, data_dir)
        else:
            findings.append(Finding(FindingKind.BAD_METADATA, name, None, "the wheel holds no RECORD: its files are unknown"))
        return counting.bytes_read, counting.bytes_touched, findings
    finally:
        counting.close()


def _whole_copy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """The member's content, up to what any stage reads of it (a larger one: its start, in a
    sparse file of its size, so that the stage sees its size and says it is too large)."""
    with archive.open(info) as source, open(target, "wb") as out:
        remaining = _WHOLE_CAP
        while remaining > 0 and (chunk := source.read(min(remaining, 1 << 20))):
            out.write(chunk)
            remaining -= len(chunk)
        if remaining <= 0:
            out.truncate(info.file_size)


def _sparse_copy(wheel: BinaryIO, info: zipfile.ZipInfo, target: Path, ranges: Ranges) -> None:
    """The member's size, holding the bytes `ranges` reads of it: each piece is written as it is
    read, so no byte is taken from the wheel twice. When the ranges cannot be worked out, the
    whole member (as an image copy does)."""
    with open_member(wheel, info) as member, open(target, "wb") as out:
        out.truncate(info.file_size)
        try:
            ranges(io.BufferedReader(_Keeping(member, out)))
        except Exception:  # a reader's surprise must not lose the file: it is copied whole
            member.seek(0)
            out.seek(0)
            shutil.copyfileobj(member, out, 1 << 20)


class _Keeping(io.RawIOBase):
    """A member stream that writes every piece it serves into the sparse copy, at its offset."""

    def __init__(self, member: io.RawIOBase, out: BinaryIO) -> None:
        super().__init__()
        self._member = member
        self._out = out

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._member.seek(offset, whence)

    def tell(self) -> int:
        return self._member.tell()

    def readinto(self, buffer: "WriteableBuffer") -> int:
        start = self._member.tell()
        count = self._member.readinto(buffer) or 0
        if count:
            self._out.seek(start)
            self._out.write(memoryview(buffer)[:count])
        return count


def _data_dir(filename: str, members: Sequence[zipfile.ZipInfo]) -> str | None:
    """`{name}-{version}.data`, the folder of a wheel whose files install elsewhere."""
    tops = {info.filename.split("/", 1)[0] for info in members}
    found = sorted(top for top in tops if top.endswith(".data"))
    return found[0] if found else None


def _installed_path(member: str, data_dir: str | None) -> str | None:
    """Where pip installs the member, relative to site-packages; None outside it. `.data/purelib`
    and `.data/platlib` land in site-packages itself."""
    if data_dir is not None and member.startswith(data_dir + "/"):
        scheme, _, inner = member[len(data_dir) + 1 :].partition("/")
        return inner if scheme in ("purelib", "platlib") and inner else None
    return member


def _safe(path: str) -> bool:
    normal = posixpath.normpath(path)
    return bool(path) and "\0" not in path and "\\" not in path and not posixpath.isabs(path) and normal == path and not normal.startswith("../") and normal != ".."


def _write_record(data: bytes, target: Path, data_dir: str | None) -> None:
    """RECORD as pip rewrites it on install, rows sorted: `.data/purelib|platlib` files by their
    installed path; scripts, headers and data outside site-packages (`../../../…`, which the environment
    reader leaves out, as it does for an installed one)."""
    rows = []
    for row in csv.reader(io.StringIO(data.decode("utf-8", errors="replace"))):
        if not row:
            continue
        path = row[0]
        if data_dir is not None and path.startswith(data_dir + "/"):
            scheme, _, inner = path[len(data_dir) + 1 :].partition("/")
            row[0] = inner if scheme in ("purelib", "platlib") else f"../../../{scheme}/{inner}"
        rows.append(row)
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(sorted(rows))  # pip writes them sorted
    target.write_text(buffer.getvalue(), encoding="utf-8")


def env_root(trees: Sequence[WheelTree], python_version: str, cache: Path) -> Path:
    """The folder of the site-packages `assemble` makes of these trees (made or not)."""
    import hashlib

    digest = hashlib.sha256("\n".join([python_version, *(t.sha256 for t in trees)]).encode()).hexdigest()[:24]
    return cache / "lock-envs" / code_version() / digest


def env_made(root: Path) -> bool:
    return (root / _DONE).is_file()


def assemble(trees: Sequence[WheelTree], python_version: str, cache: Path) -> Path:
    """One site-packages holding every tree's files (hard links into the cache: no copy), named
    after the wheels' digests and the Python, laid out under `lib/pythonX.Y/site-packages` as a
    venv is. A file two wheels ship is the first wheel's."""
    root = env_root(trees, python_version, cache)
    digest = root.name
    site = root / "lib" / f"python{python_version}" / "site-packages"
    if (root / _DONE).is_file():
        return site
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=digest + "-", dir=root.parent))
    try:
        into = staging / "lib" / f"python{python_version}" / "site-packages"
        into.mkdir(parents=True)
        for tree in trees:
            _link_tree(tree.folder, into)
        (staging / _DONE).write_text(json.dumps([t.sha256 for t in trees]))
        try:
            staging.rename(root)
        except OSError:
            if not (root / _DONE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return site


def _link_tree(source: Path, into: Path) -> None:
    for current, dirs, names in os.walk(source):
        dirs.sort()
        relative = os.path.relpath(current, source)
        here = into / relative if relative != "." else into
        here.mkdir(parents=True, exist_ok=True)
        for name in sorted(names):
            if relative == "." and name == _DONE:
                continue
            target = here / name
            if target.exists():
                continue
            try:
                os.link(Path(current, name), target)
            except OSError:  # another filesystem, or links refused: a copy (its holes written as zeros)
                shutil.copyfile(Path(current, name), target)
