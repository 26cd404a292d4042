"""The whole-scan memo after an edit of service source files: the stored report, given back when
the only inputs that changed are files whose every use by the scan is unchanged.

What incremental tools do (mypy's fine-grained dependencies, ruff's per-file cache): an edit is
re-read, and when what the rest of the run takes from the file is what it took before, nothing
downstream runs again. Here, when the memo (memo.py) misses only because some files read changed
— every variable, probe and folder listing as stamped — each such file is read again and what
the scan took from it is derived anew and compared with what the memo entry kept; equal for
every file, the entry is stamped anew and its report served.

Why the report served is the one a scan of the edited tree would make:
- A scan is a function of what it consulted (consulted.py, the memo's own premise). Here every
  consulted input but the changed files' bytes is as stamped, and a changed file must be a
  regular file before and after (no link, nothing removed or created: a new or deleted module
  changes a folder's listing or a probe, and the memo misses as before).
- The bytes of a service source file reach the report only through the readers that run inside
  `consulted.sourcing()`, and each notes all it takes from a file (`consulted.note_facts`):
  * collect (collect/imports.py `_parse_files`): the file's `_Parsed` per package it was read
    in — every import with its line, names and context (guarded, lazy, dynamic, type-checking),
    every call of an imported name with its line, the parse error and fallback. Everything
    downstream of collect (the local import graph, guarded-only files, reach, the module walk,
    call sites that count for reach, evidence lines) is computed from these records, never
    from the file again (an audit-hook trace of a cold scan of the benchmark monorepo opens a
    service's `.py` file in these three readers only);
  * the service hints (native/hints.py `OwnHints`): the file's native hints, sorted;
  * suppressions (inline_ignores.py): every line that could hold `# depaudit: ignore[…]`, with
    its index, as suppress.py splits the text. The lines the report's results point at are
    fixed by the two above; the same candidate lines, the same comments read there.
  A file also read by any other reader (a requirements file, a Dockerfile, a wheel's file read
  for its module graph, depaudit's own code…) is read outside `sourcing()`, is in the scan's
  `plain` set, and keeps no facts: its change is a miss, as before. This holds for readers yet
  to be written too: every file a scan opens is noted (tests/test_consulted.py checks it under
  an audit hook), and a note outside `sourcing()` is plain.
- A file's stat reaches nothing but caches (content keys found by stat): content alone decides.
- The facts are derived here by the scan's own functions on the same bytes: the imports by its
  per-file parser (`parsed_source`: `ast` for plain module-level imports, libcst only for the
  blocks around the others, imported only then); the inline lines by the same split of the same
  decoding. The hints by the scan's own route for a service's file, the `ast` twin of the
  libcst visitor (collect/hint_ast.py; libcst only where the trees may differ), no hints where it
  fails, as the scan's worker. A file Python cannot parse, whose stored facts
  hold a parse error, or that could not be read, is not taken: the scan's routes for those
  (workers, the line-level fallback) are not repeated here. The parse runs in this process, as
  under --jobs 1, with the guards the workers have (TooDeep before libcst sees a deep file).
- The bytes compared are those stamped: a file is stamped, read, and stamped again, and taken
  only if both stamps agree (as a scan reading it now would see it). The entry keeps the new
  stamp only when it is older than the racy window (consulted.RACY_NS), as the memo's own
  stamps must be; a file changed later keeps its old stamp, and the next run compares again.
So with equal facts every stage receives equal values, and the report is the cold scan's.

What falls back to a scan: any edit that changes an import, its line or its context, a call of
an imported name or its line, a native hint, or a line holding an inline suppression (moving an
import down a line changes its line: that is a fall back); a file added, removed or made a link;
a change to anything that is not a service source file; several files changed where any one of
them changes a fact. What is fast: comments, docstrings, blank lines or code changed below the
last fact (so no line of a fact moves), function bodies that call no imported name — any edit
that leaves every fact of the file where it was, whether written in place or saved by an editor
as a new file renamed over the old.
"""

from __future__ import annotations

import io
import os
import pickle
import stat as stat_module
import time
from pathlib import Path

from depaudit import consulted
from depaudit.consulted import Stamp, Stamps


def restamped_after_edit(stamps: Stamps, changed: list[int], facts: dict[str, bytes]) -> tuple[Stamps, list[str], bool] | str:
    """When each file at `changed` (indexes in stamps.read) still gives the facts kept for it
    (`facts`: pickled per file by memo.py): `stamps` with those files stamped anew, their names
    as shown, and whether any stamp was renewed — one changed within the racy window keeps its
    old stamp, so the next run derives its facts again. Otherwise why not (for -v), as
    memo.why_missed says a change."""
    read = list(stamps.read)
    since = time.time_ns() - consulted.RACY_NS
    renewed = False
    for index in changed:
        path, before = read[index]
        if path not in facts:
            return f"changed: read {path}"  # no source file, or one another reader reads too
        kinds: dict[object, object] = pickle.loads(facts[path])
        now = _unchanged_facts(path, kinds) if _regular(before) else "it was not a regular file"
        if isinstance(now, str):
            return f"changed: read {path} ({now})"
        if not consulted.racy(now, since):  # else a later change could keep these times
            read[index] = (path, now)
            renewed = True
    names = list(dict.fromkeys(_shown(stamps.read[index][0]) for index in changed))  # a file read under two names, once
    return Stamps(tuple(read), stamps.listed, stamps.probed, stamps.environ), names, renewed


def _unchanged_facts(path: str, kinds: dict[object, object]) -> Stamp | str:
    """The file's stamp now, when what the scan took from it is `kinds` still; else what is not."""
    from depaudit.reading import read_regular

    now = consulted.file_stamp(path)
    if not _regular(now):
        return "no longer a regular file"
    try:
        source = read_regular(Path(path))
    except (OSError, ValueError):
        return "unreadable"
    if consulted.file_stamp(path) != now:
        return "written while read"
    differs = _changed_fact(source, kinds)
    return now if differs is None else differs


def _changed_fact(source: bytes, kinds: dict[object, object]) -> str | None:
    """What `source` gives otherwise than `kinds` keeps, or why it cannot be told; None when
    every fact is as kept."""
    from depaudit.collect.units import TooDeep, tree_of

    try:
        if tree_of(source) is None:
            return "Python cannot parse it"  # the scan's own route for such files
    except TooDeep:
        return "Python cannot parse it"
    from depaudit.collect.hints import FACTS_KIND as HINTS
    from depaudit.collect.imports import FACTS_KIND as IMPORTS, parsed_source
    from depaudit.inline_ignores import KIND as INLINE, inline_comments

    for kind, before in kinds.items():
        if kind == INLINE:
            if inline_comments(_text(source).splitlines()) != before:
                return "a line that can hold an inline suppression changed"
        elif isinstance(kind, tuple) and len(kind) == 2 and kind[0] == IMPORTS:
            if getattr(before, "error", None) is not None or getattr(before, "unreadable", None) is not None:
                return "it could not be parsed or read before"  # the scan's route (a worker, the fallback) is not repeated
            if parsed_source(source, kind[1]) != before:
                return "its imports or calls of imported names changed"
        elif kind == HINTS:
            if not _same_hints(source, before):
                return "its native hints changed"
        else:
            return f"read for {kind!r}"  # a reader this module does not know
    return None


def _same_hints(source: bytes, before: object) -> bool:
    """Whether the scan's hint route for a service's file gives `before`: the `ast` twin
    (installed_file_hints, libcst only where the trees may differ), no hints where it fails
    (native/hints.py, _hints_of)."""
    from depaudit.collect.hints import hint_facts, installed_file_hints

    try:
        found = installed_file_hints(source)
    except Exception:  # noqa: BLE001 - as the scan's worker: any failure is no hints
        found = []
    return hint_facts(found) == before


def _text(source: bytes) -> str:
    """The file's text as suppress.py reads it (Path.read_text, errors replaced)."""
    return io.TextIOWrapper(io.BytesIO(source), encoding="utf-8", errors="replace").read()


def _regular(found: Stamp | None) -> bool:
    """A regular file, not a link (its stamp is lstat's six fields alone)."""
    return found is not None and len(found) == 6 and isinstance(found[0], int) and stat_module.S_ISREG(found[0])


def _shown(path: str) -> str:
    """The path relative to the working folder when it is inside it."""
    here = os.path.join(os.getcwd(), "")
    absolute = os.path.abspath(path)
    return absolute[len(here):] if absolute.startswith(here) else path
