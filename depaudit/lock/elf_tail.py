"""Does a decoded tail of an ELF member sit where its length says?

A tail decoded from a false block start that later fell into step with the real stream would be
off by some bytes. An ELF file's section header table, usually its last bytes, is a strict shape
at the offset its header names: the null section first, every section inside the file, the
names' table a string table whose offsets begin names. A misplaced tail fails that at once.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from depaudit.lock.inflate_tail import Piece, Tail

_HEADER = struct.Struct("<4sBB10xHHIQQQIHHHHHH")  # Elf64_Ehdr, little-endian
_SECTION = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr
_PROGRAM = struct.Struct("<IIQQQQQQ")  # Elf64_Phdr
_ENTRY = struct.Struct("<qQ")  # Elf64_Dyn
_NOBITS = 8
_STRTAB = 3
_DYNSYM = 11
_SECTION_DYNAMIC = 6
_PT_DYNAMIC = 2
_DT_PLTGOT, _DT_STRTAB, _DT_SYMTAB, _DT_STRSZ, _DT_SYMENT = 3, 5, 6, 10, 11
_SYMBOL_SIZE = 24
_PT_LOAD = 1
_GOT_REACH = 8 << 20  # farthest after the segment its GOT is looked for
_AFTER = 1 << 16  # decoded bytes kept after the segment: the reader reads a buffer's worth


def agrees(head: bytes, tail: Tail) -> bool:
    """False when the ELF file whose first bytes are `head` has a section header table inside the
    tail's known bytes that does not read as one; True otherwise (nothing to hold it to)."""
    if len(head) < _HEADER.size:
        return True
    magic, elf_class, data, _, _, _, _, _, shoff, _, _, _, _, shentsize, shnum, shstrndx = _HEADER.unpack_from(head)
    if magic != b"\x7fELF" or elf_class != 2 or data != 1 or not shoff or not shnum:
        return True  # not a 64-bit little-endian ELF file with sections: nothing to check against
    if shentsize != _SECTION.size or not tail.known(shoff, shnum * _SECTION.size):
        return True  # an odd table, or one outside the known tail
    table = tail.read(shoff, shnum * _SECTION.size)
    if any(table[: _SECTION.size]):
        return False  # section 0 is all zeros
    sections = [_SECTION.unpack_from(table, index * _SECTION.size) for index in range(shnum)]
    for _name, kind, _flags, _address, offset, size, *_ in sections:
        if kind != _NOBITS and offset + size > tail.size:
            return False
    if shstrndx >= shnum:
        return False
    _, kind, _, _, offset, size, *_ = sections[shstrndx]
    if kind != _STRTAB:
        return False
    if not tail.known(offset, size):
        return True
    names = tail.read(offset, size)
    if not names or names[0] or names[-1]:
        return False  # a string table starts and ends with a NUL
    for name, *_ in sections:  # each name a printable string in the table (suffixes may be shared)
        if name >= size or not names[name : names.index(0, name)].isascii():
            return False
    return True


@dataclass(frozen=True)
class Dynamic:
    """What the headers say of the dynamic segment: where it is, how the file maps to memory,
    and the entries the section headers fix, when they are known."""

    offset: int
    size: int
    address: int  # the segment's virtual address: what the GOT's first entry holds
    loads: tuple[tuple[int, int, int], ...]  # (address, offset, size in the file) of each PT_LOAD
    exact: tuple[tuple[int, int], ...] = ()  # (tag, value) of DT_STRTAB, DT_STRSZ, DT_SYMTAB

    @property
    def key(self) -> bytes:
        """An entry the segment surely holds, as bytes: the string table's address when known,
        else DT_SYMENT, which is 24 in every 64-bit file with a symbol table."""
        for tag, value in self.exact:
            if tag == _DT_STRTAB:
                return _ENTRY.pack(tag, value)
        return _ENTRY.pack(_DT_SYMENT, _SYMBOL_SIZE)

    @property
    def got_start(self) -> bytes:
        """The first 24 bytes of the GOT the x86-64 ABI lays out: the segment's address, then two
        words for the loader."""
        return struct.pack("<QQQ", self.address, 0, 0)

    def got_after(self, array: bytes) -> int | None:
        """How far after the segment's start its GOT (DT_PLTGOT, mapped by the PT_LOADs) begins,
        by this array's entry."""
        for at in range(0, len(array), _ENTRY.size):
            tag, value = _ENTRY.unpack_from(array, at)
            if tag == _DT_PLTGOT:
                for address, offset, size in self.loads:
                    if address <= value < address + size:
                        distance = value - address + offset - self.offset
                        return distance if 0 < distance < _GOT_REACH else None
                return None
        return None


def dynamic_in(head: bytes) -> Dynamic | None:
    """The dynamic segment as the program headers (in `head`) place it; None when they do not."""
    if len(head) < _HEADER.size:
        return None
    magic, elf_class, data, _, _, _, _, phoff, _, _, _, phentsize, phnum, *_ = _HEADER.unpack_from(head)
    if magic != b"\x7fELF" or elf_class != 2 or data != 1 or phentsize != _PROGRAM.size:
        return None
    if phoff + phnum * _PROGRAM.size > len(head):
        return None
    segments = [_PROGRAM.unpack_from(head, phoff + index * _PROGRAM.size) for index in range(phnum)]
    dynamic = [(offset, address, size) for kind, _, offset, address, _, size, _, _ in segments if kind == _PT_DYNAMIC]
    loads = tuple((address, offset, size) for kind, _, offset, address, _, size, _, _ in segments if kind == _PT_LOAD)
    if len(dynamic) != 1 or dynamic[0][2] < _ENTRY.size or dynamic[0][2] % _ENTRY.size:
        return None
    offset, address, size = dynamic[0]
    return Dynamic(offset, size, address, loads)


def with_sections(dynamic: Dynamic, head: bytes, tail: Tail) -> Dynamic:
    """The segment with the entries its section headers fix, when the tail holds them known."""
    magic, elf_class, data, *_, shoff, _, _, _, _, shentsize, shnum, _ = _HEADER.unpack_from(head)
    if shentsize != _SECTION.size or not shnum or shoff < tail.start or shoff + shnum * _SECTION.size > tail.size:
        return dynamic
    table = tail.read(shoff, shnum * _SECTION.size)
    # Only the headers whose bytes are known count: the rest may still copy from the unknown window.
    sections = {
        index: _SECTION.unpack_from(table, index * _SECTION.size)
        for index in range(shnum)
        if tail.known(shoff + index * _SECTION.size, _SECTION.size)
    }
    linked = [(offset, size, link) for _, kind, _, _, offset, size, link, *_ in sections.values() if kind == _SECTION_DYNAMIC]
    symbols = [address for _, kind, _, address, *_ in sections.values() if kind == _DYNSYM]
    if len(linked) != 1 or len(symbols) != 1 or linked[0][:2] != (dynamic.offset, dynamic.size):
        return dynamic
    link = linked[0][2]
    if link not in sections or sections[link][1] != _STRTAB:
        return dynamic
    exact = ((_DT_STRTAB, sections[link][3]), (_DT_STRSZ, sections[link][5]), (_DT_SYMTAB, symbols[0]))
    return Dynamic(dynamic.offset, dynamic.size, dynamic.address, dynamic.loads, exact)


def _is_the_segment(array: bytes, dynamic: Dynamic) -> bool:
    entries = [_ENTRY.unpack_from(array, at) for at in range(0, len(array), _ENTRY.size)]
    tags = [tag for tag, _ in entries]
    if 0 not in tags:
        return False
    end = tags.index(0)
    if any(tags[end:]) or not all(0 < tag < 38 or 0x60000000 <= tag <= 0x7FFFFFFF for tag in tags[:end]):
        return False
    if _ENTRY.unpack(dynamic.key) not in entries[:end]:
        return False
    wanted = dict(dynamic.exact)
    values = {}
    for tag, value in entries[:end]:
        if tag in wanted:
            if tag in values:
                return False
            values[tag] = value
    return values == wanted


PASSED = "passed"  # the GOT after the segment was decoded, the segment not: it lies before


def find_dynamic(pieces: Iterable[Piece], dynamic: Dynamic, budget: int) -> tuple[bytes, list[tuple[int, int]]] | str | None:
    """The dynamic segment and up to 64 KiB after it, found by its content in `pieces` (decoded
    from an unknown place), with the ranges of those bytes that came from the unknown window.
    PASSED when the decoding began after it (its GOT seen first); None when it is not found
    before `budget` compressed bytes, or not at one place only.

    An array that starts an entry or more late still reads as the segment when zeros follow it,
    and without the section headers little else is known of it; the x86-64 ABI settles both: the
    GOT's first entry holds the segment's address, at the distance DT_PLTGOT gives."""
    key = dynamic.key
    got = dynamic.got_start
    span = dynamic.size + _AFTER
    buffer = bytearray()
    at = 0  # decoded offset of buffer[0]
    unknown: list[tuple[int, int]] = []  # in decoded offsets
    searched = 0  # decoded offset from which key is still to be looked for
    found: list[int] = []  # decoded offsets where an array reads as the segment
    distances: dict[int, int | None] = {}  # how far after each of those its GOT would begin
    needed = 0  # decoded offset up to which the output is wanted, to check the found ones
    for piece in pieces:
        unknown += [(piece.at + low, piece.at + high) for low, high in piece.unknown]
        buffer += piece.data
        while True:  # a hit needs the segment's start before it and `span` bytes from that start
            hit = buffer.find(key, max(searched - at, 0))
            if hit < 0:
                searched = at + max(len(buffer) - len(key) + 1, 0)
                break
            if hit + span > len(buffer):
                searched = at + hit  # looked at again when more is decoded
                break
            for start in range(hit, max(hit - dynamic.size, -1), -_ENTRY.size):
                array = bytes(buffer[start : start + dynamic.size])
                if _is_the_segment(array, dynamic):
                    found.append(at + start)
                    distance = distances[at + start] = dynamic.got_after(array)
                    needed = max(needed, at + start + max(span, (distance or 0) + len(got)))
            searched = at + hit + 1
        if found and at + len(buffer) >= needed:
            break
        if not found:
            seen, pending = buffer.find(got), buffer.find(key)
            if seen >= 0 and not 0 <= pending < seen and not _overlaps(unknown, at + seen, at + seen + len(got)):
                return PASSED  # its GOT, and no entry of the segment before it
            if piece.consumed > budget:
                return None
        drop = min(min(found) - at if found else len(buffer), len(buffer) - 2 * span - len(key))
        if drop > 4 * span:
            del buffer[:drop]
            at += drop
    if not found or at + len(buffer) < needed:
        return None
    checked = []
    for start in found:
        distance = distances[start]
        first = start + (distance or 0)
        if distance and buffer[first - at : first - at + len(got)] == got and not _overlaps(unknown, first, first + len(got)):
            checked.append(start)
    if len(checked) != 1 and not (not checked and dynamic.exact and len(found) == 1):
        return None
    start = checked[0] if checked else found[0]
    data = bytes(buffer[start - at : start - at + span])
    return data, [(max(low - start, 0), min(high - start, len(data))) for low, high in unknown if low < start + len(data) and high > start]


def _overlaps(ranges: list[tuple[int, int]], low: int, high: int) -> bool:
    return any(start < high and low < end for start, end in ranges)
