"""Path questions asked thousands of times a scan: how a path is shown in the report (relative
to the folder it was found from), and where it really leads."""

from __future__ import annotations

import os
from pathlib import Path

from depaudit import consulted


def shown_path(path: Path, root: Path, *, resolve: bool = False) -> str:
    """`path` relative to `root` in posix form; the path itself when it lies outside.
    `resolve`: compare real paths (a root named through a symlink, `..` in a config path)."""
    if not resolve:
        # The common case by string (asked per import edge per service): a Path's string is
        # already normalised, so a prefix ending at a separator is what relative_to checks.
        text, prefix = str(path), str(root)
        if os.sep == "/" and prefix not in ("", ".", "/") and text.startswith(prefix + "/"):
            return text[len(prefix) + 1 :]
    try:
        if resolve:
            return path.resolve().relative_to(root.resolve()).as_posix()
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


class RealPaths:
    """os.path.realpath of many files in few folders: each folder resolved once, then one lstat
    per file (realpath itself lstats every component of every path). Same answers, files do not
    change during a scan."""

    def __init__(self) -> None:
        self._folders: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        folder, name = os.path.split(path)
        if name in ("", ".", "..") or not folder or os.path.islink(path):
            return os.path.realpath(path)
        real = self._folders.get(folder)
        if real is None:
            real = self._folders[folder] = os.path.realpath(folder)
        return os.path.join(real, name)


def source_root(start: Path | None = None) -> Path:
    """The repository root: the nearest folder at or above `start` (the current directory) that
    holds `.git` (a folder, or a file in a worktree or a submodule), else `start` itself. Found
    without running git. SARIF locations and the Dockerfile patch are both relative to it, so a
    code-scanning alert and `git apply` name a file by the same path."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if consulted.exists(folder / ".git"):
            return folder
    return here


def root_relative(path: Path, root: Path) -> str | None:
    """`path` relative to `root` in posix form, real paths compared; None when it lies outside."""
    try:
        return path.resolve().relative_to(root).as_posix()
    except (ValueError, RuntimeError, OSError):  # RuntimeError or OSError: a symlink loop, by Python version
        return None


def project_root(folder: Path) -> Path:
    """What files the project ships may name: the git repository `folder` is in (found without
    running git), else `folder` itself. A requirements include or a config path that leaves it
    names a file of this machine, not of the project (`-r ../../../../etc/group`)."""
    return source_root(folder)


def within(path: Path, root: Path) -> bool:
    """Whether `path`, symlinks resolved, lies in `root` (resolved already)."""
    return root_relative(path, root) is not None


def default_cache_dir() -> Path:
    """$DEPAUDIT_CACHE_DIR, else $XDG_CACHE_HOME/depaudit (where platformdirs puts a user cache).
    Here, not beside the index: the whole-scan memo is looked up before any stage is imported."""
    if os.environ.get("DEPAUDIT_CACHE_DIR"):
        return Path(os.environ["DEPAUDIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "depaudit"
