"""An unpacked image filesystem, every path resolved inside it and never on this machine."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections import deque
from pathlib import Path

from depaudit.findings import Finding, FindingKind

# glibc gives up after 40 symlinks (MAXSYMLINKS); so do we.
MAX_SYMLINKS = 40


class SymlinkLoop(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: too many levels of symbolic links")
        self.path = path


class RootfsDir:
    """Paths are image paths ("/usr/lib/..."); symlinks are followed by us, component by
    component, so an absolute target points into the image root and ".." stops at it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self.findings: list[Finding] = []
        self._reported: set[str] = set()

    def _host(self, parts: list[str]) -> str:
        return os.path.join(self.root, *parts)

    def resolve(self, path: str, *, follow_final: bool = True) -> str | None:
        """The canonical image path `path` names, or None when it does not exist."""
        try:
            return self._resolve(path, follow_final)
        except SymlinkLoop as loop:
            # One finding per real location, however many paths lead to it (usrmerge).
            folder, _, name = loop.path.rpartition("/")
            try:
                where = f"{(self._resolve(folder, True) or folder).rstrip('/')}/{name}"
            except SymlinkLoop:
                where = loop.path
            if where not in self._reported:
                self._reported.add(where)
                self.findings.append(
                    Finding(FindingKind.SYMLINK_LOOP, where, None, "symbolic links loop: the loader cannot open it")
                )
            return None

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
            host = self._host([*resolved, part])
            try:
                mode = os.lstat(host).st_mode
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError:
                return None
            if stat.S_ISLNK(mode) and (pending or follow_final):
                links += 1
                if links > MAX_SYMLINKS:
                    raise SymlinkLoop(path)
                target = os.readlink(host)
                if target.startswith("/"):
                    resolved = []  # absolute: from the image root, not this machine's
                pending.extendleft(reversed([p for p in target.split("/") if p not in ("", ".")]))
                continue
            resolved.append(part)
        return "/" + "/".join(resolved)

    def host_path(self, path: str) -> Path | None:
        """Where to read an image file on this machine: always inside the root."""
        canonical = self.resolve(path)
        return None if canonical is None else Path(self._host(canonical.split("/")[1:]))

    def is_file(self, path: str) -> bool:
        host = self.host_path(path)
        return host is not None and stat.S_ISREG(os.lstat(host).st_mode)

    def is_dir(self, path: str) -> bool:
        host = self.host_path(path)
        return host is not None and stat.S_ISDIR(os.lstat(host).st_mode)

    def read_text(self, path: str) -> str | None:
        host = self.host_path(path)
        if host is None or not stat.S_ISREG(os.lstat(host).st_mode):
            return None
        try:
            # O_NOFOLLOW: every component was resolved by us; refuse a link swapped in since.
            fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as stream:
            return stream.read().decode("utf-8", errors="replace")

    def listdir(self, path: str) -> list[str]:
        host = self.host_path(path)
        if host is None:
            return []
        try:
            return sorted(os.listdir(host))
        except OSError:
            return []

    def glob(self, pattern: str) -> list[str]:
        """Image paths matching a glob whose wildcards are in the last component only."""
        folder, _, name = pattern.rpartition("/")
        return [f"{folder}/{entry}" for entry in self.listdir(folder or "/") if fnmatch.fnmatchcase(entry, name)]
