"""Replace a file so that it appears whole or not at all: what `depaudit scan --write` writes
Dockerfiles and reports with; and scratch folders that a killed run leaves are removed by the
next. Depends on nothing else in depaudit."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path


# Temporary files of a write: `.Dockerfile.depaudit-<pid>-<random>`, beside the file they replace.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.depaudit-(?P<pid>\d+)-[0-9a-f]{8}")


def write_atomic(path: Path, text: str, *, errors: str = "surrogateescape") -> None:
    """The new file appears whole or not at all, with the old one's mode (a new file: 0644 less
    the umask); a Dockerfile that is a symlink is written where it points, the link kept.
    `errors`: how text that is no UTF-8 is encoded (surrogateescape gives back the bytes a name
    was read from; a report takes backslashreplace, to stay UTF-8).

    The bytes go to a temporary file beside it, are synced, and the file is renamed over the old
    one. A writer that fails removes its temporary file; one that is killed (SIGKILL, power) cannot,
    and the next write to the folder removes it: temporary names carry the writer's pid.
    """
    target = Path(os.path.realpath(path))
    remove_stale_temporaries(target.parent)
    data = text.encode("utf-8", errors=errors)
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
        if match is None or _running(int(match.group("pid"))):
            continue
        try:
            os.unlink(folder / name)
            removed.append(folder / name)
        except OSError:
            pass
    return removed


def scratch_folder(prefix: str) -> Path:
    """A new temporary folder `<prefix><pid>-…` for this process. Those of processes no longer
    running (a scan killed mid-way leaves its copies of image files) are removed first."""
    import shutil
    import tempfile

    root = Path(tempfile.gettempdir())
    pattern = re.compile(re.escape(prefix) + r"(\d+)-")
    try:
        names = os.listdir(root)
    except OSError:
        names = []
    for name in names:
        match = pattern.match(name)
        if match is not None and not _running(int(match.group(1))):
            shutil.rmtree(root / name, ignore_errors=True)
    from depaudit.consulted import scratch

    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))
    scratch(folder)  # never an input of the scan: not in its memo's consulted set
    return folder


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # someone else's process
    except (ProcessLookupError, OverflowError):
        return False  # gone, or a number no process has
    return True
