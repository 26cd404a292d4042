"""What the command line shows on a terminal: the colour choice for stdout and stderr, and the
scan's progress on stderr (`-v` lines, and a live status line on a terminal once a scan runs
long). The scan only calls a `ScanProgress`; this is the one that writes.

Imported inside the commands only: rich is no part of `depaudit --help`."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

# rich is imported where something is drawn: a scan that shows nothing (a report to a file, no
# -v, no terminal) does not load it (~40 ms at start).
if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.live import Live

# A scan shorter than this shows no status line: a flash of one is noise.
DEFAULT_DELAY = 1.0
# The status line is redrawn at most this many times a second, whatever the count rate.
_REFRESH_PER_SECOND = 10


def colour_choice(no_color_flag: bool, environ: Mapping[str, str]) -> bool | None:
    """True: colour, even piped; False: none; None: colour on a terminal only. The flag wins
    over NO_COLOR (any non-empty value), which wins over FORCE_COLOR."""
    if no_color_flag or environ.get("NO_COLOR", ""):
        return False
    if environ.get("FORCE_COLOR", ""):
        return True
    return None


def make_console(colour: bool | None, *, stderr: bool = False) -> Console:
    """A console for stdout (or stderr) that follows `colour_choice`. Without colour it writes
    no escape at all: NO_COLOR readers do not want bold either."""
    from rich.console import Console

    options: dict[str, Any] = {"stderr": stderr}
    if colour is False:
        options.update(color_system=None, no_color=True)
    elif colour is True:
        options.update(force_terminal=True)
    else:  # rich would read FORCE_COLOR/NO_COLOR itself: the choice above is made already
        options.update(force_terminal=(sys.stderr if stderr else sys.stdout).isatty(), no_color=False)
    console = Console(**options)
    stream = sys.stderr if stderr else sys.stdout
    if not stream.isatty() and "COLUMNS" not in os.environ:
        console.width = 120  # rich's 80-column default for pipes folds every chain
    return console


def progress_delay(environ: Mapping[str, str]) -> float:
    """DEPAUDIT_PROGRESS_DELAY=0 shows the status line from the start: tests use it to see it
    under a pseudo-terminal without making a scan slow."""
    try:
        return float(environ.get("DEPAUDIT_PROGRESS_DELAY", DEFAULT_DELAY))
    except ValueError:
        return DEFAULT_DELAY


def wants_status_line(environ: Mapping[str, str]) -> bool:
    """Only a person watching a real terminal gets one: never a pipe or a file (whatever
    FORCE_COLOR says), never a dumb terminal (no cursor movement to redraw it with)."""
    return sys.stderr.isatty() and environ.get("TERM", "") != "dumb"


class _Counter:
    __slots__ = ("done", "expected")

    def __init__(self) -> None:
        self.done = 0
        self.expected = 0

    def __str__(self) -> str:
        return f"{self.done}/{self.expected}" if self.expected else str(self.done)


class StderrProgress:
    """A `ScanProgress` that writes to stderr: with `verbose`, a line per finished stage with
    its wall time and counts; with `live`, a status line started after `delay` seconds, redrawn
    at most 10 times a second and erased when the scan ends, however it ends. A context
    manager: leaving it stops the status line before anything else is written."""

    def __init__(self, console: Console, *, verbose: bool, live: bool, delay: float = DEFAULT_DELAY) -> None:
        self._console = console
        self._verbose = verbose
        self._begun = time.perf_counter()
        self._current: str | None = None  # the stage whose work runs now
        self._since = self._begun
        self._spent: dict[str, float] = {}  # stage → seconds its work ran (stages interleave)
        self._finished: set[str] = set()
        self._counters: dict[str, dict[str, _Counter]] = {}  # stage → unit → counter
        self._lock = threading.Lock()  # the timer thread starts the display; the scan stops it
        self._live: Live | None = None
        self._closed = False
        self._timer: threading.Timer | None = None
        if live:
            if delay <= 0:
                self._start_display()
            else:
                self._timer = threading.Timer(delay, self._start_display)
                self._timer.daemon = True
                self._timer.start()

    # ScanProgress

    def stage(self, name: str) -> None:
        self._account()
        self._current = name

    def count(self, unit: str, n: int = 1, *, expected: int = 0) -> None:
        stage = self._counters.setdefault(self._current or "", {})
        counter = stage.get(unit)
        if counter is None:
            counter = stage[unit] = _Counter()
        counter.done += n
        counter.expected += expected

    def done(self, name: str, summary: str = "") -> None:
        self._account()
        self._finished.add(name)
        if self._verbose:
            counts = [f"{counter.done} {unit}" for unit, counter in self._counters.get(name, {}).items()]
            text = ", ".join(filter(None, [summary, *counts]))
            self._say(name, f"{text} ({self._spent.get(name, 0.0):.2f} s)")

    # The context manager

    def __enter__(self) -> StderrProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
        if kind is None and self._verbose:
            self._say("total", f"({time.perf_counter() - self._begun:.2f} s)", sep=" ")

    def close(self) -> None:
        """Stop the status line (erased: no line is left behind) and any timer yet to start it."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            if self._live is not None:
                self._live.stop()
                self._live = None

    # Inside

    def _account(self) -> None:
        """The time since the last switch goes to the stage that ran it."""
        now = time.perf_counter()
        if self._current is not None and self._current not in self._finished:
            self._spent[self._current] = self._spent.get(self._current, 0.0) + now - self._since
        self._since = now

    def _say(self, name: str, rest: str, sep: str = ": ") -> None:
        from rich.text import Text

        # A Text, not a str: no markup is read in it and no highlighter colours its numbers.
        self._console.print(Text.assemble("depaudit: ", (name, "bold"), sep, rest), soft_wrap=True)

    def _start_display(self) -> None:
        with self._lock:
            if self._closed or self._live is not None:
                return
            from rich.live import Live

            self._live = Live(
                _StatusLine(self),
                console=self._console,
                transient=True,  # erased on stop
                refresh_per_second=_REFRESH_PER_SECOND,
                redirect_stdout=False,  # stdout is the report's alone
                redirect_stderr=False,
            )
            self._live.start(refresh=True)

    def status(self) -> str:
        """The status line's text: the running stage, and the counts of every stage not finished."""
        counts = [
            f"{unit} {counter}"
            for stage, units in list(self._counters.items())
            if stage not in self._finished
            for unit, counter in list(units.items())
        ]
        elapsed = time.perf_counter() - self._begun
        shown = f"{self._current or 'starting'}: {', '.join(counts)}" if counts else self._current or "starting"
        return f"depaudit: {shown} ({elapsed:.0f} s)"


class _StatusLine:
    """Rendered by the display's own thread at each refresh: the scan only bumps counters."""

    def __init__(self, progress: StderrProgress) -> None:
        from rich.spinner import Spinner

        self._progress = progress
        self._spinner = Spinner("dots")

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        line = self._spinner.render(console.get_time())  # with no text of its own: the frame, a Text
        assert isinstance(line, Text)
        line.append(f" {self._progress.status()}")
        # One line, cut to the width: a wrapped status line leaves its first half behind.
        line.no_wrap, line.overflow = True, "ellipsis"
        yield line
