"""The end of a deflated member decoded without the bytes before it, and a library's dynamic
segment read from a wheel that way: real deflate streams (zlib, as zipfile writes them), real
gcc-built shared objects."""

from __future__ import annotations

import io
import random
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest

from depaudit.lock import elf_tail, inflate_tail
from depaudit.lock.inflate_tail import Tail, decode_tail
from depaudit.lock.members import CountingFile, open_member
from depaudit.native.elf import read_elf
from depaudit.native.reads import elf_ranges
from helpers import build_so, elf_folder

pytestmark = pytest.mark.skipif(not inflate_tail.available(), reason="the system zlib cannot be loaded through ctypes")


def _mixed(size: int, seed: int) -> bytes:
    """Text that compresses well and random runs that do not (zlib stores those blocks)."""
    rng = random.Random(seed)
    parts = []
    while sum(map(len, parts)) < size:
        parts.append(rng.randbytes(rng.randrange(1, 200_000)) if rng.random() < 0.3 else b"depaudit %d " % rng.randrange(10**6) * rng.randrange(1, 5000))
    return b"".join(parts)[:size]


def _deflated(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def _assert_faithful(tail: Tail, original: bytes) -> None:
    """Every byte the tail calls known is the original's, at the place it says."""
    tail.data.seek(0)
    decoded = tail.data.read()
    assert len(decoded) == len(original) - tail.start
    cursor = tail.start
    for start, end in [*tail.unknown, (len(original), len(original))]:
        assert decoded[cursor - tail.start : start - tail.start] == original[cursor:start]
        cursor = end


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_end_of_a_stream_decodes_from_a_block_found_in_its_last_bytes(seed: int) -> None:
    original = _mixed(3 << 20, seed)
    compressed = _deflated(original)
    tail = decode_tail(compressed[len(compressed) // 2 :], len(original))
    assert tail is not None
    try:
        assert 0 < tail.start < len(original)
        _assert_faithful(tail, original)
        # What copies from before the decoded part is at its start only (32 KiB window).
        assert all(end <= tail.start + (1 << 20) for _, end in tail.unknown)
        assert tail.known(len(original) - 4096, 4096)
    finally:
        tail.close()


def test_a_stream_that_does_not_end_where_the_bytes_do_gives_no_tail() -> None:
    original = _mixed(2 << 20, 4)
    compressed = _deflated(original)
    # Cut short: no block start decodes to a stream's end.
    assert decode_tail(compressed[len(compressed) // 2 : -100], len(original)) is None
    # A size smaller than what the stream holds: no start fits.
    assert decode_tail(compressed[len(compressed) // 2 :], 1000) is None


@pytest.fixture(scope="module")
def big_libraries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real shared objects with 6 MiB of data before the dynamic segment (in read-only data, as
    a CUDA library's fat binaries are), and one with 16 MiB before it and as much after it (a
    non-allocated section, as debug info is)."""
    folder = elf_folder(tmp_path_factory, "big-libraries")
    (folder / "blob.bin").write_bytes(_mixed(6 << 20, 5))
    (folder / "big.bin").write_bytes(_mixed(16 << 20, 6))
    (folder / "front.bin").write_bytes(_mixed(12 << 20, 7))
    (folder / "noise.bin").write_bytes(random.Random(8).randbytes(3 << 19))

    def incbin(section: str, blob: str) -> str:
        return f'__asm__(".section {section}\\n.incbin \\"{folder / blob}\\"\\n.previous");\n'

    front = incbin(".rodata", "blob.bin")
    middle = incbin(".rodata", "big.bin") + incbin('.depaudit_after,\\"\\",@progbits', "big.bin")
    back = incbin(".rodata", "front.bin") + incbin('.depaudit_after,\\"\\",@progbits', "noise.bin")
    made = {}
    for name, text in (("libfront.so.1", front), ("libmiddle.so.1", middle), ("libback.so.1", back)):
        source = folder / f"{name}.c"
        source.write_text(text + "int depaudit_entry(void) { return 0; }\n")
        needed = build_so(folder / "needed" / "libneeded.so.3", soname="libneeded.so.3")
        made[name] = build_so(folder / name, soname=name, needed=[needed], runpath="$ORIGIN/needed", extra=[str(source)])
    return made


def _wheel_of(library: Path, folder: Path) -> Path:
    wheel = folder / f"{library.name}.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(library, f"pkg/{library.name}")
    return wheel


def _read_in_place(wheel: Path, name: str) -> tuple[list[tuple[int, int]], int, int]:
    counting = CountingFile(wheel)
    try:
        archive = zipfile.ZipFile(counting)  # type: ignore[arg-type]
        info = archive.getinfo(f"pkg/{name}")
        before = counting.bytes_touched
        with open_member(counting, info) as member:
            ranges = elf_ranges(name)(io.BufferedReader(member))
        return ranges, counting.bytes_touched - before, info.compress_size
    finally:
        counting.close()


def test_a_dynamic_segment_near_the_end_is_read_from_the_tail(big_libraries: dict[str, Path], tmp_path: Path) -> None:
    library = big_libraries["libfront.so.1"]
    ranges, touched, compressed = _read_in_place(_wheel_of(library, tmp_path), library.name)
    whole = library.read_bytes()
    assert ranges[0][0] == 0 and ranges[-1][0] > 6 << 20  # the header, then past the 6 MiB
    assert touched < compressed // 20  # not inflated up to it
    # The bytes read in place are the library's, so the ELF reader sees what the file holds.
    sparse = bytearray(len(whole))
    with zipfile.ZipFile(_wheel_of(library, tmp_path)) as archive, archive.open(f"pkg/{library.name}") as member:
        content = member.read()
    for start, length in ranges:
        sparse[start : start + length] = content[start : start + length]
    assert content == whole
    laid = tmp_path / "sparse" / library.name
    laid.parent.mkdir()
    laid.write_bytes(bytes(sparse))
    info = read_elf(laid)
    assert (info.soname, info.needed, info.runpath) == ("libfront.so.1", ("libneeded.so.3", "libc.so.6"), ("$ORIGIN/needed",))


def test_a_tail_that_must_reach_further_back_reads_only_the_bytes_before_it(big_libraries: dict[str, Path], tmp_path: Path) -> None:
    """1.5 MiB of noise after the segment: the first part of the end read (guessed from the
    member's average compression) falls short of it, and the tail grows by reading only the
    compressed bytes before those it read."""
    library = big_libraries["libback.so.1"]
    wheel = _wheel_of(library, tmp_path)
    counting = CountingFile(wheel)
    try:
        info = zipfile.ZipFile(counting).getinfo(f"pkg/{library.name}")  # type: ignore[arg-type]
        before_read, before_touched = counting.bytes_read, counting.bytes_touched
        with open_member(counting, info) as member:
            stream = io.BufferedReader(member)  # kept: dropping it would close the member
            ranges = elf_ranges(library.name)(stream)
            tail = member._end  # noqa: SLF001
            assert tail is not None and tail.start < (12 << 20) < info.file_size - (3 << 19)
        read, touched = counting.bytes_read - before_read, counting.bytes_touched - before_touched
    finally:
        counting.close()
    assert ranges[-1][0] > 12 << 20
    assert (3 << 19) < touched < info.compress_size // 3  # the noise, and neither the front nor twice the noise
    assert read - touched < 64 << 10  # no byte of the tail read twice (the headers' first chunk may be)


def test_a_decoded_part_tells_how_many_bytes_from_an_offset_are_known() -> None:
    part = Tail(100, 1000, io.BytesIO(bytes(900)), [(200, 210), (500, 600)], 0)
    assert part.known_from(150, 100) == 50  # up to the first unknown byte
    assert part.known_from(200, 5) == part.known_from(209, 5) == 0
    assert part.known_from(210, 1000) == 290
    assert part.known_from(600, 50) == 50 and part.known_from(990, 50) == 10  # the end of the member
    assert part.known_from(99, 10) == part.known_from(1000, 1) == 0  # outside the decoded part


def test_a_tail_placed_wrong_does_not_agree_with_the_elf_header(big_libraries: dict[str, Path]) -> None:
    whole = big_libraries["libfront.so.1"].read_bytes()
    compressed = _deflated(whole)
    tail = decode_tail(compressed[-(len(compressed) // 10) :], len(whole))
    assert tail is not None
    try:
        head = whole[:64]
        assert elf_tail.agrees(head, tail)
        tail.start -= 8  # as if a false start had made 8 bytes more
        assert not elf_tail.agrees(head, tail)
        tail.start += 16
        assert not elf_tail.agrees(head, tail)
    finally:
        tail.close()


def test_the_readelf_view_of_the_fixture_has_its_dynamic_segment_past_the_blob(big_libraries: dict[str, Path]) -> None:
    """The fixture is what the tests above rely on: the dynamic segment after 6 MiB of data."""
    output = subprocess.run(["readelf", "-lW", str(big_libraries["libfront.so.1"])], capture_output=True, text=True, check=True).stdout
    dynamic = next(line for line in output.splitlines() if line.split()[:1] == ["DYNAMIC"])
    assert int(dynamic.split()[1], 16) > 6 << 20


def test_a_dynamic_segment_in_the_middle_is_found_by_its_content(big_libraries: dict[str, Path], tmp_path: Path) -> None:
    """16 MiB before the segment and 16 MiB after it: neither inflating forward to it nor a tail
    back to it is cheap; the segment is found where the compression puts it, by its content."""
    library = big_libraries["libmiddle.so.1"]
    whole = library.read_bytes()
    dynamic = elf_tail.dynamic_in(whole[:4096])
    assert dynamic is not None and 16 << 20 < dynamic.offset < len(whole) - (16 << 20)
    ranges, touched, compressed = _read_in_place(_wheel_of(library, tmp_path), library.name)
    assert any(start <= dynamic.offset < start + length for start, length in ranges)
    assert touched < compressed // 3  # not the half of it before the segment, nor the half after
    sparse = bytearray(len(whole))
    for start, length in ranges:
        sparse[start : start + length] = whole[start : start + length]
    laid = tmp_path / "sparse" / library.name
    laid.parent.mkdir()
    laid.write_bytes(bytes(sparse))
    info = read_elf(laid)
    assert (info.soname, info.needed, info.runpath) == ("libmiddle.so.1", ("libneeded.so.3", "libc.so.6"), ("$ORIGIN/needed",))


def test_the_segment_found_in_the_middle_holds_the_files_bytes(big_libraries: dict[str, Path], tmp_path: Path) -> None:
    library = big_libraries["libmiddle.so.1"]
    whole = library.read_bytes()
    dynamic = elf_tail.dynamic_in(whole[:4096])
    assert dynamic is not None
    wheel = _wheel_of(library, tmp_path)
    counting = CountingFile(wheel)
    try:
        info = zipfile.ZipFile(counting).getinfo(f"pkg/{library.name}")  # type: ignore[arg-type]
        with open_member(counting, info) as member:
            stream = io.BufferedReader(member)
            stream.seek(dynamic.offset)
            assert stream.read(dynamic.size) == whole[dynamic.offset : dynamic.offset + dynamic.size]
            assert member._placed is not None  # found by its content, not inflated to  # noqa: SLF001
    finally:
        counting.close()


def test_an_array_an_entry_late_is_not_taken_for_the_segment(big_libraries: dict[str, Path]) -> None:
    """Zeros follow the segment, so the array from its second entry on also reads as one: the
    GOT's first word (the segment's address) tells which start is the real one."""
    whole = big_libraries["libmiddle.so.1"].read_bytes()
    dynamic = elf_tail.dynamic_in(whole[:4096])
    assert dynamic is not None
    window = whole[dynamic.offset - 100_000 : dynamic.offset + (1 << 20)]
    piece = inflate_tail.Piece(0, window, [], len(window), 0)
    found = elf_tail.find_dynamic([piece], dynamic, 1 << 30)
    assert isinstance(found, tuple)
    assert found[0][: dynamic.size] == whole[dynamic.offset : dynamic.offset + dynamic.size]
    # Without the GOT's first word the starts cannot be told apart: nothing is taken.
    got = window.index(dynamic.got_start, 100_000)
    blanked = window[:got] + bytes(8) + window[got + 8 :]
    assert elf_tail.find_dynamic([inflate_tail.Piece(0, blanked, [], len(blanked), 0)], dynamic, 1 << 30) is None


def test_decoding_that_starts_between_the_segment_and_its_got_says_it_passed_it(big_libraries: dict[str, Path]) -> None:
    whole = big_libraries["libmiddle.so.1"].read_bytes()
    dynamic = elf_tail.dynamic_in(whole[:4096])
    assert dynamic is not None
    after = whole[dynamic.offset + dynamic.size : dynamic.offset + (1 << 20)]
    found = elf_tail.find_dynamic([inflate_tail.Piece(0, after, [], len(after), 0)], dynamic, 1 << 30)
    assert found == elf_tail.PASSED


@pytest.mark.parametrize("seed", [11, 12])
def test_the_dynamic_headers_found_at_once_are_those_a_test_per_position_finds(seed: int) -> None:
    """Every bit position whose bits read as a dynamic block header (type 10, at most 29 more
    literal/length and distance codes, a complete code-length code), told one position at a
    time here, as a reader of RFC 1951 would."""
    rng = random.Random(seed)
    stream = _deflated(_mixed(4 << 20, seed))
    pieces = [rng.randbytes(4096 + 16), stream[len(stream) // 2 : len(stream) // 2 + 4096 + 16]]
    assert all(len(piece) == 4096 + 16 for piece in pieces)
    for piece in pieces:
        bits = int.from_bytes(piece, "little")
        expected = set()
        for position in range(4096 * 8):
            value = bits >> position
            hlit, hdist, hclen = (value >> 3) & 31, (value >> 8) & 31, ((value >> 13) & 15) + 4
            if (value >> 1) & 3 != 2 or hlit > 29 or hdist > 29:
                continue
            lengths = [(value >> (17 + 3 * i)) & 7 for i in range(hclen)]
            if sum(128 >> length for length in lengths if length) == 128:
                expected.add(position)
        mask = inflate_tail._dynamic_headers(bits, 4096 * 8)  # noqa: SLF001
        found = {position for position in range(4096 * 8) if mask >> position & 1}
        assert expected and expected <= found  # none missed
        assert {p for p in found if inflate_tail._complete_code_lengths(bits >> p)} == expected  # noqa: SLF001
        assert len(found) - len(expected) <= len(expected) // 4 + 2  # the Kraft sum's aliases modulo 512 are few
