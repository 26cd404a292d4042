"""A cache folder several scans use at once, bounded by the disk it holds, least recently used
first out: what the layer cache (image/layer_cache.py) and the lock's wheel trees (lock/tree.py)
share.

Each scan holds a shared flock on the folder's lock file for as long as it reads what the folder
holds; trimming takes the lock exclusively without waiting, so it happens only when no other scan
holds it (the last to end trims), and never removes what a running scan reads. An entry is a
folder; its last use is its mtime (the users touch it); its size is its files' disk blocks, a
file hard-linked from several entries counted once, and freed only when its last entry goes.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
from collections.abc import Callable, Collection, Sequence
from pathlib import Path


class SharedUse:
    """A shared flock on `lock_file`, held from construction until `release`."""

    def __init__(self, lock_file: Path) -> None:
        """Raises OSError when the lock file cannot be made or locked."""
        self._pid = os.getpid()
        self._fd: int | None = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_SH)
        except OSError:
            os.close(self._fd)
            self._fd = None
            raise

    def release(self, trim: Callable[[], object] | None = None) -> None:
        """Let go; first run `trim` when given and no other scan holds the lock (not waited for)."""
        if self._fd is None:
            return
        try:
            # A forked worker shares the lock with its parent: only the process that took it trims.
            if trim is not None and os.getpid() == self._pid:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    pass  # another scan holds it: the last one to end trims
                else:
                    trim()
        finally:
            os.close(self._fd)
            self._fd = None


def trim_lru(entries: Sequence[Path], max_bytes: int, keep: Collection[Path] = ()) -> list[Path]:
    """Remove the least recently used of `entries` until those left hold at most `max_bytes` of
    disk; the entries removed. Those in `keep` count, and are never removed. Call only under the
    exclusive lock: no scan is reading them."""
    dated: list[tuple[float, str, Path]] = []
    for entry in entries:
        try:
            dated.append((entry.stat().st_mtime, entry.name, entry))
        except OSError:
            pass
    blocks: dict[tuple[int, int], int] = {}  # inode → bytes on disk
    links: dict[tuple[int, int], int] = {}  # inode → entries holding it
    held: dict[Path, list[tuple[int, int]]] = {}
    for _, _, entry in dated:
        held[entry] = inodes = _inodes(entry, blocks)
        for inode in inodes:
            links[inode] = links.get(inode, 0) + 1
    total = sum(blocks.values())
    removed: list[Path] = []
    for _, _, entry in sorted(dated):
        if total <= max_bytes:
            break
        if entry in keep:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
        for inode in held[entry]:
            links[inode] -= 1
            if links[inode] == 0:
                total -= blocks[inode]
    return removed


def touch(entry: Path) -> None:
    """Mark the entry used now: trimmed last."""
    try:
        os.utime(entry)
    except OSError:
        pass


def _inodes(folder: Path, blocks: dict[tuple[int, int], int]) -> list[tuple[int, int]]:
    """Every file and folder below `folder` (by inode), noting each one's bytes on disk."""
    found: list[tuple[int, int]] = []
    pending = [str(folder)]
    while pending:
        current = pending.pop()
        try:
            status = os.lstat(current)
            inode = (status.st_dev, status.st_ino)
            blocks[inode] = status.st_blocks * 512
            found.append(inode)
            if stat.S_ISDIR(status.st_mode):
                pending.extend(os.path.join(current, name) for name in os.listdir(current))
        except OSError:
            continue
    return found
