"""The ELF header and the program headers: all the loader reads before PT_DYNAMIC.

The ELF header is parsed with pyelftools' structs (its names for the machine and the OS ABI).
Its ELFFile builds some 450 construct objects per file before reading a byte; the few needed
here depend only on the byte order and class, so they are built once. The program header table
is unpacked with `struct`, as elf.py unpacks the dynamic entries: construct parses field by
field, ~20 µs an entry, and a hostile table holds 65,535 of them. One parse of the headers
serves every reader of a file.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from elftools.elf.structs import ELFStructs  # imported where a file is read: a warm scan reads none

_CLASSES = {b"\x01": 32, b"\x02": 64}
_BYTE_ORDERS = {b"\x01": True, b"\x02": False}  # EI_DATA → little-endian
PT_LOAD, PT_DYNAMIC, PT_NOTE = 1, 2, 4
SEGMENT_NAMES = {PT_LOAD: "PT_LOAD", PT_DYNAMIC: "PT_DYNAMIC", PT_NOTE: "PT_NOTE"}
PF_X = 1
# Elf{32,64}_Phdr, fields in file order: type flags offset vaddr paddr filesz memsz align (64),
# type offset vaddr paddr filesz memsz flags align (32).
_PHDR_64, _PHDR_32 = "IIQQQQQQ", "IIIIIIII"


class HeaderError(ValueError):
    """The headers cannot be read: the message says why, in pyelftools' words where it has them."""


class Truncated(HeaderError):
    """A header lies past the end of the file."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One program header, the fields ld.so and our readers use."""

    type: int
    offset: int
    vaddr: int
    filesz: int
    flags: int
    align: int


@dataclass(frozen=True)
class ElfHeaders:
    little_endian: bool
    elfclass: int
    machine: str  # pyelftools' name, e.g. EM_X86_64 (the number, for a machine it does not know)
    osabi: str
    size: int  # of the file, in bytes
    segments: tuple[Segment, ...]  # in file order


def read_headers(stream: BinaryIO) -> ElfHeaders:
    """Raises HeaderError when the ELF header or the program header table is not all there."""
    from elftools.common.utils import struct_parse

    size = stream.seek(0, 2)
    stream.seek(0)
    ident = stream.read(16)
    if ident[:4] != b"\x7fELF":
        raise HeaderError("Magic number does not match")
    if ident[4:5] not in _CLASSES:
        raise HeaderError(f"Invalid EI_CLASS {ident[4:5]!r}")
    if ident[5:6] not in _BYTE_ORDERS:
        raise HeaderError(f"Invalid EI_DATA {ident[5:6]!r}")
    little_endian, elfclass = _BYTE_ORDERS[ident[5:6]], _CLASSES[ident[4:5]]
    basic = _basic_structs(little_endian, elfclass)
    if size < basic.Elf_Ehdr.sizeof():
        raise Truncated(f"the ELF header needs {basic.Elf_Ehdr.sizeof()} bytes, the file has {size}")
    header = struct_parse(basic.Elf_Ehdr, stream, 0)
    entry = struct.Struct(("<" if little_endian else ">") + (_PHDR_64 if elfclass == 64 else _PHDR_32))
    if header["e_phnum"] and header["e_phentsize"] != entry.size:
        raise HeaderError(f"program header entry size {header['e_phentsize']}, expected {entry.size}")
    end = header["e_phoff"] + header["e_phnum"] * entry.size
    if end > size:
        raise Truncated(f"the program headers end at byte {end}, past the end of the file ({size} bytes)")
    stream.seek(header["e_phoff"])
    table = stream.read(end - header["e_phoff"])
    if len(table) != end - header["e_phoff"]:
        raise Truncated(f"the program headers end at byte {end}, past the end of the file")
    if elfclass == 64:
        segments = tuple(Segment(t, offset, vaddr, filesz, flags, align) for t, flags, offset, vaddr, _, filesz, _, align in entry.iter_unpack(table))
    else:
        segments = tuple(Segment(t, offset, vaddr, filesz, flags, align) for t, offset, vaddr, _, filesz, _, flags, align in entry.iter_unpack(table))
    return ElfHeaders(
        little_endian=little_endian,
        elfclass=elfclass,
        machine=str(header["e_machine"]),
        osabi=str(header["e_ident"]["EI_OSABI"]),
        size=size,
        segments=segments,
    )


@functools.lru_cache(maxsize=4)
def _basic_structs(little_endian: bool, elfclass: int) -> ELFStructs:
    from elftools.elf.structs import ELFStructs

    structs = ELFStructs(little_endian=little_endian, elfclass=elfclass)
    structs.create_basic_structs()
    return structs
