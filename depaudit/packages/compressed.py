"""Reading an apt list file (Contents, Packages, dpkg status) as text, whatever apt compressed it with.

The format is told by the file's first bytes, never by its name: apt-file keeps `Contents-amd64.lz4`
in /var/lib/apt/lists, files get renamed, and a file in none of these formats must be rejected,
not read as text that happens to name no package.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from depaudit.reading import open_regular

HEAD = 1024  # how much of the (decompressed) start must look like text


class UnreadableInput(ValueError):
    """A file that is not text in any compression apt uses; the message names the file."""


def _lz4(path: Path) -> BinaryIO:
    import lz4.frame  # only an lz4 file needs it loaded

    return lz4.frame.open(path, "rb")  # type: ignore[no-any-return]


def _zstd(path: Path) -> BinaryIO:
    import zstandard  # a core dependency, but only a zstd file needs it loaded

    return zstandard.open(path, "rb")  # type: ignore[no-any-return]


# (name, magic bytes, opener of the decompressed bytes): the compressions apt fetches lists in.
_FORMATS: dict[str, tuple[bytes, Callable[[Path], BinaryIO]]] = {
    "gzip": (b"\x1f\x8b", lambda path: gzip.open(path, "rb")),  # type: ignore[dict-item]
    "xz": (b"\xfd7zXZ\x00", lambda path: lzma.open(path, "rb")),  # type: ignore[dict-item]
    "lz4": (b"\x04\x22\x4d\x18", _lz4),  # the lz4 frame format
    "zstd": (b"\x28\xb5\x2f\xfd", _zstd),
    "bzip2": (b"BZh", lambda path: bz2.open(path, "rb")),  # type: ignore[dict-item]
}
FORMAT_NAMES = ("plain", *_FORMATS)


def _damage() -> tuple[type[BaseException], ...]:
    """What a damaged or truncated stream raises part-way, in each decompressor (lz4.frame: RuntimeError)."""
    import zstandard

    return (OSError, EOFError, zlib.error, lzma.LZMAError, zstandard.ZstdError, RuntimeError)


def detect(path: Path) -> str:
    """The file's format, one of FORMAT_NAMES, by its first bytes. UnreadableInput for any other,
    and for a plain file that is not text."""
    with open_regular(path) as stream:
        head = stream.read(HEAD)
    for name, (magic, _) in _FORMATS.items():
        if head.startswith(magic):
            return name
    if not _is_text(head):
        raise UnreadableInput(
            f"{path}: neither text nor {', '.join(list(_FORMATS)[:-1])} or {list(_FORMATS)[-1]} data"
            f" (its first bytes: {_shown(head)})"
        )
    return "plain"


def text_lines(path: Path) -> Iterator[str]:
    """The lines of `path`, decompressed and decoded as UTF-8: its first KiB must be text, later
    undecodable bytes are replaced. UnreadableInput, naming the file, when it is not such a file,
    now or when a damaged stream breaks off part-way."""
    kind = detect(path)
    opener = _FORMATS[kind][1] if kind in _FORMATS else open_regular
    if kind in _FORMATS:
        try:
            with opener(path) as raw:
                head = raw.read(HEAD)
        except _damage() as error:
            raise UnreadableInput(f"{path}: cannot read it as {kind} data: {error}") from error
        if not _is_text(head):  # e.g. a gzipped tar
            raise UnreadableInput(f"{path}: {kind} data that is not text (its first bytes: {_shown(head)})")
    return _lines(path, kind, opener)


def _lines(path: Path, kind: str, opener: Callable[[Path], BinaryIO]) -> Iterator[str]:
    try:
        with opener(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as text:
            yield from text
    except _damage() as error:
        raise UnreadableInput(f"{path}: cannot read it as {kind} data: {error}") from error


def _is_text(head: bytes) -> bool:
    """No NUL byte, and UTF-8 (a sequence cut at the end of `head` allowed)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def _shown(head: bytes) -> str:
    return head[:16].hex(" ")
