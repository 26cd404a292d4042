"""The directories /etc/ld.so.conf gives the loader (through ld.so.cache), read from an image."""

from __future__ import annotations

import posixpath
from typing import Protocol


class _Files(Protocol):
    def read_text(self, path: str) -> str | None: ...
    def glob(self, pattern: str) -> list[str]: ...


def ld_so_conf_dirs(fs: _Files, path: str = "/etc/ld.so.conf") -> list[str]:
    """Directories in file order, `include` globs expanded (sorted, as ldconfig does)."""
    dirs: list[str] = []
    seen_files: set[str] = set()

    def read(conf: str) -> None:
        if conf in seen_files:
            return  # an include cycle
        seen_files.add(conf)
        text = fs.read_text(conf)
        if text is None:
            return
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line or line.startswith("hwcap "):
                continue
            if line.startswith("include"):
                for pattern in line.split()[1:]:
                    if not pattern.startswith("/"):
                        pattern = posixpath.join(posixpath.dirname(conf), pattern)
                    for included in sorted(fs.glob(pattern)):
                        read(included)
                continue
            for entry in line.replace(",", " ").replace(":", " ").split():
                directory = posixpath.normpath(entry.split("=", 1)[0])
                if directory.startswith("/") and directory not in dirs:
                    dirs.append(directory)

    read(path)
    return dirs
