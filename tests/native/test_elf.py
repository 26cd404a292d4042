"""Reading one ELF file as ld.so reads it: real gcc output, and the ways real files go wrong."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from depaudit.findings import FindingKind
from depaudit.native.elf import ElfError, has_elf_magic, is_extension_module, read_elf
from depaudit.native.model import ElfInfo
from helpers import build_elf32_so, build_so, elf_folder, have_gcc

needs_gcc = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of gcc-built objects, each named after what it shows."""
    root = elf_folder(tmp_path_factory, "elf")
    dep = build_so(root / "libdep.so.2", soname="libdep.so.2")
    other = build_so(root / "libother.so.3", soname="libother.so.3")
    build_so(root / "librpath.so.1", soname="librpath.so.1", needed=[dep, other], rpath="$ORIGIN/../a::/opt/b:")
    build_so(root / "librunpath.so.1", soname="librunpath.so.1", needed=[dep], runpath="${ORIGIN}")
    build_so(root / "libnosoname.so", needed=[other])
    build_so(root / "liblongrpath.so.1", soname="liblongrpath.so.1", rpath=":".join(f"/opt/{i:04d}" + "x" * 90 for i in range(60)))
    (root / "start.c").write_text("void _start(void) { for (;;); }\n")
    subprocess.run(["gcc", "-nostdlib", "-static", "-o", str(root / "static-exe"), str(root / "start.c")], check=True)
    return root


def _info(path: Path, **fields: object) -> ElfInfo:
    base: dict[str, object] = dict(
        path=path, elf_class=64, machine="EM_X86_64", soname=None, needed=(), rpath=(), runpath=()
    )
    base.update(fields)
    return ElfInfo(**base)  # type: ignore[arg-type]


def _patched(source: Path, target: Path, patch: dict[int, bytes]) -> Path:
    data = bytearray(source.read_bytes())
    for offset, value in patch.items():
        data[offset : offset + len(value)] = value
    target.write_bytes(bytes(data))
    return target


def _error(path: Path) -> tuple[FindingKind, str]:
    with pytest.raises(ElfError) as caught:
        read_elf(path)
    return caught.value.kind, caught.value.message


@needs_gcc
def test_dynamic_tags_of_a_gcc_built_library_in_order(built: Path) -> None:
    path = built / "librpath.so.1"
    assert read_elf(path) == _info(
        path,
        soname="librpath.so.1",
        needed=("libdep.so.2", "libother.so.3", "libc.so.6"),
        rpath=("$ORIGIN/../a", "/opt/b"),  # empty entries dropped
    )


@needs_gcc
def test_runpath_and_a_library_without_soname(built: Path) -> None:
    assert read_elf(built / "librunpath.so.1") == _info(
        built / "librunpath.so.1", soname="librunpath.so.1", needed=("libdep.so.2", "libc.so.6"), runpath=("${ORIGIN}",)
    )
    assert read_elf(built / "libnosoname.so") == _info(built / "libnosoname.so", needed=("libother.so.3", "libc.so.6"))


@needs_gcc
def test_a_static_executable_has_no_dynamic_segment(built: Path) -> None:
    assert read_elf(built / "static-exe") == _info(built / "static-exe")


@needs_gcc
def test_a_file_without_section_headers_reads_the_same(built: Path, tmp_path: Path) -> None:
    # sstrip-style: e_shoff, e_shnum and e_shstrndx zeroed; ld.so never needed them.
    stripped = _patched(built / "librpath.so.1", tmp_path / "libstripped.so.1", {0x28: bytes(8), 0x3C: bytes(4)})
    assert read_elf(stripped) == _info(
        stripped, soname="librpath.so.1", needed=("libdep.so.2", "libother.so.3", "libc.so.6"), rpath=("$ORIGIN/../a", "/opt/b")
    )


@needs_gcc
def test_stale_section_headers_do_not_change_what_is_read(built: Path, tmp_path: Path) -> None:
    # Point .dynamic's sh_link at .shstrtab: a reader trusting sections would read wrong names.
    source = built / "librunpath.so.1"
    with open(source, "rb") as stream:
        elf = ELFFile(stream)
        index = next(i for i, s in enumerate(elf.iter_sections()) if s.name == ".dynamic")
        header = elf["e_shoff"] + index * elf["e_shentsize"]
        shstrndx = elf["e_shstrndx"]
    stale = _patched(source, tmp_path / "libstale.so.1", {header + 40: struct.pack("<I", shstrndx)})
    assert read_elf(stale) == _info(stale, soname="librunpath.so.1", needed=("libdep.so.2", "libc.so.6"), runpath=("${ORIGIN}",))


@needs_gcc
def test_an_rpath_longer_than_one_read_chunk(built: Path) -> None:
    info = read_elf(built / "liblongrpath.so.1")
    assert len(info.rpath) == 60 and info.rpath[-1] == "/opt/0059" + "x" * 90


def test_a_32_bit_library(tmp_path: Path) -> None:
    path = build_elf32_so(tmp_path / "libthirtytwo.so.1", "libthirtytwo.so.1")
    assert read_elf(path) == _info(path, elf_class=32, machine="EM_386", soname="libthirtytwo.so.1")


def test_a_linker_script_named_like_a_library_is_not_elf(tmp_path: Path) -> None:
    script = tmp_path / "libc.so"
    script.write_text(
        "/* GNU ld script\n   Use the shared library, but some functions are only in\n"
        "   the static library, so try that secondarily.  */\nOUTPUT_FORMAT(elf64-x86-64)\n"
        "GROUP ( /lib/x86_64-linux-gnu/libc.so.6 /usr/lib/x86_64-linux-gnu/libc_nonshared.a )\n"
    )
    (tmp_path / "libncurses.so").write_text("INPUT(libncurses.so.6 -ltinfo)\n")
    message = "not an ELF file: a GNU ld linker script, which the dynamic loader cannot load"
    assert _error(script) == (FindingKind.NOT_ELF, message)
    assert _error(tmp_path / "libncurses.so") == (FindingKind.NOT_ELF, message)


def test_other_files_without_the_magic_are_not_elf(tmp_path: Path) -> None:
    (tmp_path / "empty.so").write_bytes(b"")
    (tmp_path / "text.so").write_text("hello\n")
    assert _error(tmp_path / "empty.so") == (FindingKind.NOT_ELF, "not an ELF file: the file is empty")
    assert _error(tmp_path / "text.so") == (
        FindingKind.NOT_ELF,
        "not an ELF file, although it is named like a shared object",
    )


def test_a_file_that_cannot_be_read_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "libfolder.so.1").mkdir()
    assert _error(tmp_path / "libfolder.so.1") == (FindingKind.UNREADABLE_FILE, "cannot read: Is a directory")
    assert _error(tmp_path / "libgone.so.1") == (FindingKind.UNREADABLE_FILE, "cannot read: No such file or directory")


@needs_gcc
def test_truncated_and_corrupt_files_are_bad_elf(built: Path, tmp_path: Path) -> None:
    data = (built / "librpath.so.1").read_bytes()
    cases = {
        "header-only.so": data[:100],
        "short-header.so": data[:40],
        "mid-load.so": data[:3000],
        "garbage.so": b"\x7fELF" + b"\xff" * 60,
    }
    kinds = {}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        kinds[name] = _error(tmp_path / name)
    assert kinds["header-only.so"] == (
        FindingKind.BAD_ELF,
        "truncated ELF file: the program headers end at byte 568, past the end of the file (100 bytes)",
    )
    assert kinds["mid-load.so"][0] is FindingKind.BAD_ELF
    assert kinds["mid-load.so"][1].startswith("truncated ELF file: PT_LOAD ends at byte ")
    assert {kind for kind, _ in kinds.values()} == {FindingKind.BAD_ELF}


@needs_gcc
def test_elf_magic(built: Path, tmp_path: Path) -> None:
    (tmp_path / "script.so").write_text("INPUT(x)\n")
    assert has_elf_magic(built / "librpath.so.1")
    assert not has_elf_magic(tmp_path / "script.so")
    assert not has_elf_magic(tmp_path / "missing.so")
    assert not has_elf_magic(tmp_path)  # a directory: OSError, not a crash


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("_core.cpython-311-x86_64-linux-gnu.so", True),
        ("cv2.abi3.so", True),
        ("_ops.pypy39-pp73-x86_64-linux-gnu.so", True),
        ("_speedups.so", True),  # plain <identifier>.so, as setup.py builds without a tag
        ("sub/dir/_C.cpython-310-x86_64-linux-gnu.so", True),
        ("libtorch_python.so", False),  # a plain library, not importable
        ("libfoo.abi3.so", True),  # tagged: CPython imports it as "libfoo"
        ("libopenblas-r0.3.so", False),
        ("libz.so.1", False),
        ("my-mod.cpython-311-x86_64-linux-gnu.so", False),  # not an identifier
        ("mod.cpython-311-x86_64-linux-gnu.so.1", False),
        ("mod.py", False),
    ],
)
def test_is_extension_module(name: str, expected: bool) -> None:
    assert is_extension_module(name) is expected


def test_a_real_system_library_reads_its_soname() -> None:
    # Integration with a file gcc did not make: this machine's zlib, read (never loaded).
    link = Path("/usr/lib/x86_64-linux-gnu/libz.so.1")
    if not link.exists():
        pytest.skip("no /usr/lib/x86_64-linux-gnu/libz.so.1 on this machine")
    info = read_elf(Path(os.path.realpath(link)))
    assert (info.soname, info.elf_class, info.machine) == ("libz.so.1", 64, "EM_X86_64")
    assert "libc.so.6" in info.needed
