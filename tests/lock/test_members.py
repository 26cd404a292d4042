"""Wheel members read in place: every byte as zipfile gives it, only the bytes asked for."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

from depaudit.lock.anchor import Compressed
from depaudit.lock.members import CountingFile, data_offset, open_member
from lock_wheels import Wheels


def _info(wheel: Path, name: str) -> zipfile.ZipInfo:
    with zipfile.ZipFile(wheel) as archive:
        return archive.getinfo(name)


def test_a_deflated_member_reads_as_zipfile_does_at_any_offset_forward_and_back(wheels: Wheels) -> None:
    info = _info(wheels.demo, "demo/data/blob.bin")
    assert info.compress_type == zipfile.ZIP_DEFLATED and info.file_size == 6 << 20
    rng = random.Random(7)
    offsets = [5_000_000, 12, 6_291_000, 2_100_000, 2_097_152, 4_194_303, 0, 3_000_000]
    offsets += [rng.randrange(info.file_size) for _ in range(20)]
    wheel = CountingFile(wheels.demo)
    try:
        # Buffered, as the layout reads it: the raw member may return fewer bytes than asked.
        stream = io.BufferedReader(open_member(wheel, info))
        for offset in offsets:  # behind the position too: resumed from a kept state
            stream.seek(offset)
            assert stream.read(5000) == wheels.blob[offset : offset + 5000], offset
        stream.seek(info.file_size - 10)
        assert stream.read(100) == wheels.blob[-10:]
        assert stream.read(100) == b""
    finally:
        wheel.close()


def test_a_stored_member_is_read_at_its_offsets_and_nothing_else(wheels: Wheels) -> None:
    info = _info(wheels.demo, "demo/data/stored.bin")
    assert info.compress_type == zipfile.ZIP_STORED
    wheel = CountingFile(wheels.demo)
    try:
        assert data_offset(wheel, info) > info.header_offset + 30  # past the member's name
        stream = io.BufferedReader(open_member(wheel, info), buffer_size=4096)
        stream.seek(3 << 20)
        assert stream.read(100) == wheels.blob[3 << 20 : (3 << 20) + 100]
        # The local header's fixed 30 bytes (its lengths say where the data starts), then one
        # buffer at the offset: not the name, not the 3 MiB before.
        assert wheel.bytes_touched == 30 + 4096
    finally:
        wheel.close()


def test_reading_the_start_of_a_deflated_member_inflates_only_the_start(wheels: Wheels) -> None:
    info = _info(wheels.demo, "demo/data/blob.bin")
    wheel = CountingFile(wheels.demo)
    try:
        stream = open_member(wheel, info)
        assert stream.read(64) == wheels.blob[:64]
        assert wheel.bytes_touched < 70_000 < info.compress_size  # one 64 KiB chunk and the header
    finally:
        wheel.close()


def test_compressed_bytes_read_again_are_not_taken_from_the_wheel_twice(tmp_path: Path) -> None:
    """Samples, searches and a tail of one member overlap: each byte is read from the wheel once."""
    data = random.Random(3).randbytes(1 << 20)
    path = tmp_path / "wheel.bin"
    path.write_bytes(b"x" * 100 + data)
    counting = CountingFile(path)
    try:
        member = Compressed(counting, 100, len(data), 2 * len(data))
        for at, length in [(1000, 5000), (3000, 10000), (500, 200), (0, 20000), (900_000, 500_000), (20000, 1), (5, 0)]:
            assert member.read(at, length) == data[at : at + length]
        assert counting.bytes_read == counting.bytes_touched == 20001 + len(data) - 900_000
    finally:
        counting.close()
