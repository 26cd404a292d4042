"""Read what the dynamic loader reads from one ELF file, and nothing else.

ld.so never looks at section headers: it maps PT_LOAD segments, walks PT_DYNAMIC and reads
strings through DT_STRTAB. We do the same, so stripped files (no section headers) and files
whose section headers are stale (patchelf, sstrip) read exactly as the loader sees them.
"""

from __future__ import annotations

import errno
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from depaudit import consulted
from depaudit.findings import FindingKind
from depaudit.python.module_names import extension_stem
from depaudit.native.headers import PT_DYNAMIC, PT_LOAD, SEGMENT_NAMES, ElfHeaders, Segment, Truncated, read_headers
from depaudit.native.model import ElfInfo
from depaudit.reading import open_regular

Extra = TypeVar("Extra")
ELF_MAGIC = b"\x7fELF"
_LINKER_SCRIPT = re.compile(rb"^\s*(/\*|INPUT\s*\(|GROUP\s*\(|OUTPUT_FORMAT\s*\()")
_SHARED_OBJECT_NAME = re.compile(r"\.so($|\.)")
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_STRSZ, _DT_SONAME, _DT_RPATH, _DT_RUNPATH = 0, 1, 5, 10, 14, 15, 29
_STRING_TAGS = frozenset({_DT_SONAME, _DT_RPATH, _DT_RUNPATH})
_EHDR32_SIZE, _EHDR64_SIZE = 52, 64
# Bounds on what one file may make us read: far above real libraries (tens of DT_NEEDED,
# rpaths of a few KiB), low enough that a hostile file costs milliseconds and kilobytes.
MAX_NEEDED = 4096
MAX_DYNAMIC_ENTRIES = 1 << 16
MAX_DYNAMIC_STRING_BYTES = 1 << 20
# A dynamic string is read this much at a time: a soname is shorter, and of a library read in place
# (a wheel member) the bytes after the string may not be decoded.
_STRING_CHUNK = 256


class ElfError(Exception):
    def __init__(self, kind: FindingKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __reduce__(self) -> tuple[type[ElfError], tuple[FindingKind, str]]:
        return ElfError, (self.kind, self.message)  # crosses from a worker process intact


class _Truncated(Exception):
    """Something the loader needs lies outside the file."""


class _TooLarge(Exception):
    """A count or length past the bounds we read: a corrupt or hostile file."""


def has_elf_magic(path: Path) -> bool:
    try:
        with open_regular(path) as stream:
            return stream.read(4) == ELF_MAGIC
    except (OSError, ValueError):
        return False


def looks_like_shared_object(name: str) -> bool:
    return bool(_SHARED_OBJECT_NAME.search(name))


def is_extension_module(name: str) -> bool:
    """A file CPython can import: `mod.cpython-311-x86_64-linux-gnu.so`, `mod.abi3.so`, `_mod.so`."""
    return extension_stem(name) is not None


def read_elf(path: Path) -> ElfInfo:
    return read_elf_then(path, _nothing_more)[0]


def read_elf_then(path: Path, then: Callable[[BinaryIO, ElfHeaders, ElfInfo], Extra]) -> tuple[ElfInfo, Extra]:
    """`read_elf`, then `then` on the same open file and parsed headers (it must not raise):
    a second reader of the file reads neither the headers nor the file's name again."""
    try:
        with open_regular(path) as stream:
            return read_elf_stream(path, stream, then)
    except OSError as error:
        raise _open_error(path, error) from error
    except ValueError as error:  # a NUL byte in the path: no file can be named so
        raise ElfError(FindingKind.UNREADABLE_FILE, f"cannot read: {error}") from error


def read_elf_stream(path: Path, stream: BinaryIO, then: Callable[[BinaryIO, ElfHeaders, ElfInfo], Extra]) -> tuple[ElfInfo, Extra]:
    """`read_elf_then` of a file already open (`path` is only its name for the report)."""
    head = stream.read(512)
    if head[:4] != ELF_MAGIC:
        raise ElfError(FindingKind.NOT_ELF, _not_elf_message(head))
    stream.seek(0)
    headers, info = _parse(path, stream)
    return info, then(stream, headers, info)


def _nothing_more(stream: BinaryIO, headers: ElfHeaders, info: ElfInfo) -> None:
    return None


def _open_error(path: Path, error: OSError) -> ElfError:
    if error.errno == errno.ELOOP:
        return ElfError(FindingKind.SYMLINK_LOOP, "symbolic links loop: the loader cannot open it; fix or remove the link")
    dangling = dangling_link(path) if isinstance(error, FileNotFoundError) else None
    if dangling is not None:
        return dangling
    return ElfError(FindingKind.UNREADABLE_FILE, f"cannot read: {error.strerror or error}")


def dangling_link(path: Path) -> ElfError | None:
    """What to say of a symbolic link whose target does not exist (None: `path` is no such link)."""
    try:
        target = os.readlink(path)
    except (OSError, ValueError):
        return None
    if consulted.exists(path):
        return None
    return ElfError(FindingKind.UNREADABLE_FILE, f"a dangling symbolic link to {target}, which does not exist; fix or remove the link")


@dataclass(frozen=True)
class _Load:
    vaddr: int
    offset: int
    filesz: int


def _parse(path: Path, stream: BinaryIO) -> tuple[ElfHeaders, ElfInfo]:
    try:
        _check_header_size(stream)
        headers = read_headers(stream)
        loads, dynamic = _program_headers(headers)
        tags = _dynamic_tags(stream, headers, dynamic) if dynamic is not None else []
        strings = _string_reader(stream, tags, loads, headers.size)
        needed: list[str] = []
        values: dict[int, str] = {}
        for tag, value in tags:
            if tag == _DT_NEEDED:
                needed.append(strings(value))
            elif tag in _STRING_TAGS:
                values[tag] = strings(value)  # glibc keeps the last of each: l_info[tag] = dyn
        info = ElfInfo(
            path=path,
            elf_class=headers.elfclass,
            machine=headers.machine,
            soname=values.get(_DT_SONAME),
            needed=tuple(needed),
            rpath=_split(values.get(_DT_RPATH)),
            runpath=_split(values.get(_DT_RUNPATH)),
            osabi=headers.osabi,
        )
    except (_Truncated, Truncated) as error:
        raise ElfError(FindingKind.BAD_ELF, f"truncated ELF file: {error}") from error
    except _TooLarge as error:
        raise ElfError(FindingKind.BAD_ELF, f"{error}; nothing it needs is counted: rebuild or remove it") from error
    except Exception as error:  # pyelftools raises many types on corrupt input; all mean the same
        raise ElfError(FindingKind.BAD_ELF, f"corrupt or truncated ELF file: {error or type(error).__name__}") from error
    return headers, info


def _check_header_size(stream: BinaryIO) -> None:
    head = stream.read(_EHDR64_SIZE)
    needed = _EHDR64_SIZE if head[4:5] == b"\x02" else _EHDR32_SIZE  # EI_CLASS: ELFCLASS64 or not
    if len(head) < needed:
        raise _Truncated(f"the ELF header needs {needed} bytes, the file has {len(head)}")
    stream.seek(0)


def _program_headers(headers: ElfHeaders) -> tuple[list[_Load], Segment | None]:
    size = headers.size
    # The loader maps every PT_LOAD and reads PT_DYNAMIC: none may end past the file.
    beyond = [h for h in headers.segments if h.type in (PT_LOAD, PT_DYNAMIC) and h.offset + h.filesz > size]
    if beyond:
        # Name the segment the file's end cuts through, the dynamic one first: the likeliest cause.
        cut = [h for h in beyond if h.offset < size]
        worst = next((h for h in cut if h.type == PT_DYNAMIC), (cut or beyond)[0])
        end = worst.offset + worst.filesz
        raise _Truncated(f"{SEGMENT_NAMES[worst.type]} ends at byte {end}, past the end of the file ({size} bytes)")
    loads = [_Load(h.vaddr, h.offset, h.filesz) for h in headers.segments if h.type == PT_LOAD]
    dynamic = next((h for h in headers.segments if h.type == PT_DYNAMIC), None)
    return loads, dynamic


def _dynamic_tags(stream: BinaryIO, headers: ElfHeaders, dynamic: Segment) -> list[tuple[int, int]]:
    """(d_tag, d_val) up to DT_NULL, unpacked with struct: a hostile segment may hold millions."""
    entry = struct.Struct(("<" if headers.little_endian else ">") + ("qQ" if headers.elfclass == 64 else "iI"))
    count = min(dynamic.filesz // entry.size, MAX_DYNAMIC_ENTRIES + 1)
    stream.seek(dynamic.offset)
    data = stream.read(count * entry.size)
    tags: list[tuple[int, int]] = []
    needed = 0
    for tag, value in entry.iter_unpack(data[: len(data) - len(data) % entry.size]):
        if tag == _DT_NULL:
            return tags
        needed += tag == _DT_NEEDED
        if needed > MAX_NEEDED:
            raise _TooLarge(f"more than {MAX_NEEDED} DT_NEEDED entries, far beyond any real library")
        tags.append((tag, value))
    if len(tags) > MAX_DYNAMIC_ENTRIES:
        raise _TooLarge(f"more than {MAX_DYNAMIC_ENTRIES} dynamic entries before DT_NULL, far beyond any real library")
    # No DT_NULL inside the segment (one of size 0 holds none): ld.so would read on past it, and
    # what the object needs cannot be known. It read as an object that needs nothing.
    raise _Truncated(f"its dynamic segment ({dynamic.filesz} bytes) ends before its DT_NULL entry")


def _string_reader(
    stream: BinaryIO, tags: list[tuple[int, int]], loads: list[_Load], size: int
) -> Callable[[int], str]:
    """Strings as ld.so reads them: DT_STRTAB is a virtual address, mapped through PT_LOAD."""
    table = {tag: value for tag, value in tags if tag in (_DT_STRTAB, _DT_STRSZ)}
    bounds: list[int] = []  # the table's file offsets, found once: 65,535 PT_LOADs are possible

    def read(offset: int) -> str:
        if _DT_STRTAB not in table:
            raise ValueError("string tags without DT_STRTAB")
        if not bounds:
            first = _file_offset(table[_DT_STRTAB], loads)
            bounds.extend((first, min(first + table.get(_DT_STRSZ, size - first), size)))
        start, limit = bounds
        if start + offset >= limit:
            raise _Truncated(f"a string at offset {offset} lies outside the string table")
        stream.seek(start + offset)
        remaining, chunks = min(limit - start - offset, MAX_DYNAMIC_STRING_BYTES + 1), list[bytes]()
        while remaining > 0:
            chunk = stream.read(min(remaining, _STRING_CHUNK))
            if not chunk:
                break
            text, nul, _ = chunk.partition(b"\0")
            chunks.append(text)
            if nul:
                return b"".join(chunks).decode("utf-8", errors="replace")
            remaining -= len(chunk)
        if remaining <= 0 and limit - start - offset > MAX_DYNAMIC_STRING_BYTES:
            raise _TooLarge(f"a dynamic string longer than {MAX_DYNAMIC_STRING_BYTES} bytes, far beyond any real library")
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
