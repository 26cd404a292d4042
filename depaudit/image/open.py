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
    return _describe(RootfsDir(path), str(path), dict(env or {}))


def open_image(path: Path, env: Mapping[str, str] | None = None, cache_dir: Path | None = None) -> BaseImage:
    """A `docker save` tarball, an OCI layout (folder or tar), or an unpacked rootfs folder.

    The image config's Env is used; `env` overrides it. `cache_dir`: where what was read of
    a layered image's layers is kept between runs (None: nowhere).
    """
    if path.is_dir() and not (path / "oci-layout").exists() and not (path / "manifest.json").exists():
        return open_rootfs(path, env)
    from depaudit.image.archive import open_layers  # tarfile, gzip, zstandard: only for an archive

    fs, config_env = open_layers(path, cache_dir)
    return _describe(fs, str(path), {**config_env, **(env or {})})


def _describe(fs: RootfsDir, label: str, env: dict[str, str]) -> BaseImage:
    return BaseImage(
        label=label,
        fs=fs,
        distro=distro_of(fs.read_text("/etc/os-release") or ""),
        env=env,
        ld_so_conf=tuple(ld_so_conf_dirs(fs)),
        dpkg=read_dpkg(fs),
        site_packages=_site_packages(fs),
        findings=(),
    )


def distro_of(os_release: str) -> str | None:
    """ "ubuntu-22.04", "debian-12": ID and VERSION_ID of /etc/os-release."""
    fields = {}
    for line in os_release.splitlines():
        key, _, value = line.partition("=")
        fields[key.strip()] = value.strip().strip('"')
    if not fields.get("ID") or not fields.get("VERSION_ID"):
        return None
    return f"{fields['ID']}-{fields['VERSION_ID']}"


def _site_packages(fs: RootfsDir) -> tuple[str, ...]:
    """The image's Python environments, as canonical image paths: nothing is copied out until
    the scan takes one (fs.python_environment)."""
    found: list[str] = []
    for parent, pattern, leaf in _SITE_PACKAGES_GLOBS:
        for python in fs.glob(f"{parent}/{pattern}"):
            canonical = fs.resolve(f"{python}/{leaf}")
            if canonical is not None and fs.is_dir(canonical) and canonical not in found:
                found.append(canonical)
    return tuple(found)
