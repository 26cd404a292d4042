"""Find the services under a path and the files each one holds."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from depaudit import consulted
from depaudit.collect.model import Service
from depaudit.findings import Finding, FindingKind
from depaudit.paths import shown_path

# Folders that are never the service's own source: caches, installed dependencies.
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "dist-packages"})


def discover_services(path: Path) -> tuple[list[Service], list[Finding]]:
    """The services under `path`, and the folders that could not be listed.

    `path` is one service when it holds a `.py` or `requirements*.txt` file itself; otherwise
    each of its visible subfolders with a `.py` file somewhere below is a service.
    """
    path = path.resolve()  # absolute, and `..`/`.` give the folder's real name
    findings: list[Finding] = []
    try:
        entries = sorted(consulted.scandir(path), key=lambda entry: entry.name)
    except OSError as error:
        return [], [_cannot_list(path, path.parent, error)]
    if any(_is_service_marker(entry) for entry in entries):
        return [_service(path, path.parent, findings)], findings
    services = []
    for entry in entries:
        # A symlinked service folder may point anywhere (or at PATH itself): not followed.
        if entry.is_dir(follow_symlinks=False) and _walkable(path, entry.name):
            service = _service(Path(entry.path), path, findings)
            if service.files:
                services.append(service)
    return services, findings


def folder_service(root: Path, display_root: Path, name: str | None = None) -> tuple[Service, list[Finding]]:
    """One service folder, named by the config (or by the folder), shown relative to display_root."""
    findings: list[Finding] = []
    service = _service(root.resolve(), display_root, findings)
    return (replace(service, name=name) if name else service), findings


def entry_service(
    name: str, entry: Path, source_roots: tuple[Path, ...], display_root: Path, requirements: tuple[Path, ...]
) -> Service:
    """A service that is one script: its files are found by following its local imports."""
    entry = entry.resolve()
    return Service(
        name=name,
        root=entry.parent,
        display_root=display_root,
        files=(entry,),
        requirement_files=tuple(sorted(p.resolve() for p in requirements)),
        elf_files=(),
        entry=entry,
        source_roots=tuple(p.resolve() for p in source_roots),
    )


def _is_service_marker(entry: os.DirEntry[str]) -> bool:
    name = entry.name
    if not (name.endswith(".py") or _is_requirements(name)):
        return False
    try:
        return not entry.is_dir()
    except OSError:
        return True  # it exists but cannot be examined: still a file of this folder


def _is_requirements(name: str) -> bool:
    return name.startswith("requirements") and name.endswith(".txt")


def _walkable(folder: Path, name: str) -> bool:
    """Whether a subfolder may hold the service's own source (not hidden, a cache or a venv)."""
    if name.startswith(".") or name in _SKIPPED_DIRS:
        return False
    # os.path.exists, unlike Path.exists on 3.11, answers False instead of raising on EACCES.
    return not consulted.exists(os.path.join(folder, name, "pyvenv.cfg"))


def _service(root: Path, display_root: Path, findings: list[Finding]) -> Service:
    python: list[Path] = []
    elf: list[Path] = []
    requirements: list[Path] = []
    for folder, names in _walk(root, display_root, findings):
        for name in names:
            if name.endswith(".py"):
                python.append(folder / name)
            elif name.endswith(".so") or ".so." in name:
                elf.append(folder / name)
            elif folder == root and _is_requirements(name):
                requirements.append(folder / name)
    return Service(
        name=root.name,
        root=root,
        display_root=display_root,
        files=tuple(sorted(python)),
        requirement_files=tuple(sorted(requirements)),
        elf_files=tuple(sorted(elf)),
    )


def _walk(root: Path, display_root: Path, findings: list[Finding]) -> list[tuple[Path, list[str]]]:
    """(folder, names of its non-folder entries) below root.

    os.walk does not descend into symlinked folders, so a link out of the tree or back up to
    an ancestor is neither followed nor a loop. Dangling symlinks count as files: reading
    them later gives an `unreadable_file` finding rather than a silent gap.
    """
    found: list[tuple[Path, list[str]]] = []

    def on_error(error: OSError) -> None:
        where = Path(error.filename) if error.filename else root
        findings.append(_cannot_list(where, display_root, error))

    for folder, dirs, files in consulted.walk(root, onerror=on_error):
        dirs[:] = sorted(d for d in dirs if _walkable(Path(folder), d))
        found.append((Path(folder), sorted(files)))
    return found


def _cannot_list(folder: Path, display_root: Path, error: OSError) -> Finding:
    return Finding(FindingKind.UNREADABLE_FILE, shown_path(folder, display_root), None, f"cannot list: {error.strerror or error}")
