"""SIGTERM (`docker stop`, a cancelled CI job) as an exception raised where the scan is, so that it
unwinds and removes its scratch folders: exit 143, as a shell reports it.

A handler's exception can be lost: Python code that runs where exceptions are only reported
(a fork hook, a finalizer) swallows it. So the handler also sets a flag that the places a
lost one would otherwise go on from ask: a worker pool broken by the same signal is no hostile
file to retry (depaudit.parallel). Depends on nothing else in depaudit.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_STATE = {"owner": 0, "terminated": False}


class Terminated(BaseException):
    """A BaseException, as KeyboardInterrupt: no `except Exception` takes it for a bad file's
    error and goes on."""


def install() -> object:
    """Handle SIGTERM in this process (and not in the workers it forks); returns the handler it
    replaced."""
    _STATE["owner"], _STATE["terminated"] = os.getpid(), False
    return signal.signal(signal.SIGTERM, _terminate)


def terminated() -> bool:
    """Whether this process has been sent SIGTERM (a forked worker never has: its own kills it)."""
    return bool(_STATE["terminated"]) and _STATE["owner"] == os.getpid()


def stop_if_terminated() -> None:
    if terminated():
        raise Terminated()


def _terminate(signum: int, frame: FrameType | None) -> None:
    if os.getpid() != _STATE["owner"]:
        # A forked worker inherited the handler: it ends as the signal means, its parent cleans up.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _STATE["terminated"] = True
    signal.signal(signum, signal.SIG_DFL)  # a second SIGTERM while cleaning up ends the process
    raise Terminated()


@contextmanager
def forking() -> Iterator[None]:
    """Around code that forks: SIGTERM waits until it is done (a handler run in the interpreter's
    fork hooks would lose its exception), and the children start with it blocked (unblock_in_child)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers run in the main thread only: nothing to lose here
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)  # one that came meanwhile is handled now


def unblock_in_child() -> None:
    """A forked worker's first step: SIGTERM reaches it again (and ends it)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
