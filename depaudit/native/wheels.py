"""The native facts of the wheels a scan reaches, in one Python environment, read once per scan:
each distribution's ELF walk (per LD_LIBRARY_PATH) and the native hints in its Python code."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from depaudit.image.model import BaseImage
from depaudit.native.hints import FileHint, distributions_hints, start_distributions_hints
from depaudit.native.model import NativeReport
from depaudit.native.reports import analyse_environment, start_environment
from depaudit.native.store import ElfStore
from depaudit.python.environment import PythonEnvironment


class WheelNatives:
    """Wheels are shared by many services: each one's ELF files are walked, and its Python files
    searched for hints, once per environment."""

    def __init__(self, env: PythonEnvironment, store: ElfStore, image: BaseImage | None = None) -> None:
        self.env = env
        self.store = store
        self.image = image
        self._walks: dict[tuple[str, tuple[str, ...]], NativeReport] = {}
        self._hints: dict[str, list[FileHint]] = {}

    def read(self, wanted: Mapping[tuple[str, ...], Iterable[str]], meanwhile: Callable[[], object] | None = None) -> None:
        """Read every wanted wheel's ELF files (per LD_LIBRARY_PATH), then its hint files, each in
        one parallel batch (per distribution, the batches are too small to keep the workers busy);
        the ELF walks run here while the workers read the hint files. `meanwhile` runs here
        while the workers read the ELF files, before any walk needs them."""
        wanted = {path: set(keys) for path, keys in wanted.items()}
        started = [
            (ld_library_path, start_environment(
                self.env,
                sorted(key for key in keys if (key, ld_library_path) not in self._walks),
                self.store,
                ld_library_path=ld_library_path,
                image=self.image,
            ))
            for ld_library_path, keys in sorted(wanted.items())
        ]
        keys = sorted(set().union(*wanted.values()) - set(self._hints))
        hints = start_distributions_hints(
            [self.env.distributions[key] for key in keys], self.store.cache, self.store.workers
        )
        if meanwhile is not None:
            meanwhile()
        for ld_library_path, walk in started:
            self._walks.update(((key, ld_library_path), report) for key, report in walk().items())
        self._hints.update(zip(keys, hints()))

    def kept(self) -> tuple[dict[tuple[str, tuple[str, ...]], NativeReport], dict[str, list[FileHint]]]:
        """What has been read so far, to be given back by `restore` (scan.py's stage memo)."""
        return dict(self._walks), dict(self._hints)

    def restore(self, walks: dict[tuple[str, tuple[str, ...]], NativeReport], hints: dict[str, list[FileHint]]) -> None:
        self._walks.update(walks)
        self._hints.update(hints)

    def walk(self, key: str, ld_library_path: tuple[str, ...]) -> NativeReport:
        if (key, ld_library_path) not in self._walks:
            found = analyse_environment(self.env, [key], self.store, ld_library_path=ld_library_path, image=self.image)
            self._walks.update(((k, ld_library_path), report) for k, report in found.items())
        return self._walks[key, ld_library_path]

    def hints(self, key: str) -> list[FileHint]:
        if key not in self._hints:
            self._hints[key] = distributions_hints([self.env.distributions[key]], self.store.cache, self.store.workers)[0]
        return self._hints[key]
