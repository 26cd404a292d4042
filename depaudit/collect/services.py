"""Find the services under a path and the files each one holds."""

from __future__ import annotations

import os
from pathlib import Path

from depaudit.collect.model import Service
from depaudit.findings import Finding, FindingKind

# Folders that are never the service's own source: caches, dependencies, virtual environments.
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "dist-packages"})


def discover_services(path: Path) -> tuple[list[Service], list[Finding]]:
    """`path` is one service (it holds .py or requirements files itself) or a folder of services."""
    path = path.resolve()
    findings: list[Finding] = []
    if _is_service_root(path):
        return [_service(path, path.parent, findings)], findings
    services = []
    try:
        children = [entry for entry in os.scandir(path) if not entry.name.startswith(".")]
    except OSError as error:
        return [], [Finding(FindingKind.UNREADABLE_FILE, path.name, None, f"cannot list: {error.strerror}")]
    for child in sorted(children, key=lambda e: e.name):
        if child.is_dir(follow_symlinks=False):
            service = _service(Path(child.path), path, findings)
            if service.files:
                services.append(service)
    return services, findings


def _is_service_root(path: Path) -> bool:
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return any(n.endswith(".py") or (n.startswith("requirements") and n.endswith(".txt")) for n in names)


def _service(root: Path, display_root: Path, findings: list[Finding]) -> Service:
    python: list[Path] = []
    elf: list[Path] = []
    for folder, names in _walk(root, display_root, findings):
        for name in names:
            if name.endswith(".py"):
                python.append(folder / name)
            elif name.endswith(".so") or ".so." in name:
                elf.append(folder / name)
    requirements = sorted(
        root / n for n in _list(root) if n.startswith("requirements") and n.endswith(".txt")
    )
    return Service(
        name=root.name,
        root=root,
        display_root=display_root,
        files=tuple(sorted(python)),
        requirement_files=tuple(requirements),
        elf_files=tuple(sorted(elf)),
    )


def _list(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return []


def _walk(root: Path, display_root: Path, findings: list[Finding]) -> list[tuple[Path, list[str]]]:
    """(folder, file names) pairs below root, without following symlinked folders."""
    found: list[tuple[Path, list[str]]] = []

    def on_error(error: OSError) -> None:
        where = Path(error.filename).relative_to(display_root).as_posix() if error.filename else root.name
        findings.append(Finding(FindingKind.UNREADABLE_FILE, where, None, f"cannot list: {error.strerror}"))

    for folder, dirs, files in os.walk(root, onerror=on_error):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _SKIPPED_DIRS
            and not (here / d / "pyvenv.cfg").exists()  # a virtual environment
        )
        found.append((here, sorted(files)))
    return found
