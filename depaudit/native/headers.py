"""The ELF header and the program headers: all the loader reads before PT_DYNAMIC.

Parsed with pyelftools' structs. Its ELFFile builds some 450 construct objects per file before
reading a byte; they depend only on the byte order, class, type, machine and OS ABI, so they are
built once per kind of file here, and one parse of the headers serves every reader of a file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from elftools.elf.structs import ELFStructs  # imported where a file is read: a warm scan reads none

_CLASSES = {b"\x01": 32, b"\x02": 64}
_BYTE_ORDERS = {b"\x01": True, b"\x02": False}  # EI_DATA → little-endian


class HeaderError(ValueError):
    """The headers cannot be read: the message says why, in pyelftools' words where it has them."""


class Truncated(HeaderError):
    """A header lies past the end of the file."""


@dataclass(frozen=True)
class ElfHeaders:
    little_endian: bool
    elfclass: int
    machine: str  # pyelftools' name, e.g. EM_X86_64 (the number, for a machine it does not know)
    osabi: str
    size: int  # of the file, in bytes
    segments: tuple[Any, ...]  # pyelftools Containers of Elf_Phdr, in file order


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
    structs = _structs(little_endian, elfclass, header["e_type"], header["e_machine"], header["e_ident"]["EI_OSABI"])
    entry = structs.Elf_Phdr
    if header["e_phnum"] and header["e_phentsize"] != entry.sizeof():
        raise HeaderError(f"program header entry size {header['e_phentsize']}, expected {entry.sizeof()}")
    end = header["e_phoff"] + header["e_phnum"] * entry.sizeof()
    if end > size:
        raise Truncated(f"the program headers end at byte {end}, past the end of the file ({size} bytes)")
    segments = tuple(struct_parse(entry, stream, header["e_phoff"] + i * entry.sizeof()) for i in range(header["e_phnum"]))
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


# Keyed by values read from the file: bounded, as a hostile tree may hold every machine number.
@functools.lru_cache(maxsize=32)
def _structs(little_endian: bool, elfclass: int, e_type: Any, e_machine: Any, osabi: Any) -> ELFStructs:
    from elftools.elf.structs import ELFStructs

    structs = ELFStructs(little_endian=little_endian, elfclass=elfclass)
    structs.create_basic_structs()
    structs.create_advanced_structs(e_type, e_machine, osabi)
    return structs
