"""Embedded base-image profiles: what a well-known image provides, for scans without the image."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from depaudit import consulted
from depaudit.packages.rules import RulesError, rules_dir
from depaudit.packages.tables import check_keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_KEYS = {"image": str, "extends": str, "distro": str, "source": str, "packages": list, "env": dict, "sonames": dict}
_REQUIRED = ("image", "distro", "source", "packages", "env", "sonames")


@dataclass(frozen=True)
class BaseProfile:
    image: str  # the reference it describes, e.g. "nvidia/cuda:12.1.1-runtime-ubuntu22.04"
    distro: str
    sources: tuple[str, ...]  # its own source, then those of the profiles it extends
    packages: frozenset[str]  # installed on top of the distro's base packages
    env: Mapping[str, str]
    sonames: Mapping[str, str]  # soname → the package providing it in the image


def profiles_dir() -> Path:
    return rules_dir() / "profiles"


def known_profiles(directory: Path | None = None) -> dict[str, Path]:
    """Image reference → profile file."""
    found = {}
    for path in consulted.glob(directory or profiles_dir(), "*.toml"):
        found[_read(path)["image"]] = path
    return found


def load_profile(image: str, directory: Path | None = None) -> BaseProfile:
    known = known_profiles(directory)
    reference = image if ":" in image else f"{image}:latest"
    if reference not in known:
        raise RulesError(f"no profile for base image {image!r} (known: {', '.join(sorted(known)) or 'none'})")
    data = _read(known[reference])
    parent = load_profile(data["extends"], directory) if data.get("extends") else None
    return BaseProfile(
        image=data["image"],
        distro=data["distro"],
        sources=(data["source"], *(parent.sources if parent else ())),
        packages=frozenset(data["packages"]) | (parent.packages if parent else frozenset()),
        env={**(parent.env if parent else {}), **data["env"]},
        sonames={**(parent.sonames if parent else {}), **data["sonames"]},
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(consulted.read_text(path))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RulesError(f"profiles/{path.name}: cannot read: {error}") from error
    check_keys(f"profiles/{path.name}", data, _KEYS, _REQUIRED, RulesError)
    for table in ("env", "sonames"):
        if not all(isinstance(v, str) for v in data[table].values()):
            raise RulesError(f"profiles/{path.name}: every value of {table!r} must be a string")
    return data
