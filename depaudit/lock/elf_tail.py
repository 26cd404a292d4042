"""Does a decoded tail of an ELF member sit where its length says?

A tail decoded from a false block start that later fell into step with the real stream would be
off by some bytes. An ELF file's section header table, usually its last bytes, is a strict shape
at the offset its header names: the null section first, every section inside the file, the
names' table a string table whose offsets begin names. A misplaced tail fails that at once.
"""

from __future__ import annotations

import struct

from depaudit.lock.inflate_tail import Tail

_HEADER = struct.Struct("<4sBB10xHHIQQQIHHHHHH")  # Elf64_Ehdr, little-endian
_SECTION = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr
_NOBITS = 8
_STRTAB = 3


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
