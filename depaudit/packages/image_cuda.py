"""The CUDA libraries a base image really holds, when the image itself is given (--rootfs,
--image): the shared objects of its CUDA packages (its dpkg database) and of CUDA's folders that
no package owns, each known by its DT_SONAME and sized as installed. A profile only says what
NVIDIA's Dockerfile installs; an image may have had libraries removed, or others copied in."""

from __future__ import annotations

import fnmatch
import math
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from depaudit.image.model import BaseImage
from depaudit.native.elf import ElfError, looks_like_shared_object, read_elf
from depaudit.native.reads import elf_ranges
from depaudit.packages.cuda import CudaRules
from depaudit.packages.profiles import BaseProfile


class SizeFrom(Enum):
    FILE = "file"  # the library's file in the image
    INSTALLED_SIZE = "installed-size"  # dpkg's Installed-Size of its package (no file list)


@dataclass(frozen=True)
class ImageCudaLibrary:
    soname: str
    package: str | None  # the dpkg package owning it; None for a file no package owns
    kib: int | None  # the file's size, rounded up; None when sized by its package
    size_from: SizeFrom
    path: str | None = None  # the real file, as a canonical image path


@dataclass(frozen=True)
class ImageSize:
    """What some of the image's CUDA libraries take."""

    file_kib: int  # summed over the libraries' files
    package_kib: int  # summed over packages whose every library is among them (Installed-Size)
    packages: tuple[str, ...]  # those packages
    unknown: tuple[str, ...]  # sonames sized by a package some library of which stays


@dataclass(frozen=True)
class ImageCuda:
    label: str
    libraries: Mapping[str, ImageCudaLibrary]  # soname → the library (the first file found)
    installed_kib: Mapping[str, int]  # package → Installed-Size, of the packages sized so

    @property
    def sonames(self) -> frozenset[str]:
        return frozenset(self.libraries)

    def size(self, sonames: Iterable[str]) -> ImageSize:
        wanted = set(sonames) & set(self.libraries)
        file_kib = sum(self.libraries[s].kib or 0 for s in wanted if self.libraries[s].size_from is SizeFrom.FILE)
        by_package = {s: self.libraries[s].package for s in wanted if self.libraries[s].size_from is SizeFrom.INSTALLED_SIZE}
        whole, unknown = [], []
        for package in sorted(set(filter(None, by_package.values()))):
            every = {s for s, library in self.libraries.items() if library.package == package}
            if every <= wanted:
                whole.append(package)
            else:
                unknown += sorted(s for s in by_package if by_package[s] == package)
        return ImageSize(file_kib, sum(self.installed_kib[p] for p in whole), tuple(whole), tuple(unknown))


def image_cuda(image: BaseImage, rules: CudaRules, profile: BaseProfile | None = None) -> ImageCuda:
    """The image's CUDA libraries. A CUDA package installed without a file list (a slimmed
    dpkg database) is known by the sonames the profile gives it, sized by its Installed-Size."""
    libraries: dict[str, ImageCudaLibrary] = {}
    packages = frozenset(p for p in image.dpkg.installed if rules.is_cuda_package(p))
    files = image.dpkg.files_of(packages)
    seen: set[str] = set()
    for package in sorted(files):
        for path in sorted(files[package]):
            _add(image, path, package, seen, libraries)
    for folder in _folders(image, rules.image_folders):
        for name in image.fs.listdir(folder):
            path = f"{folder}/{name}"
            if image.owner_of(path) is None:
                _add(image, path, None, seen, libraries)
    sized: dict[str, int] = {}
    for package in sorted(packages - set(files)):
        kib = image.dpkg.installed_kib.get(package)
        sonames = [s for s, owner in (profile.sonames.items() if profile else ()) if owner == package]
        if kib is None or not sonames:
            continue
        sized[package] = kib
        for soname in sonames:
            libraries.setdefault(soname, ImageCudaLibrary(soname, package, None, SizeFrom.INSTALLED_SIZE))
    return ImageCuda(image.label, libraries, sized)


def _add(image: BaseImage, path: str, package: str | None, seen: set[str], libraries: dict[str, ImageCudaLibrary]) -> None:
    """The library at `path` (a link: the file it leads to), read once however many names lead to it."""
    real = image.fs.resolve(path)
    if real is None or real in seen or not looks_like_shared_object(posixpath.basename(real)):
        return
    seen.add(real)
    size = image.fs.file_size(real)
    readable = image.fs.readable_part(real, elf_ranges(posixpath.basename(real))) if size is not None else None
    if size is None or readable is None:
        return
    try:
        soname = read_elf(readable).soname
    except ElfError:
        return  # a linker script or a broken file: no library the loader would map
    if soname:
        libraries.setdefault(soname, ImageCudaLibrary(soname, package, math.ceil(size / 1024), SizeFrom.FILE, real))


def _folders(image: BaseImage, patterns: tuple[str, ...]) -> list[str]:
    """The image's folders matching `patterns` (wildcards in any component), each real folder once."""
    found: dict[str, None] = {}
    for pattern in patterns:
        current = ["/"]
        for part in filter(None, pattern.split("/")):
            current = [
                posixpath.join(folder, name)
                for folder in current
                for name in (image.fs.listdir(folder) if any(c in part for c in "*?[") else [part])
                if fnmatch.fnmatchcase(name, part) and image.fs.is_dir(posixpath.join(folder, name))
            ]
        for folder in current:
            real = image.fs.resolve(folder)
            if real is not None:
                found.setdefault(real, None)
    return list(found)
