"""Find the layers and config of a `docker save` tarball or an OCI image layout (folder or tar)."""

from __future__ import annotations

import json
import re
import tarfile
import weakref
from pathlib import Path
from typing import Any

from depaudit.findings import Finding, FindingKind
from depaudit.image.layers import LayeredImage, Opener

_DIGEST = re.compile(r"^(sha256|sha512):([0-9a-f]{32,128})$")
_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


class ImageFormatError(Exception):
    """Not an image we can read: the scan cannot start (exit code 2)."""


class _Store:
    """Named blobs of an image: files of a folder, or members of a tar (never extracted)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        if path.is_file():
            try:
                self._tar = tarfile.open(path, "r:*")
                self._members = {m.name.removeprefix("./"): m for m in self._tar.getmembers() if m.isfile()}
            except (tarfile.TarError, OSError) as error:
                raise ImageFormatError(f"{path}: not a readable image archive: {error}") from error

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()

    def has(self, name: str) -> bool:
        return name in self._members if self._tar else (self.path / name).is_file()

    def opener(self, name: str) -> Opener:
        if self._tar is not None:
            tar, member = self._tar, self._members[name]
            return lambda: tar.extractfile(member)  # type: ignore[return-value]
        file = self.path / name
        return lambda: open(file, "rb")

    def json(self, name: str) -> Any:
        with self.opener(name)() as stream:
            return json.load(stream)


def open_layers(path: Path) -> tuple[LayeredImage, dict[str, str]]:
    """The image's merged filesystem and its config Env."""
    store = _Store(path)
    findings: list[Finding] = []
    if store.has("manifest.json"):
        config_name, layer_names = _docker_save(store)
    elif store.has("index.json"):
        config_name, layer_names = _oci(store)
    else:
        raise ImageFormatError(f"{path}: neither a docker save archive (manifest.json) nor an OCI layout (index.json)")
    openers: list[Opener] = []
    for name in layer_names:
        if store.has(name):
            openers.append(store.opener(name))
        else:
            findings.append(
                Finding(FindingKind.BAD_IMAGE, str(path), None, f"the manifest names layer {name}, which the image does not hold")
            )
    env: dict[str, str] = {}
    if config_name and store.has(config_name):
        for item in (store.json(config_name).get("config") or {}).get("Env") or []:
            key, _, value = str(item).partition("=")
            env[key] = value
    image = LayeredImage(str(path), openers)
    weakref.finalize(image, store.close)  # layers are read on demand while the image lives
    image.findings[:0] = findings
    return image, env


def _docker_save(store: _Store) -> tuple[str | None, list[str]]:
    manifest = store.json("manifest.json")
    if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict):
        raise ImageFormatError(f"{store.path}: manifest.json lists no image")
    entry = manifest[0]
    return entry.get("Config"), [str(layer) for layer in entry.get("Layers") or []]


def _oci(store: _Store) -> tuple[str | None, list[str]]:
    manifest = _pick_manifest(store, store.json("index.json"))
    config = manifest.get("config") or {}
    layers = [_blob(layer.get("digest", "")) for layer in manifest.get("layers") or []]
    return _blob(config.get("digest", "")), layers


def _pick_manifest(store: _Store, index: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    manifests = index.get("manifests") or []
    # A multi-platform index: the linux/amd64 image is the one GPU images run.
    chosen = next(
        (m for m in manifests if (m.get("platform") or {}).get("architecture") in (None, "amd64")),
        manifests[0] if manifests else None,
    )
    if chosen is None or depth > 4:
        raise ImageFormatError(f"{store.path}: the OCI index lists no usable manifest")
    document = store.json(_blob(chosen.get("digest", "")))
    if chosen.get("mediaType") in _INDEX_TYPES or document.get("mediaType") in _INDEX_TYPES:
        return _pick_manifest(store, document, depth + 1)
    return document


def _blob(digest: str) -> str:
    match = _DIGEST.match(digest)
    if match is None:
        raise ImageFormatError(f"not a content digest: {digest!r}")
    return f"blobs/{match.group(1)}/{match.group(2)}"

