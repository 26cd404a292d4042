"""Per-file results kept between runs: imports, hints and ELF dynamic info.

One SQLite file in the cache folder, named after depaudit's version and a fingerprint of its
own code, so an entry another depaudit wrote is never read. SQLite makes concurrent runs safe:
each run writes its new entries in one transaction, and a reader sees all of it or none.

Keys say when a result still holds. A source file of the services is keyed by its content (a
fresh CI checkout changes every mtime, not the bytes), found through a stat → content-key table
so that a file unchanged since a run read it is not read again to tell its key; an installed ELF file by its path, size,
mtime, ctime and inode — what git trusts for its index — so that a warm run never reads the
gigabytes a CUDA site-packages holds. An installed `.py` file's hints are kept by content too,
found through a stat → content-key table (native/hints.py), and a wheel's native walk holds the
stamps of every path it looked at (native/reports.py).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
from stat import S_ISDIR
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import depaudit
from depaudit.consulted import RACY_NS, note_read
from depaudit.reading import read_regular

MISSING: Any = object()  # what `get` returns for a key it does not hold
# Stat key of an installed file → its content key: the hint and import readers share it, so a
# file one of them has read is found by the other without reading it.
INSTALLED_DIGEST = "digest"
# The same for a service's source file (see `ResultCache.file_digest_and_source`): apart, as its
# stat key holds the device too and is written only for a file whose times are not racy.
SOURCE_DIGEST = "source-digest"
# The results file's bound: ~25 environments the size of a CUDA torch site-packages and a
# 2,000-file monorepo (2.5 MB each); past it, a run keeps only the entries it used.
MAX_BYTES = 64 << 20
_SCHEMA = "CREATE TABLE IF NOT EXISTS results (kind TEXT, key TEXT, value TEXT, PRIMARY KEY (kind, key))"


def content_key(data: bytes, *extra: str) -> str:
    return "|".join((hashlib.blake2b(data, digest_size=16).hexdigest(), *extra))


def stat_key(path: Path | str, *extra: str) -> str | None:
    """None when the file cannot be examined: nothing is cached for it."""
    note_read(path)  # a result kept under this key stands for the file's bytes
    try:
        status = os.stat(path)
    except OSError:
        return None
    fields = (str(path), status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino)
    return "|".join((*map(str, fields), *extra))


def _source_stat(path: str) -> str | None:
    """What says a service's source file holds the bytes it held (git's index trusts the same):
    its identity, size and times. None when it cannot be examined: it is read, and fails there."""
    note_read(path)
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return f"{path}|{status.st_dev}|{status.st_ino}|{status.st_size}|{status.st_mtime_ns}|{status.st_ctime_ns}"


def _settled(stat: str) -> bool:
    """Whether a file's stat key may stand for its bytes: not when its times are within RACY_NS
    of now, as a write later in the same timestamp tick would leave them as they are ("racy
    git"). Such a file is read again by the next run."""
    import time

    mtime, ctime = (int(field) for field in stat.rsplit("|", 2)[1:])
    since = time.time_ns() - RACY_NS
    return mtime < since and ctime < since


def file_stamp(path: str) -> str:
    """What says a path still names what a result was computed from: a file by identity, size
    and times; a folder by identity alone (a file added to it is a path with a stamp of its
    own); "-" for nothing there. Symbolic links are followed: a link turned elsewhere names
    another file."""
    note_read(path)
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return "-"
    if S_ISDIR(status.st_mode):
        return f"d{status.st_dev}:{status.st_ino}"
    return f"{status.st_dev}:{status.st_ino}:{status.st_size}:{status.st_mtime_ns}:{status.st_ctime_ns}"


class ResultCache:
    """Results by (kind, key). Without a folder it only remembers within the run."""

    def __init__(self, folder: Path | None, max_bytes: int = MAX_BYTES) -> None:
        self.path = folder / f"results-{depaudit.__version__}-{_fingerprint()}.sqlite" if folder else None
        self.max_bytes = max_bytes
        self._loaded: dict[str, dict[str, str]] = {}
        self._memory: dict[tuple[str, str], Any] = {}
        self._new: dict[tuple[str, str], str] = {}
        self._digests: dict[str, str] = {}
        self.hits = self.misses = 0

    def file_digest(self, path: Path) -> str:
        """`content_key` of a file's bytes, read once per run: a monorepo's shared modules are
        in the closure of every service. Raises OSError."""
        return self.file_digest_and_source(path)[0]

    def file_digest_and_source(self, path: Path) -> tuple[str, bytes | None]:
        """`file_digest`, and the bytes when this call read them (None when the digest was
        known): a caller that must parse the file then need not read it again."""
        key = str(path)  # a string: Path equality is slow, and this is asked per file per service
        if key in self._digests:
            return self._digests[key], None
        stat = _source_stat(key)
        known = self.get(SOURCE_DIGEST, stat)
        if known is not MISSING:
            self._digests[key] = known
            return known, None
        source = read_regular(path)
        self._digests[key] = digest = content_key(source)
        if stat is not None and _settled(stat):
            self.put(SOURCE_DIGEST, stat, digest)
        return digest, source

    def get(self, kind: str, key: str | None) -> Any:
        if key is None:
            return MISSING
        if (kind, key) in self._memory:
            self.hits += 1
            return self._memory[kind, key]
        text = self._rows(kind).get(key)
        if text is None:
            self.misses += 1
            return MISSING
        self.hits += 1
        value = json.loads(text)
        self._memory[kind, key] = value
        return value

    def put(self, kind: str, key: str | None, value: Any) -> None:
        if key is None:
            return
        self._memory[kind, key] = value
        self._new[kind, key] = json.dumps(value, separators=(",", ":"))

    def save(self) -> None:
        """Write this run's new entries in one transaction; a cache that cannot be written is
        only a slower next run, never a failed scan."""
        if self.path is None or not self._new:
            return
        if self.path.exists() and not self.path.is_file():
            return  # a FIFO or a device where the cache should be: sqlite would block on it
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as connection:
                connection.executemany(
                    "INSERT OR REPLACE INTO results VALUES (?, ?, ?)",
                    ((kind, key, value) for (kind, key), value in self._new.items()),
                )
            connection.close()
            self._new.clear()
            _remove_other_versions(self.path)
            if self.path.stat().st_size > self.max_bytes:
                self._keep_only_used()
        except (OSError, sqlite3.Error):
            pass

    def _keep_only_used(self) -> None:
        """Past its bound the file keeps only what this run read or wrote. Each run loads every
        entry of a kind it asks for, so a file grown with the stat keys of many reinstalls
        (CI) would slow every warm run down."""
        connection = self._connect()
        try:
            with connection:
                connection.execute("CREATE TEMP TABLE used (kind TEXT, key TEXT, PRIMARY KEY (kind, key))")
                connection.executemany("INSERT OR IGNORE INTO used VALUES (?, ?)", self._memory)
                connection.execute(
                    "DELETE FROM results WHERE NOT EXISTS "
                    "(SELECT 1 FROM used WHERE used.kind = results.kind AND used.key = results.key)"
                )
            connection.execute("VACUUM")
        finally:
            connection.close()

    def _rows(self, kind: str) -> dict[str, str]:
        if kind not in self._loaded:
            self._loaded[kind] = dict(self._read(kind))
        return self._loaded[kind]

    def _read(self, kind: str) -> Iterator[tuple[str, str]]:
        if self.path is None or not self.path.is_file():
            return iter(())
        try:
            connection = self._connect()
            try:
                return iter(connection.execute("SELECT key, value FROM results WHERE kind = ?", (kind,)).fetchall())
            finally:
                connection.close()
        except sqlite3.Error:
            return iter(())  # a damaged cache is an empty one

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        connection = sqlite3.connect(self.path, timeout=30)
        connection.execute(_SCHEMA)
        return connection


def code_fingerprint() -> str:
    """What names results of this code (see `_fingerprint`), for the caches kept elsewhere."""
    return _fingerprint()


def code_version() -> str:
    """depaudit's version and the fingerprint of its code: what names anything it keeps on disk."""
    return f"{depaudit.__version__}-{_fingerprint()}"


@functools.cache
def _fingerprint() -> str:
    """A digest of depaudit's own code: a result computed by other code is another result, also
    between two builds of one version. Once per process: the results file, each layer cache and
    each lock tree ask for it (~15 ms a time on a loaded machine, over 130 files)."""
    return code_digest(Path(depaudit.__file__).parent)


def code_digest(package: Path) -> str:
    """Each `.py` file's name and bytes under `package`. By content, not by mtime: CI installs
    depaudit afresh on every run, and a restored cache must still be read."""
    digest = hashlib.blake2b(digest_size=6)
    for path in sorted(package.rglob("*.py")):
        digest.update(f"{path.relative_to(package).as_posix()}\0".encode())
        digest.update(hashlib.blake2b(path.read_bytes(), digest_size=16).digest())
    return digest.hexdigest()


def _remove_other_versions(current: Path) -> None:
    for other in current.parent.glob("results-*.sqlite"):
        if other != current:
            try:
                other.unlink()
            except OSError:
                pass
