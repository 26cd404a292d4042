"""Libraries an ELF object loads with dlopen, as far as its bytes say.

Two kinds of evidence, both read through program headers like the rest of the native stage:
the `.note.dlopen` metadata systemd introduced (an FDO note in a PT_NOTE segment holding JSON:
`[{"soname": ["libfoo.so.1"], "priority": "required"}]`), and soname-shaped strings in the
read-only data of Python extension modules (torchaudio probing libavutil.so.58/57/56) — weak
evidence, tier `hint`.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from elftools.common.utils import struct_parse
from elftools.elf.elffile import ELFFile

from depaudit.native.model import Tier

FDO_DLOPEN_NOTE = 0x407C0C0A
_PRIORITY = {"required": Tier.REQUIRED, "recommended": Tier.OPTIONAL, "suggested": Tier.HINT}
_SONAME_STRING = re.compile(rb"(?<![A-Za-z0-9_.+-])(lib[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*\.so\.\d+)\x00")
_PF_X = 1
# Read-only data past this is not scanned: weak evidence is not worth reading gigabytes.
MAX_STRING_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, order=True)
class DlopenEvidence:
    soname: str
    tier: Tier
    rule: str  # where the evidence is, for the report


def dlopen_evidence(path: Path, *, strings: bool, needed: frozenset[str] = frozenset()) -> list[DlopenEvidence]:
    """Never raises: an object the loader could read but these extras cannot yields nothing."""
    found: dict[str, DlopenEvidence] = {}
    try:
        with open(path, "rb") as stream:
            elf = ELFFile(stream)
            order = "<" if elf.little_endian else ">"
            for segment in _program_headers(elf):
                kind = segment["p_type"]
                if kind == "PT_NOTE" and segment["p_filesz"] < 1 << 20:
                    data = _data(stream, segment)
                    for evidence in _notes(data, order, 8 if segment["p_align"] == 8 else 4):
                        found.setdefault(evidence.soname, evidence)
                elif strings and kind == "PT_LOAD" and not segment["p_flags"] & _PF_X:
                    if segment["p_filesz"] <= MAX_STRING_BYTES:
                        for match in _SONAME_STRING.finditer(_data(stream, segment)):
                            soname = match.group(1).decode("ascii")
                            if soname not in needed:
                                found.setdefault(soname, DlopenEvidence(soname, Tier.HINT, "soname string in read-only data"))
    except Exception:  # corrupt notes or segments: the loader's own reading already reported it
        return []
    return sorted(found.values())


def _program_headers(elf: ELFFile) -> list[Any]:
    """The program headers alone. pyelftools' iter_segments() builds a PT_DYNAMIC segment
    object that reads section headers and symbol tables: far more than these notes need."""
    header = elf.structs.Elf_Phdr
    return [struct_parse(header, elf.stream, elf["e_phoff"] + i * elf["e_phentsize"]) for i in range(elf["e_phnum"])]


def _data(stream: BinaryIO, segment: Any) -> bytes:
    stream.seek(segment["p_offset"])
    return stream.read(segment["p_filesz"])


def _notes(data: bytes, order: str, align: int) -> list[DlopenEvidence]:
    evidence = []
    offset = 0
    while offset + 12 <= len(data):
        name_size, desc_size, note_type = struct.unpack_from(f"{order}III", data, offset)
        offset += 12
        name = data[offset : offset + name_size].rstrip(b"\0")
        offset += -(-name_size // align) * align
        desc = data[offset : offset + desc_size]
        offset += -(-desc_size // align) * align
        if note_type != FDO_DLOPEN_NOTE or name != b"FDO":
            continue
        try:
            entries = json.loads(desc.rstrip(b"\0").decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue
        for entry in entries if isinstance(entries, list) else []:
            sonames = entry.get("soname") if isinstance(entry, dict) else None
            if isinstance(sonames, list) and sonames and isinstance(sonames[0], str):
                priority = str(entry.get("priority", "recommended"))
                feature = entry.get("feature")
                where = f".note.dlopen ({priority}{', ' + str(feature) if feature else ''})"
                evidence.append(DlopenEvidence(sonames[0], _PRIORITY.get(priority, Tier.OPTIONAL), where))
    return evidence
