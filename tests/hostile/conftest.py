"""Hostile inputs, built at test time: gcc-built shared objects, hand-crafted ELF headers and
broken dist-info folders. Nothing binary is committed; every byte offset a test expects is
read from the built fixture, never hard-coded.
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from depaudit.packages.model import ServiceReport
from depaudit.report import ScanReport
from helpers import OpenedFiles, build_so, elf_folder
from helpers import opened_files as helpers_opened_files

EXT = ".cpython-311-x86_64-linux-gnu.so"
GOOD_NEED = "libhostile-goodneed.so.1"  # what the good sibling extension module needs
EM_386, EM_PPC64, EM_X86_64 = 3, 21, 62
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SONAME = 0, 1, 5, 10, 14


@dataclass(frozen=True)
class Segment:
    index: int  # position in the program header table
    offset: int
    filesz: int
    vaddr: int


@dataclass(frozen=True)
class ElfLayout:
    """Where the parts ld.so reads lie in one gcc-built file."""

    size: int
    header_size: int
    phoff: int
    phentsize: int
    phnum: int
    loads: tuple[Segment, ...]
    dynamic: Segment
    dynstr: tuple[int, int]  # file offset, size (from the section headers: only to choose a cut)
    tags: tuple[tuple[str, int], ...]  # the dynamic entries in order, DT_NULL excluded

    def load_holding(self, offset: int) -> Segment:
        return next(s for s in self.loads if s.offset <= offset < s.offset + s.filesz)

    def entry_offset(self, tag: str) -> int:
        """File offset of the first dynamic entry with this tag."""
        index = next(i for i, (name, _) in enumerate(self.tags) if name == tag)
        return self.dynamic.offset + 16 * index


@dataclass(frozen=True)
class ElfParts:
    root: Path
    good: bytes  # an extension module that needs GOOD_NEED (and libc)
    good_rpath: bytes  # the same, with DT_RPATH $ORIGIN/../hostile.libs
    native: bytes  # another extension module, which needs libhostile-nativeneed.so.1
    lib: bytes  # a plain library with a SONAME, the base of the mutations
    layout: ElfLayout
    m32: bytes  # a 32-bit i386 object that needs libhostile-m32need.so.1
    big_endian: bytes  # a 64-bit big-endian PowerPC object that needs libhostile-beneed.so.1
    many_needed: bytes  # 100,000 DT_NEEDED entries, each a distinct name
    outside: Path  # a valid library outside every site-packages, needing libhostile-secret.so.1


def layout_of(path: Path) -> ElfLayout:
    with open(path, "rb") as stream:
        elf = ELFFile(stream)
        loads, dynamic = [], None
        for index, segment in enumerate(elf.iter_segments()):
            found = Segment(index, segment["p_offset"], segment["p_filesz"], segment["p_vaddr"])
            if segment["p_type"] == "PT_LOAD":
                loads.append(found)
            elif segment["p_type"] == "PT_DYNAMIC":
                dynamic = found
        dynstr = elf.get_section_by_name(".dynstr")
        tags = tuple((str(t.entry.d_tag), int(t.entry.d_val)) for t in elf.get_section_by_name(".dynamic").iter_tags())
        assert dynamic is not None and dynstr is not None
        return ElfLayout(
            size=elf.stream_len,
            header_size=elf["e_ehsize"],
            phoff=elf["e_phoff"],
            phentsize=elf["e_phentsize"],
            phnum=elf["e_phnum"],
            loads=tuple(loads),
            dynamic=dynamic,
            dynstr=(dynstr["sh_offset"], dynstr["sh_size"]),
            tags=tuple(t for t in tags if t[0] != "DT_NULL"),
        )


def craft_elf(
    *, bits: int = 64, little: bool = True, machine: int = EM_X86_64, soname: str | None = None, needed: Sequence[str] = ()
) -> bytes:
    """A minimal ELF shared object as ld.so reads it: one PT_LOAD mapping the whole file at
    address 0, one PT_DYNAMIC with DT_NEEDED, DT_SONAME, DT_STRTAB and DT_STRSZ."""
    order = "<" if little else ">"
    ehsize, phentsize = (64, 56) if bits == 64 else (52, 32)
    strings, offsets = bytearray(b"\0"), {}
    for name in (*needed, *([soname] if soname else [])):
        offsets.setdefault(name, len(strings))
        if offsets[name] == len(strings):
            strings += name.encode() + b"\0"
    strtab = ehsize + 2 * phentsize
    dynamic_at = (strtab + len(strings) + 7) & ~7
    entries = [(DT_NEEDED, offsets[n]) for n in needed]
    entries += [(DT_SONAME, offsets[soname])] if soname else []
    entries += [(DT_STRTAB, strtab), (DT_STRSZ, len(strings)), (DT_NULL, 0)]
    dyn_format = order + ("qQ" if bits == 64 else "iI")
    dynamic = b"".join(struct.pack(dyn_format, tag, value) for tag, value in entries)
    size = dynamic_at + len(dynamic)
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little else 2, 1, 0]) + bytes(8)
    if bits == 64:
        header = struct.pack(order + "16sHHIQQQIHHHHHH", ident, 3, machine, 1, 0, ehsize, 0, 0, ehsize, phentsize, 2, 64, 0, 0)
        load = struct.pack(order + "IIQQQQQQ", 1, 4, 0, 0, 0, size, size, 0x1000)
        dyn = struct.pack(order + "IIQQQQQQ", 2, 6, dynamic_at, dynamic_at, dynamic_at, len(dynamic), len(dynamic), 8)
    else:
        header = struct.pack(order + "16sHHIIIIIHHHHHH", ident, 3, machine, 1, 0, ehsize, 0, 0, ehsize, phentsize, 2, 40, 0, 0)
        load = struct.pack(order + "IIIIIIII", 1, 0, 0, 0, size, size, 4, 0x1000)
        dyn = struct.pack(order + "IIIIIIII", 2, dynamic_at, dynamic_at, dynamic_at, len(dynamic), len(dynamic), 6, 8)
    body = header + load + dyn + bytes(strings)
    return body + bytes(dynamic_at - len(body)) + dynamic


def _gcc_m32(root: Path, needed_soname: str) -> bytes | None:
    """A real 32-bit object from gcc, when this gcc can target i386 (-nostdlib: no 32-bit libgcc needed)."""
    source = root / "m32.c"
    source.write_text("int depaudit_m32(void) { return 0; }\n")
    stub, out = root / needed_soname, root / "libm32.so"
    base = ["gcc", "-m32", "-shared", "-fPIC", "-nostdlib"]
    try:
        subprocess.run([*base, f"-Wl,-soname,{needed_soname}", "-o", str(stub), str(source)], check=True, capture_output=True)
        subprocess.run([*base, "-Wl,--no-as-needed", "-o", str(out), str(source), str(stub)], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        return None
    return out.read_bytes()


@pytest.fixture(scope="session")
def elf_parts(tmp_path_factory: pytest.TempPathFactory) -> ElfParts:
    root = elf_folder(tmp_path_factory, "hostile-elf")
    stubs = root / "stubs"
    good_need = build_so(stubs / GOOD_NEED, soname=GOOD_NEED)
    good = build_so(root / f"_good{EXT}", needed=[good_need])
    good_rpath = build_so(root / f"_rpath{EXT}", needed=[good_need], rpath="$ORIGIN/../hostile.libs")
    native_need = build_so(stubs / "libhostile-nativeneed.so.1", soname="libhostile-nativeneed.so.1")
    native = build_so(root / f"_native{EXT}", needed=[native_need])
    lib = build_so(root / "libhostile-base.so.1", soname="libhostile-base.so.1")
    secret = build_so(stubs / "libhostile-secret.so.1", soname="libhostile-secret.so.1")
    outside = build_so(root / "outside" / "libhostile-outside.so.1", soname="libhostile-outside.so.1", needed=[secret])
    m32 = _gcc_m32(root, "libhostile-m32need.so.1") or craft_elf(bits=32, machine=EM_386, needed=["libhostile-m32need.so.1"])
    return ElfParts(
        root=root,
        good=good.read_bytes(),
        good_rpath=good_rpath.read_bytes(),
        native=native.read_bytes(),
        lib=lib.read_bytes(),
        layout=layout_of(lib),
        m32=m32,
        big_endian=craft_elf(little=False, machine=EM_PPC64, needed=["libhostile-beneed.so.1"]),
        many_needed=craft_elf(soname="libhostile-many.so.1", needed=[f"libmany{i}.so.1" for i in range(100_000)]),
        outside=outside,
    )


@dataclass
class Scene:
    """A site-packages and one service `svc` whose app.py imports what the test names."""

    root: Path
    site_packages: Path
    services: Path

    def dist(
        self,
        name: str,
        *,
        files: dict[str, bytes] | None = None,
        record: Sequence[str] | None = None,
        requires: Sequence[str] = (),
        top_level: Sequence[str] | None = None,
    ) -> Path:
        """A dist-info folder and its files; RECORD lists `files` unless `record` is given."""
        for relative, data in (files or {}).items():
            target = self.site_packages / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        info = self.site_packages / f"{name.replace('-', '_')}-1.0.dist-info"
        info.mkdir(parents=True)
        metadata = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0", *(f"Requires-Dist: {r}" for r in requires)]
        (info / "METADATA").write_text("\n".join(metadata) + "\n")
        if top_level is not None:
            (info / "top_level.txt").write_text("".join(f"{t}\n" for t in top_level))
        listed = [*(list(files or {}) if record is None else record), f"{info.name}/METADATA", f"{info.name}/RECORD"]
        (info / "RECORD").write_text("".join(f"{path},,\n" for path in listed))
        return info

    def service_imports(self, *modules: str) -> None:
        app = self.services / "svc" / "app.py"
        app.parent.mkdir(parents=True, exist_ok=True)
        app.write_text("".join(f"import {m}\n" for m in modules))

    def scan(self, processes: int = 1) -> tuple[ScanReport, ServiceReport]:
        from depaudit.scan import ScanOptions, run_scan  # here: the other corpora here need not import it

        options = ScanOptions((self.services,), (self.site_packages,), "ubuntu-22.04", use_cache=False, processes=processes)
        report = run_scan(options)
        assert [s.name for s in report.services] == ["svc"]
        return report, report.services[0]


@pytest.fixture()
def scene(tmp_path: Path) -> Scene:
    sp = tmp_path / "lib" / "python3.11" / "site-packages"
    sp.mkdir(parents=True)
    return Scene(tmp_path, sp, tmp_path / "services")


@pytest.fixture(scope="session")
def opened_files() -> OpenedFiles:
    return helpers_opened_files()
