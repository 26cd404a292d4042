"""Data that the native stage hands to the later stages."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from depaudit.evidence import Tier
from depaudit.findings import Finding


class LibraryStatus(str, Enum):
    BUNDLED = "bundled"  # found inside the same distribution (or service folder)
    OTHER_WHEEL = "other-wheel"  # found inside another installed distribution
    IMAGE = "image"  # found in the base image given to the scan
    SYSTEM = "system"  # found nowhere we looked: the image must provide it


@dataclass(frozen=True)
class ElfInfo:
    path: Path  # absolute
    elf_class: int  # 32 or 64
    machine: str  # e_machine as pyelftools names it, e.g. "EM_X86_64"
    soname: str | None
    needed: tuple[str, ...]
    rpath: tuple[str, ...]  # DT_RPATH split on ":", unexpanded
    runpath: tuple[str, ...]  # DT_RUNPATH split on ":", unexpanded
    osabi: str = "ELFOSABI_SYSV"  # EI_OSABI as pyelftools names it


@dataclass(frozen=True)
class NativeNeed:
    soname: str
    status: LibraryStatus
    tier: Tier
    chain: tuple[str, ...]  # display paths of the ELF objects from a root to the one needing soname
    found_at: str | None  # display path of the file it resolved to (bundled / other-wheel)
    provider: str | None  # canonical key of the distribution it resolved into (other-wheel)
    rule: str | None = None  # what found it: "DT_RPATH", "LD_LIBRARY_PATH", "ld.so.conf", ...
    tried: tuple[str, ...] = ()  # where ld.so would look, in order, when nothing was found


@dataclass(frozen=True)
class NativeReport:
    owner: str  # distribution key, or the service name for ELF files in a service folder
    needs: tuple[NativeNeed, ...]  # one per (soname, status, root object: chain[0]), best evidence kept; sorted
    findings: tuple[Finding, ...]

    def strongest(self) -> dict[tuple[str, LibraryStatus], NativeNeed]:
        """One need per (soname, status), whichever root object it comes from: the strongest,
        then shortest, evidence."""
        best: dict[tuple[str, LibraryStatus], NativeNeed] = {}
        for need in self.needs:
            key = (need.soname, need.status)
            current = best.get(key)
            if current is None or (need.tier.rank, len(need.chain), need.chain) < (current.tier.rank, len(current.chain), current.chain):
                best[key] = need
        return best
