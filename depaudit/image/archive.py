"""Find the layers and config of a `docker save` tarball or an OCI image layout (folder or tar).

Every name the metadata gives (a layer, the config, a blob) is looked up inside the image:
a member of the archive, or a regular file below the layout folder that no symlink or `..`
leads out of. The metadata is untrusted JSON: a shape we cannot read is an ImageFormatError
(the manifest, the index) or a finding (the config), never a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import weakref
from pathlib import Path
from typing import Any

from depaudit.atomic import scratch_folder
from depaudit.findings import Finding, FindingKind
from depaudit.image.layer_cache import KeptLayers, LayerCache, docker_save_digests, open_cache
from depaudit.image.model import ImageFormatError
from depaudit.image.layers import READ_ERRORS, LayeredImage, LayerTooLarge, Opener, bounded_decompressor, compressed

_UNREADABLE: tuple[type[Exception], ...] = (*READ_ERRORS, LayerTooLarge)
_DIGEST = re.compile(r"^(sha256|sha512):([0-9a-f]{32,128})$")
_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


class _Store:
    """Named blobs of an image: files of a folder, or members of a tar (never extracted)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        self._scratch: Path | None = None
        if path.is_file():
            try:
                self._tar = tarfile.open(self._plain_archive(path), "r:")
                self._members = {m.name.removeprefix("./"): m for m in self._tar.getmembers() if m.isfile()}
            except _UNREADABLE as error:
                self.close()
                raise ImageFormatError(f"{path}: not a readable image archive: {error}") from error

    def _plain_archive(self, path: Path) -> Path:
        """The archive itself, or (`docker save | gzip`) a bounded decompressed copy of it."""
        with open(path, "rb") as stream:
            if not compressed(stream.read(4)):
                return path
            stream.seek(0)
            self._scratch = scratch_folder("depaudit-image-")
            copy = self._scratch / "archive.tar"
            with open(copy, "wb") as out:
                shutil.copyfileobj(bounded_decompressor(stream, os.fstat(stream.fileno()).st_size), out)
            return copy

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def where(self, name: str) -> str | None:
        """None when the image holds `name`; else why not ("missing", or "outside")."""
        if self._tar is not None:
            return None if name in self._members else "missing"
        if "\0" in name:
            return "missing"
        if name.startswith("/") or ".." in name.split("/"):
            return "outside"
        # A layout folder may hold symlinks: the file must really lie below the folder.
        real, top = os.path.realpath(self.path / name), os.path.realpath(self.path)
        if os.path.commonpath([real, top]) != top:
            return "outside"
        return None if os.path.isfile(real) else "missing"

    def has(self, name: str) -> bool:
        return self.where(name) is None

    def identity(self, name: str) -> str | None:
        """The stat identity of the file holding blob `name`, and where in it: while it holds,
        a digest checked once still holds (see layer_cache). None when it cannot be taken."""
        try:
            if self._tar is not None:
                member = self._members[name]
                status, where = os.stat(self.path), f"{name}@{member.offset_data}+{member.size}"
            else:
                status, where = os.stat(os.path.realpath(self.path / name)), name
        except (OSError, KeyError):
            return None
        return f"{status.st_dev}:{status.st_ino}:{status.st_size}:{status.st_mtime_ns}:{status.st_ctime_ns}|{where}"

    def opener(self, name: str) -> Opener:
        if self._tar is not None:
            tar, member = self._tar, self._members[name]
            return lambda: tar.extractfile(member)  # type: ignore[return-value]
        file = os.path.realpath(self.path / name)  # checked by where(): below the folder
        return lambda: open(file, "rb")

    def json(self, name: str) -> Any:
        try:
            with self.opener(name)() as stream:
                data = stream.read(_MAX_JSON_BYTES + 1)
        except (OSError, tarfile.TarError) as error:
            raise ImageFormatError(f"{self.path}: {name} is not readable JSON: {error}") from error
        if len(data) > _MAX_JSON_BYTES:
            raise ImageFormatError(f"{self.path}: {name} is larger than {_MAX_JSON_BYTES >> 20} MiB, which no image metadata is")
        digest = _named_digest(name)
        if digest is not None and hashlib.sha256(data).hexdigest() != digest:
            # A blob is named by its content's digest: other content was put there after the fact.
            raise TamperedBlob(f"{self.path}: {name} does not hold what its digest names (sha256:{digest}): not used")
        try:
            return json.loads(data)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ImageFormatError(f"{self.path}: {name} is not readable JSON: {error}") from error


_MAX_JSON_BYTES = 16 << 20  # a manifest, an index or a config: real ones are a few KiB
# A blob named by its digest: `blobs/sha256/<hex>` (OCI), `<hex>.json` (a docker save config).
_DIGEST_NAME = re.compile(r"(?:^|/)sha256/([0-9a-f]{64})$|^([0-9a-f]{64})\.json$")


class TamperedBlob(ImageFormatError):
    """A blob whose content is not what its digest names."""


def _named_digest(name: str) -> str | None:
    match = _DIGEST_NAME.search(name)
    return None if match is None else (match.group(1) or match.group(2))


def open_layers(path: Path, cache_dir: Path | None = None) -> tuple[LayeredImage, dict[str, str]]:
    """The image's merged filesystem and its config Env; `cache_dir`: where layers are kept
    between runs (None: nowhere)."""
    store = _Store(path)
    cache = open_cache(cache_dir)
    try:
        image, env = _open(store, path, cache)
    except BaseException:
        store.close()
        if cache is not None:
            cache.close()
        raise
    weakref.finalize(image, store.close)  # layers are read on demand while the image lives
    if cache is not None:
        weakref.finalize(image, cache.close)  # and the cache held: no scan evicts what it reads
    return image, env


def _open(store: _Store, path: Path, cache: LayerCache | None = None) -> tuple[LayeredImage, dict[str, str]]:
    findings: list[Finding] = []
    if store.has("manifest.json"):
        config_name, layer_names = _docker_save(store)
    elif store.has("index.json"):
        config_name, layer_names = _oci(store)
    else:
        raise ImageFormatError(f"{path}: neither a docker save archive (manifest.json) nor an OCI layout (index.json)")
    openers: list[Opener] = []
    digests: list[str | None] = []  # checked as each layer is read (an OCI blob is named by it)
    by_name: dict[str, Opener] = {}  # a blob listed again is the same opener: read and indexed once
    for name in layer_names:
        problem = store.where(name)
        if problem is None:
            openers.append(by_name.setdefault(name, store.opener(name)))
            digests.append(_named_digest(name))  # blobs/sha256/<hex>; a docker save's <id>/layer.tar names none
        elif problem == "outside":
            findings.append(
                Finding(
                    FindingKind.UNSAFE_MEMBER, str(path), None,
                    f"rejected: the manifest names layer {name!r}, which lies outside the image; it is not read",
                )
            )
        else:
            findings.append(
                Finding(FindingKind.BAD_IMAGE, str(path), None, f"the manifest names layer {name}, which the image does not hold")
            )
    env, problem = _config_env(store, config_name)
    if problem is not None:
        findings.append(Finding(FindingKind.BAD_IMAGE, str(path), None, problem))
    kept = None
    if cache is not None:
        # A docker save's <id>/layer.tar is named by no digest: the cache knows it by its diff_id.
        diff_ids = docker_save_digests(store, config_name, layer_names) if store.has("manifest.json") else [None] * len(layer_names)
        present = [(name, diff_id) for name, diff_id in zip(layer_names, diff_ids) if store.where(name) is None]
        kept = KeptLayers(cache, [store.identity(name) for name, _ in present], [diff_id for _, diff_id in present])
    image = LayeredImage(str(path), openers, digests, kept)
    image.findings[:0] = findings
    return image, env


def _config_env(store: _Store, config_name: str | None) -> tuple[dict[str, str], str | None]:
    """The config's Env, and why it could not be read (the scan goes on without it)."""
    if not config_name:
        return {}, None
    unusable = (
        f"the image config {config_name} has no readable Env list: the image's own PATH and LD_LIBRARY_PATH"
        " are not used; pass them with --env"
    )
    if not store.has(config_name):
        return {}, unusable
    try:
        document = store.json(config_name)
    except TamperedBlob as error:
        return {}, f"{str(error).split(': ', 1)[1]}: the image's own PATH and LD_LIBRARY_PATH are not used; pass them with --env"
    except ImageFormatError:
        return {}, unusable
    if not isinstance(document, dict):
        return {}, unusable
    config = document.get("config") or {}  # an image may well set no environment at all
    items = (config.get("Env") or []) if isinstance(config, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        return {}, unusable
    env: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        env[key] = value
    return env, None


def _docker_save(store: _Store) -> tuple[str | None, list[str]]:
    manifest = store.json("manifest.json")
    if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict):
        raise ImageFormatError(f"{store.path}: manifest.json lists no image")
    entry = manifest[0]
    config, layers = entry.get("Config"), entry.get("Layers") or []
    if not isinstance(layers, list) or not all(isinstance(layer, str) for layer in layers):
        raise ImageFormatError(f"{store.path}: manifest.json Layers is not a list of layer paths")
    if config is not None and not isinstance(config, str):
        raise ImageFormatError(f"{store.path}: manifest.json Config is not a path")
    return config, list(layers)


def _oci(store: _Store) -> tuple[str | None, list[str]]:
    manifest = _pick_manifest(store, store.json("index.json"))
    config = manifest.get("config") or {}
    layers = manifest.get("layers") or []
    if not isinstance(config, dict) or not isinstance(layers, list) or not all(isinstance(x, dict) for x in layers):
        raise ImageFormatError(f"{store.path}: the OCI manifest's config or layers are not descriptors")
    return _blob(config.get("digest")), [_blob(layer.get("digest")) for layer in layers]


def _pick_manifest(store: _Store, index: Any, depth: int = 0, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or not all(isinstance(m, dict) for m in manifests):
        raise ImageFormatError(f"{store.path}: the OCI index lists no manifest descriptors")
    # A multi-platform index: the linux/amd64 image is the one GPU images run.
    chosen = next(
        (m for m in manifests if _platform(m).get("architecture") in (None, "amd64")),
        manifests[0] if manifests else None,
    )
    if chosen is None:
        raise ImageFormatError(f"{store.path}: the OCI index lists no usable manifest")
    name = _blob(chosen.get("digest"))
    if name in seen:
        raise ImageFormatError(f"{store.path}: the OCI index {name} lists itself (through {len(seen)} index(es)): a cycle, no image")
    if depth > _MAX_INDEX_DEPTH:
        raise ImageFormatError(
            f"{store.path}: OCI indexes nested more than {_MAX_INDEX_DEPTH} deep before a manifest: not followed further"
        )
    if not store.has(name):
        raise ImageFormatError(f"{store.path}: the OCI index names {name}, which the layout does not hold")
    document = store.json(name)
    if not isinstance(document, dict):
        raise ImageFormatError(f"{store.path}: {name} is not an OCI manifest")
    if chosen.get("mediaType") in _INDEX_TYPES or document.get("mediaType") in _INDEX_TYPES:
        return _pick_manifest(store, document, depth + 1, (*seen, name))
    return document


_MAX_INDEX_DEPTH = 4  # an index of indexes of one platform's manifest is 2: real layouts stay far below


def _platform(descriptor: dict[str, Any]) -> dict[str, Any]:
    platform = descriptor.get("platform")
    return platform if isinstance(platform, dict) else {}


def _blob(digest: object) -> str:
    match = _DIGEST.match(digest) if isinstance(digest, str) else None
    if match is None:
        raise ImageFormatError(f"not a content digest: {digest!r}")
    return f"blobs/{match.group(1)}/{match.group(2)}"
