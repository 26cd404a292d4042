"""Read what the dynamic loader reads from one ELF file, and nothing else.

ld.so never looks at section headers: it maps PT_LOAD segments, walks PT_DYNAMIC and reads
strings through DT_STRTAB. We do the same, so stripped files (no section headers) and files
whose section headers are stale (patchelf, sstrip) read exactly as the loader sees them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from elftools.common.utils import struct_parse
from elftools.elf.elffile import ELFFile

from depaudit.findings import FindingKind
from depaudit.native.model import ElfInfo

ELF_MAGIC = b"\x7fELF"
_LINKER_SCRIPT = re.compile(rb"^\s*(/\*|INPUT\s*\(|GROUP\s*\(|OUTPUT_FORMAT\s*\()")
_ABI_TAG = re.compile(r"\.(cpython-[^.]+|abi3|pypy[^.]*)\.so$")
_SHARED_OBJECT_NAME = re.compile(r"\.so($|\.)")
_STRING_TAGS = frozenset({"DT_NEEDED", "DT_SONAME", "DT_RPATH", "DT_RUNPATH"})


class ElfError(Exception):
    def __init__(self, kind: FindingKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __reduce__(self) -> tuple[type[ElfError], tuple[FindingKind, str]]:
        return ElfError, (self.kind, self.message)  # crosses from a worker process intact


class _Truncated(Exception):
    """Something the loader needs lies outside the file."""


def has_elf_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(4) == ELF_MAGIC
    except OSError:
        return False


def looks_like_shared_object(name: str) -> bool:
    return bool(_SHARED_OBJECT_NAME.search(name))


def is_extension_module(name: str) -> bool:
    """A file CPython can import: `mod.cpython-311-x86_64-linux-gnu.so`, `mod.abi3.so`, `_mod.so`."""
    name = name.rsplit("/", 1)[-1]
    if not name.endswith(".so"):
        return False
    stem = name.split(".", 1)[0]
    if not stem.isidentifier():
        return False
    return bool(_ABI_TAG.search(name)) or (name == f"{stem}.so" and not stem.startswith("lib"))


def read_elf(path: Path) -> ElfInfo:
    try:
        with open(path, "rb") as stream:
            head = stream.read(512)
            if head[:4] != ELF_MAGIC:
                raise ElfError(FindingKind.NOT_ELF, _not_elf_message(head))
            stream.seek(0)
            return _parse(path, stream)
    except OSError as error:
        raise ElfError(FindingKind.UNREADABLE_FILE, f"cannot read: {error.strerror or error}") from error


@dataclass(frozen=True)
class _Load:
    vaddr: int
    offset: int
    filesz: int


def _parse(path: Path, stream: BinaryIO) -> ElfInfo:
    try:
        elf = ELFFile(stream)  # parses the ELF header only; sections are read lazily, never here
        size = elf.stream_len
        loads, dynamic = _program_headers(elf, size)
        tags = _dynamic_tags(elf, dynamic) if dynamic is not None else []
        strings = _string_reader(stream, tags, loads, size)
        needed: list[str] = []
        values: dict[str, str] = {}
        for tag, value in tags:
            if tag == "DT_NEEDED":
                needed.append(strings(value))
            elif tag in _STRING_TAGS:
                values[tag] = strings(value)  # glibc keeps the last of each: l_info[tag] = dyn
        info = ElfInfo(
            path=path,
            elf_class=elf.elfclass,
            machine=str(elf["e_machine"]),
            soname=values.get("DT_SONAME"),
            needed=tuple(needed),
            rpath=_split(values.get("DT_RPATH")),
            runpath=_split(values.get("DT_RUNPATH")),
            osabi=str(elf["e_ident"]["EI_OSABI"]),
        )
    except _Truncated as error:
        raise ElfError(FindingKind.BAD_ELF, f"truncated ELF file: {error}") from error
    except Exception as error:  # pyelftools raises many types on corrupt input; all mean the same
        raise ElfError(FindingKind.BAD_ELF, f"corrupt or truncated ELF file: {error or type(error).__name__}") from error
    return info


def _program_headers(elf: ELFFile, size: int) -> tuple[list[_Load], Any | None]:
    phdr = elf.structs.Elf_Phdr
    if elf["e_phnum"] and elf["e_phentsize"] != phdr.sizeof():
        raise ValueError(f"program header entry size {elf['e_phentsize']}, expected {phdr.sizeof()}")
    end = elf["e_phoff"] + elf["e_phnum"] * elf["e_phentsize"]
    if end > size:
        raise _Truncated(f"the program headers end at byte {end}, past the end of the file ({size} bytes)")
    loads: list[_Load] = []
    dynamic = None
    for index in range(elf["e_phnum"]):
        header = struct_parse(phdr, elf.stream, elf["e_phoff"] + index * elf["e_phentsize"])
        if header["p_type"] in ("PT_LOAD", "PT_DYNAMIC"):
            end = header["p_offset"] + header["p_filesz"]
            if end > size:  # the loader would map pages past the end of the file
                raise _Truncated(f"{header['p_type']} ends at byte {end}, past the end of the file ({size} bytes)")
        if header["p_type"] == "PT_LOAD":
            loads.append(_Load(header["p_vaddr"], header["p_offset"], header["p_filesz"]))
        elif header["p_type"] == "PT_DYNAMIC" and dynamic is None:
            dynamic = header
    return loads, dynamic


def _dynamic_tags(elf: ELFFile, dynamic: Any) -> list[tuple[str, int]]:
    entry = elf.structs.Elf_Dyn
    tags: list[tuple[str, int]] = []
    for index in range(dynamic["p_filesz"] // entry.sizeof()):
        raw = struct_parse(entry, elf.stream, dynamic["p_offset"] + index * entry.sizeof())
        if raw["d_tag"] == "DT_NULL":
            break
        tags.append((str(raw["d_tag"]), int(raw["d_val"])))
    return tags


def _string_reader(
    stream: BinaryIO, tags: list[tuple[str, int]], loads: list[_Load], size: int
) -> Callable[[int], str]:
    """Strings as ld.so reads them: DT_STRTAB is a virtual address, mapped through PT_LOAD."""
    table = {tag: value for tag, value in tags if tag in ("DT_STRTAB", "DT_STRSZ")}

    def read(offset: int) -> str:
        if "DT_STRTAB" not in table:
            raise ValueError("string tags without DT_STRTAB")
        start = _file_offset(table["DT_STRTAB"], loads)
        limit = min(start + table.get("DT_STRSZ", size - start), size)
        if start + offset >= limit:
            raise _Truncated(f"a string at offset {offset} lies outside the string table")
        stream.seek(start + offset)
        remaining, chunks = limit - start - offset, list[bytes]()
        while remaining > 0:
            chunk = stream.read(min(remaining, 4096))
            if not chunk:
                break
            text, nul, _ = chunk.partition(b"\0")
            chunks.append(text)
            if nul:
                return b"".join(chunks).decode("utf-8", errors="replace")
            remaining -= len(chunk)
        raise _Truncated("a dynamic string runs past the end of its table without a NUL byte")

    return read


def _file_offset(vaddr: int, loads: list[_Load]) -> int:
    for load in loads:
        if load.vaddr <= vaddr < load.vaddr + load.filesz:
            return vaddr - load.vaddr + load.offset
    raise ValueError(f"DT_STRTAB address {vaddr:#x} is in no PT_LOAD segment")


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(entry for entry in value.split(":") if entry) if value else ()


def _not_elf_message(head: bytes) -> str:
    if _LINKER_SCRIPT.match(head) and (b"INPUT" in head or b"GROUP" in head):
        return "not an ELF file: a GNU ld linker script, which the dynamic loader cannot load"
    if not head:
        return "not an ELF file: the file is empty"
    return "not an ELF file, although it is named like a shared object"
