"""Hostile ELF files shipped by a distribution, through the whole scan: each becomes exactly one
finding, and its good sibling extension module is still walked and reported.

The reader's bounds (depaudit.native.elf): at most MAX_NEEDED (4,096) DT_NEEDED entries,
MAX_DYNAMIC_ENTRIES (65,536) dynamic entries and MAX_DYNAMIC_STRING_BYTES (1 MiB) per dynamic string;
past them a file is reported as corrupt and nothing it needs is counted.
"""

from __future__ import annotations

import os
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depaudit.evidence import chain_text
from depaudit.findings import Finding, FindingKind
from depaudit.native.dlopen import DlopenEvidence, dlopen_evidence
from depaudit.native.elf import MAX_NEEDED, ElfError, read_elf
from depaudit.native.model import ElfInfo
from helpers import deadline

if TYPE_CHECKING:
    from depaudit.packages.model import ServiceReport
    from helpers import OpenedFiles
    from hostile.conftest import ElfParts, Scene, Segment

EXT = ".cpython-311-x86_64-linux-gnu.so"
GOOD_EXT = f"hostile/_good{EXT}"
GOOD_NEED = "libhostile-goodneed.so.1"
DT_STRTAB_ADDRESS = 0x7FFF0000
NEEDED_OFFSET = 0x7FFFFF


# The hostile files -----------------------------------------------------------------------


def _patched(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@dataclass(frozen=True)
class Case:
    id: str
    relative: str  # where RECORD lists the hostile file
    make: Callable[[ElfParts, Path], None]  # writes it there
    kind: FindingKind
    message: Callable[[ElfParts], str]  # the exact message expected
    absent: tuple[str, ...] = ()  # what it needs, which must not be counted


def _cut(length: Callable[[ElfParts], int]) -> Callable[[ElfParts, Path], None]:
    return lambda parts, path: _write(path, parts.lib[: length(parts)])


def _header_cut(parts: ElfParts) -> int:
    return 40


def _phdr_cut(parts: ElfParts) -> int:
    return parts.layout.phoff + 2 * parts.layout.phentsize + 8


def _dynamic_cut(parts: ElfParts) -> int:
    return parts.layout.dynamic.offset + 24


def _dynstr_cut(parts: ElfParts) -> int:
    return parts.layout.dynstr[0] + 5


def _truncated(what_ends: str, end: int, size: int) -> str:
    return f"truncated ELF file: {what_ends} at byte {end}, past the end of the file ({size} bytes)"


def _end(segment: Segment) -> int:
    return segment.offset + segment.filesz


def _dynamic_outside(parts: ElfParts, path: Path) -> None:
    header = parts.layout.phoff + parts.layout.dynamic.index * parts.layout.phentsize
    _write(path, _patched(parts.lib, header + 8, struct.pack("<Q", parts.layout.size + 4096)))  # p_offset


def _strtab_outside(parts: ElfParts, path: Path) -> None:
    entry = parts.layout.entry_offset("DT_STRTAB")
    _write(path, _patched(parts.lib, entry + 8, struct.pack("<Q", DT_STRTAB_ADDRESS)))


def _needed_outside(parts: ElfParts, path: Path) -> None:
    entry = parts.layout.entry_offset("DT_NEEDED")
    _write(path, _patched(parts.lib, entry + 8, struct.pack("<Q", NEEDED_OFFSET)))


def _symlink(target: str) -> Callable[[ElfParts, Path], None]:
    def make(parts: ElfParts, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)

    return make


def _directory(parts: ElfParts, path: Path) -> None:
    (path / "inside").mkdir(parents=True)


def _fifo(parts: ElfParts, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


LINKER_SCRIPT = b"/* GNU ld script */\nOUTPUT_FORMAT(elf64-x86-64)\nGROUP ( /lib/x86_64-linux-gnu/libc.so.6 )\n"
FOREIGN = "which an x86-64 Linux process cannot load"

CASES = [
    Case(
        "truncated-in-elf-header",
        "hostile.libs/libcut-ehdr.so.1",
        _cut(_header_cut),
        FindingKind.BAD_ELF,
        lambda p: "truncated ELF file: the ELF header needs 64 bytes, the file has 40",
    ),
    Case(
        "truncated-in-program-headers",
        "hostile.libs/libcut-phdr.so.1",
        _cut(_phdr_cut),
        FindingKind.BAD_ELF,
        lambda p: _truncated("the program headers end", p.layout.phoff + p.layout.phnum * p.layout.phentsize, _phdr_cut(p)),
    ),
    Case(
        "truncated-in-dynamic-segment",
        "hostile.libs/libcut-dynamic.so.1",
        _cut(_dynamic_cut),
        FindingKind.BAD_ELF,
        lambda p: _truncated("PT_DYNAMIC ends", _end(p.layout.dynamic), _dynamic_cut(p)),
    ),
    Case(
        "truncated-in-string-table",
        "hostile.libs/libcut-dynstr.so.1",
        _cut(_dynstr_cut),
        FindingKind.BAD_ELF,
        lambda p: _truncated("PT_LOAD ends", _end(p.layout.load_holding(p.layout.dynstr[0])), _dynstr_cut(p)),
    ),
    Case(
        "zero-length",
        f"hostile/_empty{EXT}",
        lambda parts, path: _write(path, b""),
        FindingKind.NOT_ELF,
        lambda p: "not an ELF file: the file is empty",
    ),
    Case(
        "linker-script-named-libc.so",
        "hostile.libs/libc.so",
        lambda parts, path: _write(path, LINKER_SCRIPT),
        FindingKind.NOT_ELF,
        lambda p: "not an ELF file: a GNU ld linker script, which the dynamic loader cannot load",
    ),
    Case(
        "32-bit-extension-module",
        f"hostile/_thirtytwo{EXT}",
        lambda parts, path: _write(path, parts.m32),
        FindingKind.BAD_ELF,
        lambda p: f"a 32-bit EM_386 ELF file, {FOREIGN}: importing it fails and the libraries it needs "
        "(libhostile-m32need.so.1) are not counted; replace it with an x86-64 Linux build or remove it",
        ("libhostile-m32need.so.1",),
    ),
    Case(
        "big-endian-library",
        "hostile.libs/libbig.so.1",
        lambda parts, path: _write(path, parts.big_endian),
        FindingKind.BAD_ELF,
        lambda p: f"a 64-bit EM_PPC64 ELF file, {FOREIGN}: the libraries it needs (libhostile-beneed.so.1) "
        "are not counted; replace it with an x86-64 Linux build or remove it",
        ("libhostile-beneed.so.1",),
    ),
    Case(
        "pt-dynamic-outside-the-file",
        "hostile.libs/libdynout.so.1",
        _dynamic_outside,
        FindingKind.BAD_ELF,
        lambda p: _truncated("PT_DYNAMIC ends", p.layout.size + 4096 + p.layout.dynamic.filesz, p.layout.size),
    ),
    Case(
        "dt-strtab-out-of-range",
        "hostile.libs/libstrtab.so.1",
        _strtab_outside,
        FindingKind.BAD_ELF,
        lambda p: f"corrupt or truncated ELF file: DT_STRTAB address {DT_STRTAB_ADDRESS:#x} is in no PT_LOAD segment",
    ),
    Case(
        "dt-needed-string-out-of-range",
        "hostile.libs/libneedout.so.1",
        _needed_outside,
        FindingKind.BAD_ELF,
        lambda p: f"truncated ELF file: a string at offset {NEEDED_OFFSET} lies outside the string table",
    ),
    Case(
        "100000-dt-needed",
        "hostile.libs/libmany.so.1",
        lambda parts, path: _write(path, parts.many_needed),
        FindingKind.BAD_ELF,
        lambda p: f"more than {MAX_NEEDED} DT_NEEDED entries, far beyond any real library; "
        "nothing it needs is counted: rebuild or remove it",
        ("libmany0.so.1", "libmany99999.so.1"),
    ),
    Case(
        "symlink-loop",
        "hostile.libs/libloop.so.1",
        _symlink("libloop.so.1"),
        FindingKind.SYMLINK_LOOP,
        lambda p: "symbolic links loop: the loader cannot open it; fix or remove the link",
    ),
    Case(
        "directory-named-x.so",
        "hostile/x.so",
        _directory,
        FindingKind.UNREADABLE_FILE,
        lambda p: "cannot read: Is a directory",
    ),
    Case(
        "dangling-symlink",
        "hostile.libs/libdangling.so.1",
        _symlink("libnowhere.so.1"),
        FindingKind.UNREADABLE_FILE,
        lambda p: "a dangling symbolic link to libnowhere.so.1, which does not exist; fix or remove the link",
    ),
    Case(
        "fifo-named-like-a-library",
        "hostile.libs/libfifo.so.1",
        _fifo,
        FindingKind.UNREADABLE_FILE,
        lambda p: "cannot read: not a regular file but a pipe, socket or device",
    ),
]


def _hostile_scene(scene: Scene, parts: ElfParts, cases: list[Case]) -> None:
    for case in cases:
        case.make(parts, scene.site_packages / case.relative)
    files = {"hostile/__init__.py": b"", GOOD_EXT: parts.good}
    scene.dist("hostile", files=files, record=[*files, *(case.relative for case in cases)])
    scene.service_imports("hostile")


def _assert_good_sibling_reported(service: ServiceReport) -> None:
    good = [need for need in service.needs if need.name == GOOD_NEED]
    assert [(n.status, n.tier.value, chain_text(n.chain)[-2:]) for n in good] == [("unmapped", "required", (GOOD_EXT, GOOD_NEED))]
    assert "libc.so.6" in {need.name for need in service.needs}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_hostile_elf_file_is_one_finding_and_the_rest_is_reported(case: Case, scene: Scene, elf_parts: ElfParts) -> None:
    _hostile_scene(scene, elf_parts, [case])
    started = time.monotonic()
    with deadline(30):
        report, service = scene.scan()
    # Bounded: before the DT_NEEDED cap, 100,000 entries became 100,001 needs (2.6 s, 190 MB).
    assert time.monotonic() - started < 10
    assert service.findings == (Finding(case.kind, case.relative, None, case.message(elf_parts)),)
    assert report.findings == ()
    _assert_good_sibling_reported(service)
    assert not set(case.absent) & {need.name for need in service.needs}


def test_unreadable_files(scene: Scene, elf_parts: ElfParts) -> None:
    # A `.so` name, and a bare executable name, which was dropped silently when its magic could not be read.
    unreadable = ["hostile.libs/libsecret.so.1", "hostile/bin/secret-tool"]
    _hostile_scene(scene, elf_parts, [])
    for relative in unreadable:
        _write(scene.site_packages / relative, elf_parts.lib)
    scene.dist("secretholder", files={"secretholder/__init__.py": b""}, record=["secretholder/__init__.py", *unreadable])
    scene.service_imports("hostile", "secretholder")
    for relative in unreadable:
        (scene.site_packages / relative).chmod(0)
    if os.access(scene.site_packages / unreadable[0], os.R_OK):
        pytest.skip("running with CAP_DAC_OVERRIDE (root): a mode-000 file is still readable")
    _, service = scene.scan()
    assert service.findings == tuple(
        sorted(Finding(FindingKind.UNREADABLE_FILE, relative, None, "cannot read: Permission denied") for relative in unreadable)
    )
    _assert_good_sibling_reported(service)


def test_a_symlink_out_of_site_packages_is_never_opened(
    scene: Scene, elf_parts: ElfParts, opened_files: OpenedFiles
) -> None:
    # Both a `.so` name (always a candidate) and a bare executable name (a candidate by its magic).
    escapes = [
        Case("so", "hostile.libs/libout.so.1", _symlink(str(elf_parts.outside)), FindingKind.UNSAFE_MEMBER, str),
        Case("bin", "hostile/bin/tool", _symlink(str(elf_parts.outside)), FindingKind.UNSAFE_MEMBER, str),
    ]
    _hostile_scene(scene, elf_parts, escapes)
    with opened_files.watching(form="real") as opened:
        _, service = scene.scan()
    real = os.path.realpath(elf_parts.outside)
    message = (
        f"a symbolic link that leads out of site-packages (to {real}): it is never read, so nothing it needs is "
        "counted; a wheel installs no such link: reinstall the distribution or remove the link"
    )
    assert service.findings == tuple(sorted(Finding(FindingKind.UNSAFE_MEMBER, c.relative, None, message) for c in escapes))
    assert real not in opened
    assert opened, "the audit hook saw no file opened at all: the tripwire is broken"
    assert "libhostile-secret.so.1" not in {need.name for need in service.needs}
    _assert_good_sibling_reported(service)


def test_every_hostile_file_at_once_in_worker_processes(scene: Scene, elf_parts: ElfParts) -> None:
    # Two processes: ElfError and findings cross from the workers intact, nothing is lost. No
    # FIFO here: were its fix to regress, a blocked worker would hang the pool past any alarm.
    cases = [case for case in CASES if case.id != "fifo-named-like-a-library"]
    _hostile_scene(scene, elf_parts, cases)
    report, service = scene.scan(processes=2)
    expected = {Finding(case.kind, case.relative, None, case.message(elf_parts)) for case in cases}
    assert set(service.findings) == expected and len(service.findings) == len(cases)
    _assert_good_sibling_reported(service)
    absent = {name for case in cases for name in case.absent}
    assert not absent & {need.name for need in service.needs}


def test_hostile_files_in_a_service_folder(scene: Scene, elf_parts: ElfParts) -> None:
    # The service's own folder is walked, not read from a RECORD: the same files, the same findings.
    chosen = {"truncated-in-program-headers", "linker-script-named-libc.so", "32-bit-extension-module", "symlink-loop",
              "dangling-symlink", "100000-dt-needed", "fifo-named-like-a-library"}
    cases = [case for case in CASES if case.id in chosen]
    folder = scene.services / "svc"
    for case in cases:
        case.make(elf_parts, folder / "native" / Path(case.relative).name)
    _write(folder / "native" / f"_good{EXT}", elf_parts.good)
    scene.service_imports("os")
    with deadline(30):
        _, service = scene.scan()
    assert service.findings == tuple(
        sorted(Finding(c.kind, f"svc/native/{Path(c.relative).name}", None, c.message(elf_parts)) for c in cases)
    )
    good = [need for need in service.needs if need.name == GOOD_NEED]
    assert [(n.status, n.tier.value, chain_text(n.chain)) for n in good] == [
        ("unmapped", "required", ("svc", f"svc/native/_good{EXT}", GOOD_NEED))
    ]


def test_a_truncated_library_the_good_module_links_is_skipped_as_ld_so_skips_it(scene: Scene, elf_parts: ElfParts) -> None:
    # The module's DT_RPATH finds only a cut copy of what it needs: ld.so skips the copy, so the
    # need stays unresolved and says where it was looked for; the copy itself is one finding.
    relative = f"hostile.libs/{GOOD_NEED}"
    _write(scene.site_packages / relative, elf_parts.lib[: _phdr_cut(elf_parts)])
    module = f"hostile/_rpath{EXT}"
    files = {"hostile/__init__.py": b"", module: elf_parts.good_rpath}
    scene.dist("hostile", files=files, record=[*files, relative])
    scene.service_imports("hostile")
    _, service = scene.scan()
    end = elf_parts.layout.phoff + elf_parts.layout.phnum * elf_parts.layout.phentsize
    assert service.findings == (
        Finding(FindingKind.BAD_ELF, relative, None, _truncated("the program headers end", end, _phdr_cut(elf_parts))),
    )
    need = next(n for n in service.needs if n.name == GOOD_NEED)
    assert (need.status, need.found_at, need.tried, chain_text(need.chain)[-2:]) == ("unmapped", None, ("hostile.libs",), (module, GOOD_NEED))


# Properties of the reader itself -----------------------------------------------------------

PROPERTY = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutations(draw: st.DrawFn, size: int, hot: tuple[tuple[int, int], ...]) -> list[tuple[str, int, int]]:
    """Edits to a file: overwrite a byte, cut the file, or zero / max out a 2-8 byte field.
    Half of the offsets fall in the regions the reader trusts (headers, dynamic segment)."""
    regions = st.sampled_from(hot).flatmap(lambda r: st.integers(r[0], max(r[0], r[1] - 1)))
    offset = st.one_of(regions, st.integers(0, size - 1))
    edit = st.tuples(st.sampled_from(["byte", "cut", "zero", "max", "random"]), offset, st.integers(0, 255))
    return draw(st.lists(edit, min_size=1, max_size=8))


def apply(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for op, offset, value in edits:
        offset = min(offset, max(len(out) - 1, 0))
        width = 2 + value % 7
        if op == "byte" and out:
            out[offset] = value
        elif op == "cut":
            del out[offset:]
        elif op in ("zero", "max", "random"):
            fill = {"zero": b"\0" * width, "max": b"\xff" * width}.get(op) or random.Random(value).randbytes(width)
            out[offset : offset + width] = fill[: len(out) - offset]
    return bytes(out)


def _hot(parts: ElfParts) -> tuple[tuple[int, int], ...]:
    layout = parts.layout
    return (
        (0, layout.header_size),
        (layout.phoff, layout.phoff + layout.phnum * layout.phentsize),
        (layout.dynamic.offset, layout.dynamic.offset + layout.dynamic.filesz),
        (layout.dynstr[0], layout.dynstr[0] + layout.dynstr[1]),
    )


def _read_or_error(path: Path) -> ElfInfo | ElfError:
    try:
        return read_elf(path)
    except ElfError as error:
        return error


@pytest.fixture(scope="module")
def mutation_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutated") / f"_mutated{EXT}"


def test_mutated_libraries_read_or_fail_with_an_elf_error(elf_parts: ElfParts, mutation_file: Path) -> None:
    @PROPERTY
    @given(edits=mutations(len(elf_parts.lib), _hot(elf_parts)))
    def check(edits: list[tuple[str, int, int]]) -> None:
        mutation_file.write_bytes(apply(elf_parts.lib, edits))
        result = _read_or_error(mutation_file)
        if isinstance(result, ElfError):
            assert result.kind in (FindingKind.BAD_ELF, FindingKind.NOT_ELF) and result.message
        else:
            assert result.elf_class in (32, 64) and isinstance(result.machine, str)
            assert all(isinstance(name, str) for name in (*result.needed, *result.rpath, *result.runpath))
            assert len(result.needed) <= MAX_NEEDED
        evidence = dlopen_evidence(mutation_file, strings=True)  # documented never to raise
        assert all(isinstance(e, DlopenEvidence) for e in evidence)

    check()


def test_the_unmutated_library_reads(elf_parts: ElfParts, mutation_file: Path) -> None:
    # The property above is not vacuously about errors only: its starting point reads.
    mutation_file.write_bytes(elf_parts.lib)
    info = read_elf(mutation_file)
    assert (info.soname, info.needed) == ("libhostile-base.so.1", ("libc.so.6",))


@PROPERTY
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_behind_the_elf_magic(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.getbasetemp() / "arbitrary.so"
    path.write_bytes(b"\x7fELF" + data)
    result = _read_or_error(path)
    assert isinstance(result, (ElfInfo, ElfError))
    if isinstance(result, ElfError):
        assert result.kind is FindingKind.BAD_ELF
    assert isinstance(dlopen_evidence(path, strings=True), list)
