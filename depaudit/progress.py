"""How a scan tells whoever runs it how far it has got. Engines never print: the command line
hands them an observer, and the stages only call it.

At the bottom of the house, beside the options, so that every stage (and the worker pool,
which receives the workers' results) can name it without loading anything."""

from __future__ import annotations

from typing import Protocol


class ScanProgress(Protocol):
    """Stages are named by the scan (`fleet`, `collect`, `python`, `native`, `packages`,
    `plan`); items are counted in the stage that runs when they are counted."""

    def stage(self, name: str) -> None:
        """Stage `name`'s work runs from now on, until another stage's starts. Stages may
        interleave (each service is collected, then reached, in turn): each call resumes one."""

    def count(self, unit: str, n: int = 1, *, expected: int = 0) -> None:
        """`n` more `unit` (e.g. "files parsed") are done; `expected` more are now known to be
        coming, so the whole is known only as the stage finds its work."""

    def done(self, name: str, summary: str = "") -> None:
        """Stage `name` has finished; `summary` gives counts the scan had at hand."""


class NoProgress:
    """The default observer: nothing is reported."""

    def stage(self, name: str) -> None:
        pass

    def count(self, unit: str, n: int = 1, *, expected: int = 0) -> None:
        pass

    def done(self, name: str, summary: str = "") -> None:
        pass
