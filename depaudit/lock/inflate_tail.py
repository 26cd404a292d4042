"""The end of a deflate stream, decoded without the bytes before it.

A deflate stream cannot be entered at a byte: its blocks start at bit positions nobody records,
and a block may copy from the 32 KiB decoded before it. Yet the end of a stream can be had
cheaply. Scan the compressed bytes from a chosen point for a bit position that parses as a block
header, decode from it to the stream's end, and the output is the member's last bytes: its length
says where it starts, since the member's size is known. What the skipped part would have put in
the window is unknown; decoding twice, once with a window of 0x00 and once of 0xFF, tells every
byte that came from it (it differs between the two) from every byte that is truly known.

A bit position that merely looks like a block header decodes garbage, and garbage fails fast:
invalid codes, a bad next header, or a stream that does not end where the member does. Any of
these rejects the start and the next candidate is tried. The caller may still check the result
against what it knows of the content (`Check`).

Python's zlib module cannot start inflating in the middle of a byte, and shifting the input
would misalign the stored blocks (their data starts on the stream's own byte boundaries). So the
system zlib is called through ctypes for `inflatePrime`, which feeds the first partial byte's bits
ahead of the rest. Where that library cannot be loaded, there is no tail: the caller inflates from
the member's start as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

_WINDOW = 1 << 15
_ZEROS = bytes(_WINDOW)
_ONES = b"\xff" * _WINDOW
_FEED = 1 << 20  # compressed bytes given to zlib at a time
_STEP = 1 << 20  # most decompressed bytes one zlib call may produce
_PROBE = 1 << 14  # compressed bytes a candidate must decode without error before a full try
_SCAN = 1 << 18  # compressed bytes searched for a block start before giving up
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
        return not any(start < offset + length and offset < end for start, end in self.unknown)

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
    it, so its probe goes on past it."""
    end = min(len(data) - 16, _SCAN)
    last_stored = -1
    for byte in range(max(end, 0)):
        word = int.from_bytes(data[byte : byte + 16], "little")
        for shift in range(8):
            value = word >> shift
            kind = value & 7  # BFINAL, then BTYPE
            if kind in (4, 5):  # dynamic Huffman
                if (value >> 3) & 31 > 29 or (value >> 8) & 31 > 29:
                    continue  # more than 286 literal/length or 30 distance codes
                count = ((value >> 13) & 15) + 4
                lengths = value >> 17
                kraft = 0
                for _ in range(count):
                    length = lengths & 7
                    if length:
                        kraft += 1 << (7 - length)
                    lengths >>= 3
                if kraft == 128:  # zlib accepts only a complete code-length code
                    yield byte * 8 + shift, _PROBE
            elif kind in (0, 1):  # stored: the rest of the byte is padding, then LEN and ~LEN
                at = byte + (1 if shift <= 5 else 2)
                if at == last_stored or at + 4 > len(data):
                    continue  # every header bit position before the same LEN reads the same
                if data[at] ^ data[at + 2] == 0xFF and data[at + 1] ^ data[at + 3] == 0xFF:
                    stored = data[at] + (data[at + 1] << 8)
                    if kind == 1 and at + 4 + stored != len(data):
                        continue  # a final block that is not the last: a bit of the block before
                    last_stored = at
                    yield byte * 8 + shift, _PROBE + 4 + stored


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

    def __init__(self, lib: ctypes.CDLL, data: bytes, bit: int, fill: bytes) -> None:
        self._lib = lib
        self._stream = _ZStream()
        self._out = ctypes.create_string_buffer(_STEP)
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
                chunk = self._data[self._at : min(self._at + _FEED, end)]
                self._held = chunk  # keeps the bytes alive while zlib points into them
                stream.next_in = ctypes.cast(ctypes.c_char_p(chunk), ctypes.c_void_p)
                stream.avail_in = len(chunk)
                self._at += len(chunk)
            stream.next_out = ctypes.addressof(self._out)
            stream.avail_out = _STEP
            code = self._lib.inflate(ctypes.byref(stream), 0)
            made = _STEP - stream.avail_out
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

    def close(self) -> None:
        if self._open:
            self._lib.inflateEnd(ctypes.byref(self._stream))
            self._open = False


def _probe(lib: ctypes.CDLL, data: bytes, bit: int, length: int) -> bool:
    """Does the stream decode from `bit` over the next `length` bytes of input without an error?"""
    inflater = _Inflater(lib, data, bit, b"\x00")
    try:
        for _ in inflater.pieces((bit >> 3) + length):
            pass
    except _Error:
        return False
    finally:
        inflater.close()
    return True


def _decode_from(lib: ctypes.CDLL, data: bytes, bit: int, size: int) -> Tail | None:
    """Decode from `bit` to the stream's end with both windows, or None when the stream does not
    end exactly where `data` does or would be longer than `size`."""
    zeros = _Inflater(lib, data, bit, b"\x00")
    # The two inflaters take the same input and make the same amount of output at every call:
    # the window's content never changes how the stream's codes are read.
    ones: _Inflater | None = _Inflater(lib, data, bit, b"\xff")
    second_pieces = ones.pieces() if ones else None
    out = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the Tail, closed by its owner
    unknown: list[tuple[int, int]] = []  # relative to the first decoded byte, fixed up at the end
    produced = 0
    known_run = 0  # decoded bytes since the last unknown one: after 32 KiB, none can follow
    try:
        for first in zeros.pieces():
            if ones is not None and second_pieces is not None:
                second = next(second_pieces, b"")
                if second != first:
                    if len(second) != len(first):
                        raise _Error("the two windows decoded differently")
                    low, high = _differing(first, second)
                    unknown.append((produced + low, produced + high))
                    known_run = len(first) - high
                else:
                    known_run += len(first)
                if known_run >= _WINDOW:
                    ones.close()
                    ones = second_pieces = None
            out.write(first)
            produced += len(first)
            if produced > size:
                raise _Error("longer than the member")
    except _Error:
        out.close()
        return None
    finally:
        zeros.close()
        if ones is not None:
            ones.close()
    if not zeros.eof or zeros.unused > 0 or produced == 0:
        out.close()
        return None  # not the stream's real end: a false start, or the data ends early
    start = size - produced
    return Tail(start, size, out, [(start + low, start + high) for low, high in unknown], bit >> 3)


def _differing(first: bytes, second: bytes) -> tuple[int, int]:
    """The smallest range [low, high) outside which two pieces of equal length agree (they differ)."""
    lo, hi = 0, len(first)
    while hi - lo > 1:  # first[:lo] == second[:lo] holds, and they differ before hi
        middle = (lo + hi) // 2
        if first[lo:middle] == second[lo:middle]:
            lo = middle
        else:
            hi = middle
    low = lo
    lo, hi = low, len(first)
    while hi - lo > 1:  # first[hi:] == second[hi:] holds, and they differ at or after lo
        middle = (lo + hi) // 2
        if first[middle:hi] == second[middle:hi]:
            hi = middle
        else:
            lo = middle
    return low, hi
