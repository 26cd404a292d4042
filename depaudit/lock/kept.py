"""The lock's share of depaudit's cache folder, bounded: the wheel trees (`wheel-trees/`), the
site-packages made of them (`lock-envs/`) and the wheels downloaded or copied out of pip's cache
(`downloads/`), each an entry trimmed least recently used first (lru.py, as the layer cache is).

A scan holds the folder (a shared flock on `lock-wheels.lock`) from its first lock until it ends;
when it added to the folder and no other scan holds it, it trims it to MAX_BYTES of disk. What the
scan itself used is never removed, even past the cap: its next run is the likeliest one. A tree's
files are hard links in a site-packages too, and count once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from depaudit.lru import SharedUse, touch, trim_lru

# Of disk blocks: the trees hold only what the stages read (a 3.1 GB lock of CUDA wheels lays out
# ~0.2 GB of trees), so this keeps many locks' worth; the downloads, whole wheels, weigh the most.
MAX_BYTES = 5 << 30
_DONE = ".depaudit-tree.json"  # tree.py's mark of a finished tree or site-packages


class KeptWheels:
    def __init__(self, cache: Path, max_bytes: int = MAX_BYTES) -> None:
        """Raises OSError when the cache folder cannot be made or locked: go on without bounds."""
        cache.mkdir(parents=True, exist_ok=True)
        self.cache = cache
        self.max_bytes = max_bytes
        self.used: set[Path] = set()
        self.wrote = False  # only a scan that added to the folder may need to trim it
        self._use: SharedUse | None = SharedUse(cache / "lock-wheels.lock")

    def use(self, entry: Path, *, made: bool) -> None:
        """The scan reads `entry` (a tree, a site-packages, a download's folder): kept, and
        marked used now; `made`: by this scan."""
        self.used.add(entry)
        if made:
            self.wrote = True
        else:
            touch(entry)

    def close(self) -> None:
        if self._use is not None:
            self._use.release(self.trim if self.wrote else None)
            self._use = None

    def trim(self) -> list[Path]:
        """Under the exclusive lock: what a killed scan left unfinished, then the least recently
        used entries until the folder fits. The entries removed."""
        entries: list[Path] = []
        unfinished: list[Path] = []
        for pattern, marked in (("wheel-trees/*/*/*", True), ("lock-envs/*/*", True), ("downloads/*", False)):
            for entry in self.cache.glob(pattern):
                if not entry.is_dir() or entry in self.used:
                    entries.append(entry)
                elif marked and not (entry / _DONE).is_file():
                    unfinished.append(entry)
                else:
                    entries.append(entry)
        for entry in unfinished:
            shutil.rmtree(entry, ignore_errors=True)
        return unfinished + trim_lru([e for e in entries if e.is_dir()], self.max_bytes, keep=self.used)
