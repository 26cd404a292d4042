"""One stage's result kept with the stamps of what that stage consulted: when the whole-scan
memo (memo.py) misses because a service file was edited, a stage that never looked at that file
gives back its result after one lstat per path it consulted, not a run.

Only while the whole scan records (consulted.active(): a cached CLI scan), so that what a stage
consulted is known. The key names what no stamp says: the whole-scan memo's key (version,
interpreter, working folder, options), the fingerprint of depaudit's code (its files are not in a
stage's consulted set), the stage and what it was asked. A result given back adds the paths it
was made from to the scan's own record, so the whole-scan memo stamps them as if the stage ran.

One file per key in <cache>/stages/, written atomically; at most MAX_ENTRIES kept, the least
recently used removed first. Pickle, as in memo.py: a folder only depaudit writes.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from depaudit import consulted
from depaudit.atomic import keep_newest
from depaudit.consulted import Consulted, Stamps

MAX_ENTRIES = 32
_FOLDER = "stages"


def _entry(cache_dir: Path, key: str) -> Path:
    return cache_dir / _FOLDER / (hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest() + ".pickle")


def recall(cache_dir: Path, key: str) -> Any | None:
    """The result kept under `key` when every path it was made from is as stamped, noted as
    consulted by the scan; None otherwise (a damaged entry too). Results are never None."""
    path = _entry(cache_dir, key)
    try:
        with open(path, "rb") as stream:
            found = consulted.unchanged_entry(stream, key)
            if found is None:
                return None
            stamps, _ = found
            result = pickle.load(stream)
    except Exception:  # noqa: BLE001 - an entry that cannot be read is a stage to run
        return None
    _note(stamps)
    try:
        os.utime(path)
    except OSError:
        pass
    return result


def keep(cache_dir: Path, key: str, recorded: Consulted, result: Any) -> None:
    """Keep `result` with the stamps of `recorded`, unless they cannot be trusted (racy, or a
    worker's reads unknown) or the entry cannot be written: the stage runs again next time."""
    from depaudit.memo import _leave_out_own

    _leave_out_own(recorded, cache_dir)
    stamps = consulted.take_stamps(recorded)
    if isinstance(stamps, str):
        return
    path = _entry(cache_dir, key)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as stream:
            pickle.dump((key, stamps), stream, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(result, stream, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)
    except (OSError, pickle.PicklingError, RecursionError, TypeError, AttributeError):
        temporary.unlink(missing_ok=True)
        return
    keep_newest(path.parent, ".pickle", MAX_ENTRIES)


@contextmanager
def scope() -> Iterator[Consulted]:
    """Record what a stage consults on its own, and hand it to the scan's record afterwards."""
    with consulted.recording() as inner:
        yield inner
    consulted.absorb(inner)


def _note(stamps: Stamps) -> None:
    for path, _ in stamps.read:
        consulted.note_read(path)
    for path, _, _ in stamps.listed:
        consulted.note_listed(path)
    for path, _ in stamps.probed:
        consulted.note_probed(path)
    for name, _ in stamps.environ:
        consulted.getenv(name)
