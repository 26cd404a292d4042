"""Which files a local import runs, found on a service's own sys.path (never by importing).

An entry-script service is the script plus every local module it reaches: `import a.b.c` runs
`a/__init__.py`, `a/b/__init__.py` and `a/b/c.py` (or `a/b/c/__init__.py`), and
`from a.b import c` may name the submodule `a/b/c.py`. The first sys.path entry that holds
the top-level name wins, as in Python's path finder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
        entries = list(os.scandir(folder))
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


def local_files(module: str, names: Sequence[str], sys_path: Sequence[Path]) -> list[LocalFile]:
    """The files `import module` (or `from module import names`) runs, from the first sys.path
    entry that has the top-level name. Empty when no entry has it."""
    parts = module.split(".")
    for root in sys_path:
        found = _walk(root, parts, names)
        if found:
            return found
    return []


def _walk(root: Path, parts: list[str], names: Sequence[str]) -> list[LocalFile]:
    found: list[LocalFile] = []
    folder = root
    for position, part in enumerate(parts):
        package = ".".join(parts[:position])
        step = _step(folder, part, package)
        if step is None:
            return found  # the rest is an attribute, or missing: what was found still runs
        found.extend(step[0])
        if step[1] is None:
            return found  # a module file: anything after it is an attribute
        folder = step[1]
    # `from package import name`: a name may be a submodule, which then runs too.
    dotted = ".".join(parts)
    for name in names:
        step = _step(folder, name, dotted)
        if step is not None:
            found.extend(step[0])
    return found


def _step(folder: Path, part: str, package: str) -> tuple[list[LocalFile], Path | None] | None:
    """What importing `part` from `folder` runs, and the folder to go on in (None: a module)."""
    child = folder / part
    init = child / "__init__.py"
    qualified = f"{package}.{part}" if package else part
    if init.is_file():
        return [LocalFile(init, qualified)], child
    module = folder / f"{part}.py"
    if module.is_file():
        return [LocalFile(module, package)], None
    extensions = _extensions(folder, part)
    if extensions:
        return [LocalFile(extensions[0], package, extension=True)], None
    if child.is_dir():
        return [], child  # a namespace package: nothing runs, its submodules may
    return None


def _extensions(folder: Path, part: str) -> list[Path]:
    try:
        return sorted(p for p in folder.glob(f"{part}.*.so") if EXTENSION.match(p.name))
    except OSError:
        return []


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _holds_python(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(".py"):
                    return True
                if entry.name.isidentifier() and _is_dir(entry) and any(Path(entry.path).glob("*.py")):
                    return True
    except OSError:
        return False
    return False


class LocalFinder:
    """`top_level_names` and `local_files` remembered for one scan: the services of a monorepo
    share their source roots, and each asks the same questions of the same folders."""

    def __init__(self) -> None:
        self._names: dict[Path, frozenset[str]] = {}
        self._files: dict[tuple[str, tuple[str, ...], tuple[Path, ...]], list[LocalFile]] = {}

    def top_level_names(self, folder: Path) -> frozenset[str]:
        if folder not in self._names:
            self._names[folder] = top_level_names(folder)
        return self._names[folder]

    def local_files(self, module: str, names: Sequence[str], sys_path: Sequence[Path]) -> list[LocalFile]:
        key = (module, tuple(names), tuple(sys_path))
        if key not in self._files:
            self._files[key] = local_files(module, names, sys_path)
        return self._files[key]
