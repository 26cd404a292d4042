"""The ELF header and the program headers: all the loader reads before PT_DYNAMIC.

Both are unpacked with `struct`, as elf.py unpacks the dynamic entries. The machine and the OS
ABI are named as pyelftools names them; its table of names (~190 machines) is imported only for
a value other than x86-64 Linux's: a worker reading wheels' ELF files then never imports
pyelftools (~60 ms a process, its construct objects included). One parse of the headers serves
every reader of a file.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import BinaryIO

_CLASSES = {b"\x01": 32, b"\x02": 64}
_BYTE_ORDERS = {b"\x01": True, b"\x02": False}  # EI_DATA → little-endian
PT_LOAD, PT_DYNAMIC, PT_NOTE = 1, 2, 4
SEGMENT_NAMES = {PT_LOAD: "PT_LOAD", PT_DYNAMIC: "PT_DYNAMIC", PT_NOTE: "PT_NOTE"}
PF_X = 1
# Elf{32,64}_Phdr, fields in file order: type flags offset vaddr paddr filesz memsz align (64),
# type offset vaddr paddr filesz memsz flags align (32).
_PHDR_64, _PHDR_32 = "IIQQQQQQ", "IIIIIIII"
# Elf{32,64}_Ehdr after e_ident: type machine version entry phoff shoff flags ehsize phentsize
# phnum shentsize shnum shstrndx.
_EHDR_64, _EHDR_32 = "16sHHIQQQIHHHHHH", "16sHHIIIIIHHHHHH"
_EI_OSABI = 7
# pyelftools' names of the values nearly every file has (its enums.py), checked against its table
# by tests/native/test_headers.py.
_COMMON_MACHINES = {62: "EM_X86_64"}
_COMMON_ABIS = {0: "ELFOSABI_SYSV", 3: "ELFOSABI_LINUX"}


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
    order = "<" if little_endian else ">"
    layout = struct.Struct(order + (_EHDR_64 if elfclass == 64 else _EHDR_32))
    if size < layout.size:
        raise Truncated(f"the ELF header needs {layout.size} bytes, the file has {size}")
    stream.seek(0)
    _, _, e_machine, _, _, e_phoff, _, _, _, e_phentsize, e_phnum, *_ = layout.unpack(stream.read(layout.size))
    entry = struct.Struct(order + (_PHDR_64 if elfclass == 64 else _PHDR_32))
    if e_phnum and e_phentsize != entry.size:
        raise HeaderError(f"program header entry size {e_phentsize}, expected {entry.size}")
    end = e_phoff + e_phnum * entry.size
    if end > size:
        raise Truncated(f"the program headers end at byte {end}, past the end of the file ({size} bytes)")
    stream.seek(e_phoff)
    table = stream.read(end - e_phoff)
    if len(table) != end - e_phoff:
        raise Truncated(f"the program headers end at byte {end}, past the end of the file")
    if elfclass == 64:
        segments = tuple(Segment(t, offset, vaddr, filesz, flags, align) for t, flags, offset, vaddr, _, filesz, _, align in entry.iter_unpack(table))
    else:
        segments = tuple(Segment(t, offset, vaddr, filesz, flags, align) for t, offset, vaddr, _, filesz, _, flags, align in entry.iter_unpack(table))
    osabi = ident[_EI_OSABI]
    return ElfHeaders(
        little_endian=little_endian,
        elfclass=elfclass,
        machine=_COMMON_MACHINES.get(e_machine) or _names("ENUM_E_MACHINE").get(e_machine, str(e_machine)),
        osabi=_COMMON_ABIS.get(osabi) or _names("ENUM_EI_OSABI").get(osabi, str(osabi)),
        size=size,
        segments=segments,
    )


@functools.cache
def _names(table: str) -> dict[int, str]:
    """value → name in one of pyelftools' enums, as its construct Enum decodes a value (the last
    name given a value wins; a value it has no name for is passed on as is)."""
    from elftools.elf import enums

    return {value: name for name, value in getattr(enums, table).items() if name != "_default_"}
