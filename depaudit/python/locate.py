"""Where a Python environment keeps its packages, found without running any interpreter:
a venv root, an interpreter's path (read through `pyvenv.cfg` and the prefix's layout), and
the default when nothing is given ($VIRTUAL_ENV, then ./.venv, then depaudit's own)."""

from __future__ import annotations

import os
import re
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from depaudit.options import InputError
from depaudit.python.model import Distribution

_VERSION_NAME = re.compile(r"python(3\.\d+)$")
# What a tool's own venv holds besides the tool and what it requires.
_INSTALLERS = frozenset({"pip", "setuptools", "wheel", "depaudit"})


@dataclass(frozen=True)
class EnvironmentChoice:
    """The site-packages folders a scan resolves against, and why those."""

    folders: tuple[Path, ...]
    source: str  # how the report names the reason: "--site-packages", "$VIRTUAL_ENV", …
    fallback: bool = False  # the interpreter running depaudit: nothing named an environment
    # How reports name the folders when their path here says nothing: an image's site-packages,
    # copied out, is "<image>:<path in the image>".
    shown: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return self.shown or tuple(str(folder) for folder in self.folders)


def environment_folders(path: Path) -> tuple[Path, ...]:
    """The site-packages folders `path` stands for: a venv root (`pyvenv.cfg`, or a
    `lib/python3.X/site-packages` inside) gives its own; any other folder is itself."""
    if (path / "pyvenv.cfg").is_file() or not any(path.glob("*.dist-info")) and not any(path.glob("*.egg-info")):
        inside = sorted(path.glob("lib/python3*/site-packages")) + sorted(path.glob("lib64/python3*/site-packages"))
        found = list(dict.fromkeys(folder.resolve() for folder in inside if folder.is_dir()))
        if found:
            return tuple(found)
    return (path,)


def interpreter_folders(python: Path) -> tuple[Path, ...]:
    """The site-packages of the interpreter at `python` (a venv's bin/python, a conda env's, a
    system python3.X), read from `pyvenv.cfg` and the prefix's layout; never run."""
    if python.is_dir():
        return environment_folders(python)
    if not python.exists():
        raise InputError(f"--python: no such interpreter: {python}")
    # A venv's bin/python is a link to its base interpreter: its own folder says which venv.
    prefix = Path(os.path.abspath(python)).parent.parent
    config = _pyvenv_cfg(prefix / "pyvenv.cfg")
    version = _version(python, config, prefix)
    folders = [prefix / lib / f"python{version}" / "site-packages" for lib in ("lib", "lib64")]
    if config is None:  # a system or conda interpreter: its distro's folders too
        folders += [
            prefix / "local" / "lib" / f"python{version}" / "dist-packages",
            prefix / "lib" / f"python{version}" / "dist-packages",
            prefix / "lib" / "python3" / "dist-packages",
        ]
    elif config.get("include-system-site-packages", "").lower() == "true" and config.get("home"):
        base = Path(config["home"]).parent
        folders += [base / "lib" / f"python{version}" / "site-packages", base / "lib" / "python3" / "dist-packages"]
    found = tuple(dict.fromkeys(folder.resolve() for folder in folders if folder.is_dir()))
    if not found:
        raise InputError(f"--python {python}: no site-packages for Python {version} under {prefix}")
    return found


def default_environment(cwd: Path, environ: Mapping[str, str]) -> EnvironmentChoice:
    """$VIRTUAL_ENV (an activated venv), else ./.venv, else the interpreter running depaudit."""
    active = environ.get("VIRTUAL_ENV")
    if active:
        if not Path(active).is_dir():
            raise InputError(f"$VIRTUAL_ENV names no folder: {active}")
        return EnvironmentChoice(environment_folders(Path(active)), "$VIRTUAL_ENV")
    local = cwd / ".venv"
    if (local / "pyvenv.cfg").is_file():
        return EnvironmentChoice(environment_folders(local), "./.venv")
    paths = sysconfig.get_paths()
    folders = tuple(dict.fromkeys(Path(paths[name]) for name in ("purelib", "platlib")))
    return EnvironmentChoice(folders, "the interpreter running depaudit", fallback=True)


def only_the_tool(distributions: Mapping[str, Distribution]) -> bool:
    """An environment that holds depaudit and nothing it does not need: depaudit's own
    (pipx, `uv tool`), never the services' environment."""
    if "depaudit" not in distributions:
        return False
    needed = set(_INSTALLERS)
    todo = ["depaudit"]
    while todo:
        dist = distributions.get(todo.pop())
        if dist is None:
            continue
        for name in _required_names(dist.requires):  # extras too: a dev venv is the tool's as well
            if name not in needed:
                needed.add(name)
                todo.append(name)
    return set(distributions) <= needed


def _required_names(requires: Iterable[str]) -> Iterable[str]:
    for text in requires:
        try:
            yield canonicalize_name(Requirement(text).name)
        except InvalidRequirement:
            continue


def _pyvenv_cfg(path: Path) -> dict[str, str] | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip().lower()] = value.strip()
    return values


def _version(python: Path, config: dict[str, str] | None, prefix: Path) -> str:
    """X.Y of the interpreter: pyvenv.cfg's version, its name (python3.11, or where its links
    lead), else the one lib/python3.X of its prefix."""
    if config is not None:
        for key in ("version_info", "version"):
            match = re.match(r"(3\.\d+)", config.get(key, ""))
            if match:
                return match.group(1)
    link = python
    for _ in range(8):  # python3 → python3.10 → …: the first versioned name on the way
        match = _VERSION_NAME.search(link.name)
        if match:
            return match.group(1)
        if not link.is_symlink():
            break
        link = link.parent / os.readlink(link)
    versions = sorted({folder.name[len("python"):] for folder in prefix.glob("lib/python3.*") if folder.is_dir()})
    if len(versions) == 1:
        return versions[0]
    if not versions and Path(os.path.realpath(python)) == Path(os.path.realpath(sys.executable)):
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    raise InputError(f"--python {python}: cannot tell its Python version; name the versioned interpreter (python3.X)")
