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
from typing import BinaryIO

from depaudit.native.headers import PF_X, PT_LOAD, PT_NOTE, ElfHeaders, Segment, read_headers
from depaudit.evidence import Tier
from depaudit.reading import open_regular

FDO_DLOPEN_NOTE = 0x407C0C0A
_PRIORITY = {"required": Tier.REQUIRED, "recommended": Tier.OPTIONAL, "suggested": Tier.HINT}
_SONAME_STRING = re.compile(rb"(?<![A-Za-z0-9_.+-])(lib[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*\.so\.\d+)\x00")
# Read-only data past this (in all segments together) is not scanned: weak evidence is not
# worth reading gigabytes. Notes are small; a megabyte of them is already absurd.
MAX_STRING_BYTES = 64 * 1024 * 1024
MAX_NOTE_BYTES = 1 << 20


@dataclass(frozen=True, order=True)
class DlopenEvidence:
    soname: str
    tier: Tier
    rule: str  # where the evidence is, for the report


def dlopen_evidence(path: Path, *, strings: bool, needed: frozenset[str] = frozenset()) -> list[DlopenEvidence]:
    """Never raises: an object the loader could read but these extras cannot yields nothing."""
    try:
        with open_regular(path) as stream:
            return evidence_in(stream, read_headers(stream), strings=strings, needed=needed)
    except Exception:  # the loader's own reading reports what is wrong with the file
        return []


def evidence_in(stream: BinaryIO, headers: ElfHeaders, *, strings: bool, needed: frozenset[str] = frozenset()) -> list[DlopenEvidence]:
    """`dlopen_evidence` of an open file whose headers are read. Never raises."""
    found: dict[str, DlopenEvidence] = {}
    try:
        order = "<" if headers.little_endian else ">"
        budget = _Budget()
        for segment in headers.segments:
            kind = segment.type
            if kind == PT_NOTE and budget.take(segment, "notes", MAX_NOTE_BYTES):
                data = _data(stream, segment)
                for evidence in _notes(data, order, 8 if segment.align == 8 else 4):
                    found.setdefault(evidence.soname, evidence)
            elif strings and kind == PT_LOAD and not segment.flags & PF_X:
                if budget.take(segment, "strings", MAX_STRING_BYTES):
                    for soname in _soname_strings(_data(stream, segment)):
                        if soname not in needed:
                            found.setdefault(soname, DlopenEvidence(soname, Tier.HINT, "soname string in read-only data"))
    except Exception:  # corrupt notes or segments: the loader's own reading already reported it
        return []
    return sorted(found.values())


_NAME_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.+-")
_LONGEST_NAME = 4096  # bytes a soname string may run back from its ".so.": far beyond any real one


def _soname_strings(data: bytes) -> list[str]:
    """What `_SONAME_STRING` finds in `data`, found from each ".so." (rare; bytes.find is C
    speed) rather than by running the regex over megabytes of read-only data: the regex runs on
    the string around it, from the byte before the name (its look-behind) to the NUL."""
    found: list[str] = []
    position = data.find(b".so.")
    while position != -1:
        start = position
        while start > 0 and position - start < _LONGEST_NAME and data[start - 1] in _NAME_BYTES:
            start -= 1
        end = data.find(b"\0", position)
        if end == -1:
            break
        if start == 0 or data[start - 1] not in _NAME_BYTES:  # the name's whole start is in the window
            window_start = max(start - 1, 0)
            found.extend(m.group(1).decode("ascii") for m in _SONAME_STRING.finditer(data, window_start, end + 1))
        position = data.find(b".so.", end)
    return found


class _Budget:
    """Bytes read per kind of segment, in all: a header table may name one region 65,535 times."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, int, int]] = set()
        self.spent: dict[str, int] = {}

    def take(self, segment: Segment, kind: str, limit: int) -> bool:
        region = (kind, segment.offset, segment.filesz)
        if region in self.seen or self.spent.get(kind, 0) + segment.filesz > limit:
            return False
        self.seen.add(region)
        self.spent[kind] = self.spent.get(kind, 0) + segment.filesz
        return True


def _data(stream: BinaryIO, segment: Segment) -> bytes:
    stream.seek(segment.offset)
    return stream.read(segment.filesz)


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
