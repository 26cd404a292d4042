"""Sizes an attacker picks: every reader stays linear, and what it reports stays bounded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from depaudit.dockerfile.parse import apt_installs
from helpers import build_vision_env, deadline, have_gcc, scan_source


def test_sixty_apt_options_before_a_word_that_is_not_install_take_no_time(tmp_path: Path) -> None:
    text = "FROM ubuntu:22.04\nRUN apt-get " + "-a " * 60 + "installx curl\nRUN apt-get -o Dpkg::Use-Pty=0 -t jammy install -y wget\n"
    started = time.perf_counter()
    with deadline(10):
        installs = apt_installs(text)
    assert time.perf_counter() - started < 1.0  # it never finished: the option grammar backtracked 2^60 ways
    assert [package.name for install in installs for package in install.packages] == ["wget"]


@pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")
def test_a_search_path_of_120000_folders_is_searched_once_and_reported_in_part(tmp_path: Path) -> None:
    site_packages = build_vision_env(tmp_path / "env")
    folders = ":".join(f"/nowhere/{number}" for number in range(120_000))
    with deadline(60):
        report = scan_source(tmp_path, site_packages, "import visionlib\n", env={"LD_LIBRARY_PATH": folders})
    (gl,) = [need for need in report.services[0].needs if need.name == "libGL.so.1"]
    assert gl.tried[:3] == ("visionlib.libs", "/nowhere/0", "/nowhere/1")  # its RPATH, then LD_LIBRARY_PATH
    assert len(gl.tried) == 65 and gl.tried[-1].endswith(" more folders")


def test_an_arg_that_doubles_a_thousand_times_stays_small() -> None:
    from depaudit.dockerfile.parse import VALUE_CAP, read_image

    lines = ["ARG A0=x"] + [f"ARG A{n}=${{A{n - 1}}}${{A{n - 1}}}" for n in range(1, 1001)]
    with deadline(10):
        image = read_image("\n".join([*lines, "FROM ubuntu:22.04", "ARG A1000", "ENV BIG=${A1000}"]) + "\n")
    assert image is not None and len(image.env["BIG"]) == VALUE_CAP


def test_a_pyproject_nested_five_thousand_deep_is_an_input_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "pyproject.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "main.py").write_text("import json\n")
    result = subprocess.run([sys.executable, "-m", "depaudit", "scan", "svc"], cwd=tmp_path, capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (
        2, f"depaudit: error: {tmp_path / 'pyproject.toml'}: not read: its tables or arrays nest too deep\n"
    )


def test_a_fifo_where_the_index_should_be_is_no_index(tmp_path: Path) -> None:
    import os

    from depaudit.packages.index import index_path, load_index

    fifo = index_path("ubuntu-22.04", tmp_path)
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    with deadline(10):  # it blocked forever
        assert load_index("ubuntu-22.04", tmp_path) is None


def test_image_metadata_past_its_cap_is_a_finding_not_a_read(tmp_path: Path) -> None:
    from depaudit.findings import Finding, FindingKind
    from depaudit.image.rootfs import MAX_TEXT_BYTES, RootfsDir

    status = tmp_path / "var" / "lib" / "dpkg" / "status"
    status.parent.mkdir(parents=True)
    with status.open("wb") as sparse:
        sparse.truncate(3 << 30)  # 3 GiB of nothing, a few KiB on disk
    fs = RootfsDir(tmp_path)
    with deadline(20):
        assert fs.read_text("/var/lib/dpkg/status") is None
    assert fs.findings == [
        Finding(FindingKind.BAD_IMAGE, "/var/lib/dpkg/status", None, f"larger than {MAX_TEXT_BYTES >> 20} MiB, which no real status is: not read")
    ]


def test_an_ld_so_conf_include_chain_3000_deep_stops_without_exhausting_the_stack(tmp_path: Path) -> None:
    from depaudit.image.ldconf import MAX_INCLUDE_DEPTH, ld_so_conf_dirs
    from depaudit.image.rootfs import RootfsDir

    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "ld.so.conf").write_text("/lib/0\ninclude /etc/c1.conf\n")
    for number in range(1, 3000):
        (etc / f"c{number}.conf").write_text(f"/lib/{number}\ninclude /etc/c{number + 1}.conf\n")
    dirs = ld_so_conf_dirs(RootfsDir(tmp_path))
    assert dirs == [f"/lib/{number}" for number in range(MAX_INCLUDE_DEPTH + 1)]


@pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")
def test_a_dynamic_segment_of_size_zero_is_a_finding_not_an_object_that_needs_nothing(tmp_path: Path) -> None:
    import struct

    from depaudit.findings import FindingKind
    from depaudit.native.elf import ElfError, read_elf
    from helpers import build_so

    library = build_so(tmp_path / "libx.so.1", soname="libx.so.1", needed=[build_so(tmp_path / "liby.so.1", soname="liby.so.1")])
    data = bytearray(library.read_bytes())
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for number in range(phnum):
        header = phoff + number * phentsize
        if struct.unpack_from("<I", data, header)[0] == 2:  # PT_DYNAMIC: its p_filesz at +32
            struct.pack_into("<Q", data, header + 32, 0)
    library.write_bytes(bytes(data))
    with pytest.raises(ElfError) as error:
        read_elf(library)
    assert (error.value.kind, str(error.value)) == (
        FindingKind.BAD_ELF, "truncated ELF file: its dynamic segment (0 bytes) ends before its DT_NULL entry"
    )
