"""The ELF files an installed distribution (or a service folder) ships, and their needs."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from depaudit.image.model import BaseImage
from depaudit.native.elf import has_elf_magic, looks_like_shared_object
from depaudit.native.loader import resolve_needs
from depaudit.native.model import NativeReport
from depaudit.native.store import ElfStore
from depaudit.python.model import Distribution

# Files with these endings are never ELF: skip them without opening.
_NOT_ELF_SUFFIXES = frozenset(
    ".py .pyc .pyi .pyx .pxd .pxi .txt .json .md .rst .h .hpp .hh .cuh .c .cc .cpp .cu .typed "
    ".cfg .toml .yaml .yml .xml .html .css .js .csv .ini .png .jpg .jpeg .gif .svg .ico .pem "
    ".npy .npz .pkl .onnx .pt .bin .safetensors .mo .po .ttf .otf .wav .mp3 .proto .sh .bat .ps1 "
    ".pc .cmake .a .o .tcl .qm .pak .dat".split()
)
_METADATA_FOLDERS = (".dist-info", ".egg-info")


def elf_candidates(dist: Distribution) -> list[Path]:
    """From RECORD, not a disk walk: `.so` names always (to report non-ELF ones), others by magic."""
    candidates = []
    for relative in dist.files:
        folder, _, name = relative.rpartition("/")
        if any(part.endswith(_METADATA_FOLDERS) or part == "__pycache__" for part in folder.split("/")):
            continue  # RECORD, METADATA, bytecode: never loaded by ld.so
        path = dist.site_packages / relative
        if looks_like_shared_object(name):
            candidates.append(path)
        elif os.path.splitext(name)[1].lower() not in _NOT_ELF_SUFFIXES and has_elf_magic(path):
            candidates.append(path)
    return candidates


def _display_within(roots: Sequence[Path]) -> Callable[[Path], str]:
    def display(path: Path) -> str:
        normal = Path(os.path.normpath(path))
        for root in roots:
            try:
                return normal.relative_to(root).as_posix()
            except ValueError:
                continue
        return normal.as_posix()

    return display


def analyse_distribution(
    dist: Distribution,
    *,
    owner_of: Callable[[Path], str | None],
    search_roots: Sequence[Path],
    ld_library_path: Sequence[str] = (),
    image: BaseImage | None = None,
    store: ElfStore | None = None,
) -> NativeReport:
    return resolve_needs(
        dist.key,
        elf_candidates(dist),
        display=_display_within([dist.site_packages, *search_roots]),
        owner_of=owner_of,
        search_roots=search_roots,
        ld_library_path=ld_library_path,
        image=image,
        store=store,
    )


def analyse_folder(
    owner: str,
    files: Sequence[Path],
    display_root: Path,
    ld_library_path: Sequence[str] = (),
    image: BaseImage | None = None,
    store: ElfStore | None = None,
) -> NativeReport:
    """ELF files shipped inside a service folder: what is found there is bundled."""
    return resolve_needs(
        owner,
        files,
        display=_display_within([display_root]),
        owner_of=lambda _path: None,
        search_roots=[display_root],
        ld_library_path=ld_library_path,
        image=image,
        store=store,
    )
