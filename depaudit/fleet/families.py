"""Follow a service's Dockerfile up through its family Dockerfiles to the image they start from."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from depaudit.fleet.dockerfile import read_dockerfile

_SKIPPED = frozenset({"node_modules", "site-packages", "dist-packages", "__pycache__"})


@dataclass(frozen=True)
class BaseChain:
    families: tuple[str, ...]  # the family images on the way up, nearest first
    dockerfiles: tuple[Path, ...]  # the service's own Dockerfile first, then each family's
    image: str | None  # the first FROM that names no family Dockerfile: the external base


def index_family_dockerfiles(root: Path) -> dict[str, Path]:
    """Family name → Dockerfile: `<name>/Dockerfile` or `Dockerfile.<name>` anywhere below root."""
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg")))
        here = Path(folder)
        if "Dockerfile" in files and here != root:
            found.setdefault(here.name, here / "Dockerfile")
        for name in sorted(files):
            if name.startswith("Dockerfile."):
                found.setdefault(name.split(".", 1)[1], here / name)
    return found


def family_name(reference: str) -> str:
    """`registry:5000/ml/family-torch:2024` → `family-torch`."""
    without_digest = reference.split("@", 1)[0]
    last = without_digest.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def base_chain(dockerfile: Path, families: Mapping[str, Path]) -> BaseChain:
    names: list[str] = []
    files = [dockerfile]
    image = read_dockerfile(dockerfile)
    while image is not None and image.base:
        name = family_name(image.base)
        family = families.get(name)
        if family is None or family in files:  # an external image (or a cycle): the chain ends
            break
        names.append(name)
        files.append(family)
        image = read_dockerfile(family)
    return BaseChain(tuple(names), tuple(files), image.base if image is not None and image.base else None)


def chain_env(chain: BaseChain, base_env: Mapping[str, str]) -> dict[str, str]:
    """The service image's environment: the base image's, then each Dockerfile's ENV, top down."""
    env = dict(base_env)
    for dockerfile in reversed(chain.dockerfiles):
        image = read_dockerfile(dockerfile, env)
        if image is not None:
            env = image.env
    return env
