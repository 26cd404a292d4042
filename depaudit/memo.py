"""The whole-scan memo: a finished report, kept with everything the scan consulted, given back
while one pass of lstat over that set finds nothing changed (consulted.py says what a stamp
holds). A warm run with nothing changed then costs the interpreter, this pass and the
rendering — no stage runs.

One file per key in <cache>/memo/: the key names what no file says (depaudit's version, the
interpreter, the working folder, the options); depaudit's own source files are in the consulted
set like any input, so a memo of other code is never valid. A file holds pickles: the key
and the stamps first, so that a stale entry is told without unpickling its report; pickle is
fine here, in a folder only depaudit writes and only for depaudit's own classes. A second part
holds the renderings that depend on the report alone, the verdict per --fail-on, and what the
readers of service sources took from each file (kept pickled, read only when files changed:
memo_edit.py reuses the report after an edit that changed none of it). Entries are written
atomically (temporary file, rename) and at most MAX_ENTRIES are kept, the least recently used
removed first.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import secrets
import sys
import weakref
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

import depaudit
from depaudit import consulted
from depaudit.atomic import keep_newest
from depaudit.consulted import Consulted, Stamps
from depaudit.options import ScanOptions

MAX_ENTRIES = 16
_FOLDER = "memo"


def memo_key(options: ScanOptions) -> str:
    """What the report depends on besides files and variables. Not the number of processes:
    the report is the same with any (parallel.py)."""
    return repr((depaudit.__version__, sys.version, sys.executable, os.getcwd(), replace(options, processes=None)))


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


class Entry:
    """A scan's memo: its report (unpickled only when asked for), the renderings made of it and
    its verdicts. A renderer that depends on nothing but the report (JSON, Markdown, bindep,
    the plain-text table) is not run again: a large report's JSON costs more than the scan's
    whole warm check. `save` writes what was added, atomically."""

    def __init__(self, path: Path, key: str, stamps: Stamps, said: str, facts: dict[str, bytes]) -> None:
        self.path, self.key, self.stamps, self.said = path, key, stamps, said
        self.facts = facts  # path → {kind: what a reader of service sources took}, pickled per path
        # kind → the rendering as UTF-8 (surrogatepass: any str), and whether it encodes strictly
        # (no lone surrogate): then these bytes are what a report file holds, written as they are.
        # Kept as bytes: a 50-service JSON report is 11 MB, decoded and encoded again otherwise.
        self.texts: dict[str, tuple[bytes, bool]] = {}
        self.verdicts: dict[str, bool] = {}
        self._report: Any = None
        self._pickled: bytes | None = None  # the report as stored: kept as bytes when rewritten
        # The entry's file as recalled, open (a run that replaced it meanwhile leaves this one
        # whole), and where its pickled report starts: read only if no rendering is kept.
        self._stored: tuple[BinaryIO, int] | None = None
        self._changed = False

    @property
    def report(self) -> Any:
        if self._report is None:
            self._report = pickle.loads(self._stored_report())
        return self._report

    def _stored_report(self) -> bytes:
        if self._pickled is None:
            assert self._stored is not None
            stream, start = self._stored
            stream.seek(start)
            self._pickled = stream.read()
            self.close()
        return self._pickled

    def close(self) -> None:
        """Let go of the recalled file once its report is read (else when the entry goes)."""
        if self._stored is not None:
            self._stored[0].close()
            self._stored = None

    def text(self, kind: str) -> str | None:
        kept = self.texts.get(kind)
        return None if kept is None else kept[0].decode("utf-8", "surrogatepass")

    def data(self, kind: str) -> bytes | None:
        """The rendering as a report file holds it (UTF-8), when it has no lone surrogate (a
        file name that is no UTF-8, which the writer escapes): else None, and `text` it is."""
        kept = self.texts.get(kind)
        return kept[0] if kept is not None and kept[1] else None

    def keep_text(self, kind: str, text: str) -> None:
        try:
            kept = (text.encode("utf-8"), True)
        except UnicodeEncodeError:
            kept = (text.encode("utf-8", "surrogatepass"), False)
        if self.texts.get(kind) != kept:
            self.texts[kind] = kept
            self._changed = True

    def keep_verdicts(self, verdicts: dict[str, bool]) -> None:
        if self.verdicts != verdicts:
            self.verdicts = dict(verdicts)
            self._changed = True

    def save(self) -> None:
        if not self._changed:
            return
        try:
            recalled = self._pickled is not None or self._stored is not None
            pickled = self._stored_report() if recalled else pickle.dumps(self._report, protocol=pickle.HIGHEST_PROTOCOL)
            _write(self.path, self.key, self.stamps, (self.verdicts, self.texts, self.facts), pickled)
        except (OSError, pickle.PicklingError, RecursionError, TypeError, AttributeError):
            return  # a memo that cannot be written is a scan run again next time
        self._changed = False
        keep_newest(self.path.parent, ".pickle", MAX_ENTRIES)


AfterEdit = Callable[[Stamps, list[int], dict[str, bytes]], "tuple[Stamps, list[str], bool] | str"]


def recall(cache_dir: Path, key: str, after_edit: AfterEdit | None = None) -> Entry | str | None:
    """The entry for `key` when every input it was made from is as it was, or when only service
    source files changed and `after_edit` (memo_edit.py, given by the caller: it reads sources as
    the collect stage does, which this module is below) finds each gives the facts it gave;
    otherwise None, or why those edits were not taken (for -v). Anything wrong with an entry (damaged, another
    version's classes) is a miss."""
    path = _entry(cache_dir, key)
    stream = None
    try:
        stream = open(path, "rb")  # noqa: SIM115 - kept open by the entry: its report is read on demand
        found = consulted.entry_changes(stream, key)
        if found is None:
            stream.close()
            return None
        stamps, changed, moved = found
        verdicts, texts, facts = pickle.load(stream)
        if not all(isinstance(kept, tuple) for kept in texts.values()):
            raise TypeError("renderings of an older memo")
        names, renewed = [], False
        if changed:
            if after_edit is None:
                stream.close()
                return None
            edited = after_edit(stamps, changed, facts)
            if isinstance(edited, str):
                stream.close()
                return edited
            stamps, names, renewed = edited
    except Exception:  # noqa: BLE001 - a memo that cannot be read is a scan to run
        if stream is not None:
            stream.close()
        return None
    if changed:
        said = f"memo reused: {', '.join(names)} edited, no collected fact changed ({len(stamps.read)} files, {len(stamps.listed)} folders, {len(stamps.probed)} probes)"
        if not renewed:
            said += f"; not stamped anew: changed less than {consulted.RACY_NS // 10**9} s ago"
    else:
        said = f"memo hit ({len(stamps.read)} files, {len(stamps.listed)} folders, {len(stamps.probed)} probes unchanged)"
    entry = Entry(path, key, stamps, said, facts)
    entry.verdicts, entry.texts, entry._stored = verdicts, texts, (stream, stream.tell())
    weakref.finalize(entry, stream.close)  # the report unread: the file goes with the entry
    entry._changed = bool(changed) and renewed  # the edited files stamped anew
    try:
        os.utime(path)  # recently used: the last to be evicted
    except OSError:
        pass
    restamped = _restamped(entry.stamps) if moved else None
    if restamped is not None:
        # A folder's times moved while its entries stayed (a report written into it): restamp,
        # so that the next run need not list it again.
        entry.stamps, entry._changed = restamped, True
    return entry


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
    return f"changed: {consulted.first_change(stamps)[0]}"


def remember(cache_dir: Path, key: str, recorded: Consulted, report: object) -> Entry | str:
    """An entry for `report` under `key`, with the stamps of what was consulted (saved by the
    caller, once it has added renderings); or why the scan is not memoised."""
    _leave_out_own(recorded, cache_dir)
    stamps = consulted.take_stamps(recorded)
    if isinstance(stamps, str):
        return f"not memoised: {stamps}"
    entry = Entry(_entry(cache_dir, key), key, stamps, "", _source_facts(recorded))
    entry._report, entry._changed = report, True
    entry.said = f"memoised ({len(stamps.read)} files, {len(stamps.listed)} folders, {len(stamps.probed)} probes)"
    return entry


def _source_facts(recorded: Consulted) -> dict[str, bytes]:
    """What the readers of service sources took from each file no other reader read, pickled
    per file (an edit unpickles its own): the files an edit of which memo_edit.py can tell
    changed no report."""
    return {
        path: pickle.dumps(kinds, protocol=pickle.HIGHEST_PROTOCOL)
        for path, kinds in recorded.facts.items()
        if path in recorded.read and path not in recorded.plain
    }


def _leave_out_own(recorded: Consulted, cache_dir: Path) -> None:
    """The cache folder is depaudit's, not the scan's input (a walk of a repository holding it
    lists it), except the indexes `depaudit index` builds there."""
    own = os.path.join(os.path.abspath(cache_dir), "")
    index = os.path.join(own, "index", "")
    for paths in (recorded.read, recorded.listed, recorded.probed):
        mine = {path for path in paths if os.path.join(os.path.abspath(path), "").startswith(own) and not os.path.join(os.path.abspath(path), "").startswith(index)}
        paths -= mine


def _restamped(stamps: Stamps) -> Stamps | None:
    """The stamps with listed folders whose times alone moved stamped anew; None when none did,
    or when one did too lately to be trusted (see RACY_NS: it is listed again next time)."""
    import time

    listed = tuple((folder, consulted.file_stamp(folder), names) for folder, _, names in stamps.listed)
    since = time.time_ns() - consulted.RACY_NS
    if any(found is not None and found[0] != "error" and found[4] >= since for _, found, _ in listed):  # type: ignore[operator]
        return None
    return Stamps(stamps.read, listed, stamps.probed, stamps.environ)


def _write(path: Path, key: str, stamps: Stamps, kept: tuple[dict[str, bool], dict[str, tuple[bytes, bool]], dict[str, bytes]], report: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(temporary, "wb") as stream:
            pickle.dump((key, stamps), stream, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(kept, stream, protocol=pickle.HIGHEST_PROTOCOL)  # verdicts, renderings, facts
            stream.write(report)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
