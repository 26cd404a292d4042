"""A deflate stream decoded from the middle: its end (`decode_tail`), or onward from any place
(`decode_onward`), without the bytes before.

A deflate stream cannot be entered at a byte: its blocks start at bit positions nobody records,
and a block may copy from the 32 KiB decoded before it. Yet the end of a stream can be had
cheaply. Scan the compressed bytes from a chosen point for a bit position that parses as a block
header, decode from it to the stream's end, and the output is the member's last bytes: its length
says where it starts, since the member's size is known. What the skipped part would have put in
the window is unknown; decoding twice, once with a window of 0x00 and once of 0xFF, tells every
byte that came from it (it differs between the two) from every byte that is truly known.

A bit position that merely looks like a block header decodes garbage, and garbage mostly fails
fast: invalid codes, a bad next header, or a stream that does not end where the member does. Any
of these rejects the start and the next candidate is tried. Decoding onward, whose end proves
nothing, a start must also decode past its block's end into the next block (zlib's Z_BLOCK),
stored blocks back to back are tried first (random bits decode for long as a false Huffman
block), and the caller places the output by its content. A tail's caller may check it against
what it knows of the content (`Check`).

Python's zlib module cannot start inflating in the middle of a byte, and shifting the input
would misalign the stored blocks (their data starts on the stream's own byte boundaries). So the
system zlib is called through ctypes for `inflatePrime`, which feeds the first partial byte's bits
ahead of the rest. Where that library cannot be loaded, there is no tail: the caller inflates from
the member's start as before.
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import functools
import itertools
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

_WINDOW = 1 << 15
_Z_BLOCK = 5
_NEXT_HEADER = 64  # input bytes decoded past a block's end: the next block's header, and more
_JOIN = 64  # unknown runs closer than this are kept as one range
# A run of differing (non-zero) bytes, and every later one fewer than _JOIN zero bytes after it.
_JOINED = re.compile(rb"[^\x00](?:\x00{0,%d}[^\x00])*" % (_JOIN - 1))
_ZEROS = bytes(_WINDOW)
_ONES = b"\xff" * _WINDOW
_FEED = 1 << 20  # compressed bytes given to zlib at a time
_STEP = 1 << 20  # most decompressed bytes one zlib call may produce
_PROBE_STEP = 1 << 16  # a probe's output buffer: what it makes is thrown away
_PROBE = 1 << 14  # compressed bytes a candidate must decode without error before a full try
_SCAN = 1 << 18  # compressed bytes searched for a block start before giving up
_SCAN_PIECE = 1 << 12  # searched at a time (a block start is often a few KiB in)
_FLAGGED = re.compile(rb"[^\x00]")
_STORED_HEADER_PLACES = ((-2, 6), (-2, 7), *((-1, shift) for shift in range(6)))
_STORED_SCAN = 20 << 10  # searched for stored blocks back to back (zlib stores 16 KiB at most)
_MAX_FULL_TRIES = 8  # candidates decoded to the end before giving up (each may be long)


@dataclass
class Tail:
    """Decoded bytes [start, size) of the member, in `data` (a temporary file, offset 0 = start);
    `unknown` lists the absolute ranges whose bytes came from the window before the decoded part."""

    start: int
    size: int
    data: BinaryIO
    unknown: list[tuple[int, int]]
    compressed_from: int  # where in the member's compressed bytes the decoded part begins

    def known(self, offset: int, length: int) -> bool:
        if offset < self.start or offset + length > self.size:
            return False
        # The ranges are sorted and apart: only the last one starting before the end can overlap.
        index = bisect.bisect_left(self.unknown, (offset + length,)) - 1
        return index < 0 or self.unknown[index][1] <= offset

    def known_from(self, offset: int, length: int) -> int:
        """How many of the `length` bytes from `offset` are known before the first that is not."""
        if offset < self.start or offset >= self.size:
            return 0
        # The ranges are sorted and apart: the last one starting at or before `offset` may hold it.
        index = bisect.bisect_right(self.unknown, (offset, self.size + 1)) - 1
        if index >= 0 and self.unknown[index][1] > offset:
            return 0
        limit = min(offset + length, self.size)
        if index + 1 < len(self.unknown):
            limit = min(limit, self.unknown[index + 1][0])
        return limit - offset

    def read(self, offset: int, length: int) -> bytes:
        self.data.seek(offset - self.start)
        return self.data.read(length)

    def close(self) -> None:
        self.data.close()


Check = Callable[[Tail], bool]  # does the tail agree with what is known of the content?


def decode_tail(compressed: bytes, size: int, check: Check | None = None) -> Tail | None:
    """The end of the stream whose last compressed bytes are `compressed` (up to the member's end)
    and whose decompressed size is `size`: decoded from the first block start found in
    `compressed`, or None when no start is found or none decodes to the stream's end."""
    lib = _libz()
    if lib is None:
        return None
    full_tries = 0
    for bit, probe in _candidates(compressed):
        if not _probe(lib, compressed, bit, probe):
            continue
        full_tries += 1
        tail = _decode_from(lib, compressed, bit, size)
        if tail is not None and (check is None or check(tail)):
            return tail
        if tail is not None:
            tail.close()
        if full_tries >= _MAX_FULL_TRIES:
            return None
    return None


def _candidates(data: bytes) -> Iterator[tuple[int, int]]:
    """Bit positions in `data` where a dynamic-Huffman or stored block header could start (the
    header's fixed fields and, for a dynamic block, a complete code-length code), each with how
    many bytes a probe of it should decode: a stored block's content is not checked by inflating
    it, so its probe goes on past it, to the next header, which is short when that header is
    itself plausible (runs of incompressible data are stored blocks back to back).

    Searched a few KiB at a time, every bit position of a piece at once (`_dynamic_headers`)."""
    end = min(len(data) - 16, _SCAN)
    if end <= 0:
        return
    stored_at = sorted(set(_stored_positions(data, end + 2)))
    next_stored = 0
    for piece in range(0, end, _SCAN_PIECE):
        stop = min(piece + _SCAN_PIECE, end)
        width = (stop - piece) * 8
        dynamic = _dynamic_headers(int.from_bytes(data[piece : stop + 16], "little"), width)
        found: list[tuple[int, int]] = []
        flags = dynamic.to_bytes(width // 8, "little")
        for match in _FLAGGED.finditer(flags):
            byte = match.start()
            at = piece + byte
            word = int.from_bytes(data[at : at + 16], "little")
            flag, shift = flags[byte], 0
            while flag:
                if flag & 1 and _complete_code_lengths(word >> shift):
                    found.append((at * 8 + shift, _PROBE))
                flag >>= 1
                shift += 1
        # Stored blocks: LEN and ~LEN at byte `at`, the header's three bits before it at bit 6 or
        # 7 of byte at - 2 or at bits 0-5 of byte at - 1 (the rest of its byte is padding): the
        # first such position stands for all (every one reads the same block).
        while next_stored < len(stored_at) and stored_at[next_stored] - 2 < stop:
            at = stored_at[next_stored]
            next_stored += 1
            for byte, shift in _STORED_HEADER_PLACES:
                byte += at
                if not 0 <= byte < end:
                    continue
                kind = (int.from_bytes(data[byte : byte + 2], "little") >> shift) & 7
                if kind not in (0, 1):
                    continue
                stored = data[at] + (data[at + 1] << 8)
                if kind == 1 and at + 4 + stored != len(data):
                    continue  # a final block that is not the last: a bit of the block before
                found.append((byte * 8 + shift, (4 + stored + 16) if _chained(data, at + 4 + stored) else (_PROBE + 4 + stored)))
                break
        found.sort()
        yield from found


def _stored_runs(data: bytes) -> list[tuple[int, int]]:
    """The first stored block in `data` that another block header follows right after it (at most
    one: enough to start from), as a bit position and a probe length."""
    for at in _stored_positions(data, min(len(data), _STORED_SCAN)):
        if at < 1:
            continue
        stored = data[at] + (data[at + 1] << 8)
        after = at + 4 + stored
        if after + 16 > len(data) or data[after] & 6 != 0 or _stored_length(data, after + 1) is None:
            continue
        shifts = [shift for shift in range(5, -1, -1) if data[at - 1] >> shift == 0]
        if shifts:  # the header's three zero bits, then zero padding up to LEN
            return [((at - 1) * 8 + shifts[0], 4 + stored + 16)]
    return []


def _stored_positions(data: bytes, end: int) -> Iterator[int]:
    """Offsets before `end` where a stored block's LEN and ~LEN could be (each byte of LEN the
    complement of its byte in ~LEN), found at C speed: where data and data two bytes on XOR to
    0xFFFF."""
    count = min(end, len(data) - 3)
    if count <= 0:
        return
    xored = (int.from_bytes(data[:count + 1], "little") ^ int.from_bytes(data[2 : count + 3], "little")).to_bytes(count + 1, "little")
    at = xored.find(b"\xff\xff")
    while 0 <= at < count:
        yield at
        at = xored.find(b"\xff\xff", at + 1)


def _chained(data: bytes, after: int) -> bool:
    """Does a plausible block header start at byte `after` (where a stored block ends)?"""
    if after + 16 > len(data):
        return False
    if data[after] & 6 == 0:
        return _stored_length(data, after + 1) is not None
    return data[after] & 6 == 4 and _dynamic_header(int.from_bytes(data[after : after + 16], "little"))


def _stored_length(data: bytes, at: int) -> int | None:
    """LEN of a stored block whose LEN and ~LEN are at `at`, if they agree."""
    if at + 4 > len(data) or data[at] ^ data[at + 2] != 0xFF or data[at + 1] ^ data[at + 3] != 0xFF:
        return None
    return data[at] + (data[at + 1] << 8)


# Kraft sums of four 3-bit code lengths at once: 2^(7 - length) for each length that is not 0.
_KRAFT4 = [
    sum(1 << (7 - length) for length in ((value >> (3 * field)) & 7 for field in range(4)) if length)
    for value in range(1 << 12)
]


def _dynamic_headers(bits: int, width: int) -> int:
    """The bit positions p < `width` of `bits` (a piece of the stream as one integer, with 16
    bytes more) where a dynamic block header could start, as a mask: its type, at most 29 more
    literal/length and distance codes, and a code-length code whose Kraft sum is 128 modulo
    512 (a few false ones, which the caller tells by `_complete_code_lengths`).

    Computed for every position at once, bit-sliced: `_field(k)` holds at bit p the bit k places
    after p, so a field's value is a few such integers; the Kraft sum is added up in nine of
    them (bit j of every position's sum in the j-th), one code length's term at a time. A few
    hundred operations on the piece's integer, where a test per position is a Python loop."""
    ones = (1 << width) - 1

    def field(k: int) -> int:
        return (bits >> k) & ones

    mask = field(2) & ~field(1)  # BTYPE 10, after BFINAL
    mask &= ~(field(4) & field(5) & field(6) & field(7)) & ~(field(9) & field(10) & field(11) & field(12))
    if not mask:
        return 0
    hclen = [field(13 + j) for j in range(4)]
    # at_least[c]: where HCLEN >= c (the code holds length c + 3, of those after the first four)
    at_least = [ones] * 16 + [0]
    for c in range(15, 0, -1):
        equal = ones
        for j in range(4):
            equal &= hclen[j] if c >> j & 1 else ones ^ hclen[j]
        at_least[c] = at_least[c + 1] | equal
    sums = [0] * 9
    for i in range(19):
        length = [field(17 + 3 * i + j) for j in range(3)]
        absent = [ones ^ bit for bit in length]
        present = at_least[i - 3] if i >= 4 else ones
        carry = 0
        for j in range(9):
            term = 0
            if j < 7:  # the term 2^(7 - L) has bit j set where L == 7 - j
                term = present
                for b in range(3):
                    term &= length[b] if (7 - j) >> b & 1 else absent[b]
            bit = sums[j]
            sums[j] = bit ^ term ^ carry
            carry = (bit & term) | (carry & (bit ^ term))
    for j in (0, 1, 2, 3, 4, 5, 6, 8):
        mask &= ones ^ sums[j]
    return mask & sums[7]


def _complete_code_lengths(value: int) -> bool:
    """Do these bits (a dynamic block's header first) hold a complete code-length code, as zlib
    requires? (Its other fields are tested before.)"""
    count = ((value >> 13) & 15) + 4
    lengths = value >> 17
    kraft = 0
    for _ in range(count >> 2):
        kraft += _KRAFT4[lengths & 0xFFF]
        lengths >>= 12
    if count & 3:
        kraft += _KRAFT4[lengths & ((1 << (3 * (count & 3))) - 1)]
    return kraft == 128


def _dynamic_header(value: int) -> bool:
    """Do these bits (a dynamic block's header first) hold counts in range and a complete
    code-length code, as zlib requires?"""
    if (value >> 3) & 31 > 29 or (value >> 8) & 31 > 29:
        return False  # more than 286 literal/length or 30 distance codes
    return _complete_code_lengths(value)


class _Error(Exception):
    """The data does not inflate: not a block start, or corrupt."""


class _ZStream(ctypes.Structure):
    _fields_ = [  # zlib.h's z_stream
        ("next_in", ctypes.c_void_p), ("avail_in", ctypes.c_uint), ("total_in", ctypes.c_ulong),
        ("next_out", ctypes.c_void_p), ("avail_out", ctypes.c_uint), ("total_out", ctypes.c_ulong),
        ("msg", ctypes.c_char_p), ("state", ctypes.c_void_p),
        ("zalloc", ctypes.c_void_p), ("zfree", ctypes.c_void_p), ("opaque", ctypes.c_void_p),
        ("data_type", ctypes.c_int), ("adler", ctypes.c_ulong), ("reserved", ctypes.c_ulong),
    ]


@functools.cache
def _libz() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("z")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        for function in ("inflateInit2_", "inflatePrime", "inflateSetDictionary", "inflate", "inflateEnd", "zlibVersion"):
            getattr(lib, function)
    except (OSError, AttributeError):
        return None
    lib.zlibVersion.restype = ctypes.c_char_p
    return lib


def available() -> bool:
    """Can a stream be entered at a bit position here (the system zlib loads)?"""
    return _libz() is not None


class _Inflater:
    """Raw inflate from bit `bit` of `data`, with a 32 KiB window of one byte value."""

    def __init__(
        self, lib: ctypes.CDLL, data: bytes, bit: int, fill: bytes, feed: int = _FEED, blocks: bool = False, step: int = _STEP
    ) -> None:
        self._lib = lib
        self._feed = feed
        self._step = step
        self._flush = _Z_BLOCK if blocks else 0  # Z_BLOCK: return at each block's end, to count them
        self.block_ends: list[int] = []  # bytes of data read when each block ended
        self._stream = _ZStream()
        self._out = ctypes.create_string_buffer(step)
        version = lib.zlibVersion()
        if lib.inflateInit2_(ctypes.byref(self._stream), -15, version, ctypes.sizeof(_ZStream)) != 0:
            raise MemoryError("zlib inflateInit2 failed")
        self._open = True
        window = fill * _WINDOW
        lib.inflateSetDictionary(ctypes.byref(self._stream), window, len(window))
        byte, shift = divmod(bit, 8)
        if shift:
            lib.inflatePrime(ctypes.byref(self._stream), 8 - shift, data[byte] >> shift)
            byte += 1
        self._data = data
        self._at = byte  # next byte of data to feed
        self.eof = False

    def pieces(self, until: int | None = None) -> Iterator[bytes]:
        """Decoded pieces, feeding data up to byte `until` (its end by default)."""
        end = len(self._data) if until is None else min(until, len(self._data))
        stream = self._stream
        while not self.eof and (self._at < end or stream.avail_in):
            if not stream.avail_in:
                chunk = self._data[self._at : min(self._at + self._feed, end)]
                self._held = chunk  # keeps the bytes alive while zlib points into them
                stream.next_in = ctypes.cast(ctypes.c_char_p(chunk), ctypes.c_void_p)
                stream.avail_in = len(chunk)
                self._at += len(chunk)
            stream.next_out = ctypes.addressof(self._out)
            stream.avail_out = self._step
            code = self._lib.inflate(ctypes.byref(stream), self._flush)
            made = self._step - stream.avail_out
            if self._flush and stream.data_type & 128:
                self.block_ends.append(self.consumed)
            if code == 1:  # Z_STREAM_END
                self.eof = True
            elif code not in (0, -5):  # Z_OK, Z_BUF_ERROR (no progress possible yet)
                raise _Error(f"zlib error {code}")
            if made:
                yield self._out.raw[:made]
            elif code == -5 and not stream.avail_in:
                continue
            elif code == -5:
                raise _Error("zlib made no progress")

    @property
    def unused(self) -> int:
        """Bytes of data after the stream's end."""
        return self._stream.avail_in + len(self._data) - self._at

    @property
    def consumed(self) -> int:
        """Bytes of data read so far."""
        return self._at - self._stream.avail_in

    def close(self) -> None:
        if self._open:
            self._lib.inflateEnd(ctypes.byref(self._stream))
            self._open = False


def _probe(lib: ctypes.CDLL, data: bytes, bit: int, length: int) -> bool:
    """Does the stream decode from `bit` over the next `length` bytes of input without an error?"""
    inflater = _Inflater(lib, data, bit, b"\x00", step=_PROBE_STEP)
    try:
        for _ in inflater.pieces((bit >> 3) + length):
            pass
    except _Error:
        return False
    finally:
        inflater.close()
    return True


@dataclass(frozen=True)
class Piece:
    """Decoded output: `data` starts `at` bytes after the first decoded byte; `unknown` are ranges
    of it (relative to `data`) whose bytes came from the window before the decoded part;
    `consumed` is how far into the compressed bytes the decoding has read after it, and `begun`
    the byte where it began (its block start's)."""

    at: int
    data: bytes
    unknown: list[tuple[int, int]]
    consumed: int
    begun: int


class _Decoding:
    """The stream decoded from `bit` with both windows, as pieces."""

    def __init__(self, lib: ctypes.CDLL, data: bytes, bit: int) -> None:
        self._zeros = _Inflater(lib, data, bit, b"\x00")
        # The two inflaters take the same input and make the same amount of output at every
        # call: the window's content never changes how the stream's codes are read.
        self._ones: _Inflater | None = _Inflater(lib, data, bit, b"\xff")
        self._begun = bit >> 3

    @property
    def eof(self) -> bool:
        return self._zeros.eof

    @property
    def unused(self) -> int:
        return self._zeros.unused

    def pieces(self) -> Iterator[Piece]:
        """Raises _Error where the data does not inflate."""
        seconds = self._ones.pieces() if self._ones is not None else None
        produced = 0
        known_run = 0  # decoded bytes since the last unknown one: after 32 KiB, none can follow
        for first in self._zeros.pieces():
            unknown: list[tuple[int, int]] = []
            if self._ones is not None and seconds is not None:
                second = next(seconds, b"")
                if second != first:
                    if len(second) != len(first):
                        raise _Error("the two windows decoded differently")
                    unknown = _differing(first, second)
                    known_run = len(first) - unknown[-1][1]
                else:
                    known_run += len(first)
                if known_run >= _WINDOW:
                    self._ones.close()
                    self._ones = seconds = None
            yield Piece(produced, first, unknown, self._zeros.consumed, self._begun)
            produced += len(first)

    def close(self) -> None:
        self._zeros.close()
        if self._ones is not None:
            self._ones.close()


def _decode_from(lib: ctypes.CDLL, data: bytes, bit: int, size: int) -> Tail | None:
    """Decode from `bit` to the stream's end, or None when the stream does not end exactly where
    `data` does or would be longer than `size`."""
    decoding = _Decoding(lib, data, bit)
    out = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the Tail, closed by its owner
    unknown: list[tuple[int, int]] = []  # relative to the first decoded byte, fixed up at the end
    produced = 0
    try:
        for piece in decoding.pieces():
            unknown += [(piece.at + low, piece.at + high) for low, high in piece.unknown]
            out.write(piece.data)
            produced += len(piece.data)
            if produced > size:
                raise _Error("longer than the member")
    except _Error:
        out.close()
        return None
    finally:
        decoding.close()
    if not decoding.eof or decoding.unused > 0 or produced == 0:
        out.close()
        return None  # not the stream's real end: a false start, or the data ends early
    start = size - produced
    return Tail(start, size, out, [(start + low, start + high) for low, high in unknown], bit >> 3)


def decode_onward(compressed: bytes) -> Iterator[Piece]:
    """The stream decoded from a block start found in `compressed`, on until an error or the end
    of `compressed`.
    The start is the first that decodes past the end of its block into the next one; failing
    that (a block longer than the bytes), the first that decodes to their end without an error.
    Where the output sits in the member is not known: the caller places it by its content."""
    lib = _libz()
    if lib is None:
        return
    chosen = fallback = None
    # Stored blocks back to back first: in incompressible data a false dynamic header is easily
    # found before the real stored one, and decodes the random bits for long without an error.
    for bit, probe in itertools.chain(_stored_runs(compressed), _candidates(compressed)):
        if probe != _PROBE and (bit >> 3) + probe > len(compressed):
            continue  # a stored block the bytes do not hold whole cannot be told from chance
        if (bit >> 3) + _PROBE // 4 > len(compressed):
            break  # too few bytes after it to test it, and after the next ones
        verdict = _probe_blocks(lib, compressed, bit)
        if verdict is True:
            chosen = bit
            break
        if verdict is None and fallback is None:
            fallback = bit
    start = chosen if chosen is not None else fallback
    if start is None:
        return
    decoding = _Decoding(lib, compressed, start)
    try:
        yield from decoding.pieces()
    except _Error:
        pass  # a false start after all, or corrupt data: what was decoded stands or falls by its content
    finally:
        decoding.close()


def _probe_blocks(lib: ctypes.CDLL, data: bytes, bit: int) -> bool | None:
    """True when the stream decodes from `bit` past the end of a block into the next one (a false
    start decodes random bits for long, but seldom ends a block where a valid one follows);
    None when it decodes to the end of `data` without ending a block; False on an error."""
    inflater = _Inflater(lib, data, bit, b"\x00", feed=_PROBE, blocks=True, step=_PROBE_STEP)
    try:
        for _ in inflater.pieces():
            if inflater.block_ends and inflater.consumed - inflater.block_ends[0] >= _NEXT_HEADER:
                return True
    except _Error:
        return False
    finally:
        inflater.close()
    return True if inflater.eof else None


def _differing(first: bytes, second: bytes) -> list[tuple[int, int]]:
    """The ranges [low, high) where two pieces of equal length differ (runs less than 64 bytes
    apart taken as one, which keeps the list short and errs on the side of unknown)."""
    diff = (int.from_bytes(first, "little") ^ int.from_bytes(second, "little")).to_bytes(len(first), "little")
    return [run.span() for run in _JOINED.finditer(diff)]
