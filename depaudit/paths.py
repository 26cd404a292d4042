"""How a path is shown in the report: relative to the folder it was found from."""

from __future__ import annotations

from pathlib import Path


def shown_path(path: Path, root: Path, *, resolve: bool = False) -> str:
    """`path` relative to `root` in posix form; the path itself when it lies outside.
    `resolve`: compare real paths (a root named through a symlink, `..` in a config path)."""
    try:
        if resolve:
            return path.resolve().relative_to(root.resolve()).as_posix()
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
