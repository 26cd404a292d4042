"""Native hints in Python sources: of a service's own files, and of an installed distribution's."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from depaudit import consulted
from depaudit.cache import INSTALLED_DIGEST, MISSING, ResultCache, content_key, stat_key
from depaudit.collect.hint_calls import NativeHint
from depaudit.collect.hints import FACTS_KIND, hint_facts, installed_file_hints
from depaudit.parallel import Workers
from depaudit.python.model import Distribution
from depaudit.paths import RealPaths, shown_path
from depaudit.reading import read_regular


@dataclass(frozen=True, order=True)
class FileHint:
    file: str  # display path: relative to the service's display root or to site-packages
    hint: NativeHint

    @property
    def where(self) -> str:
        return f"{self.file}:{self.hint.line}"


def distributions_hints(
    dists: Sequence[Distribution], cache: ResultCache | None = None, workers: Workers | None = None
) -> list[list[FileHint]]:
    """Hints in each distribution's .py files (from RECORD), its own test suites left out, read
    in one batch. A file libcst cannot parse (Python 2 test data, templates) is passed over: not
    the user's to fix. Results are kept by content and found through each file's stat, so a warm
    run reads no file, and a fresh install of the same wheels (CI) parses none."""
    return start_distributions_hints(dists, cache, workers)()


def start_distributions_hints(
    dists: Sequence[Distribution], cache: ResultCache | None = None, workers: Workers | None = None
) -> Callable[[], list[list[FileHint]]]:
    """`distributions_hints`, returning once the files are handed to the workers: call the
    result to wait for them."""
    cache = cache if cache is not None else ResultCache(None)
    batches = [[(d.site_packages / r, r) for r in d.files if r.endswith(".py") and not is_test_file(r)] for d in dists]
    roots = [os.path.realpath(d.site_packages) for d in dists]
    files: list[tuple[Path, str | None]] = []
    stats: list[str | None] = []
    digests: list[str | None] = []
    for batch, root in zip(batches, roots):
        paths = [(path, root) for path, _ in batch]
        found = [stat_key(path) for path, _ in batch]
        files += paths
        stats += found
        digests += _installed_digests(paths, found, cache)
    pending = _start_hints(files, digests, cache, workers, stats)

    def collect() -> list[list[FileHint]]:
        found = pending()
        return [sorted(FileHint(shown, hint) for path, shown in batch for hint in found[path]) for batch in batches]

    return collect


_NOT_RUNTIME_DIRS = frozenset(
    {"tests", "test", "testing", "_tests", "_vendor", "vendor", "distutils", "benchmarks", "examples", "_examples", "docs"}
)


def runs_at_import(hint: FileHint) -> bool:
    """A module-level call in the distribution's top-level module or package __init__: it runs
    when the service imports it. Anything else runs only if that feature is used."""
    parts = hint.file.split("/")
    top_level = len(parts) == 1 or (len(parts) == 2 and parts[1] == "__init__.py")
    return top_level and not hint.hint.lazy


def is_test_file(relative: str) -> bool:
    parts = relative.split("/")
    name = parts[-1]
    return (
        # Test suites, vendored copies, build tooling and examples: not what a service runs.
        any(part in _NOT_RUNTIME_DIRS for part in parts[:-1])
        or name.startswith("test_")
        or name == "conftest.py"
    )


def folder_hints(
    files: Sequence[Path], display_root: Path, cache: ResultCache | None = None, workers: Workers | None = None
) -> list[FileHint]:
    """Hints in a service's own files, cached by content (a fresh checkout changes only mtimes)."""
    cache = cache if cache is not None else ResultCache(None)
    shown = [(path, shown_path(path, display_root)) for path in files]
    return _hints(shown, [_content_key(path, cache) for path in files], cache, workers)


class OwnHints:
    """`folder_hints` for one scan's services: each file's hints found once, however many
    services' closures hold it (a monorepo's shared modules are in every one)."""

    def __init__(self, cache: ResultCache | None = None, workers: Workers | None = None) -> None:
        self.cache = cache if cache is not None else ResultCache(None)
        self.workers = workers
        self._found: dict[tuple[str, str], list[FileHint]] = {}  # (file, display root) → its hints

    def of(self, files: Sequence[Path], display_root: Path) -> list[FileHint]:
        root = str(display_root)
        todo = [path for path in files if (str(path), root) not in self._found]
        if todo:
            with consulted.sourcing():  # all this takes from a file is its hints: noted below
                keys = [_content_key(path, self.cache) for path in todo]
            found = _start_hints([(path, None) for path in todo], keys, self.cache, self.workers)()
            for path in todo:
                shown = shown_path(path, display_root)
                self._found[str(path), root] = [FileHint(shown, hint) for hint in found[path]]
                consulted.note_facts(path, FACTS_KIND, hint_facts(found[path]))
        return sorted(hint for path in files for hint in self._found[str(path), root])


_KIND = "hints"  # content key → the file's hints
# The same for an installed distribution's file, read by the `ast` route (installed_file_hints):
# apart from a service's, as the routes part on a file only one of the parsers reads.
_INSTALLED_KIND = "installed-hints"


def _hints(
    files: Sequence[tuple[Path, str]],
    keys: Sequence[str | None],
    cache: ResultCache | None,
    workers: Workers | None,
) -> list[FileHint]:
    found = _start_hints([(path, None) for path, _ in files], keys, cache, workers)()
    return sorted(FileHint(shown, hint) for path, shown in files for hint in found[path])


# Files of one distribution read here, at most, while none of their contents has a result: a
# wheel never seen before costs this many reads, not one per file.
_PROBES = 8


def _installed_digests(
    files: Sequence[tuple[Path, str | None]], stats: Sequence[str | None], cache: ResultCache
) -> list[str | None]:
    """The content key of each of one distribution's files where it is known here (else None:
    the worker that parses the file says it). A file seen before is found by its stat: nothing
    is read. Of the files whose stat is new (a fresh install of the same wheel: CI, a restored
    venv), the first _PROBES are read and hashed here, and all the others too once one of them
    has a result. A file linking out of its site-packages is never read."""
    digests: list[str | None] = []
    probes, hits = 0, 0
    real = RealPaths()
    for (path, root), stat in zip(files, stats):
        digest = cache.get(INSTALLED_DIGEST, stat)
        if digest is MISSING:
            digest = None
            if stat is not None and (hits or probes < _PROBES):
                probes += 1
                digest = _read_digest(path, root, real)
                if digest is not None and cache.get(_INSTALLED_KIND, digest) is not MISSING:
                    hits += 1
                    cache.put(INSTALLED_DIGEST, stat, digest)
        digests.append(digest)
    return digests


def _read_digest(path: Path, root: str | None, real: RealPaths) -> str | None:
    try:
        if root is not None and not real(str(path)).startswith(root + os.sep):
            return None
        return content_key(read_regular(path))
    except (OSError, ValueError):
        return None


def _start_hints(
    files: Sequence[tuple[Path, str | None]],
    keys: Sequence[str | None],
    cache: ResultCache | None,
    workers: Workers | None,
    stats: Sequence[str | None] | None = None,
) -> Callable[[], dict[Path, list[NativeHint]]]:
    """files: (path, the real folder it must lie in: None for a service's own files); keys: the
    content key of each, where known; stats: the stat key of each installed file, under which
    the content key its worker finds is remembered."""
    cache = cache if cache is not None else ResultCache(None)
    results: dict[Path, list[NativeHint]] = {}
    todo: list[tuple[tuple[Path, str | None], str | None, str | None]] = []
    for (path, root), key, stat in zip(files, keys, stats or [None] * len(files)):
        cached = cache.get(_kind(root), key)
        if cached is MISSING:
            todo.append(((path, root), key, stat))
        else:
            results[path] = [_hint(row) for row in cached]
    # Each chunk a worker takes carries its own copy of the folder table: torch's 2,000 files lie
    # in ~200 folders, and realpath lstats every component of every path.
    pending = (workers or Workers(1)).start(
        partial(_hints_of, real=RealPaths()), [item for item, _, _ in todo], crashed=_no_hints, unit="files searched for hints"
    )

    def collect() -> dict[Path, list[NativeHint]]:
        for ((path, root), key, stat), (digest, hints) in zip(todo, pending()):
            if path not in results:
                results[path] = hints
                cache.put(_kind(root), key or digest, [_row(hint) for hint in hints])
                if stat is not None and digest is not None:
                    cache.put(INSTALLED_DIGEST, stat, digest)
        return results

    return collect


def _hints_of(item: tuple[Path, str | None], real: Callable[[str], str] = os.path.realpath) -> tuple[str | None, list[NativeHint]]:
    """Runs in a worker process: one file's content key and hints; no hints for an unreadable or
    unparsable file (the import stage reports those of a service; a wheel's are not the user's
    to fix), and no key either for a wheel's file that is a symbolic link out of its
    site-packages (never opened)."""
    path, root = item
    try:
        if root is not None and not real(str(path)).startswith(root + os.sep):
            return None, []
        if root is None:
            with consulted.sourcing():  # a service's file: its hints are all OwnHints takes from it
                source = read_regular(path)
        else:
            source = read_regular(path)
    except (OSError, ValueError):
        return None, []
    try:
        # Read on the `ast` tree, as libcst would read it (libcst only where `ast` cannot: it is
        # imported by the worker that meets such a file); a service's file as the import stage
        # reads it now, so a scan whose files Python reads never loads libcst.
        return content_key(source), installed_file_hints(source)
    except Exception:  # libcst's syntax, decoding and recursion errors alike
        return content_key(source), []


def _kind(root: str | None) -> str:
    return _KIND if root is None else _INSTALLED_KIND


def _no_hints(item: tuple[Path, str | None]) -> tuple[str | None, list[NativeHint]]:
    return None, []  # the parser killed its worker on this file: passed over like any unparsable one


def _row(hint: NativeHint) -> list[object]:
    return [hint.line, hint.kind, list(hint.candidates), hint.call, hint.lazy, hint.guarded, hint.loop, hint.by_path]


def _hint(row: list[Any]) -> NativeHint:
    line, kind, candidates, call, lazy, guarded, loop, by_path = row
    return NativeHint(line, kind, tuple(candidates), call, lazy, guarded, loop, by_path)


def _content_key(path: Path, cache: ResultCache) -> str | None:
    try:
        return cache.file_digest(path)
    except OSError:
        return None
