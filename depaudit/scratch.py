"""Scratch folders under the temporary folder (what a scan copies out of an image), removed on
every exit path and, when a run was killed (SIGKILL, power), by the next one.

A folder is named `depaudit-<what>-<pid>-<random>` and holds an exclusive flock on itself for
the life of its process. Another run removes it only when both say its owner is gone: no such
pid here, and the lock free. The pid alone would not do: a run in another container that shares
the temporary folder has a pid this one cannot see, but its lock is seen (the same kernel).
Depends on nothing in depaudit but machine.py.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
from pathlib import Path

from depaudit.machine import writing_to

_NAME = re.compile(r"depaudit-[a-z]+-(?P<pid>\d+)-.+")
# This process's folders: folder → (the pid that made it, the descriptor holding its lock). A
# forked worker inherits the table; the pid keeps it from removing its parent's folders.
_OWN: dict[Path, tuple[int, int]] = {}


def scratch_folder(prefix: str) -> Path:
    """A new folder `<prefix><pid>-…` for this process; killed runs' folders are removed first."""
    root = Path(tempfile.gettempdir())
    remove_stale_scratch(root)
    with writing_to(root, "making a scratch folder"):
        folder = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=root))
    _OWN[folder] = (os.getpid(), _lock(folder))
    from depaudit.consulted import scratch

    scratch(folder)  # never an input of the scan: not in its memo's consulted set
    return folder


def release(folder: Path) -> None:
    """Remove one of this process's folders (a no-op in a forked child, or when gone already)."""
    owner = _OWN.get(folder)
    if owner is None or owner[0] != os.getpid():
        return
    del _OWN[folder]
    shutil.rmtree(folder, ignore_errors=True)
    if owner[1] >= 0:
        os.close(owner[1])  # after the removal: a sweeping run never sees the folder unlocked


def release_all() -> None:
    """Remove every folder this process made: the CLI's last step, however the run ends. A signal
    may stop the run between a folder's making and its recording, so the temporary folder is
    also swept for this pid's names (a second try, too, at one a thread was still writing into)."""
    for folder in list(_OWN):
        release(folder)
    root = Path(tempfile.gettempdir())
    try:
        names = os.listdir(root)
    except OSError:
        return
    pid = str(os.getpid())
    for name in names:
        match = _NAME.fullmatch(name)
        if match is not None and match.group("pid") == pid:
            shutil.rmtree(root / name, ignore_errors=True)


def remove_stale_scratch(root: Path | None = None) -> list[Path]:
    """Remove the scratch folders of runs no longer running; returns them."""
    root = root or Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        names = os.listdir(root)
    except OSError:
        return removed
    for name in names:
        match = _NAME.fullmatch(name)
        folder = root / name
        if match is None or folder in _OWN or process_running(int(match.group("pid"))):
            continue
        handle = _try_lock(folder)
        if handle is None:
            continue  # locked: alive, in a pid namespace we cannot see
        try:
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            if handle >= 0:
                os.close(handle)
        removed.append(folder)
    return removed


def _lock(folder: Path) -> int:
    """A descriptor holding an exclusive lock on `folder`; -1 where the file system has no flock
    (the pid alone then tells, as before locks)."""
    try:
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return -1
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(handle)
        return -1
    return handle


def _try_lock(folder: Path) -> int | None:
    """A descriptor holding the lock of a folder whose owner is gone; None while someone holds it."""
    try:
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None  # a link planted under our name, another user's folder: not ours to remove
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        return None
    except OSError:
        return handle  # no flock on this file system: the pid said it is gone
    return handle


def process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # someone else's process
    except (ProcessLookupError, OverflowError):
        return False  # gone, or a number no process has
    return True
