"""Reading the files of a tree we audit: never block on a FIFO or a device that is named like a
source file or a library (possible in an unpacked image or a hostile checkout), and never read
more of a file than a bound."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from depaudit.consulted import note_read

# Far above any real source file (the largest in a CUDA site-packages is a few MiB of
# generated code); a file past it is reported, not read.
MAX_SOURCE_BYTES = 32 << 20


def open_regular(path: Path | str) -> BinaryIO:
    """Open a regular file for reading, never blocking: a FIFO or a device named like a library
    (possible in an unpacked image) would otherwise hang the scan or read forever."""
    note_read(path)  # what a scan read, for its memo: there or not, its stamp says which
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file but a pipe, socket or device", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path, limit: int = MAX_SOURCE_BYTES) -> bytes:
    """A regular file's bytes; OSError for anything else, or when it holds more than `limit`."""
    with open_regular(path) as stream:
        # Asked for limit + 1 bytes at once, the reader allocates that much (32 MiB) per file:
        # ask for what the file holds, and read on only if it grew meanwhile.
        expected = min(os.fstat(stream.fileno()).st_size, limit)
        data = stream.read(expected + 1)
        if len(data) > expected:
            data += stream.read(limit + 1 - len(data))
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit >> 20} MiB, not read as a source file", str(path))
    return data
