"""Open a base image given on the command line."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from depaudit.image.dpkg import read_dpkg
from depaudit.image.ldconf import ld_so_conf_dirs
from depaudit.image.model import BaseImage
from depaudit.image.rootfs import RootfsDir

# Where images keep their Python packages: distro Python, pip into /usr/local, common venvs.
_SITE_PACKAGES_GLOBS = (
    ("/usr/local/lib", "python3*", "site-packages"),
    ("/usr/local/lib", "python3*", "dist-packages"),
    ("/usr/lib", "python3*", "dist-packages"),
    ("/opt/venv/lib", "python3*", "site-packages"),
    ("/opt/conda/lib", "python3*", "site-packages"),
)


def open_rootfs(path: Path, env: Mapping[str, str] | None = None) -> BaseImage:
    fs = RootfsDir(path)
    dpkg = read_dpkg(fs)
    image = BaseImage(
        label=str(path),
        fs=fs,
        distro=distro_of(fs.read_text("/etc/os-release") or ""),
        env=dict(env or {}),
        ld_so_conf=tuple(ld_so_conf_dirs(fs)),
        dpkg=dpkg,
        site_packages=_site_packages(fs),
        findings=(),
    )
    return image


def distro_of(os_release: str) -> str | None:
    """ "ubuntu-22.04", "debian-12": ID and VERSION_ID of /etc/os-release."""
    fields = {}
    for line in os_release.splitlines():
        key, _, value = line.partition("=")
        fields[key.strip()] = value.strip().strip('"')
    if not fields.get("ID") or not fields.get("VERSION_ID"):
        return None
    return f"{fields['ID']}-{fields['VERSION_ID']}"


def _site_packages(fs: RootfsDir) -> tuple[Path, ...]:
    found: list[Path] = []
    for parent, pattern, leaf in _SITE_PACKAGES_GLOBS:
        for python in fs.glob(f"{parent}/{pattern}"):
            host = fs.host_path(f"{python}/{leaf}")
            if host is not None and fs.is_dir(f"{python}/{leaf}") and host not in found:
                found.append(host)
    return tuple(found)
