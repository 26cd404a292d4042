"""Read what the dynamic loader reads from one ELF file, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path
from typing import BinaryIO

from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile

from depaudit.findings import FindingKind
from depaudit.native.model import ElfInfo

ELF_MAGIC = b"\x7fELF"
_LINKER_SCRIPT = re.compile(rb"^\s*(/\*|INPUT\s*\(|GROUP\s*\(|OUTPUT_FORMAT\s*\()")
_ABI_TAG = re.compile(r"\.(cpython-[^.]+|abi3|pypy[^.]*)\.so$")
_SHARED_OBJECT_NAME = re.compile(r"\.so($|\.)")
# The dynamic tags the loader reads, and the attribute pyelftools puts their string on.
_STRING_TAGS = {"DT_NEEDED": "needed", "DT_SONAME": "soname", "DT_RPATH": "rpath", "DT_RUNPATH": "runpath"}


class ElfError(Exception):
    def __init__(self, kind: FindingKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


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


def _parse(path: Path, stream: BinaryIO) -> ElfInfo:
    needed: list[str] = []
    rpath: list[str] = []
    runpath: list[str] = []
    soname: str | None = None
    try:
        elf = ELFFile(stream)
        elf_class, machine = elf.elfclass, str(elf["e_machine"])
        osabi = str(elf["e_ident"]["EI_OSABI"])
        # The loader uses the PT_DYNAMIC segment, not section headers (stripped files have none).
        for segment in elf.iter_segments():
            if not isinstance(segment, DynamicSegment):
                continue
            for tag in segment.iter_tags():
                attribute = _STRING_TAGS.get(tag.entry.d_tag)
                if attribute is None:
                    continue
                value: str = getattr(tag, attribute)  # pyelftools resolves it in the string table
                if attribute == "needed":
                    needed.append(value)
                elif attribute == "soname":
                    soname = value
                else:
                    (rpath if attribute == "rpath" else runpath).extend(p for p in value.split(":") if p)
            break
    except Exception as error:  # pyelftools raises many types on corrupt input; all mean the same
        raise ElfError(FindingKind.BAD_ELF, f"corrupt or truncated ELF file: {error or type(error).__name__}") from error
    return ElfInfo(path, elf_class, machine, soname, tuple(needed), tuple(rpath), tuple(runpath), osabi)


def _not_elf_message(head: bytes) -> str:
    if _LINKER_SCRIPT.match(head) and (b"INPUT" in head or b"GROUP" in head):
        return "not an ELF file: a GNU ld linker script, which the dynamic loader cannot load"
    if not head:
        return "not an ELF file: the file is empty"
    return "not an ELF file, although it is named like a shared object"
