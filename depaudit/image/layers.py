"""A layered image (docker save, OCI layout) read without Docker and without unpacking it.

One pass over each layer builds an index of paths, whiteouts applied in layer order. A file's
content is copied out only when the audit asks for it: from an uncompressed layer by seeking
to it, from a compressed one after decompressing that layer once.
"""

from __future__ import annotations

import gzip
import io
import posixpath
import shutil
import tarfile
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from depaudit.findings import Finding, FindingKind
from depaudit.image.rootfs import RootfsDir

# A layer that decompresses to more than this is treated as hostile (a compression bomb).
MAX_LAYER_BYTES = 64 * 1024**3
_GZIP, _ZSTD = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"

Opener = Callable[[], BinaryIO]  # a fresh stream over one blob (a layer as stored)


@dataclass
class _Entry:
    kind: str  # "file", "dir", "link", "other"
    layer: int
    offset: int = 0  # of the content within the (decompressed) layer tar
    size: int = 0
    target: str = ""  # link target


class LayeredImage(RootfsDir):
    """The same file interface as an unpacked rootfs, answered from the layer index."""

    def __init__(self, label: str, layers: list[Opener]) -> None:
        self._cache = Path(tempfile.mkdtemp(prefix="depaudit-image-"))
        weakref.finalize(self, shutil.rmtree, self._cache, True)
        super().__init__(self._cache / "root")
        self.label = label
        self._layers = layers
        self._plain: dict[int, Opener] = {}  # layer → a seekable opener over its tar bytes
        self._entries: dict[str, _Entry] = {"": _Entry("dir", -1)}
        self._children: dict[str, set[str]] = {"": set()}
        for number, opener in enumerate(layers):
            self._index_layer(number, opener)

    # Building the index -----------------------------------------------------------------
    def _index_layer(self, number: int, opener: Opener) -> None:
        added: dict[str, _Entry] = {}
        removed: list[str] = []
        opaque: list[str] = []
        hardlinks: list[tuple[str, str]] = []
        try:
            with opener() as stream, self._tar_stream(number, opener, stream) as tar:
                for member in tar:
                    name = self._safe_name(member.name, number)
                    if name is None:
                        continue
                    folder, base = posixpath.split(name)
                    if base == ".wh..wh..opq":
                        opaque.append(folder)
                    elif base.startswith(".wh."):
                        removed.append(posixpath.join(folder, base[4:]))
                    elif member.islnk():
                        target = self._safe_name(member.linkname, number, hardlink_of=name)
                        if target is not None:
                            hardlinks.append((name, target))
                    elif member.issym():
                        if self._symlink_escapes(name, member.linkname):
                            self._unsafe(member.name, f"symbolic link to {member.linkname!r} leaves the image root", number)
                        else:
                            added[name] = _Entry("link", number, target=member.linkname)
                    elif member.isdir():
                        added[name] = _Entry("dir", number)
                    elif member.isfile():
                        added[name] = _Entry("file", number, member.offset_data, member.size)
                    else:
                        added[name] = _Entry("other", number)
        except (tarfile.TarError, OSError, EOFError, ValueError) as error:
            self.findings.append(
                Finding(FindingKind.BAD_IMAGE, f"{self.label} layer {number + 1}", None, f"layer cannot be read to its end: {error}")
            )
        # Whiteouts hide what lower layers put there; this layer's own entries stay.
        for folder in opaque:
            for child in list(self._children.get(folder, ())):
                self._remove(posixpath.join(folder, child) if folder else child)
        for path in removed:
            self._remove(path)
        for path, entry in sorted(added.items()):
            self._add(path, entry)
        for path, target in hardlinks:
            source = added.get(target) or self._entries.get(target)
            if source is None or source.kind != "file":
                self._unsafe(path, f"hard link to {target!r}, which this image does not hold", number)
            else:
                self._add(path, _Entry("file", source.layer, source.offset, source.size))

    def _safe_name(self, name: str, layer: int, hardlink_of: str | None = None) -> str | None:
        normal = posixpath.normpath(name)
        if name.startswith("/") or normal == ".." or normal.startswith("../"):
            what = f"hard link {hardlink_of!r} pointing to {name!r}" if hardlink_of else f"member {name!r}"
            self._unsafe(hardlink_of or name, f"{what} would land outside the image root", layer)
            return None
        return "" if normal == "." else normal

    def _symlink_escapes(self, name: str, target: str) -> bool:
        if target.startswith("/"):
            return False  # absolute targets mean the image root: resolved inside it
        depth = len(posixpath.dirname(name).split("/")) if posixpath.dirname(name) else 0
        for part in target.split("/"):
            depth += -1 if part == ".." else (0 if part in ("", ".") else 1)
            if depth < 0:
                return True
        return False

    def _unsafe(self, name: str, message: str, layer: int) -> None:
        self.findings.append(Finding(FindingKind.UNSAFE_MEMBER, f"{self.label} layer {layer + 1}: {name}", None, f"rejected: {message}"))

    def _add(self, path: str, entry: _Entry) -> None:
        folder = posixpath.dirname(path)
        if folder not in self._entries:  # tars may omit parent folders
            self._add(folder, _Entry("dir", entry.layer))
        if path:
            self._entries[path] = entry
            self._children.setdefault(folder, set()).add(posixpath.basename(path))
        if entry.kind == "dir":
            self._children.setdefault(path, set())

    def _remove(self, path: str) -> None:
        if path not in self._entries:
            return
        for child in list(self._children.get(path, ())):
            self._remove(posixpath.join(path, child))
        self._children.pop(path, None)
        del self._entries[path]
        self._children.get(posixpath.dirname(path), set()).discard(posixpath.basename(path))

    # Layer bytes ----------------------------------------------------------------------------
    def _tar_stream(self, number: int, opener: Opener, stream: BinaryIO) -> tarfile.TarFile:
        head = stream.read(4)
        stream.seek(0)
        if head[:2] == _GZIP or head == _ZSTD:
            # Offsets are taken in the decompressed stream; bytes are fetched later from a copy.
            return tarfile.open(fileobj=_Bounded(_decompressor(head, stream)), mode="r|")
        self._plain[number] = opener
        return tarfile.open(fileobj=stream, mode="r:")

    def _layer_bytes(self, number: int) -> Opener:
        if number not in self._plain:
            copy = self._cache / f"layer-{number}.tar"
            with self._layers[number]() as stream, open(copy, "wb") as out:
                head = stream.read(4)
                stream.seek(0)
                shutil.copyfileobj(_Bounded(_decompressor(head, stream)), out)
            self._plain[number] = lambda: open(copy, "rb")
        return self._plain[number]

    # The primitives the resolver and the loader use ----------------------------------------
    def _kind(self, parts: list[str]) -> str | None:
        entry = self._entries.get("/".join(parts))
        return None if entry is None else entry.kind

    def _readlink(self, parts: list[str]) -> str:
        return self._entries["/".join(parts)].target

    def listdir(self, path: str) -> list[str]:
        canonical = self.resolve(path)
        return [] if canonical is None else sorted(self._children.get(canonical.strip("/"), ()))

    def host_path(self, path: str) -> Path | None:
        canonical = self.resolve(path)
        if canonical is None:
            return None
        key = canonical.strip("/")
        entry = self._entries[key]
        target = self.root / key
        if entry.kind == "file" and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with self._layer_bytes(entry.layer)() as stream, open(target, "wb") as out:
                stream.seek(entry.offset)
                remaining = entry.size
                while remaining > 0:
                    chunk = stream.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    out.write(chunk)
                    remaining -= len(chunk)
        elif entry.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
        return target


class _Bounded(io.RawIOBase):
    """Stops a decompressing stream past MAX_LAYER_BYTES instead of filling the disk."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream, self._read = stream, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        self._read += len(data)
        if self._read > MAX_LAYER_BYTES:
            raise ValueError(f"layer decompresses to more than {MAX_LAYER_BYTES} bytes")
        buffer[: len(data)] = data
        return len(data)


def _decompressor(head: bytes, stream: BinaryIO) -> BinaryIO:
    if head[:2] == _GZIP:
        return gzip.GzipFile(fileobj=stream)  # type: ignore[return-value]
    if head == _ZSTD:
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(stream)  # type: ignore[return-value]
    return stream
