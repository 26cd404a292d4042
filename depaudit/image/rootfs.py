"""An unpacked image filesystem, every path resolved inside it and never on this machine."""

from __future__ import annotations

import fnmatch
import os
import posixpath
import stat
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from depaudit.findings import Finding, FindingKind

# glibc gives up after 40 symlinks (MAXSYMLINKS); so do we.
MAX_SYMLINKS = 40
# Of a file's content, the (offset, length) pieces a reader needs: all it will ever read.
Ranges = Callable[[BinaryIO], list[tuple[int, int]]]


class SymlinkLoop(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: too many levels of symbolic links")
        self.path = path


MAX_TEXT_BYTES = 64 << 20  # a text file of the image's metadata: os-release, dpkg status, ld.so.conf


class RootfsDir:
    """Paths are image paths ("/usr/lib/..."); symlinks are followed by us, component by
    component, so an absolute target points into the image root and ".." stops at it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self.findings: list[Finding] = []
        self._reported: set[str] = set()
        self.loops_met: list[str] = []  # every time a resolution met one: what a cached walk must report again

    def _host(self, parts: list[str]) -> str:
        return os.path.join(self.root, *parts)

    def resolve(self, path: str, *, follow_final: bool = True) -> str | None:
        """The canonical image path `path` names, or None when it does not exist."""
        try:
            return self._resolve(path, follow_final)
        except SymlinkLoop as loop:
            self.loops_met.append(loop.path)
            self.report_loop(loop.path)
            return None

    def report_loop(self, where: str) -> None:
        """One finding per looping link, however many paths lead through it (usrmerge); also for
        a loop a walk taken from the result cache met when it ran."""
        if where not in self._reported:
            self._reported.add(where)
            self.findings.append(Finding(FindingKind.SYMLINK_LOOP, where, None, "symbolic links loop: the loader cannot open it"))

    def _resolve(self, path: str, follow_final: bool) -> str | None:
        pending = deque(p for p in path.split("/") if p not in ("", "."))
        resolved: list[str] = []
        links = 0
        while pending:
            part = pending.popleft()
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            kind = self._kind([*resolved, part])
            if kind is None or (kind in ("file", "other") and pending):
                return None  # absent, or a file taken for a folder (ENOTDIR)
            if kind == "link" and (pending or follow_final):
                links += 1
                if links > MAX_SYMLINKS:
                    raise SymlinkLoop("/" + "/".join([*resolved, part]))
                target = self._readlink([*resolved, part])
                if target.startswith("/"):
                    resolved = []  # absolute: from the image root, not this machine's
                pending.extendleft(reversed([p for p in target.split("/") if p not in ("", ".")]))
                continue
            resolved.append(part)
        return "/" + "/".join(resolved)

    # The two primitives resolution needs; a layered image answers them from its index.
    def _kind(self, parts: list[str]) -> str | None:
        """"file", "dir", "link", "other", or None when absent."""
        try:
            mode = os.lstat(self._host(parts)).st_mode
        except OSError:
            return None
        if stat.S_ISLNK(mode):
            return "link"
        if stat.S_ISDIR(mode):
            return "dir"
        return "file" if stat.S_ISREG(mode) else "other"

    def _readlink(self, parts: list[str]) -> str:
        return os.readlink(self._host(parts))

    def host_path(self, path: str) -> Path | None:
        """Where to read an image file on this machine: always inside the root."""
        canonical = self.resolve(path)
        return None if canonical is None else Path(self._host(canonical.split("/")[1:]))

    def file_size(self, path: str) -> int | None:
        """The size in bytes of the image file `path` names, None when it is no regular file."""
        if not self.is_file(path):
            return None
        host = self.host_path(path)
        try:
            return os.stat(host).st_size if host is not None else None
        except OSError:
            return None

    def readable_part(self, path: str, ranges: Ranges) -> Path | None:
        """Where to read the parts of an image file that `ranges` names (read over the file's
        bytes): an unpacked image's file itself; a layered image copies out only those parts."""
        return self.host_path(path) if self.is_file(path) else None

    def python_environment(self, path: str, reads: Callable[[str], bool | Ranges]) -> Path | None:
        """A folder of the image (a site-packages) as a folder on this machine that the Python
        stages can read like any other; `reads` says, of a path relative to it, what they read:
        all of it, nothing, or some ranges. An unpacked image is such a folder already."""
        return self.host_path(path) if self.is_dir(path) else None

    def _kind_of(self, path: str) -> str | None:
        canonical = self.resolve(path)
        return None if canonical is None else self._kind(canonical.split("/")[1:] if canonical != "/" else [])

    def is_file(self, path: str) -> bool:
        return self._kind_of(path) == "file"

    def is_dir(self, path: str) -> bool:
        return self._kind_of(path) == "dir"

    def read_text(self, path: str) -> str | None:
        if not self.is_file(path):
            return None
        host = self.host_path(path)
        if host is None:
            return None
        try:
            # O_NOFOLLOW: every component was resolved by us; refuse a link swapped in since.
            fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as stream:
            data = stream.read(MAX_TEXT_BYTES + 1)  # a 3 GiB sparse dpkg status took 6 GB of memory
        if len(data) > MAX_TEXT_BYTES:
            message = f"larger than {MAX_TEXT_BYTES >> 20} MiB, which no real {posixpath.basename(path)} is: not read"
            self.findings.append(Finding(FindingKind.BAD_IMAGE, path, None, message))
            return None
        return data.decode("utf-8", errors="replace")

    def listdir(self, path: str) -> list[str]:
        canonical = self.resolve(path)
        if canonical is None:
            return []
        try:
            return sorted(os.listdir(self._host(canonical.split("/")[1:])))
        except OSError:
            return []

    def glob(self, pattern: str) -> list[str]:
        """Image paths matching a glob whose wildcards are in the last component only."""
        folder, _, name = pattern.rpartition("/")
        return [f"{folder}/{entry}" for entry in self.listdir(folder or "/") if fnmatch.fnmatchcase(entry, name)]
