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
from depaudit.packages.classify import soname_forms
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
    by_file: int  # how many of them are sized by their files
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
        by_file = [s for s in wanted if self.libraries[s].size_from is SizeFrom.FILE]
        file_kib = sum(self.libraries[s].kib or 0 for s in by_file)
        by_package = {s: self.libraries[s].package for s in wanted if self.libraries[s].size_from is SizeFrom.INSTALLED_SIZE}
        whole, unknown = [], []
        for package in sorted(set(filter(None, by_package.values()))):
            every = {s for s, library in self.libraries.items() if library.package == package}
            if every <= wanted:
                whole.append(package)
            else:
                unknown += sorted(s for s in by_package if by_package[s] == package)
        return ImageSize(file_kib, len(by_file), sum(self.installed_kib[p] for p in whole), tuple(whole), tuple(unknown))


def image_cuda(image: BaseImage, rules: CudaRules, profile: BaseProfile | None = None) -> ImageCuda:
    """The image's CUDA libraries. A CUDA package installed without a file list (a slimmed
    dpkg database) is known by the sonames the profile gives it, sized by its Installed-Size."""
    packages = frozenset(p for p in image.dpkg.installed if rules.is_cuda_package(p))
    files = image.dpkg.files_of(packages)
    found: dict[str, _Library] = {}  # real file → how it is named and owned, in the order met
    for package in sorted(files):
        for path in sorted(files[package]):
            _met(image, path, package, found)
    for folder in _folders(image, rules.image_folders):
        for name in image.fs.listdir(folder):
            path = f"{folder}/{name}"
            real = image.fs.resolve(path)
            # A library no package owns (copied in), or another name of one met already.
            if real is not None and (real in found or image.owner_of(real) is None):
                _met(image, path, None, found)
    libraries: dict[str, ImageCudaLibrary] = {}
    for real, library in found.items():
        soname = _soname(image, real, library.names)
        if soname is not None:
            libraries.setdefault(soname, ImageCudaLibrary(soname, library.package, math.ceil(library.size / 1024), SizeFrom.FILE, real))
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


@dataclass
class _Library:
    package: str | None
    size: int
    names: set[str]  # the names that lead to it: its own and its links'


def _met(image: BaseImage, path: str, package: str | None, found: dict[str, _Library]) -> None:
    """A path to a library (a link: the file it leads to), noted with the name it gives it."""
    real = image.fs.resolve(path)
    if real is None or not looks_like_shared_object(posixpath.basename(real)):
        return
    if real not in found:
        size = image.fs.file_size(real)
        if size is None:
            return
        found[real] = _Library(package, size, {posixpath.basename(real)})
    found[real].names.add(posixpath.basename(path))
    if found[real].package is None:
        found[real].package = package


def _soname(image: BaseImage, real: str, names: set[str]) -> str | None:
    """The library's soname: the link its package ships by it (ldconfig's convention, which the
    loader's search by file name goes by: libcublas.so.12 → libcublas.so.12.1.3.1); else its
    DT_SONAME, read from its headers, for a file no such link names. The link spares reading a
    layered image's layer up to each library (gigabytes in a CUDA image)."""
    forms = soname_forms(posixpath.basename(real))[1:]  # libx.so.12.1.3, libx.so.12.1, libx.so.12
    linked = [form for form in forms if form in names]
    if linked:
        return linked[-1]
    readable = image.fs.readable_part(real, elf_ranges(posixpath.basename(real)))
    if readable is None:
        return None
    try:
        return read_elf(readable).soname
    except ElfError:
        return None  # a linker script or a broken file: no library the loader would map


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
