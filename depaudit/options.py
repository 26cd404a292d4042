"""What a scan is asked to do, and the error that stops it before it starts.

At the bottom of the house, so that every subcommand (`depaudit lookup` too) can name them
without loading the scan."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DISTRO = "ubuntu-22.04"  # nvidia/cuda:12.x images
FORMATS = ("table", "json", "markdown", "sarif", "bindep", "patch")
FAIL_ON = ("missing", "unused", "never")


class InputError(Exception):
    """A usage or top-level input problem: the scan cannot start (exit code 2)."""


@dataclass(frozen=True)
class ScanOptions:
    paths: tuple[Path, ...]
    site_packages: tuple[Path, ...] = ()  # empty: the config's, the image's own, else the default environment
    distro: str | None = None  # None: the image's /etc/os-release, else DEFAULT_DISTRO
    rootfs: Path | None = None  # an unpacked base image
    image: Path | None = None  # a docker save tarball or an OCI layout (folder or tar)
    base_image: str | None = None  # a known image described by an embedded profile
    env: Mapping[str, str] = field(default_factory=dict)  # overrides the image's Env
    cache_dir: Path | None = None  # where `depaudit index` keeps its indexes (None: the default)
    hoist: bool = False  # move a package several families need to their common parent family
    config: Path | None = None  # depaudit.toml or a pyproject.toml with [tool.depaudit]
    use_cache: bool = True  # per-file results kept in cache_dir between runs
    processes: int | None = None  # worker processes (None: the cores this process may use)
    # Follow the wheels' own imports: which of a wheel's modules the service's imports really
    # run decides how surely its extension modules and its Python code's hints are needed.
    module_reach: bool = True
    python: Path | None = None  # an interpreter whose environment is audited (read, never run)
    lock: Path | None = None  # a lock whose wheels are audited instead of an installed environment
    python_version: str | None = None  # "X.Y" of the image's interpreter (None: the config's, else the distro's)
    find_links: tuple[Path, ...] = ()  # folders of wheels a lock's pins are taken from
    index_url: str | None = None  # a simple index for a lock's wheels missing from find-links
