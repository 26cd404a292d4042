"""What depaudit knows of CUDA itself (rules/cuda/cuda.toml): which sonames name the CUDA major,
the oldest driver each major runs on, what a `-base-` image variant keeps, and the libraries' sizes."""

from __future__ import annotations

import fnmatch
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from depaudit.packages.rules import RulesError, rules_dir
from depaudit.packages.tables import check_keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_SONAME = re.compile(r"^(lib[A-Za-z0-9_+-]+)\.so\.(\d+)(\.\d+)*$")
# NVIDIA's wheels name their CUDA major: nvidia-cublas-cu12, nvidia-cudnn-cu13.
_DISTRIBUTION = re.compile(r"^nvidia-.*-cu(\d+)$")
_VERSION = re.compile(r"^\d+(\.\d+)*$")
_KEYS = {"drivers": dict, "sonames": dict, "base_variant": dict, "image": dict, "sizes": dict}


@dataclass(frozen=True)
class CudaRules:
    drivers: Mapping[int, str]  # CUDA major → minimum Linux driver version
    major_in_soname: frozenset[str]  # library stems whose soname major is the CUDA major
    base_variant: tuple[str, ...]  # sonames a `-base-` variant keeps, with `{major}`
    sizes: Mapping[str, Mapping[str, int]]  # "12.1" → soname → KiB (an estimate)
    sources: tuple[str, ...]
    image_packages: tuple[str, ...] = ()  # dpkg package patterns of an image's CUDA libraries
    image_folders: tuple[str, ...] = ()  # folder patterns holding CUDA libraries no package owns
    image_ignore: tuple[str, ...] = ()  # package patterns of the driver's forward-compatibility copy

    def is_cuda_package(self, package: str) -> bool:
        def matches(patterns: tuple[str, ...]) -> bool:
            return any(fnmatch.fnmatchcase(package, pattern) for pattern in patterns)

        return matches(self.image_packages) and not matches(self.image_ignore)

    def soname_major(self, soname: str) -> int | None:
        """The CUDA major `soname` belongs to, when its name says it (libcudart.so.13 → 13)."""
        found = _SONAME.match(soname)
        if found is None or found.group(1) not in self.major_in_soname:
            return None
        return int(found.group(2))

    def driver(self, major: int) -> str | None:
        return self.drivers.get(major)

    def base_sonames(self, major: int) -> frozenset[str]:
        return frozenset(name.replace("{major}", str(major)) for name in self.base_variant)

    def kib(self, cuda_version: str, soname: str) -> int | None:
        """The estimated size of a library of the image's CUDA (`12.1.1` reads the `12.1` table)."""
        return self.sizes.get(".".join(cuda_version.split(".")[:2]), {}).get(soname)


def distribution_major(name: str) -> int | None:
    """The CUDA major an `nvidia-*-cuNN` distribution is built for (canonical names)."""
    found = _DISTRIBUTION.match(name)
    return int(found.group(1)) if found else None


# NVIDIA's CUDA 13 wheels install below nvidia/cu13/ (torch 2.14's nvidia-cufft, -curand, …
# have no -cu13 suffix, and their sonames carry no CUDA major): the folder says it.
_INSTALL_FOLDER = re.compile(r"(?:^|/)nvidia/cu(\d+)/")


def install_major(found_at: str) -> int | None:
    """The CUDA major of a wheel's library by where it is installed (`nvidia/cu13/lib/…` → 13)."""
    found = _INSTALL_FOLDER.search(found_at)
    return int(found.group(1)) if found else None


def version_major(cuda_version: str | None) -> int | None:
    """`12.1.1` → 12; None when CUDA_VERSION is absent or not a version."""
    if cuda_version is None or not _VERSION.match(cuda_version.strip()):
        return None
    return int(cuda_version.strip().split(".")[0])


def load_cuda_rules(path: Path | None = None) -> CudaRules:
    """The CUDA rules, validated: an unknown key, a value of the wrong type or a table without
    its `source` is an error naming the file and the key."""
    path = path or rules_dir() / "cuda" / "cuda.toml"
    name = f"cuda/{path.name}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise RulesError(f"{name}: cannot read: {error}") from error
    check_keys(name, data, _KEYS, _KEYS, RulesError)
    drivers = _table(name, "drivers", data["drivers"], {"minimum": dict})
    sonames = _table(name, "sonames", data["sonames"], {"major_in_soname": list})
    variant = _table(name, "base_variant", data["base_variant"], {"sonames": list})
    minimum: dict[int, str] = {}
    for major, version in drivers["minimum"].items():
        if not major.isdigit() or not isinstance(version, str) or not _VERSION.match(version):
            raise RulesError(f"{name}: drivers.minimum: {major!r} = {version!r} is not CUDA major = driver version")
        minimum[int(major)] = version
    stems = _strings(name, "sonames.major_in_soname", sonames["major_in_soname"])
    kept = _strings(name, "base_variant.sonames", variant["sonames"])
    image = _table(name, "image", data["image"], {"packages": list, "folders": list, "ignore": list})
    packages = _strings(name, "image.packages", image["packages"])
    folders = _strings(name, "image.folders", image["folders"])
    ignore = _strings(name, "image.ignore", image["ignore"])
    sources = [drivers["source"], sonames["source"], variant["source"], image["source"]]
    sizes: dict[str, dict[str, int]] = {}
    for version, table in data["sizes"].items():
        if not _VERSION.match(version) or not isinstance(table, dict):
            raise RulesError(f"{name}: sizes: {version!r} must be a CUDA major.minor table")
        source = table.get("source")
        if not isinstance(source, str) or not source.strip():
            raise RulesError(f"{name}: sizes.{version!r} has no source")
        sources.append(source)
        entries = {key: value for key, value in table.items() if key != "source"}
        bad = next((key for key, value in entries.items() if type(value) is not int or value < 0), None)
        if bad is not None:
            raise RulesError(f"{name}: sizes.{version!r}: {bad!r} must be a whole number of KiB")
        sizes[version] = entries
    return CudaRules(minimum, frozenset(stems), tuple(kept), sizes, tuple(sources), packages, folders, ignore)


def _table(name: str, key: str, table: dict[str, Any], wanted: dict[str, type]) -> dict[str, Any]:
    """A table with a non-empty `source` and exactly the `wanted` keys, of their types."""
    expected = {"source": str, **wanted}
    for item, value in table.items():
        if item not in expected:
            raise RulesError(f"{name}: {key}: unknown key {item!r}")
        if not isinstance(value, expected[item]):
            raise RulesError(f"{name}: {key}.{item} must be a {expected[item].__name__}")
    missing = [item for item in expected if item not in table]
    if missing or not table["source"].strip():
        raise RulesError(f"{name}: {key}: missing {', '.join(missing) or 'source'}")
    return table


def _strings(name: str, key: str, values: list[Any]) -> tuple[str, ...]:
    if not all(isinstance(value, str) and value for value in values):
        raise RulesError(f"{name}: {key} must hold names")
    return tuple(values)
