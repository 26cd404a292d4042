"""Spread per-file work (parsing, ELF reading) over the cores this process may use."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from depaudit import consulted

from depaudit.termination import forking, stop_if_terminated, unblock_in_child

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from depaudit.progress import ScanProgress

T = TypeVar("T")
R = TypeVar("R")

# Below this many items a pool costs more than it saves.
_MIN_ITEMS = 4


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what a container's cpuset allows, not the host's count
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Workers:
    """A process pool made on first use. Results come back in the order of the items, so a
    run with N processes gives exactly what a run with one gives.

    With a `progress` observer, a batch given a `unit` is counted as its results arrive in this
    process (the workers themselves never report); without one, nothing is counted."""

    def __init__(self, processes: int | None = None, progress: ScanProgress | None = None) -> None:
        self.processes = max(1, processes if processes is not None else available_cores())
        self._pool: Executor | None = None
        self._progress = progress

    def map(
        self,
        function: Callable[[T], R],
        items: Sequence[T],
        crashed: Callable[[T], R] | None = None,
        *,
        unit: str | None = None,
    ) -> list[R]:
        return self.start(function, items, crashed, unit=unit)()

    def start(
        self,
        function: Callable[[T], R],
        items: Sequence[T],
        crashed: Callable[[T], R] | None = None,
        *,
        unit: str | None = None,
    ) -> Callable[[], list[R]]:
        """`map`, returning at once: call the result to wait for the list. The pool takes the
        batches in the order they were started, so this process can walk one batch's results
        while the workers read the next.

        A worker that dies (a native parser's segfault on a hostile file) breaks the pool; the
        batch is then run again one item at a time in a fresh pool, and each item that kills
        its worker gets `crashed(item)` instead of a result, so one file never ends the scan."""
        count: Callable[[], None] | None = None
        if self._progress is not None and unit is not None:
            self._progress.count(unit, 0, expected=len(items))
            count = partial(self._progress.count, unit)
        if self.processes == 1 or len(items) < _MIN_ITEMS:
            # In this process: what the function reads is noted in the scan's own record.
            if count is None:
                results = [function(item) for item in items]
            else:
                results = [_counted(function(item), count) for item in items]
            return lambda: results
        if consulted.active():
            # A worker's notes would stay in its process: each result comes back with them.
            return _absorbing(self._start_pooled(partial(_recorded, function), items, _untold(crashed), count))
        return self._start_pooled(function, items, crashed, count)

    def _start_pooled(
        self,
        function: Callable[[T], R],
        items: Sequence[T],
        crashed: Callable[[T], R] | None,
        count: Callable[[], None] | None,
    ) -> Callable[[], list[R]]:
        chunk = max(1, len(items) // (self.processes * 8))
        with forking():  # the pool forks its workers in here
            pending = self._executor().map(function, items, chunksize=chunk)  # every chunk is submitted now
        done: list[list[R]] = []

        def wait() -> list[R]:
            if not done:
                from concurrent.futures.process import BrokenProcessPool

                try:
                    if count is None:
                        done.append(list(pending))
                    else:  # each result as it arrives: a batch of 3,000 files is no silent wait
                        done.append([_counted(result, count) for result in pending])
                except BrokenProcessPool:
                    stop_if_terminated()  # SIGTERM to the group broke it: no file to blame
                    if crashed is None:
                        raise
                    done.append(self._one_by_one(function, items, crashed))
            return done[0]

        return wait

    def _executor(self) -> Executor:
        # multiprocessing is imported here: a warm run, with nothing to parse, never needs it.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if self._pool is None:
            # fork: the workers start with what this process imported (libcst, once there is
            # something to parse) and a copy of what it read.
            self._pool = ProcessPoolExecutor(
                self.processes, mp_context=multiprocessing.get_context("fork"), initializer=unblock_in_child
            )
        return self._pool

    def _one_by_one(self, function: Callable[[T], R], items: Sequence[T], crashed: Callable[[T], R]) -> list[R]:
        from concurrent.futures.process import BrokenProcessPool

        results: list[R] = []
        self._discard_pool()
        for item in items:
            try:
                with forking():
                    future = self._executor().submit(function, item)
                results.append(future.result())
            except BrokenProcessPool:
                stop_if_terminated()
                self._discard_pool()
                results.append(crashed(item))
        return results

    def _discard_pool(self) -> None:
        """Drop a broken pool, its threads joined: the next pool must not fork a process that
        still runs them (a thread holding a lock at fork time can deadlock the child; Python
        3.12 and later warn of it)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc_info: object) -> None:
        if kind is not None and not issubclass(kind, Exception):
            self._abandon()  # SIGTERM, Ctrl-C: the work queued is not wanted any more
        self.close()

    def _abandon(self) -> None:
        """End the workers now: a pool shut down politely runs every chunk already queued."""
        if self._pool is None:
            return
        import threading
        from concurrent.futures import InvalidStateError

        earlier = threading.excepthook

        def quiet(args: threading.ExceptHookArgs) -> None:
            # Python 3.11's pool thread, finding the pool broken, sets an error on the futures that
            # map's iterator cancelled as the signal unwound it, and dies printing this.
            if not isinstance(args.exc_value, InvalidStateError):
                earlier(args)

        threading.excepthook = quiet
        for process in list((getattr(self._pool, "_processes", None) or {}).values()):
            process.terminate()  # SIGTERM: a worker's inherited handler ends it as the signal means
        # Not cancel_futures: Python 3.11's pool, broken meanwhile, then fails on the cancelled ones.
        self._pool.shutdown(wait=False)
        self._pool = None


def _recorded(function: Callable[[T], R], item: T) -> tuple[R, consulted.Consulted]:
    """Runs in a worker: the result, and what computing it consulted."""
    with consulted.recording() as record:
        result = function(item)
    return result, record


def _untold(crashed: Callable[[T], R] | None) -> Callable[[T], tuple[R, consulted.Consulted]] | None:
    if crashed is None:
        return None

    def told(item: T) -> tuple[R, consulted.Consulted]:
        record = consulted.Consulted(untold="a worker process died before saying what it read")
        return crashed(item), record

    return told


def _absorbing(wait: Callable[[], list[tuple[Any, consulted.Consulted]]]) -> Callable[[], list[Any]]:
    done: list[list[Any]] = []

    def results() -> list[Any]:
        if not done:
            pairs = wait()
            for _, record in pairs:
                consulted.absorb(record)
            done.append([result for result, _ in pairs])
        return done[0]

    return results


def _counted(result: R, count: Callable[[], None]) -> R:
    count()
    return result
