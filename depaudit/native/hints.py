"""Native hints in Python sources: of a service's own files, and of an installed distribution's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from depaudit.collect.hints import NativeHint, may_have_hints, scan_hints
from depaudit.python.model import Distribution


@dataclass(frozen=True, order=True)
class FileHint:
    file: str  # display path: relative to the service's display root or to site-packages
    hint: NativeHint

    @property
    def where(self) -> str:
        return f"{self.file}:{self.hint.line}"


def distribution_hints(dist: Distribution) -> list[FileHint]:
    """Hints in a distribution's .py files (from RECORD), its own test suites left out. A file
    libcst cannot parse (Python 2 test data, templates) is passed over: not the user's to fix."""
    files = [relative for relative in dist.files if relative.endswith(".py") and not _is_test_file(relative)]
    return _hints([(dist.site_packages / relative, relative) for relative in files])


_NOT_RUNTIME_DIRS = frozenset(
    {"tests", "test", "testing", "_tests", "_vendor", "vendor", "distutils", "benchmarks", "examples", "_examples", "docs"}
)


def runs_at_import(hint: FileHint) -> bool:
    """A module-level call in the distribution's top-level module or package __init__: it runs
    when the service imports it. Anything else runs only if that feature is used."""
    parts = hint.file.split("/")
    top_level = len(parts) == 1 or (len(parts) == 2 and parts[1] == "__init__.py")
    return top_level and not hint.hint.lazy


def _is_test_file(relative: str) -> bool:
    parts = relative.split("/")
    name = parts[-1]
    return (
        # Test suites, vendored copies, build tooling and examples: not what a service runs.
        any(part in _NOT_RUNTIME_DIRS for part in parts[:-1])
        or name.startswith("test_")
        or name == "conftest.py"
    )


def folder_hints(files: Sequence[Path], display_root: Path) -> list[FileHint]:
    return _hints([(path, path.relative_to(display_root).as_posix()) for path in files])


def _hints(files: Sequence[tuple[Path, str]]) -> list[FileHint]:
    found: list[FileHint] = []
    for path, shown in files:
        try:
            source = path.read_bytes()
        except OSError:
            continue  # the import stage reports unreadable service files
        if not may_have_hints(source):
            continue  # the cheap text test: most files never reach the parser
        try:
            hints = scan_hints(source)
        except Exception:  # libcst's syntax, decoding and recursion errors alike
            continue
        found.extend(FileHint(shown, hint) for hint in hints)
    return sorted(found)
