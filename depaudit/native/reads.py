"""What the scan reads of each file of a site-packages: what an image must copy out of it.

All of the metadata and of the Python source; nothing of data files; of what may be an ELF
object, the bytes the native stage reads, found by reading it as the stage does. An image's
CUDA site-packages holds gigabytes of libraries of which the stage reads kilobytes: the
headers, the dynamic segment, its strings, the notes (and an extension module's read-only data,
for soname strings). Copied into a sparse file of the right size, those bytes serve every later
read. The ranges come from running the store's own reader over a stream that records what it
reads, not from a second description of the format that could drift from it.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, BinaryIO

from depaudit.image.rootfs import Ranges
from depaudit.native.distribution import METADATA_FOLDERS, named_as_not_elf
from depaudit.native.elf import looks_like_shared_object
from depaudit.native.store import read_as_the_store_does

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


def read_by_the_scan(relative: str) -> bool | Ranges:
    """What some stage reads of this file of a site-packages (a path relative to it): all of
    the metadata and of the Python source (module names are also taken from the source files
    an egg-info's SOURCES.txt names, by their presence); of a file that may be an ELF object (by
    its name; its magic decides), the ranges the native stage reads; nothing of the rest."""
    name = relative.rpartition("/")[2]
    if name.endswith(".py") or any(part.endswith(METADATA_FOLDERS) for part in relative.split("/")):
        return True
    return elf_ranges(name) if looks_like_shared_object(name) or not named_as_not_elf(name) else False


def elf_ranges(name: str) -> Ranges:
    """The ranges the store reads of an ELF object named `name` (the name decides whether its
    read-only data is searched for soname strings)."""

    def ranges(stream: BinaryIO) -> list[tuple[int, int]]:
        recorder = _Recorder(stream)
        # Buffered as open_regular's stream is: the recorded raw reads cover every buffered one.
        read_as_the_store_does(name, io.BufferedReader(recorder))
        return _merged(recorder.reads)

    return ranges


class _Recorder(io.RawIOBase):
    """A seekable stream that notes the (offset, length) of every read."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream
        # One read of what is below where it can (read1): a short read there (a wheel member whose
        # next bytes are not decoded yet) stays short, and the reader above asks again only for
        # bytes it wants.
        self._read = getattr(stream, "read1", stream.read)
        self.reads: list[tuple[int, int]] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        start = self._stream.tell()
        data = self._read(len(view))
        view[: len(data)] = data
        if data:
            self.reads.append((start, len(data)))
        return len(data)


def _merged(reads: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, length in sorted(reads):
        if merged and start <= merged[-1][0] + merged[-1][1]:
            first, extent = merged[-1]
            merged[-1] = (first, max(extent, start + length - first))
        else:
            merged.append((start, length))
    return merged
