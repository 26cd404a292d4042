"""Images built at test time with tarfile: `docker save` archives (legacy layout, the config
named by its digest, rootfs.diff_ids naming each layer) and OCI layouts (folder or tar)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path

Member = tuple[tarfile.TarInfo, bytes | None]


def file(name: str, data: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def folder(name: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info, None


def tar_bytes(members: Sequence[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def config_bytes(layers: Sequence[bytes], env: Sequence[str] = ("PATH=/usr/bin",)) -> bytes:
    """An image config whose rootfs.diff_ids name the layers (their uncompressed tars)."""
    return with_diff_ids(json.dumps({"config": {"Env": list(env)}}).encode(), layers)



def diff_id(layer: bytes, limit: int = 16 << 20) -> str:
    """`sha256:` of the layer's uncompressed tar (gzip or zstd). A layer that does not decompress
    within `limit` (cut short, a bomb) gets the digest of its stored bytes: the scan never reads
    such a layer to its end, so never compares it."""
    import zlib

    import zstandard

    try:
        if layer[:2] == b"\x1f\x8b":
            inflater = zlib.decompressobj(wbits=31)
            plain = inflater.decompress(layer, limit)
            if inflater.unconsumed_tail or not inflater.eof:
                raise ValueError("past the limit, or cut short")
        elif layer[:4] == b"\x28\xb5\x2f\xfd":
            plain = zstandard.ZstdDecompressor().decompressobj().decompress(layer)
            if len(plain) > limit:
                raise ValueError("past the limit")
        else:
            plain = layer
    except (ValueError, zlib.error, zstandard.ZstdError):
        plain = layer
    return f"sha256:{sha256(plain)}"


def with_diff_ids(config: bytes, layers: Sequence[bytes]) -> bytes:
    """A docker save config as Docker writes it: with rootfs.diff_ids, added when a test's own
    config (a JSON object) has none."""
    try:
        document = json.loads(config)
    except ValueError:
        return config
    if not isinstance(document, dict) or "rootfs" in document:
        return config
    document["rootfs"] = {"type": "layers", "diff_ids": [diff_id(layer) for layer in layers]}
    return json.dumps(document).encode()


def docker_save_members(layers: Sequence[bytes], *, config: bytes | None = None, manifest: object = None) -> list[Member]:
    """What `docker save` (before Docker 25) writes: manifest.json, `<sha256>.json`, `<id>/layer.tar`."""
    config = config if config is not None else config_bytes(layers)
    names = [f"{sha256(bytes([number]) + layer)}/layer.tar" for number, layer in enumerate(layers)]
    if manifest is None:
        manifest = [{"Config": f"{sha256(config)}.json", "RepoTags": ["test:latest"], "Layers": names}]
    return [
        file("manifest.json", json.dumps(manifest).encode()),
        file(f"{sha256(config)}.json", config),
        *(file(name, data) for name, data in zip(names, layers)),
    ]


def docker_save(path: Path, layers: Sequence[bytes], **given: object) -> Path:
    path.write_bytes(tar_bytes(docker_save_members(layers, **given)))  # type: ignore[arg-type]
    return path


def oci_members(layers: Sequence[bytes], *, config: bytes | None = None, layer_digests: Sequence[str] | None = None) -> list[Member]:
    """An OCI layout: index.json → manifest → config and layers, every blob named by its digest
    (`layer_digests` overrides what the manifest names)."""
    config = config if config is not None else config_bytes(layers)
    digests = list(layer_digests) if layer_digests is not None else [f"sha256:{sha256(layer)}" for layer in layers]
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{sha256(config)}", "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": 0} for d in digests],
    }).encode()
    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{sha256(manifest)}", "size": len(manifest)}],
    }).encode()
    blobs = {sha256(blob): blob for blob in (config, manifest, *layers)}
    return [
        file("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
        file("index.json", index),
        *(file(f"blobs/sha256/{digest}", blob) for digest, blob in blobs.items()),
    ]


def write_folder(root: Path, members: Sequence[Member]) -> Path:
    """The members as files of a folder (an image layout given as a folder)."""
    for info, data in members:
        target = root / info.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data or b"")
    return root
