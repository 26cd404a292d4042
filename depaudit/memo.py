"""The whole-scan memo: a finished report, kept with everything the scan consulted, given back
while one pass of lstat over that set finds nothing changed (consulted.py says what a stamp
holds). A warm run with nothing changed then costs the interpreter, this pass and the
rendering — no stage runs.

One file per key in <cache>/memo/: the key names what no file says (depaudit's version, the
interpreter, the working folder, the options); depaudit's own source files are in the consulted
set like any input, so a memo of other code is never valid. A file holds two pickles: the key
and the stamps first, so that a stale entry is told without unpickling its report; pickle is
fine here, in a folder only depaudit writes and only for depaudit's own classes. Entries are
written atomically (temporary file, rename) and at most MAX_ENTRIES are kept, the least
recently used removed first.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import secrets
import sys
from pathlib import Path
from typing import Any

import depaudit
from depaudit import consulted
from depaudit.consulted import Consulted, Stamps

MAX_ENTRIES = 16
_FOLDER = "memo"


def memo_key(options: object) -> str:
    """What the report depends on besides files and variables: `options` is the ScanOptions."""
    return repr((depaudit.__version__, sys.version, sys.executable, os.getcwd(), options))


def _entry(cache_dir: Path, key: str) -> Path:
    return cache_dir / _FOLDER / (hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest() + ".pickle")


def note_own_code() -> None:
    """depaudit's code and data, and the folders its libraries are installed in, as inputs of
    the scan being recorded: a change to either is another scan."""
    package = Path(depaudit.__file__).parent
    for folder, dirs, files in consulted.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in files:
            if name.endswith((".py", ".toml", ".json", ".gz")):
                consulted.note_read(os.path.join(folder, name))
    for entry in sys.path:
        if entry.endswith(("site-packages", "dist-packages")):
            consulted.note_listed(entry)  # a library installed, upgraded or removed


def recall(cache_dir: Path, key: str) -> tuple[Any, str] | None:
    """(the memoised report, "hit") when an entry for `key` is still valid; None otherwise.
    Anything wrong with an entry (damaged, another version's classes) is a miss."""
    path = _entry(cache_dir, key)
    try:
        with open(path, "rb") as stream:
            stored_key, stamps = pickle.load(stream)
            if stored_key != key or not isinstance(stamps, Stamps):
                return None
            changed = consulted.first_change(stamps)
            if changed is not None:
                return None
            report = pickle.load(stream)
    except Exception:  # noqa: BLE001 - a memo that cannot be read is a scan to run
        return None
    try:
        os.utime(path)  # recently used: the last to be evicted
    except OSError:
        pass
    if consulted.stale_listings(stamps):
        # A folder's times moved while its entries stayed (a report written into it): restamp,
        # so that the next run need not list it again.
        _restamp(path, key, stamps, report)
    return report, f"memo hit ({len(stamps.read)} files, {len(stamps.listed)} folders, {len(stamps.probed)} probes unchanged)"


def why_missed(cache_dir: Path, key: str) -> str:
    """For -v: why the entry for `key` was not used."""
    path = _entry(cache_dir, key)
    try:
        with open(path, "rb") as stream:
            stored_key, stamps = pickle.load(stream)
    except FileNotFoundError:
        return "no memo of this scan"
    except Exception:  # noqa: BLE001
        return "memo unreadable"
    if stored_key != key:
        return "memo of another scan"
    return f"changed: {consulted.first_change(stamps)}"


def remember(cache_dir: Path, key: str, recorded: Consulted, report: object) -> str:
    """Keep `report` under `key` with the stamps of what was consulted; what was done, for -v."""
    _leave_out_own(recorded, cache_dir)
    stamps = consulted.take_stamps(recorded)
    if isinstance(stamps, str):
        return f"not memoised: {stamps}"
    try:
        _write(_entry(cache_dir, key), key, stamps, report)
    except (OSError, pickle.PicklingError, RecursionError, TypeError, AttributeError) as error:
        return f"not memoised: {error}"
    _evict(cache_dir / _FOLDER)
    return f"memoised ({len(stamps.read)} files, {len(stamps.listed)} folders, {len(stamps.probed)} probes)"


def _leave_out_own(recorded: Consulted, cache_dir: Path) -> None:
    """The cache folder is depaudit's, not the scan's input (a walk of a repository holding it
    lists it), except the indexes `depaudit index` builds there."""
    own = os.path.join(os.path.abspath(cache_dir), "")
    index = os.path.join(own, "index", "")
    for paths in (recorded.read, recorded.listed, recorded.probed):
        mine = {path for path in paths if os.path.join(os.path.abspath(path), "").startswith(own) and not os.path.join(os.path.abspath(path), "").startswith(index)}
        paths -= mine


def _restamp(path: Path, key: str, stamps: Stamps, report: object) -> None:
    restamped = Stamps(
        stamps.read,
        tuple((folder, consulted.file_stamp(folder), names) for folder, _, names in stamps.listed),
        stamps.probed,
        stamps.environ,
    )
    import time

    since = time.time_ns() - consulted.RACY_NS
    if any(found is not None and found[0] != "error" and found[4] >= since for _, found, _ in restamped.listed):  # type: ignore[operator]
        return  # too fresh to trust (see RACY_NS): listed again next time
    try:
        _write(path, key, restamped, report)
    except (OSError, pickle.PicklingError):
        pass


def _write(path: Path, key: str, stamps: Stamps, report: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(temporary, "wb") as stream:
            pickle.dump((key, stamps), stream, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(report, stream, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _evict(folder: Path) -> None:
    try:
        entries = [(entry.stat().st_mtime_ns, entry.path) for entry in os.scandir(folder) if entry.name.endswith(".pickle")]
    except OSError:
        return
    for _, path in sorted(entries, reverse=True)[MAX_ENTRIES:]:
        try:
            os.unlink(path)
        except OSError:
            pass
