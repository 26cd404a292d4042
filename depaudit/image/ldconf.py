"""The directories /etc/ld.so.conf gives the loader (through ld.so.cache), read from an image."""

from __future__ import annotations

import posixpath
from typing import Protocol


class _Files(Protocol):
    def read_text(self, path: str) -> str | None: ...
    def glob(self, pattern: str) -> list[str]: ...


MAX_INCLUDE_DEPTH = 16  # real images include one level deep (ld.so.conf.d/*.conf)


def ld_so_conf_dirs(fs: _Files, path: str = "/etc/ld.so.conf") -> list[str]:
    """Directories in file order, `include` globs expanded (sorted, as ldconfig does)."""
    dirs: dict[str, None] = {}  # ordered; membership in constant time
    _read(fs, path, 0, dirs, set())
    return list(dirs)


def _read(fs: _Files, conf: str, depth: int, dirs: dict[str, None], seen_files: set[str]) -> None:
    # A function of the module, not a closure calling itself: that closure is a reference cycle
    # holding `fs` (a layered image, its scratch folder and the layer cache's lock) until the
    # garbage collector happens to run.
    if conf in seen_files or depth > MAX_INCLUDE_DEPTH:
        return  # an include cycle, or a chain no real image has (it exhausted the stack)
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
                    _read(fs, included, depth + 1, dirs, seen_files)
            continue
        for entry in line.replace(",", " ").replace(":", " ").split():
            directory = posixpath.normpath(entry.split("=", 1)[0])
            if directory.startswith("/"):
                dirs.setdefault(directory)
