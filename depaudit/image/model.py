"""A base image, opened: the files, environment, loader configuration and packages it provides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from depaudit.findings import Finding
from depaudit.image.dpkg import DpkgDatabase
from depaudit.image.rootfs import RootfsDir

# ld.so's trusted directories on x86_64 Debian and Ubuntu (multiarch first), usrmerge or not.
DEFAULT_DIRS = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib",
    "/usr/lib",
    "/lib64",
    "/usr/lib64",
)


class ImageFormatError(Exception):
    """Not an image we can read: the scan cannot start (exit code 2)."""


@dataclass(frozen=True)
class BaseImage:
    label: str  # how the report names it: the path or reference given
    fs: RootfsDir
    distro: str | None  # "ubuntu-22.04", from /etc/os-release
    env: Mapping[str, str]  # the image config's Env
    ld_so_conf: tuple[str, ...]  # directories from /etc/ld.so.conf, in order
    dpkg: DpkgDatabase
    site_packages: tuple[str, ...]  # Python environments found inside, as canonical image paths
    findings: tuple[Finding, ...]
    _programs: dict[tuple[str, str | None], str | None] = field(default_factory=dict, compare=False, repr=False)

    def owner_of(self, path: str) -> str | None:
        """The dpkg package owning an image file, as `dpkg -S` answers for the real file."""
        folder, _, name = path.rpartition("/")
        for candidate in (f"{self.fs.resolve(folder or '/')}/{name}", self.fs.resolve(path)):
            owner = self.dpkg.owner(candidate) if candidate else None
            if owner is not None:
                return owner
        return None

    def find_library(self, soname: str, ld_library_path: tuple[str, ...] = ()) -> str | None:
        """Where dlopen(soname) from the image's Python finds it: LD_LIBRARY_PATH, cache, defaults."""
        for folder in (*ld_library_path, *self.ld_so_conf, *DEFAULT_DIRS):
            path = f"{folder.rstrip('/')}/{soname}"
            if self.fs.is_file(path):
                return path
        return None

    def find_program(self, program: str, path_variable: str | None = None) -> str | None:
        key = (program, path_variable)
        if key not in self._programs:  # every service asks for the same few programs
            self._programs[key] = self._find_program(program, path_variable)
        return self._programs[key]

    def _find_program(self, program: str, path_variable: str | None) -> str | None:
        default = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for folder in (path_variable or self.env.get("PATH") or default).split(":"):
            candidate = f"{folder.rstrip('/')}/{program}"
            if folder and self.fs.is_file(candidate):
                return candidate
        return None

    @property
    def ld_library_path(self) -> tuple[str, ...]:
        return tuple(p for p in self.env.get("LD_LIBRARY_PATH", "").split(":") if p)
