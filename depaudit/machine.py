"""Errors of this machine, not of the input: a scratch folder's disk full, over quota, read-only,
out of file handles. They end the scan (exit 2) instead of becoming findings: a file copied out
of an image half-written would otherwise read as the image's fault ("the file is empty").
Depends on nothing else in depaudit."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# What writing to our own scratch folder can fail with that no input causes. A name too long or
# a path too deep (ENAMETOOLONG, ELOOP) is the input's own: a finding on that one file.
MACHINE_ERRNOS = frozenset(
    code
    for code in (
        errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EROFS, errno.EMFILE, errno.ENFILE, errno.EFBIG,
        errno.EIO, errno.ENOMEM, errno.EACCES, errno.EPERM,
    )
    if code is not None
)


class MachineError(Exception):
    """A write to `folder` failed for a reason of this machine. Deliberately no OSError: the
    handlers that turn a damaged input's OSError into a finding must not catch it."""

    def __init__(self, folder: Path, error: OSError, doing: str) -> None:
        self.folder, self.error, self.doing = folder, error, doing
        name = errno.errorcode.get(error.errno or 0, "?")
        reason = error.strerror or os.strerror(error.errno or 0)
        super().__init__(
            f"this machine, not the input: cannot write to {folder} ({reason}, {name}) while {doing};"
            " free space there or point TMPDIR at a folder with room, then scan again"
        )


@contextmanager
def writing_to(folder: Path, doing: str) -> Iterator[None]:
    """Within it, an OSError of this machine (MACHINE_ERRNOS) becomes a MachineError naming
    `folder`; any other OSError passes unchanged."""
    try:
        yield
    except OSError as error:
        if error.errno in MACHINE_ERRNOS:
            raise MachineError(folder, error, doing) from error
        raise
