"""Reading apt list files in every compression apt uses, told by their bytes; rejecting the rest."""

from __future__ import annotations

import bz2
import gzip
import itertools
import lzma
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import lz4.frame
import pytest
import zstandard

from depaudit.packages.compressed import UnreadableInput, detect, text_lines
from depaudit.packages.index import build_index
from helpers import ubuntu_archive_files

# 16 lines of jammy's Contents-amd64, as the archive has them (tabs and all).
JAMMY_SLICE = Path(__file__).parent / "data" / "jammy-Contents-amd64.slice"

COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda data: data,
    "gzip": gzip.compress,
    "xz": lzma.compress,
    "lz4": lz4.frame.compress,
    "zstd": zstandard.ZstdCompressor().compress,
    "bzip2": bz2.compress,
}


def _twin(tmp_path: Path, kind: str, data: bytes) -> Path:
    """`data` compressed as `kind`, under the same name as every other twin: the name tells nothing."""
    path = tmp_path / kind / "Contents-amd64"
    path.parent.mkdir()
    path.write_bytes(COMPRESS[kind](data))
    return path


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_every_format_reads_the_same_lines(tmp_path: Path, kind: str) -> None:
    data = JAMMY_SLICE.read_bytes()
    path = _twin(tmp_path, kind, data)
    assert detect(path) == kind
    assert list(text_lines(path)) == data.decode().splitlines(keepends=True)


def test_concatenated_lz4_frames_read_as_one_file(tmp_path: Path) -> None:
    # How the README says to join pockets: `cat` their files.
    path = tmp_path / "Contents-amd64.lz4"
    path.write_bytes(lz4.frame.compress(b"usr/bin/sox\tuniverse/sound/sox\n") + lz4.frame.compress(b"bin/ash\tash\n"))
    assert list(text_lines(path)) == ["usr/bin/sox\tuniverse/sound/sox\n", "bin/ash\tash\n"]


def test_random_bytes_are_rejected_naming_the_file_and_its_first_bytes(tmp_path: Path) -> None:
    path = tmp_path / "Contents-amd64.lz4"
    path.write_bytes(b"\x8f\x00\x13" + os.urandom(4096))
    shown = path.read_bytes()[:16].hex(" ")
    with pytest.raises(UnreadableInput) as raised:
        text_lines(path)
    assert str(raised.value) == f"{path}: neither text nor gzip, xz, lz4, zstd or bzip2 data (its first bytes: {shown})"


def test_compressed_binary_data_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "Contents-amd64.gz"
    path.write_bytes(gzip.compress(b"\x7fELF\x02\x01\x01\x00" + bytes(64)))
    with pytest.raises(UnreadableInput) as raised:
        text_lines(path)
    assert str(raised.value) == f"{path}: gzip data that is not text (its first bytes: 7f 45 4c 46 02 01 01 00 00 00 00 00 00 00 00 00)"


@pytest.mark.parametrize("kind", ["gzip", "xz", "lz4"])
def test_a_stream_cut_short_is_an_error_not_a_shorter_file(tmp_path: Path, kind: str) -> None:
    data = b"".join(f"usr/lib/x86_64-linux-gnu/libx{n}.so.1\tlibs/libx{n}\n".encode() for n in range(20000))
    path = tmp_path / "Contents-amd64"
    path.write_bytes(COMPRESS[kind](data)[:-200])  # the head still reads: the break comes while reading on
    lines = text_lines(path)
    with pytest.raises(UnreadableInput, match=rf"^{path}: cannot read it as {kind} data: "):
        list(lines)


def test_text_cut_inside_a_character_at_the_first_kib_is_still_text(tmp_path: Path) -> None:
    path = tmp_path / "Packages"
    data = b"Package: a\nDescription: ".ljust(1023, b"x") + "é\n".encode()
    path.write_bytes(data)
    assert data[1023:1025] == "é".encode()  # its two bytes straddle the first KiB's end
    assert detect(path) == "plain"


def test_lz4_is_imported_only_for_an_lz4_file(tmp_path: Path) -> None:
    plain, packed = tmp_path / "Contents-gz", tmp_path / "Contents-lz4"
    plain.write_bytes(gzip.compress(JAMMY_SLICE.read_bytes()))
    packed.write_bytes(lz4.frame.compress(JAMMY_SLICE.read_bytes()))
    probe = (
        "import sys; from pathlib import Path; from depaudit.packages.compressed import text_lines\n"
        "for name in sys.argv[1:]:\n"
        "    n = len(list(text_lines(Path(name))))\n"
        "    print(n, 'lz4' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", probe, str(plain), str(packed)], capture_output=True, text=True)
    assert (run.returncode, run.stdout) == (0, "16 False\n16 True\n"), run.stderr


@pytest.mark.network
def test_a_real_jammy_contents_sample_indexes_alike_in_every_format(tmp_path: Path) -> None:
    # Many lz4 blocks and gzip members: the small slice fits in one.
    archive = ubuntu_archive_files("jammy", ("Contents-amd64.gz",))["Contents-amd64.gz"]
    with gzip.open(archive, "rb") as stream:
        data = b"".join(itertools.islice(stream, 0, 1_500_000, 15))
    indexes = {kind: build_index("ubuntu-22.04", _twin(tmp_path, kind, data)) for kind in ("gzip", "xz", "lz4")}
    assert indexes["gzip"] == indexes["xz"] == indexes["lz4"]
    assert len(indexes["lz4"].sonames) > 100 and len(indexes["lz4"].executables) > 1000
