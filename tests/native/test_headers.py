"""The ELF header read with `struct` names the machine and the OS ABI as pyelftools does."""

from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from depaudit.native.headers import _COMMON_ABIS, _COMMON_MACHINES, _names, read_headers


def _pyelftools(data: bytes) -> tuple[str, str, int]:
    header = ELFFile(io.BytesIO(data)).header
    return str(header["e_machine"]), str(header["e_ident"]["EI_OSABI"]), header["e_phnum"]


def _ours(data: bytes) -> tuple[str, str, int]:
    headers = read_headers(io.BytesIO(data))
    return headers.machine, headers.osabi, len(headers.segments)


def _real_elf_files(count: int) -> list[Path]:
    """Shared objects of this interpreter and of the system: real headers of both classes' kind."""
    found: list[Path] = []
    for folder in (Path(sys.base_prefix) / "lib", Path("/usr/lib/x86_64-linux-gnu"), Path("/lib64")):
        for path in sorted(folder.rglob("*.so*")) if folder.is_dir() else []:
            if path.is_file() and not path.is_symlink() and path.read_bytes()[:4] == b"\x7fELF":
                found.append(path)
            if len(found) >= count:
                return found
    return found


def test_the_common_names_are_pyelftools_own() -> None:
    machines, abis = _names("ENUM_E_MACHINE"), _names("ENUM_EI_OSABI")
    assert _COMMON_MACHINES == {value: machines[value] for value in _COMMON_MACHINES}
    assert _COMMON_ABIS == {value: abis[value] for value in _COMMON_ABIS}


def test_real_files_read_as_pyelftools_reads_them() -> None:
    files = _real_elf_files(60)
    assert len(files) >= 20
    for path in files:
        data = path.read_bytes()
        assert _ours(data) == _pyelftools(data), path


@pytest.mark.parametrize(("machine", "osabi"), [(183, 0), (3, 3), (40, 97), (9999, 200), (62, 9), (0, 255)])
def test_other_machines_and_abis_are_named_as_pyelftools_names_them(machine: int, osabi: int) -> None:
    (path,) = _real_elf_files(1)
    data = bytearray(path.read_bytes())
    data[7] = osabi
    little = data[5] == 1
    struct.pack_into("<H" if little else ">H", data, 18, machine)
    assert _ours(bytes(data)) == _pyelftools(bytes(data))
