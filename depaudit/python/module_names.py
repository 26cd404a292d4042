"""Which module a file of site-packages is, by its name alone: what CPython's import system would
find at that path."""

from __future__ import annotations

import re

_ABI_TAG = re.compile(r"\.(cpython-[^.]+|abi3|pypy[^.]*)\.so$")


def extension_stem(name: str) -> str | None:
    """The module name of a file CPython can import as an extension module
    (`mod.cpython-311-x86_64-linux-gnu.so`, `mod.abi3.so`, `_mod.so`), else None."""
    name = name.rsplit("/", 1)[-1]
    if not name.endswith(".so"):
        return None
    stem = name.split(".", 1)[0]
    if not stem.isidentifier():
        return None
    if _ABI_TAG.search(name) or (name == f"{stem}.so" and not stem.startswith("lib")):
        return stem
    return None


def module_name(relative: str) -> tuple[str, bool] | None:
    """(dotted module name, is an extension module) of a posix path relative to site-packages:
    `a/b/__init__.py` is `a.b`, `a/c.py` is `a.c`, `a/_d.abi3.so` is `a._d`. None for other files
    and for folders that are no identifiers (`a.libs/`, `a-1.0.dist-info/`)."""
    if not relative.endswith((".py", ".so")):
        return None  # most of a wheel's files (headers, data, .pyi): asked of every file it ships
    folder, _, name = relative.rpartition("/")
    parts = folder.split("/") if folder else []
    if not all(part.isidentifier() for part in parts):
        return None
    if name.endswith(".py"):
        stem = name[:-3]
        if not stem.isidentifier():
            return None
        dotted = ".".join(parts if stem == "__init__" else [*parts, stem])
        return (dotted, False) if dotted else None  # a bare site-packages/__init__.py is no module
    stem = extension_stem(name)
    if stem is None:
        return None
    return ".".join([*parts, stem]), True
