"""The installed distributions of a Python environment, read from dist-info files as text."""

from __future__ import annotations

import csv
import io
import os
import posixpath
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

from packaging.utils import canonicalize_name

from depaudit.findings import Finding, FindingKind
from depaudit.python.model import Distribution, TargetPython

# `mod.cpython-311-x86_64-linux-gnu.so`, `mod.abi3.so`, `mod.so`: the module is `mod`.
_EXTENSION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\.[^./]+)?\.so$")
_PYTHON_DIR = re.compile(r"^python(\d+)\.(\d+)$")


@dataclass(frozen=True)
class PythonEnvironment:
    site_packages: tuple[Path, ...]
    distributions: Mapping[str, Distribution]
    findings: tuple[Finding, ...]
    _modules: Mapping[str, tuple[str, ...]] = field(repr=False, default_factory=dict)
    _files: Mapping[str, str] = field(repr=False, default_factory=dict)

    def get(self, key_or_name: str) -> Distribution | None:
        return self.distributions.get(canonicalize_name(key_or_name))

    def providers(self, module: str, names: Sequence[str] = ()) -> tuple[Distribution, ...]:
        """Who provides `module`: the longest importable prefix decides (namespace packages).

        For `from google import protobuf` the submodules named are more specific than the
        namespace package itself, so they are tried first.
        """
        keys = {key for name in names for key in self._modules.get(f"{module}.{name}", ())}
        parts = module.split(".")
        for end in range(len(parts), 0, -1):
            if keys:
                break
            keys = set(self._modules.get(".".join(parts[:end]), ()))
        return tuple(self.distributions[key] for key in sorted(keys))

    def owner_of(self, path: Path) -> str | None:
        normal = os.path.normpath(path)
        owner = self._files.get(normal)
        if owner is None:
            owner = self._files.get(os.path.realpath(path))
        return owner


def load_environment(site_packages: Sequence[Path]) -> PythonEnvironment:
    distributions: dict[str, Distribution] = {}
    findings: list[Finding] = []
    for folder in site_packages:
        try:
            entries = sorted(os.listdir(folder))
        except OSError as error:
            findings.append(Finding(FindingKind.UNREADABLE_FILE, str(folder), None, f"cannot list: {error.strerror}"))
            continue
        for entry in entries:
            if entry.endswith(".dist-info") or entry.endswith(".egg-info"):
                dist = _read_distribution(Path(folder), entry, findings)
                if dist is not None and dist.key not in distributions:  # first folder wins, like sys.path
                    distributions[dist.key] = dist

    modules: dict[str, set[str]] = {}
    files: dict[str, str] = {}
    for dist in distributions.values():
        for name in _module_names(dist):
            modules.setdefault(name, set()).add(dist.key)
        for relative in dist.files:
            files.setdefault(os.path.normpath(dist.site_packages / relative), dist.key)
    return PythonEnvironment(
        site_packages=tuple(site_packages),
        distributions=dict(sorted(distributions.items())),
        findings=tuple(sorted(findings)),
        _modules={name: tuple(sorted(keys)) for name, keys in modules.items()},
        _files=files,
    )


def infer_target(site_packages: Sequence[Path]) -> TargetPython:
    """The image's Python version from `lib/pythonX.Y/site-packages`; else the running one."""
    for folder in site_packages:
        for part in Path(folder).parts:
            match = _PYTHON_DIR.match(part)
            if match:
                version = f"{match.group(1)}.{match.group(2)}"
                return TargetPython(python_version=version, python_full_version=f"{version}.0")
    info = sys.version_info
    return TargetPython(
        python_version=f"{info.major}.{info.minor}",
        python_full_version=f"{info.major}.{info.minor}.{info.micro}",
    )


def _read_text(path: Path, root: Path, findings: list[Finding], *, required: bool) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        if required:
            findings.append(
                Finding(FindingKind.BAD_METADATA, _rel(path, root), None, f"{path.name} is missing")
            )
    except OSError as error:
        findings.append(Finding(FindingKind.UNREADABLE_FILE, _rel(path, root), None, f"cannot read: {error.strerror}"))
    return None


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _read_distribution(root: Path, entry: str, findings: list[Finding]) -> Distribution | None:
    info = root / entry
    egg = entry.endswith(".egg-info")
    if not info.is_dir():
        return None  # a bare PKG-INFO file of an old egg-info: nothing to list
    meta_text = _read_text(info / ("PKG-INFO" if egg else "METADATA"), root, findings, required=True)
    headers = HeaderParser().parsestr(meta_text or "")
    fallback_name, _, fallback_version = entry.rsplit(".", 1)[0].partition("-")
    name = (headers.get("Name") or "").strip() or fallback_name
    version = (headers.get("Version") or "").strip() or fallback_version.split("-")[0] or "unknown"
    if meta_text is not None and not headers.get("Name"):
        findings.append(
            Finding(FindingKind.BAD_METADATA, _rel(info, root), None, "METADATA has no Name: field; named after its folder")
        )
    requires = [value.strip() for value in headers.get_all("Requires-Dist") or []]
    if egg:
        requires += _egg_requires(_read_text(info / "requires.txt", root, findings, required=False) or "")
        files = _egg_files(info, root, findings)
    else:
        files = _record_files(info, root, findings)
    top_level_text = _read_text(info / "top_level.txt", root, findings, required=False) or ""
    top_level = {line.strip() for line in top_level_text.splitlines() if line.strip()}
    top_level.update(_top_level_of(files))
    return Distribution(
        name=name,
        key=canonicalize_name(name),
        version=version,
        site_packages=root,
        dist_info=info,
        files=tuple(files),
        requires=tuple(requires),
        top_level=tuple(sorted(top_level)),
    )


def _record_files(info: Path, root: Path, findings: list[Finding]) -> list[str]:
    text = _read_text(info / "RECORD", root, findings, required=True)
    if text is None:
        return []
    files: list[str] = []
    try:
        for row in csv.reader(io.StringIO(text)):
            if row and row[0]:
                _keep(row[0], files)
    except csv.Error as error:
        findings.append(Finding(FindingKind.BAD_METADATA, _rel(info / "RECORD", root), None, f"garbled RECORD: {error}"))
    return files


def _egg_files(info: Path, root: Path, findings: list[Finding]) -> list[str]:
    files: list[str] = []
    installed = _read_text(info / "installed-files.txt", root, findings, required=False)
    if installed is not None:
        prefix = info.name  # installed-files.txt paths are relative to the egg-info folder
        for line in installed.splitlines():
            if line.strip():
                _keep(posixpath.join(prefix, line.strip()), files)
    return files


def _keep(entry: str, files: list[str]) -> None:
    normal = posixpath.normpath(entry.replace("\\", "/"))
    if not normal.startswith("../") and normal != ".." and not posixpath.isabs(normal):
        files.append(normal)  # entries that climb out (scripts in bin/) are not importable


def _egg_requires(text: str) -> list[str]:
    """requires.txt sections (`[extra]`, `[:marker]`, `[extra:marker]`) as Requires-Dist values."""
    requires: list[str] = []
    marker = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            extra, _, condition = line[1:-1].partition(":")
            parts = [f"({condition})"] if condition else []
            if extra:
                parts.append(f'extra == "{extra}"')
            marker = " and ".join(parts)
            continue
        requires.append(f"{line}; {marker}" if marker else line)
    return requires


def _top_level_of(files: Sequence[str]) -> set[str]:
    return {name.split(".", 1)[0] for name in _module_names_of(files)}


def _module_names(dist: Distribution) -> set[str]:
    names = _module_names_of(dist.files)
    names.update(dist.top_level)
    return names


def _module_names_of(files: Sequence[str]) -> set[str]:
    """Every importable dotted prefix a file list provides (namespace packages included)."""
    names: set[str] = set()
    for relative in files:
        parts = relative.split("/")
        if any(p == "__pycache__" or p.endswith((".dist-info", ".egg-info", ".data", ".libs")) for p in parts):
            continue
        leaf = parts[-1]
        if leaf.endswith(".py"):
            module = leaf[:-3]
        else:
            match = _EXTENSION.match(leaf)
            if match is None:
                continue
            module = match.group(1)
        dotted = [*parts[:-1]] if module == "__init__" else [*parts[:-1], module]
        if not dotted or not all(p.isidentifier() for p in dotted):
            continue
        for end in range(1, len(dotted) + 1):
            names.add(".".join(dotted[:end]))
    return names
