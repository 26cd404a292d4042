"""A wheel's members read in place, as files of their own, counting the bytes taken from the wheel.

A stored member is a window on the wheel: a read at an offset reads just those bytes. A deflated
member is decompressed as a stream, only as far as the furthest byte asked for, and the
decompressor's state is kept every few MiB, so that a read behind the position (the ELF reader
reads the dynamic segment near the end, then its strings near the start) resumes from the nearest
kept state instead of from the member's first byte. A read near the member's end is served
instead, when that is cheaper, from its tail decoded without the bytes before it
(inflate_tail.py): the dynamic segment of a large library is often past most of its bytes.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from depaudit.lock import anchor, elf_tail
from depaudit.lock.inflate_tail import Tail, decode_tail

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # PKZIP local file header, 30 bytes
_LOCAL_MAGIC = b"PK\x03\x04"
_CHUNK = 1 << 16  # compressed bytes fed to zlib at a time, at most
_FIRST_CHUNK = 1 << 12  # and at first: the headers of a large member need a few KiB of it
_STEP = 1 << 20  # most decompressed bytes one zlib call may produce (a run of zeros inflates 1000×)
_CHECKPOINT_EVERY = 2 << 20  # decompressed bytes between kept decompressor states
# A tail's compressed size is guessed from its share of the member's size, taken this much larger
# (the end of a library compresses better or worse than its average), plus some slack. A guess
# too short costs only the next step's new bytes: what a tail read is kept for the next.
_TAIL_MARGIN = 1.05
_TAIL_FIRST = 1 / 8
_TAIL_AT_MOST = 0.5  # of the cost of inflating forward: a step guessed to cost more is not taken
_TAIL_FIRST_MOST = 2 << 20
_TAIL_SLACK = 1 << 15
_TAIL_STEPS = 16
_TAIL_APPROACH = 0.6  # of the guessed compressed bytes still to go back, while more than _TAIL_NEAR
_TAIL_NEAR = 1 << 18
_WINDOW_STEPS = 12  # steps back taken for a read whose bytes still copy from the unknown window
_WALK_AT_MOST = 8  # times the bytes before the segment: a longer walk back from the end is not taken
_TAIL_LIKELY = 1 / 4  # no tail is sought when its bytes at this share of the member's compression cost more
_HEAD = 4096  # the ELF header and program headers: what decoded parts are placed by


class MemberError(Exception):
    """The member cannot be read: a bad local header, an unknown compression, corrupt data."""


class CountingFile(io.RawIOBase):
    """The wheel file, every byte read from it counted: what "read in place" costs."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed with this object
        self.bytes_read = 0  # every read counted, a byte read twice twice
        self._pieces: list[tuple[int, int]] = []  # (offset, length) of each read

    @property
    def bytes_touched(self) -> int:
        """The wheel's bytes read at least once: the part of it the audit needed."""
        total, end = 0, 0
        for start, length in sorted(self._pieces):
            if start + length > end:
                total += start + length - max(start, end)
                end = start + length
        return total

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer: WriteableBuffer) -> int:
        start = self._file.tell()
        count = self._file.readinto(buffer) or 0  # type: ignore[arg-type]
        if count:
            self.bytes_read += count
            self._pieces.append((start, count))
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


@dataclass(frozen=True)
class _Checkpoint:
    out: int  # decompressed bytes produced before this state
    consumed: int  # compressed bytes fed before this state (the tail below not yet used)
    state: zlib._Decompress
    tail: bytes  # input zlib was given but has not used yet


def data_offset(wheel: BinaryIO, info: zipfile.ZipInfo) -> int:
    """Where the member's data starts in the wheel: after its local header, whose name and extra
    field lengths may differ from the central directory's."""
    wheel.seek(info.header_offset)
    raw = wheel.read(_LOCAL_HEADER.size)
    if len(raw) != _LOCAL_HEADER.size or raw[:4] != _LOCAL_MAGIC:
        raise MemberError(f"{info.filename}: no local file header where the central directory says")
    fields = _LOCAL_HEADER.unpack(raw)
    return info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10]


def open_member(wheel: BinaryIO, info: zipfile.ZipInfo) -> io.RawIOBase:
    """A seekable read-only raw stream of the member's content (`wheel` must stay open). A read
    may return fewer bytes than asked: those of a decoded part up to its first byte not known;
    a buffered reader over it asks again for the rest only when it wants them."""
    start = data_offset(wheel, info)
    if info.compress_type == zipfile.ZIP_STORED:
        return _Stored(wheel, start, info.file_size)
    if info.compress_type == zipfile.ZIP_DEFLATED:
        return _Deflated(wheel, start, info.compress_size, info.file_size, info.filename)
    raise MemberError(f"{info.filename}: compression method {info.compress_type}, which wheels do not use")


class _Member(io.RawIOBase):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(base + offset, 0)
        return self._pos


class _Stored(_Member):
    def __init__(self, wheel: BinaryIO, start: int, size: int) -> None:
        super().__init__(size)
        self._wheel = wheel
        self._start = start

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        length = max(min(len(view), self.size - self._pos), 0)
        if not length:
            return 0
        self._wheel.seek(self._start + self._pos)
        data = self._wheel.read(length)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


class _Deflated(_Member):
    def __init__(self, wheel: BinaryIO, start: int, compressed: int, size: int, name: str) -> None:
        super().__init__(size)
        self._wheel = wheel
        self._start = start
        self._compressed = compressed
        self._name = name
        self._checkpoints = [_Checkpoint(0, 0, zlib.decompressobj(-zlib.MAX_WBITS), b"")]
        self._restore(self._checkpoints[0])
        self._head = b""
        self._end: Tail | None = None
        self._end_reach = 0  # compressed bytes before the end that a tail was sought in
        self._kept: anchor.Compressed | None = None  # what the tail and searches read of it
        self._chunk = _FIRST_CHUNK
        self._placed: Tail | None = None  # the dynamic segment, found by its content
        self._anchor_tried = False

    def _restore(self, point: _Checkpoint) -> None:
        self._state = point.state.copy()  # the kept one stays as it was, for the next jump back
        self._consumed = point.consumed
        self._tail = point.tail
        self._out = point.out  # decompressed offset of self._buffer's first byte
        self._buffer = b""

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self.size or not len(view):
            return 0
        return self._from_tail(view) or self._forward(view)

    def close(self) -> None:
        for part in (self._end, self._placed):
            if part is not None:
                part.close()
        self._end = self._placed = None
        self._kept = None
        super().close()

    def _forward(self, view: memoryview) -> int:
        if self._pos < self._out:
            outs = [point.out for point in self._checkpoints]
            self._restore(self._checkpoints[bisect_right(outs, self._pos) - 1])
        while self._out + len(self._buffer) <= self._pos:
            self._out += len(self._buffer)
            self._buffer = self._inflate()
            if not self._buffer:
                return 0  # the data ends short of its stated size: the reader sees a short file
        inside = self._pos - self._out
        data = self._buffer[inside : inside + len(view)]
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _from_tail(self, view: memoryview) -> int:
        """The read served from the member's decoded tail, when it lies there and that costs less
        than inflating forward to it; 0 otherwise (the read goes forward)."""
        length = min(len(view), self.size - self._pos)
        part, known = self._decoded_at(length)
        if part is None:
            self._try_tail(length)
            part, known = self._decoded_at(length)
            if part is None:
                return 0
        # A short read when the bytes after these are not known: the reader may not want them.
        data = part.read(self._pos, known)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _decoded_at(self, length: int) -> tuple[Tail | None, int]:
        """The decoded part that knows the most of the read's first bytes, and how many."""
        best: tuple[Tail | None, int] = (None, 0)
        for part in (self._placed, self._end):
            known = part.known_from(self._pos, length) if part is not None else 0
            if known > best[1]:
                best = (part, known)
        return best

    def _try_tail(self, length: int) -> None:
        """Decode the member's end from far enough back to hold the read, if that costs less than
        inflating forward to it. A start found too late is sought again further back, by the
        compression the tail showed; one whose bytes at the read still copy from the unknown
        window, twice as far back. A read of the dynamic segment far from both ends is first
        sought by its content (`_find_dynamic`)."""
        furthest = max(self._out + len(self._buffer), self._checkpoints[-1].out)
        if self._pos < furthest or self.size <= 0:
            return
        ratio = self._compressed / self.size
        forward = (self._pos + length - furthest) * ratio
        head = self._first_bytes()
        # Sought by its content only when a tail would be dear too (at the member's compression),
        # and the walk back from the end, whose error grows with its length, is not far longer
        # than inflating forward from the start.
        behind = self.size - self._pos
        if not self._anchor_tried and min(forward, behind * ratio) > anchor.CHEAP and behind < _WALK_AT_MOST * self._pos:
            dynamic = elf_tail.dynamic_in(head)
            if dynamic is not None and dynamic.offset <= self._pos < dynamic.offset + dynamic.size:
                self._anchor_tried = True
                if self._find_dynamic(dynamic, head, length, forward):
                    return
        wanted = self.size - self._pos  # decompressed bytes from the read to the end
        if wanted * ratio * _TAIL_LIKELY > forward:
            return  # the end would have to compress far better than the member does to be cheaper
        # First a small part of the end: what it shows of the tail's compression guides the next.
        take = int(min(wanted * ratio * _TAIL_FIRST, _TAIL_FIRST_MOST)) + _TAIL_SLACK
        if take <= self._end_reach:  # a tail that holds bytes before the read, but not these: further back
            take = self._end_reach + max(self._end_reach // 4, _TAIL_SLACK)
        # (start, compressed bytes used) of the tail decoded last: the stretch a step adds to it
        # shows the compression of what lies before better than the whole tail's average does.
        previous = (self._end.start, self._end_reach - self._end.compressed_from) if self._end is not None else None
        window_steps = 0
        for _ in range(_TAIL_STEPS):
            take = min(take, self._compressed)
            if take <= self._end_reach or take >= forward:
                return
            data = self._end_bytes(take)
            tail = decode_tail(data, self.size, lambda found: elf_tail.agrees(head, found))
            if tail is None:
                return  # no block start found, or none that decodes to the end: go forward
            if self._end is not None:
                self._end.close()
            self._end = tail
            if tail.known_from(self._pos, length) or take >= self._compressed:
                return
            if tail.start <= self._pos:  # the read still copies from the unknown window: a few blocks back
                window_steps += 1
                if window_steps > _WINDOW_STEPS:
                    return  # a chain of copies (runs of zeros) back to far before: go forward
                take += max(take // 8, 4 * _TAIL_SLACK)
                continue
            used = take - tail.compressed_from  # compressed bytes the decoded part took
            if previous is not None and previous[0] > tail.start and used > previous[1]:
                rate = (used - previous[1]) / (previous[0] - tail.start)
            else:
                rate = used / (self.size - tail.start)
            previous = (tail.start, used)
            further = (tail.start - self._pos) * rate
            # Short of the guess while it is large (a step too short costs a decoding, one too far
            # the bytes past the read), then a little past it; never more than twice as far back.
            further = further * _TAIL_APPROACH if further > _TAIL_NEAR else further * _TAIL_MARGIN + _TAIL_SLACK
            take += min(int(further), take)
            if take - self._end_reach > forward * _TAIL_AT_MOST:
                return  # the bytes still to read for a tail that far back cost about what inflating forward does

    def _end_bytes(self, take: int) -> bytes:
        """The member's last `take` compressed bytes (those read before are kept, not read again)."""
        self._end_reach = max(self._end_reach, take)
        return self._compressed_bytes().read(self._compressed - take, take)

    def _compressed_bytes(self) -> anchor.Compressed:
        if self._kept is None:
            self._kept = anchor.Compressed(self._wheel, self._start, self._compressed, self.size)
        return self._kept

    def _find_dynamic(self, dynamic: elf_tail.Dynamic, head: bytes, length: int, forward: float) -> bool:
        """The dynamic segment found by its content (anchor.py), placed from the member's end or
        from its decoded tail when there is one; True when it was found and holds the read."""
        end, after = self._compressed, self.size  # a place in compressed and decompressed bytes
        if self._end is not None and self._end.start > dynamic.offset:
            dynamic = elf_tail.with_sections(dynamic, head, self._end)
            end, after = self._compressed - self._end_reach + self._end.compressed_from, self._end.start
        found = anchor.find_dynamic(self._compressed_bytes(), dynamic, end, after, forward)
        if found is None:
            return False
        self._placed = found
        return found.known_from(self._pos, length) > 0

    def _first_bytes(self) -> bytes:
        if len(self._head) < min(_HEAD, self.size):
            position = self._pos
            self._pos = 0
            buffer = bytearray(_HEAD)
            got = self._forward(memoryview(buffer))
            self._head = bytes(buffer[:got])
            self._pos = position
        return self._head

    def _inflate(self) -> bytes:
        """The next decompressed piece (b"" at the end), keeping the state every few MiB."""
        if self._tail:
            pending, self._tail = self._tail, b""
        else:
            want = min(self._chunk, self._compressed - self._consumed)
            self._chunk = min(self._chunk * 2, _CHUNK)
            if want <= 0:
                return self._state.flush() if not self._state.eof else b""
            self._wheel.seek(self._start + self._consumed)
            pending = self._wheel.read(want)
            self._consumed += len(pending)
            if not pending:
                return b""
        try:
            piece = self._state.decompress(pending, _STEP)
        except zlib.error as error:
            raise OSError(f"{self._name}: corrupt deflated data ({error})") from error
        self._tail = self._state.unconsumed_tail
        end = self._out + len(piece)
        if end - self._checkpoints[-1].out >= _CHECKPOINT_EVERY:
            self._checkpoints.append(_Checkpoint(end, self._consumed, self._state.copy(), self._tail))
        return piece

