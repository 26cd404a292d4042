"""Follow a service's Dockerfile up through its family Dockerfiles to the image they start from."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from depaudit import consulted
from depaudit.dockerfile.model import Dockerfile, Dockerfiles
from depaudit.fleet.config import DEFAULT_FAMILY_GLOBS

_SKIPPED = frozenset({"node_modules", "site-packages", "dist-packages", "__pycache__"})


@dataclass(frozen=True)
class BaseChain:
    families: tuple[str, ...]  # the family images on the way up, nearest first
    dockerfiles: tuple[Dockerfile, ...]  # the service's own Dockerfile first, then each family's, as read
    image: str | None  # the first FROM that names no family Dockerfile: the external base


def index_family_dockerfiles(root: Path, patterns: Sequence[str] = DEFAULT_FAMILY_GLOBS) -> dict[str, Path]:
    """Family name → Dockerfile: of two files that claim one name, the first in walk order."""
    return {name: paths[0] for name, paths in family_dockerfile_claims(root, patterns).items()}


def family_dockerfile_claims(root: Path, patterns: Sequence[str] = DEFAULT_FAMILY_GLOBS) -> dict[str, list[Path]]:
    """Family name → every Dockerfile below root that claims it (a relative path matching a glob),
    in walk order.

    The name is the suffix of `Dockerfile.<name>` (or the stem of `<name>.Dockerfile`), else the
    folder holding the file. Hidden folders, caches and virtual environments are not walked.
    """
    matcher = re.compile("|".join(f"(?:{_glob_regex(pattern).pattern})" for pattern in patterns) or "(?!)")
    found: dict[str, list[Path]] = {}
    top = os.fspath(root)
    # String work per folder and one regex per file: this walks the whole monorepo every scan.
    for folder, dirs, files in consulted.walk(top):
        if folder != top and "pyvenv.cfg" in files:
            dirs.clear()  # a virtual environment: neither its files nor its folders
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED)
        prefix = "" if folder == top else folder[len(top) :].lstrip("/") + "/"
        for name in sorted(name for name in files if matcher.fullmatch(prefix + name)):
            path = Path(folder, name)
            family = _family_of(path, root)
            if family:
                found.setdefault(family, []).append(path)
    return found


def _family_of(dockerfile: Path, root: Path) -> str | None:
    name = dockerfile.name
    if name.startswith("Dockerfile."):
        return name.split(".", 1)[1]
    if name.endswith(".Dockerfile") or name.endswith(".dockerfile"):
        return name.rsplit(".", 1)[0]
    return dockerfile.parent.name if dockerfile.parent != root else None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob over posix paths: `**/` spans folders, `*` and `?` stay inside one name."""
    out, position = [], 0
    while position < len(pattern):
        if pattern.startswith("**/", position):
            out.append("(?:[^/]+/)*")
            position += 3
        elif pattern.startswith("**", position):
            out.append(".*")
            position += 2
        elif pattern[position] == "*":
            out.append("[^/]*")
            position += 1
        elif pattern[position] == "?":
            out.append("[^/]")
            position += 1
        else:
            out.append(re.escape(pattern[position]))
            position += 1
    return re.compile("".join(out))


def family_name(reference: str) -> str:
    """`registry:5000/ml/family-torch:2024` → `family-torch`."""
    without_digest = reference.split("@", 1)[0]
    last = without_digest.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def base_chain(dockerfile: Path, families: Mapping[str, Path], dockerfiles: Dockerfiles | None = None) -> BaseChain:
    """The chain from one Dockerfile up, its files read through `dockerfiles` (default: a memo of its own)."""
    read = (dockerfiles or Dockerfiles()).read
    names: list[str] = []
    files = [read(dockerfile)]
    image = files[0].image()
    while image is not None and image.base:
        name = family_name(image.base)
        family = families.get(name)
        if family is None or family in (f.path for f in files):  # an external image (or a cycle): the chain ends
            break
        names.append(name)
        files.append(read(family))
        image = files[-1].image()
    return BaseChain(tuple(names), tuple(files), image.base if image is not None and image.base else None)


def chain_env(chain: BaseChain, base_env: Mapping[str, str]) -> dict[str, str]:
    """The service image's environment: the base image's, then each Dockerfile's ENV, top down."""
    env = dict(base_env)
    for dockerfile in reversed(chain.dockerfiles):
        image = dockerfile.image(env)
        if image is not None:
            env = image.env
    return env
