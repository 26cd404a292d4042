"""Replace a file so that it appears whole or not at all: what `depaudit scan --write` writes
Dockerfiles and reports with. (Scratch folders: depaudit.scratch.)"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from depaudit.scratch import process_running


# Temporary files of a write: `.Dockerfile.depaudit-<pid>-<random>`, beside the file they replace.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.depaudit-(?P<pid>\d+)-[0-9a-f]{8}")


def write_atomic(path: Path, text: str | bytes, *, errors: str = "surrogateescape") -> None:
    """The new file appears whole or not at all, with the old one's mode (a new file: 0644 less
    the umask); a Dockerfile that is a symlink is written where it points, the link kept.
    `errors`: how text that is no UTF-8 is encoded (surrogateescape gives back the bytes a name
    was read from; a report takes backslashreplace, to stay UTF-8). Bytes are written as they are.

    The bytes go to a temporary file beside it, are synced, and the file is renamed over the old
    one. A writer that fails removes its temporary file; one that is killed (SIGKILL, power) cannot,
    and the next write to the folder removes it: temporary names carry the writer's pid.
    """
    target = Path(os.path.realpath(path))
    remove_stale_temporaries(target.parent)
    data = text if isinstance(text, bytes) else text.encode("utf-8", errors=errors)
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644 & ~_umask()
    temporary = target.parent / f".{target.name}.depaudit-{os.getpid()}-{secrets.token_hex(4)}"
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(handle, view) :]
            os.fchmod(handle, mode)
            os.fsync(handle)
        finally:
            os.close(handle)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(target.parent)


def _umask() -> int:
    mask = os.umask(0o022)  # reading it means setting it: put it straight back
    os.umask(mask)
    return mask


def _sync_folder(folder: Path) -> None:
    """The rename on disk too (best effort: some file systems cannot fsync a folder)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove what writers killed before their rename left in `folder`: our temporary names only,
    and only those of processes no longer running. Returns them."""
    removed: list[Path] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TEMPORARY.fullmatch(name)
        if match is None or process_running(int(match.group("pid"))):
            continue
        try:
            os.unlink(folder / name)
            removed.append(folder / name)
        except OSError:
            pass
    return removed


def keep_newest(folder: Path, suffix: str, keep: int) -> None:
    """In a folder of memo entries written as dot-named temporaries then renamed: keep the `keep`
    entries (names ending in `suffix`) used last, by mtime; remove temporaries left by writers
    killed over an hour ago."""
    import time

    try:
        entries = [(entry.stat().st_mtime_ns, entry.name, entry.path) for entry in os.scandir(folder)]
    except OSError:
        return
    old = time.time_ns() - 3600 * 10**9
    stale = [path for mtime, name, path in entries if name.startswith(".") and mtime < old]
    kept = sorted(((mtime, path) for mtime, name, path in entries if name.endswith(suffix)), reverse=True)
    for path in [*stale, *(path for _, path in kept[keep:])]:
        try:
            os.unlink(path)
        except OSError:
            pass
