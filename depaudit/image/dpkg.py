"""Installed packages and the files they own, from an image's dpkg database."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from depaudit.findings import Finding, FindingKind

DPKG = "/var/lib/dpkg"


class _Files(Protocol):
    def read_text(self, path: str) -> str | None: ...
    def listdir(self, path: str) -> list[str]: ...
    def resolve(self, path: str, *, follow_final: bool = True) -> str | None: ...


@dataclass(frozen=True)
class DpkgDatabase:
    installed: Mapping[str, str]  # package → version
    owners: Mapping[str, str] = field(repr=False)  # canonical image path → package
    findings: tuple[Finding, ...] = ()
    installed_kib: Mapping[str, int] = field(default_factory=dict)  # package → its status' Installed-Size

    def owner(self, path: str) -> str | None:
        return self.owners.get(path)

    def files_of(self, packages: frozenset[str]) -> dict[str, list[str]]:
        """Package → the canonical image paths its .list names, for the `packages` asked."""
        files: dict[str, list[str]] = {}
        for path, package in self.owners.items():
            if package in packages:
                files.setdefault(package, []).append(path)
        return files


def read_dpkg(fs: _Files) -> DpkgDatabase:
    findings: list[Finding] = []
    installed: dict[str, str] = {}
    kib: dict[str, int] = {}
    # status.d/ is how distroless images record packages without a status file.
    texts = [fs.read_text(f"{DPKG}/status") or ""]
    texts += [fs.read_text(f"{DPKG}/status.d/{name}") or "" for name in fs.listdir(f"{DPKG}/status.d")]
    for status_text in texts:
        for paragraph in status_text.split("\n\n"):
            fields = _fields(paragraph)
            if fields.get("Package") and fields.get("Status", "install ok installed").endswith(" installed"):
                installed[fields["Package"]] = fields.get("Version", "")
                if fields.get("Installed-Size", "").isdigit():  # KiB, as dpkg writes it
                    kib[fields["Package"]] = int(fields["Installed-Size"])

    owners: dict[str, str] = {}
    canonical_dirs: dict[str, str | None] = {}
    for name in fs.listdir(f"{DPKG}/info"):
        if not name.endswith(".list"):
            continue
        package = name[: -len(".list")].split(":", 1)[0]  # "libc6:amd64.list" → libc6
        text = fs.read_text(f"{DPKG}/info/{name}")
        if text is None:
            findings.append(Finding(FindingKind.BAD_IMAGE, f"{DPKG}/info/{name}", None, "cannot read the file list"))
            continue
        for line in text.splitlines():
            if not line.startswith("/"):
                continue
            # Own the file where it really is (usrmerge: /lib → /usr/lib), as dpkg -S answers.
            folder, base = posixpath.split(line)
            if folder not in canonical_dirs:
                canonical_dirs[folder] = fs.resolve(folder)
            real_folder = canonical_dirs[folder]
            if real_folder is not None:
                owners.setdefault(posixpath.join(real_folder, base), package)
    return DpkgDatabase(installed, owners, tuple(findings), kib)


def _fields(paragraph: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in paragraph.splitlines():
        if line[:1] in (" ", "\t") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields
