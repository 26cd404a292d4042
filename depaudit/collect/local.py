"""Which files a local import runs, found on a service's own sys.path (never by importing).

An entry-script service is the script plus every local module it reaches: `import a.b.c` runs
`a/__init__.py`, `a/b/__init__.py` and `a/b/c.py` (or `a/b/c/__init__.py`), and
`from a.b import c` may name the submodule `a/b/c.py`. The first sys.path entry that holds
the top-level name wins, as in Python's path finder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from depaudit import consulted

# An extension module carries an ABI tag; a bare `libfoo.so` is a shared library, not a module.
EXTENSION = re.compile(r"^\w+\.(?:cpython-|pypy|abi3)[^/]*\.so$")


@dataclass(frozen=True)
class LocalFile:
    path: Path
    package: str  # the package the file's relative imports are taken from
    extension: bool = False  # a compiled extension module: walked as ELF, not parsed


def top_level_names(folder: Path) -> frozenset[str]:
    """Modules importable when `folder` is on sys.path: `x.py`, `x/` holding Python files
    (a package or a namespace package, one level down at most), or an extension module."""
    names: set[str] = set()
    try:
        entries = list(consulted.scandir(folder))
    except OSError:
        return frozenset()
    for entry in entries:
        name = entry.name
        if name.endswith(".py") and name[:-3].isidentifier():
            names.add(name[:-3])
        elif EXTENSION.match(name):
            names.add(name.split(".", 1)[0])
        elif name.isidentifier() and _is_dir(entry) and _holds_python(Path(entry.path)):
            names.add(name)
    return frozenset(names)


Listing = Callable[[Path], dict[str, str]]  # folder → {name: "d" (folder), "f" (file) or ""}


def local_files(
    module: str, names: Sequence[str], sys_path: Sequence[Path], listing: Listing | None = None
) -> list[LocalFile]:
    """The files `import module` (or `from module import names`) runs, from the first sys.path
    entry that has the top-level name. Empty when no entry has it. Folders are read through
    `listing`, as Python's path finder caches them: one listing, not a stat per question."""
    parts = module.split(".")
    for root in sys_path:
        found = _walk(root, parts, names, listing or list_folder)
        if found:
            return found
    return []


def list_folder(folder: Path) -> dict[str, str]:
    kinds: dict[str, str] = {}
    try:
        with consulted.scandir(folder) as entries:
            for entry in entries:
                kinds[entry.name] = _kind(entry)
    except OSError:
        pass  # missing or unreadable: nothing importable there
    return kinds


def _kind(entry: os.DirEntry[str]) -> str:
    try:
        return "d" if entry.is_dir() else "f" if entry.is_file() else ""  # links followed, as the finder does
    except OSError:
        return ""


def _walk(root: Path, parts: list[str], names: Sequence[str], listing: Listing) -> list[LocalFile]:
    found: list[LocalFile] = []
    folder = root
    for position, part in enumerate(parts):
        package = ".".join(parts[:position])
        step = _step(folder, part, package, listing)
        if step is None:
            return found  # the rest is an attribute, or missing: what was found still runs
        found.extend(step[0])
        if step[1] is None:
            return found  # a module file: anything after it is an attribute
        folder = step[1]
    # `from package import name`: a name may be a submodule, which then runs too.
    dotted = ".".join(parts)
    for name in names:
        step = _step(folder, name, dotted, listing)
        if step is not None:
            found.extend(step[0])
    return found


def _step(folder: Path, part: str, package: str, listing: Listing) -> tuple[list[LocalFile], Path | None] | None:
    """What importing `part` from `folder` runs, and the folder to go on in (None: a module)."""
    here = listing(folder)
    child = folder / part
    qualified = f"{package}.{part}" if package else part
    if here.get(part) == "d" and listing(child).get("__init__.py") == "f":
        return [LocalFile(child / "__init__.py", qualified)], child
    if here.get(f"{part}.py") == "f":
        return [LocalFile(folder / f"{part}.py", package)], None
    extensions = sorted(
        name for name in here if name.startswith(f"{part}.") and name.endswith(".so") and EXTENSION.match(name)
    )
    if extensions:
        return [LocalFile(folder / extensions[0], package, extension=True)], None
    if here.get(part) == "d":
        return [], child  # a namespace package: nothing runs, its submodules may
    return None


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _holds_python(folder: Path) -> bool:
    try:
        with consulted.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(".py"):
                    return True
                if entry.name.isidentifier() and _is_dir(entry) and any(consulted.glob(Path(entry.path), "*.py")):
                    return True
    except OSError:
        return False
    return False


class LocalFinder:
    """`top_level_names` and `local_files` remembered for one scan: the services of a monorepo
    share their source roots, and each asks the same questions of the same folders."""

    def __init__(self) -> None:
        self._names: dict[Path, frozenset[str]] = {}
        self._files: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[LocalFile]] = {}
        self._listings: dict[Path, dict[str, str]] = {}

    def top_level_names(self, folder: Path) -> frozenset[str]:
        if folder not in self._names:
            self._names[folder] = top_level_names(folder)
        return self._names[folder]

    def local_files(self, module: str, names: Sequence[str], sys_path: Sequence[Path]) -> list[LocalFile]:
        key = (module, tuple(names), tuple(map(str, sys_path)))  # strings: Path equality is slow
        if key not in self._files:
            self._files[key] = local_files(module, names, sys_path, self._listing)
        return self._files[key]

    def _listing(self, folder: Path) -> dict[str, str]:
        if folder not in self._listings:
            self._listings[folder] = list_folder(folder)
        return self._listings[folder]
