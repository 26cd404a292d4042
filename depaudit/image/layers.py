"""A layered image (docker save, OCI layout) read without Docker and without unpacking it.

One pass over each layer builds an index of paths, whiteouts applied in layer order. A file's
content is copied out only when the audit asks for it: from an uncompressed layer by seeking
to it, from a compressed one after decompressing that layer once (up to its last indexed file).

A layer is untrusted input. A member naming a path outside the root is rejected; a layer cut
short, damaged, or decompressing past a bound (a compression bomb) keeps what was read before
that point and becomes a finding; nothing of it is ever a crash.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import posixpath
import shutil
import tarfile
import weakref
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from depaudit.atomic import scratch_folder
from depaudit.findings import Finding, FindingKind
from depaudit.image.rootfs import Ranges, RootfsDir

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# How far a compressed layer is decompressed. Real layers shrink 2-10x under gzip or zstd; a
# compression bomb of zeros ~1000x. So a layer is read to at most MAX_RATIO times its compressed
# size (never below MIN_LAYER_BYTES, for small layers holding a sparse file) and never past
# MAX_LAYER_BYTES: the work done is bounded by the input's own size.
MAX_LAYER_BYTES = 64 * 1024**3
MAX_RATIO = 200
MIN_LAYER_BYTES = 64 * 1024**2
# All compressed layers of one image, decompressed while indexing: far above any real image (a
# CUDA devel image is ~20 GB), and a bound on 10,000 distinct small bombs of 64 MiB each.
MAX_IMAGE_BYTES = 256 * 1024**3
# Layers are gzip or zstd; a whole `docker save` may also be compressed with bzip2 or xz.
_GZIP, _ZSTD, _BZIP2, _XZ = b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"BZh", b"\xfd7zX"
_BLOCK = tarfile.BLOCKSIZE

Opener = Callable[[], BinaryIO]  # a fresh stream over one blob (a layer as stored)


class LayerTooLarge(Exception):
    def __init__(self, limit: int, compressed_size: int) -> None:
        ratio = f"{limit // compressed_size} times" if compressed_size else "infinitely more than"
        super().__init__(f"decompresses to more than {limit} bytes, {ratio} its {compressed_size} compressed bytes")


class ImageTooLarge(Exception):
    """The image's compressed layers, together, decompress past MAX_IMAGE_BYTES."""


def _read_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = [tarfile.TarError, OSError, EOFError, ValueError, zlib.error, lzma.LZMAError]
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:  # pragma: no cover - zstandard is a dependency
        pass
    return tuple(errors)


# What reading a damaged archive raises: tar, gzip (BadGzipFile is an OSError), zlib, zstd.
READ_ERRORS = _read_errors()
_CUT_SHORT: tuple[type[Exception], ...] = (*READ_ERRORS, LayerTooLarge)  # a layer we stop reading


def layer_limit(compressed_size: int) -> int:
    return min(MAX_LAYER_BYTES, max(MIN_LAYER_BYTES, MAX_RATIO * compressed_size))


def compressed(head: bytes) -> bool:
    return head[:2] == _GZIP or head[:4] in (_ZSTD, _XZ) or head[:3] == _BZIP2


@dataclass
class _Entry:
    kind: str  # "file", "dir", "link", "other"
    layer: int
    offset: int = 0  # of the content within the (decompressed) layer tar
    size: int = 0
    target: str = ""  # link target


class _LayerEnds(Exception):
    """The tar stopped before its end-of-archive marker: cut short, or garbage in place of a header."""


# A layer read: what it adds (path → entry), removes, makes opaque, and hard-links (path, target).
_LayerIndex = tuple[dict[str, "_Entry"], list[str], list[str], list[tuple[str, str]]]


class Kept(Protocol):
    """The layer cache's hooks (layer_cache.KeptLayers): a layer's index and a file's copy kept
    between runs by the layer's digest, in a root folder at the same place every run."""

    def index(self, image: LayeredImage, number: int, opener: Opener) -> _LayerIndex: ...

    def root(self, image: LayeredImage) -> Path | None: ...

    def host_file(self, image: LayeredImage, key: str, entry: _Entry, ranges: Ranges | None, whole: bool) -> Path | None: ...

    def environment(
        self, image: LayeredImage, path: str, reads: Callable[[str], bool | Ranges], copy: Callable[[], Path | None]
    ) -> Path | None: ...


class LayeredImage(RootfsDir):
    """The same file interface as an unpacked rootfs, answered from the layer index."""

    def __init__(
        self, label: str, layers: list[Opener], digests: list[str | None] | None = None, kept: Kept | None = None
    ) -> None:
        """`digests`: the sha256 each layer blob is named by (None: not named so, not checked).
        `kept`: the layer cache (indexes and copies kept between runs by digest), if any."""
        self._digests = digests or [None] * len(layers)
        self._kept = kept
        self._budget = MAX_IMAGE_BYTES  # decompressed bytes the layers still to index may take
        self._cache = scratch_folder("depaudit-image-")
        weakref.finalize(self, shutil.rmtree, self._cache, True)
        super().__init__(self._cache / "root")
        self.label = label
        self._layers = layers
        self._plain: dict[int, Opener] = {}  # layer → a seekable opener over its tar bytes
        self._copies: dict[int, _Copy] = {}  # compressed layer → its decompressed bytes so far
        self._entries: dict[str, _Entry] = {"": _Entry("dir", -1)}
        self._sparse: set[str] = set()  # files copied out in part (python_environment)
        self._made: set[Path] = set()  # folders made on this machine
        self._children: dict[str, set[str]] = {"": set()}
        # A blob the manifest lists again (identical empty layers do that) gives the same entries:
        # read once, whatever the count (10,000 listings of one gzip layer took ~55 min).
        self._indexed: dict[int, _LayerIndex] = {}
        for number, opener in enumerate(layers):
            self._index_layer(number, opener)
        self._view = kept.root(self) if kept is not None else None
        if self._view is not None:
            self.root = self._view  # the same folder every run: the result cache's stat keys hold

    # Building the index -----------------------------------------------------------------
    def _index_layer(self, number: int, opener: Opener) -> None:
        read = self._indexed.get(id(opener))
        if read is None:
            kept = self._kept
            read = kept.index(self, number, opener) if kept else self._read_layer(number, opener)
            self._indexed[id(opener)] = read
        added, removed, opaque, hardlinks = read
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

    def _read_layer(self, number: int, opener: Opener) -> _LayerIndex:
        """What the layer adds, removes, makes opaque and hard-links; its entries name `number`,
        the first listing of the blob, whose bytes are read when a file's content is asked for."""
        added: dict[str, _Entry] = {}
        removed: list[str] = []
        opaque: list[str] = []
        hardlinks: list[tuple[str, str]] = []
        last = ""
        expected = self._digests[number]
        actual: str | None = None
        window: _Bounded | None = None
        try:
            with opener() as raw:
                # Hashed as the index reads it (what it skips is read at the end): no second pass.
                stream: BinaryIO = _Hashing(raw) if expected else raw  # type: ignore[assignment]
                tar, window = self._tar_stream(number, opener, stream)
                with tar:
                    for member in tar:
                        last = member.name
                        self._index_member(number, member, added, removed, opaque, hardlinks)
                    _check_end(tar, window, stream)
                if isinstance(stream, _Hashing):
                    actual = stream.hexdigest()
        except ImageTooLarge:
            self._bad_layer(
                number,
                f"layer not read: the image's layers decompress to more than {MAX_IMAGE_BYTES} bytes in all, far"
                " beyond any real image; its files after that point, and those of the layers above, are not audited",
            )
        except LayerTooLarge as bomb:
            self._bad_layer(
                number,
                f"layer {bomb}: it is read no further, as a compression bomb would be, and the files after"
                " that point are not audited; if the image is genuine, unpack it and scan the folder with --rootfs",
            )
        except _LayerEnds:
            after = f"after {last!r}" if last else "before its first file"
            self._bad_layer(
                number,
                f"layer ends without its end-of-archive marker {after}: it was cut short or is damaged, and"
                " the files after that point are not audited; export the image again and scan it again",
            )
        except READ_ERRORS as error:
            self._bad_layer(
                number,
                f"layer cannot be read to its end ({error}): the files after that point are not audited;"
                " export the image again and scan it again",
            )
        if window is not None:
            self._budget -= window.consumed
        if expected is not None and actual is not None and actual != expected:
            self._bad_layer(
                number,
                f"layer does not hold what its digest names (sha256:{expected}; it holds sha256:{actual}): it was"
                " altered after the image was built, and none of its files is used",
            )
            return {}, [], [], []
        return added, removed, opaque, hardlinks

    def _index_member(
        self,
        number: int,
        member: tarfile.TarInfo,
        added: dict[str, _Entry],
        removed: list[str],
        opaque: list[str],
        hardlinks: list[tuple[str, str]],
    ) -> None:
        name = self._safe_name(member.name, number)
        if name is None:
            return
        folder, base = posixpath.split(name)
        if base == ".wh..wh..opq":
            opaque.append(folder)
        elif base.startswith(".wh."):
            hidden = posixpath.normpath(posixpath.join(folder, base[4:]))
            if base[4:] not in ("", ".", "..") and "/" not in base[4:]:
                removed.append(hidden)  # never the root, nor a folder above this one
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

    def _safe_name(self, name: str, layer: int, hardlink_of: str | None = None) -> str | None:
        if "\0" in name:
            # A PAX path may hold one; no file can be named so, and the OS refuses it (ValueError).
            shown = name.replace("\0", "\\0")
            what = f"hard link {hardlink_of!r} pointing to {shown!r}" if hardlink_of else f"member {shown!r}"
            self._unsafe((hardlink_of or name).replace("\0", "\\0"), f"{what} holds a NUL byte, which no file name can", layer)
            return None
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

    def _bad_layer(self, layer: int, message: str) -> None:
        self.findings.append(Finding(FindingKind.BAD_IMAGE, f"{self.label} layer {layer + 1}", None, message))

    def _add(self, path: str, entry: _Entry) -> None:
        # Tars may omit parent folders; a path may be thousands of folders deep (no recursion).
        # Paths are normalised and relative: rpartition is dirname, at a third of its cost (a CUDA
        # site-packages indexes 27,000 of them on every run, cached or not).
        parents: list[str] = []
        folder = path.rpartition("/")[0]
        while folder not in self._entries:
            parents.append(folder)
            folder = folder.rpartition("/")[0]
        for parent in reversed(parents):
            self._put(parent, _Entry("dir", entry.layer))
        self._put(path, entry)

    def _put(self, path: str, entry: _Entry) -> None:
        if path:
            self._entries[path] = entry
            folder, _, name = path.rpartition("/")
            children = self._children.get(folder)
            if children is None:
                children = self._children[folder] = set()
            children.add(name)
        if entry.kind == "dir" and path not in self._children:
            self._children[path] = set()

    def _remove(self, path: str) -> None:
        if not path or path not in self._entries:
            return  # the root is never removed
        pending, doomed = [path], []
        while pending:
            current = pending.pop()
            doomed.append(current)
            pending.extend(posixpath.join(current, child) for child in self._children.get(current, ()))
        for current in doomed:
            self._children.pop(current, None)
            self._entries.pop(current, None)
        self._children.get(posixpath.dirname(path), set()).discard(posixpath.basename(path))

    # Layer bytes ----------------------------------------------------------------------------
    def _tar_stream(self, number: int, opener: Opener, stream: BinaryIO) -> tuple[tarfile.TarFile, _Bounded | None]:
        head = stream.read(4)
        stream.seek(0)
        if compressed(head):
            # Offsets are taken in the decompressed stream; bytes are fetched later from a copy.
            window = bounded_decompressor(stream, _size(stream), budget=max(self._budget, 0))
            return tarfile.open(fileobj=window, mode="r|"), window
        self._plain[number] = opener
        return tarfile.open(fileobj=stream, mode="r:"), None

    def _layer_bytes(self, number: int, upto: int) -> Opener:
        """A seekable opener over the layer's tar bytes, holding at least its first `upto` bytes
        (fewer when the layer is cut short). A compressed layer is decompressed into a copy as
        far as files are asked for, never further: a bomb's tail is never written out."""
        if number in self._plain:
            return self._plain[number]
        copy = self._copies.get(number)
        if copy is None:
            copy = self._copies[number] = _Copy(self._cache / f"layer-{number}.tar", self._layers[number])
        copy.extend(upto)
        return copy.open

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
        if entry.kind == "file":
            return self._host_file(key, entry)
        if entry.kind == "dir":
            return self._host_folder(key)
        return self.root / key

    def file_size(self, path: str) -> int | None:
        canonical = self.resolve(path)
        entry = None if canonical is None else self._entries[canonical.strip("/")]
        return entry.size if entry is not None and entry.kind == "file" else None

    def readable_part(self, path: str, ranges: Ranges) -> Path | None:
        """A sparse copy of the parts `ranges` names: a CUDA library is hundreds of MB, of
        which its soname takes a few KB."""
        canonical = self.resolve(path)
        if canonical is None:
            return None
        key = canonical.strip("/")
        entry = self._entries[key]
        return self._host_file(key, entry, ranges) if entry.kind == "file" else None

    def python_environment(self, path: str, reads: Callable[[str], bool | Ranges]) -> Path | None:
        """The folder copied out: its subfolders; of each file, what `reads` says the stages
        read (all, nothing, or ranges: a sparse file of the same size holding just those bytes),
        in layer order, so that a compressed layer is decompressed once; its symbolic links as
        links to the copies of their targets in the image, when those are files or folders
        within it (a file a link leads to is copied whole)."""
        if self._view is not None and self._kept is not None:
            return self._kept.environment(self, path, reads, lambda: self._python_environment(path, reads))
        return self._python_environment(path, reads)

    def _python_environment(self, path: str, reads: Callable[[str], bool | Ranges]) -> Path | None:
        canonical = self.resolve(path)
        if canonical is None or self._entries[canonical.strip("/")].kind != "dir":
            return None
        top = canonical.strip("/")
        inside = top + "/" if top else ""
        folders: list[str] = []
        files: list[tuple[str, _Entry, bool | Ranges]] = []
        links: list[str] = []
        plain: dict[str, bool] = {}  # folder → reached without a link (a lower layer's may linger)
        for key, entry in self._entries.items():
            if (key == top or key.startswith(inside)) and self._plain_folder(posixpath.dirname(key), plain):
                if entry.kind == "dir":
                    folders.append(key)
                elif entry.kind == "file":
                    read = reads(key[len(inside):])
                    if read is not False:
                        files.append((key, entry, read))
                elif entry.kind == "link":
                    links.append(key)
        for key in sorted(folders):
            self._host_folder(key)
        for key, entry, read in sorted(files, key=lambda item: (item[1].layer, item[1].offset)):
            self._host_file(key, entry, read if callable(read) else None)
        for key in sorted(links):
            self._host_link(key, inside, reads(key[len(inside):]) is not False)
        return self._host_folder(top)

    def _plain_folder(self, folder: str, known: dict[str, bool]) -> bool:
        """Whether the image path of this folder is itself: no link on the way. An upper layer
        may replace a folder by a link, and the index still holds the folder's old entries."""
        if folder not in known:
            entry = self._entries.get(folder)
            path = "/" + folder
            known[folder] = entry is not None and entry.kind == "dir" and self.resolve(path, follow_final=False) == path
        return known[folder]

    def _host_folder(self, key: str) -> Path | None:
        target = self.root / key
        try:
            self._folder(target)
        except OSError as error:
            self._cannot_copy(key, error)
            return None
        return target

    def _host_file(self, key: str, entry: _Entry, ranges: Ranges | None = None, *, whole: bool = False) -> Path | None:
        """The file's copy: whole, or (given `ranges`) sparse. A sparse copy serves every reader
        that reads the file by its own name (the ranges were found reading it so); `whole`
        makes it whole, for a link whose other name may make the stage read more of it."""
        if self._view is not None and self._kept is not None:
            return self._kept.host_file(self, key, entry, ranges, whole)
        target = self.root / key
        try:
            if key in self._sparse and whole:
                self._sparse.discard(key)
                target.unlink()
            if not target.exists():
                if ranges is not None and self._copy_ranges(entry, target, ranges):
                    self._sparse.add(key)
                else:
                    self._copy_out(entry, target)
        except OSError as error:
            self._cannot_copy(key, error)
            return None
        return target

    def _folder(self, folder: Path) -> None:
        """mkdir -p, once per folder: on a slow disk an mkdir that finds the folder costs too,
        and a site-packages holds thousands of files in a few thousand folders."""
        if folder not in self._made:
            folder.mkdir(parents=True, exist_ok=True)
            self._made.add(folder)

    def _cannot_copy(self, key: str, error: OSError) -> None:
        """This machine's disk, not the image: full, or not writable."""
        self.findings.append(
            Finding(
                FindingKind.UNREADABLE_FILE, "/" + key, None,
                f"cannot copy it out of {self.label} ({error.strerror or error}): free space in {self._cache.parent}",
            )
        )

    def _host_link(self, key: str, inside: str, wanted: bool) -> None:
        """A link of the folder, pointing at the copy of what it resolves to in the image: a file
        anywhere (copied out too) when the link's name is `wanted`, a folder only within the
        copied one. A dangling or looping link is left out: absent here, it fails for the loader
        as in the image."""
        resolved = self.resolve("/" + key)
        if resolved is None:
            return
        real = resolved.strip("/")
        entry = self._entries[real]
        if entry.kind == "file" and wanted:
            target = self._host_file(real, entry, whole=True)
        elif entry.kind == "dir" and real.startswith(inside):
            target = self._host_folder(real)
        else:
            return
        link = self.root / key
        if target is not None and not os.path.lexists(link):
            try:
                self._folder(link.parent)
                link.symlink_to(target)
            except FileExistsError:
                pass  # another scan made it, in the image's folder kept between runs: the same link
            except OSError as error:
                self._cannot_copy(key, error)

    def _copy_ranges(self, entry: _Entry, target: Path, ranges: Ranges) -> bool:
        """A sparse copy holding the bytes `ranges` names; False when they cannot be worked out
        (the whole file is copied instead)."""
        opener = self._layer_bytes(entry.layer, entry.offset + entry.size)
        with opener() as stream:
            # A layer cut short holds less than the member's size: the copy is as short as a
            # whole copy would be, and its reader says so.
            size = max(min(entry.size, stream.seek(0, io.SEEK_END) - entry.offset), 0)
            window = _Window(stream, entry.offset, size)
            try:
                pieces = ranges(io.BufferedReader(window))
            except Exception:  # a reader's surprise must not lose the file: it is copied whole
                return False
            self._folder(target.parent)
            partial = target.with_name(target.name + ".depaudit-part")
            with open(partial, "wb") as out:
                out.truncate(size)
                for start, length in pieces:
                    window.seek(start)
                    out.seek(start)
                    _copy(window, out, length)
        os.replace(partial, target)
        return True

    def _copy_out(self, entry: _Entry, target: Path) -> None:
        """The file's bytes, written whole under a temporary name first: a failed copy never
        leaves a short file that a later call would take for the real one."""
        self._folder(target.parent)
        partial = target.with_name(target.name + ".depaudit-part")
        with self._layer_bytes(entry.layer, entry.offset + entry.size)() as stream, open(partial, "wb") as out:
            stream.seek(entry.offset)
            _copy(stream, out, entry.size)  # a layer cut short gives a short file: its finding says so
        os.replace(partial, target)


class _Window(io.RawIOBase):
    """One member's content within its layer's tar bytes, as a file of its own."""

    def __init__(self, stream: BinaryIO, offset: int, size: int) -> None:
        super().__init__()
        self._stream, self._offset, self._size, self._position = stream, offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(base + offset, 0)
        return self._position

    def tell(self) -> int:
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        remaining = max(self._size - self._position, 0)
        count = remaining if size is None or size < 0 else min(size, remaining)
        if count == 0:
            return b""
        self._stream.seek(self._offset + self._position)
        data = self._stream.read(count)
        self._position += len(data)
        return data

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


def _check_end(tar: tarfile.TarFile, window: _Bounded | None, stream: BinaryIO) -> None:
    """tarfile stops quietly at the end of its input or at a header it cannot read: a tar that
    ends well ends in a zero block instead (the end-of-archive marker)."""
    if window is not None:
        block = window.block_at(tar.offset)
    else:
        stream.seek(tar.offset)
        block = stream.read(_BLOCK)
    if len(block) < _BLOCK or any(block):
        raise _LayerEnds()


def _copy(source: BinaryIO | io.RawIOBase, out: BinaryIO, size: int) -> int:
    """Up to `size` bytes from source to out; how many there were."""
    remaining = size
    while remaining > 0:
        chunk = source.read(min(remaining, 1 << 20)) or b""
        if not chunk:
            break
        out.write(chunk)
        remaining -= len(chunk)
    return size - remaining


class _Copy:
    """The decompressed bytes of one layer on disk, extended as far as they are asked for. The
    decompressing stream stays open between requests: no byte is decompressed twice."""

    def __init__(self, path: Path, opener: Opener) -> None:
        self.path, self._opener = path, opener
        self._source: BinaryIO | None = None
        self._stream: _Bounded | None = None
        self._size, self._ended = 0, False
        path.touch()

    def extend(self, upto: int) -> None:
        if self._ended or upto <= self._size:
            return
        try:
            if self._stream is None:
                self._source = self._opener()
                self._stream = bounded_decompressor(self._source, _size(self._source))
            with open(self.path, "ab") as out:
                copied = _copy(self._stream, out, upto - self._size)
                self._size += copied
            if self._size < upto:
                self._end()
        except _CUT_SHORT:
            self._end()  # cut short: indexing reported it, and what came before stays readable
            self._size = os.path.getsize(self.path)

    def _end(self) -> None:
        self._ended = True
        if self._source is not None:
            self._source.close()

    def open(self) -> BinaryIO:
        return open(self.path, "rb")


class _Hashing(io.RawIOBase):
    """A layer blob as its reader reads it, hashed in byte order however the reader seeks: a
    gap it seeks over is read when the reader passes it, and the rest at `hexdigest`."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream
        self._hash = hashlib.sha256()
        self._hashed = 0  # bytes [0, _hashed) are in the hash
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            self._position = self._stream.seek(offset, io.SEEK_END)
        elif whence == io.SEEK_CUR:
            self._position += offset
        else:
            self._position = offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        self._hash_to(self._position)
        self._stream.seek(self._position)
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        end = self._position + len(data)
        if end > self._hashed:
            self._hash.update(data[self._hashed - self._position :])
            self._hashed = end
        self._position = end
        return len(data)

    def _hash_to(self, end: int) -> None:
        if end <= self._hashed:
            return
        self._stream.seek(self._hashed)
        while self._hashed < end:
            chunk = self._stream.read(min(end - self._hashed, 1 << 20))
            if not chunk:
                break
            self._hash.update(chunk)
            self._hashed += len(chunk)

    def hexdigest(self) -> str:
        self._hash_to(1 << 62)  # to the end
        return self._hash.hexdigest()


def _size(stream: BinaryIO) -> int:
    end = stream.seek(0, os.SEEK_END)
    stream.seek(0)
    return end


class _Bounded(io.RawIOBase):
    """A decompressing stream that stops past its limit instead of filling memory or the disk,
    and keeps its last bytes: where the tar reader stopped can be looked at afterwards."""

    _KEEP = 64 * 1024

    def __init__(self, stream: BinaryIO, limit: int, compressed_size: int, by_image: bool = False) -> None:
        super().__init__()
        self._stream, self._limit, self._read = stream, limit, 0
        self._by_image = by_image  # the limit is what the image's budget had left
        self._compressed_size = compressed_size
        self._tail, self._tail_start = bytearray(), 0

    def readable(self) -> bool:
        return True

    @property
    def consumed(self) -> int:
        """Decompressed bytes handed out so far."""
        return self._read

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        # read1: what one step of decompression gives. A read() that meets the end of a stream cut
        # short raises and loses the bytes it had; read1() returns them, and raises on the next call.
        data = self._read_one(min(len(buffer), self._limit - self._read + 1))
        self._read += len(data)
        if self._read > self._limit:
            raise ImageTooLarge() if self._by_image else LayerTooLarge(self._limit, self._compressed_size)
        buffer[: len(data)] = data
        self._tail += data
        if len(self._tail) > 2 * self._KEEP:
            drop = len(self._tail) - self._KEEP
            del self._tail[:drop]
            self._tail_start += drop
        return len(data)

    def _read_one(self, size: int) -> bytes:
        read1 = getattr(self._stream, "read1", None)
        return bytes(read1(size) if read1 is not None else self._stream.read(size))

    def block_at(self, offset: int) -> bytes:
        """The tar block at `offset`, as far as the stream had it (short at its end); the bytes the
        tar reader has not asked for yet are read now."""
        while self._tail_start + len(self._tail) < offset + _BLOCK:
            if not self.read(_BLOCK):
                break
        start = offset - self._tail_start
        return bytes(self._tail[start : start + _BLOCK]) if start >= 0 else b""


def bounded_decompressor(stream: BinaryIO, compressed_size: int, budget: int | None = None) -> _Bounded:
    """`budget`: what the image's layers may still take in all, when less than this layer's own limit."""
    head = stream.read(4)
    stream.seek(0)
    limit = layer_limit(compressed_size)
    capped = budget is not None and budget < limit
    return _Bounded(_decompressor(head, stream), budget if capped and budget is not None else limit, compressed_size, capped)


class _Zstd(io.RawIOBase):
    """zstd frames, one after the other, ending in an error when the input stops inside a frame
    (the library's own stream reader returns a short result instead). Input goes in small pieces:
    one kilobyte of zstd can stand for tens of megabytes, and the limit is checked between them."""

    _FEED = 1024

    def __init__(self, stream: BinaryIO) -> None:
        import zstandard

        super().__init__()
        self._stream = stream
        self._new = zstandard.ZstdDecompressor().decompressobj
        self._object = self._new()
        self._in_frame = False
        self._pending, self._position = b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        while self._position == len(self._pending):
            data = self._stream.read(self._FEED)
            if not data:
                if self._in_frame:
                    raise EOFError("the zstd stream ends inside a frame")
                return 0
            self._pending, self._position = self._decompress(data), 0
        size = min(len(buffer), len(self._pending) - self._position)
        buffer[:size] = memoryview(self._pending)[self._position : self._position + size]
        self._position += size
        return size

    def _decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            self._in_frame = True
            out.append(self._object.decompress(data))
            if not self._object.eof:
                break
            self._in_frame = False
            data = self._object.unused_data  # the next frame starts here
            self._object = self._new()
        return b"".join(out)


def _decompressor(head: bytes, stream: BinaryIO) -> BinaryIO:
    if head[:2] == _GZIP:
        return gzip.GzipFile(fileobj=stream)  # type: ignore[return-value]
    if head[:4] == _ZSTD:
        return io.BufferedReader(_Zstd(stream), 1 << 16)  # type: ignore[return-value, type-var]
    if head[:3] == _BZIP2:
        return bz2.BZ2File(stream)  # type: ignore[return-value]
    if head[:4] == _XZ:
        return lzma.LZMAFile(stream)  # type: ignore[return-value]
    return stream
