"""The ELF files an installed distribution (or a service folder) ships, and their needs."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from depaudit import consulted
from depaudit.findings import Finding, FindingKind
from depaudit.image.model import BaseImage
from depaudit.native.elf import ELF_MAGIC, looks_like_shared_object
from depaudit.paths import RealPaths
from depaudit.reading import open_regular
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
METADATA_FOLDERS = (".dist-info", ".egg-info")
_ESCAPE = (
    "a symbolic link that leads out of site-packages (to {real}): it is never read, so nothing it "
    "needs is counted; a wheel installs no such link: reinstall the distribution or remove the link"
)


def elf_candidates(dist: Distribution) -> list[Path]:
    """From RECORD, not a disk walk: `.so` names always (to report non-ELF ones), others by magic."""
    return shipped_elf(dist)[0]


def shipped_elf(dist: Distribution, examined: set[str] | None = None) -> tuple[list[Path], list[Finding]]:
    """`elf_candidates`, and the findings on files that link out of site-packages: computed once
    and handed to `analyse_distribution`, which would otherwise look at RECORD again. `examined`
    receives every path whose link or magic was looked at."""
    return _candidates(dist, _display_within([dist.site_packages]), examined)


def _candidates(
    dist: Distribution, display: Callable[[Path], str], examined: set[str] | None = None
) -> tuple[list[Path], list[Finding]]:
    inside = os.path.realpath(dist.site_packages)
    site = str(dist.site_packages).rstrip("/")
    realpath = RealPaths()
    skipped_folders: dict[str, bool] = {}
    candidates: list[Path] = []
    findings: list[Finding] = []
    # String work, not pathlib or os.path.splitext: RECORDs list tens of thousands of files.
    for relative in _shipped_files(dist):
        if "\0" in relative or relative == ".":
            continue  # no file can be named so (reading RECORD reported it); site-packages itself
        folder, _, name = relative.rpartition("/")
        shared = looks_like_shared_object(name)
        if not shared and named_as_not_elf(name):
            continue  # the cheapest test first
        skipped = skipped_folders.get(folder)
        if skipped is None:
            parts = folder.split("/")
            skipped = skipped_folders[folder] = any(p.endswith(METADATA_FOLDERS) or p == "__pycache__" for p in parts)
        if skipped:
            continue  # RECORD, METADATA, bytecode: never loaded by ld.so
        text = f"{site}/{relative}"  # RECORD entries are normal (environment._keep)
        if examined is not None:
            examined.add(text)
        real = realpath(text)
        if real != inside and not real.startswith(inside + os.sep):
            # Checked before the magic is read: nothing outside site-packages is ever opened.
            path = Path(text)
            findings.append(Finding(FindingKind.UNSAFE_MEMBER, display(path), None, _ESCAPE.format(real=real)))
        elif shared or _may_be_elf(text):
            candidates.append(Path(text))
    return candidates, findings


def named_as_not_elf(name: str) -> bool:
    """A suffix no loadable object has: source, text, data."""
    stem = name.lstrip(".")  # as os.path.splitext: leading dots start no suffix
    dot = stem.rfind(".")
    return dot > 0 and stem[dot:].lower() in _NOT_ELF_SUFFIXES


def _shipped_files(dist: Distribution) -> list[str]:
    """RECORD's entries; without a RECORD, what a walk of its top-level folders finds."""
    if dist.files or not dist.dist_info.name.endswith(".dist-info") or consulted.is_file(dist.dist_info / "RECORD"):
        return list(dist.files)
    files: list[str] = []
    names = {*dist.top_level, *(f"{top}.libs" for top in dist.top_level), f"{dist.name.replace('-', '_')}.libs"}
    try:
        entries = sorted(consulted.listdir(dist.site_packages))
    except OSError:
        return files
    for entry in entries:
        path = dist.site_packages / entry
        if entry in names and consulted.is_dir(path) and not consulted.is_link(path):
            files.extend(_walk(dist.site_packages, path))
        elif entry.split(".", 1)[0] in dist.top_level and looks_like_shared_object(entry):
            files.append(entry)  # a top-level extension module: `_mod.cpython-311-x86_64-linux-gnu.so`
    return files


def _walk(root: Path, folder: Path) -> list[str]:
    found: list[str] = []
    for current, dirs, names in consulted.walk(folder):  # symlinked folders are not followed
        dirs.sort()
        found.extend(Path(current, name).relative_to(root).as_posix() for name in sorted(names))
    return found


def _may_be_elf(path: str) -> bool:
    """The ELF magic; or a file that exists but cannot be opened (no permission, a symlink loop),
    which the reader then reports rather than this check dropping it silently."""
    try:
        with open_regular(path) as stream:
            return stream.read(4) == ELF_MAGIC
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False  # gone (a slimmed image), or a folder: nothing ld.so could load
    except OSError:
        return True


def _display_within(roots: Sequence[Path]) -> Callable[[Path], str]:
    """`path` relative to the first root that holds it (lexically), else as it is; string work,
    as the walks show thousands of paths."""
    prefixes = [os.path.normpath(root) for root in roots]

    def display(path: Path) -> str:
        normal = os.path.normpath(path)
        for root in prefixes:
            if normal == root:
                return "."
            inside = root if root.endswith("/") else root + "/"
            if normal.startswith(inside):
                return normal[len(inside):]
        return normal

    return display


def analyse_distribution(
    dist: Distribution,
    *,
    owner_of: Callable[[Path], str | None],
    search_roots: Sequence[Path],
    ld_library_path: Sequence[str] = (),
    image: BaseImage | None = None,
    store: ElfStore | None = None,
    shipped: tuple[list[Path], list[Finding]] | None = None,
) -> NativeReport:
    display = _display_within([dist.site_packages, *search_roots])
    # A file of the distribution shows relative to its own site-packages, the first root.
    candidates, escaping = shipped if shipped is not None else _candidates(dist, display)
    report = resolve_needs(
        dist.key,
        candidates,
        display=display,
        owner_of=owner_of,
        search_roots=search_roots,
        ld_library_path=ld_library_path,
        image=image,
        store=store,
    )
    return replace(report, findings=tuple(sorted((*report.findings, *escaping))))


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
