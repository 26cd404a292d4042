"""What `depaudit scan` says besides its report, and where: -q, -v, the status line on a
terminal (and nowhere else), colour by --no-color, NO_COLOR and FORCE_COLOR.

A terminal is a real pseudo-terminal (the `pty` module): the process sees a tty as a user's
shell gives it. DEPAUDIT_PROGRESS_DELAY=0 shows the status line from the start, so that a
scan of a fraction of a second shows it as a long one does after a second."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from depaudit.parallel import Workers
from depaudit.terminal import colour_choice
from helpers import build_vision_env, have_gcc

ESC = b"\x1b["
HIDE_CURSOR = b"\x1b[?25l"
ERASE_LINE = b"\x1b[2K"

needs_gcc = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")


@pytest.fixture(scope="module")
def vision_sp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_vision_env(tmp_path_factory.mktemp("vision-output"))


def _service(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "svc"
    folder.mkdir(parents=True)
    (folder / "main.py").write_text(source)
    return folder


def _env(**changes: str | None) -> dict[str, str]:
    """This environment without the variables that change colour and display, then `changes`."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM", "COLUMNS")}
    env.update(TERM="xterm-256color", DEPAUDIT_PROGRESS_DELAY="0")
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _piped(args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "depaudit", *args], capture_output=True, text=True, env=dict(env))


def _on_terminal(args: Sequence[str], env: Mapping[str, str], *, stdout_tty: bool = True) -> tuple[int, bytes, bytes]:
    """Run depaudit with stderr (and stdout, unless told) on pseudo-terminals of 200 columns;
    returns (exit code, stdout, stderr) as written, the terminal's \\r\\n made \\n."""
    masters: list[int] = []
    slaves: list[int] = []
    for _ in range(2 if stdout_tty else 1):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        masters.append(master)
        slaves.append(slave)
    stdout = slaves[0] if stdout_tty else subprocess.PIPE
    process = subprocess.Popen(
        [sys.executable, "-m", "depaudit", *args], stdout=stdout, stderr=slaves[-1], env=dict(env)
    )
    for slave in slaves:
        os.close(slave)
    read = {fd: b"" for fd in masters}
    open_fds = set(masters)
    while open_fds:  # drained as it comes: a full terminal buffer would block the child
        ready, _, _ = select.select(list(open_fds), [], [], 60)
        assert ready, "depaudit wrote nothing for 60 s"
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: every writer of the terminal has gone
                chunk = b""
            if chunk:
                read[fd] += chunk
            else:
                open_fds.discard(fd)
                os.close(fd)
    piped_out = process.stdout.read() if process.stdout is not None else b""
    code = process.wait()
    out = read[masters[0]] if stdout_tty else piped_out
    return code, out.replace(b"\r\n", b"\n"), read[masters[-1]].replace(b"\r\n", b"\n")


# -q


@needs_gcc
def test_quiet_prints_only_the_verdict(tmp_path: Path, vision_sp: Path) -> None:
    failing = _service(tmp_path / "a", "import visionlib\n")
    result = _piped(["scan", str(failing), "--site-packages", str(vision_sp), "-q"], _env())
    assert (result.returncode, result.stdout, result.stderr) == (1, "1 service(s) need what the image lacks: libgl1.\n", "")

    passing = _service(tmp_path / "b", "try:\n    import visionlib\nexcept ImportError:\n    visionlib = None\n")
    result = _piped(["scan", str(passing), "--site-packages", str(vision_sp), "--distro", "debian-12", "--quiet"], _env())
    assert (result.returncode, result.stdout, result.stderr) == (0, "No required library or program is missing from the image.\n", "")


@needs_gcc
def test_quiet_leaves_machine_formats_and_files_whole(tmp_path: Path, vision_sp: Path) -> None:
    service = _service(tmp_path, "import visionlib\n")
    scan = ["scan", str(service), "--site-packages", str(vision_sp)]
    loud, quiet = (_piped([*scan, "--format", "json", *extra], _env()) for extra in ([], ["-q"]))
    assert quiet.stdout == loud.stdout and quiet.stdout.startswith("{")
    assert (quiet.returncode, quiet.stderr) == (1, "")

    loud_file, quiet_file = tmp_path / "loud.txt", tmp_path / "quiet.txt"
    _piped([*scan, "--output", str(loud_file)], _env())
    result = _piped([*scan, "-q", "--output", str(quiet_file)], _env())
    assert (result.returncode, result.stdout, result.stderr) == (1, "", "")
    assert quiet_file.read_text() == loud_file.read_text()
    assert quiet_file.read_text().startswith("depaudit scan: 1 service(s)")


# -v

_STAGE_LINE = re.compile(r"depaudit: (\w+): (.+) \((\d+\.\d\d) s\)")


@needs_gcc
def test_verbose_names_every_stage_in_order_with_its_counts_and_time(tmp_path: Path, vision_sp: Path) -> None:
    service = _service(tmp_path, "import visionlib\n")
    result = _piped(["scan", str(service), "--site-packages", str(vision_sp), "--no-cache", "-v"], _env())
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    stages = [_STAGE_LINE.fullmatch(line) for line in lines[:-1]]
    assert all(stages), lines
    assert [(m[1], m[2]) for m in stages if m] == [
        ("fleet", "1 services, 0 families"),
        ("collect", "1 services, 1 files read, 1 files parsed"),
        ("python", "1 environment(s), 2 distributions reached"),
        ("native", "2 distribution walks, 3 ELF objects read, 2 files searched for hints"),
        ("packages", "5 needs, 1 services, 1 files searched for hints"),
        ("plan", "0 families, 0 package(s) to add"),
    ]
    assert re.fullmatch(r"depaudit: total \(\d+\.\d\d s\)", lines[-1])
    assert sum(float(m[3]) for m in stages if m) <= float(lines[-1].split("(")[1].split()[0]) + 0.01
    # stdout is the report alone, as without -v.
    assert result.stdout == _piped(["scan", str(service), "--site-packages", str(vision_sp)], _env()).stdout


# The status line


@needs_gcc
def test_a_terminal_shows_the_status_line_and_erases_it(tmp_path: Path, vision_sp: Path) -> None:
    service = _service(tmp_path, "import visionlib\n")
    code, out, err = _on_terminal(["scan", str(service), "--site-packages", str(vision_sp), "--no-cache"], _env())
    assert code == 1
    assert HIDE_CURSOR in err
    assert b"depaudit: starting (0 s)" in err  # drawn at once with DEPAUDIT_PROGRESS_DELAY=0
    assert re.search(rb"depaudit: (fleet|collect|python|native|packages|plan)\b", err)
    # Erased when the scan ended: nothing is written after the last line erase.
    assert err.rsplit(ERASE_LINE, 1)[1] == b""
    # Never on stdout: the report starts at its first line.
    assert out.startswith(b"depaudit scan: 1 service(s)") and HIDE_CURSOR not in out and b"starting" not in out


@needs_gcc
def test_a_pipe_a_file_or_the_wish_gets_no_status_line(tmp_path: Path, vision_sp: Path) -> None:
    service = _service(tmp_path, "import visionlib\n")
    scan = ["scan", str(service), "--site-packages", str(vision_sp)]
    # Piped stderr: none, even when FORCE_COLOR says colour.
    assert _piped(scan, _env(FORCE_COLOR="1")).stderr == ""
    # A terminal, but told not to, or too dumb to redraw a line, or -q: nothing at all on stderr.
    for args, env in ((["--no-progress"], _env()), ([], _env(TERM="dumb")), (["-q"], _env())):
        code, _, err = _on_terminal([*scan, *args], env, stdout_tty=False)
        assert (code, err) == (1, b""), (args, env.get("TERM"))


@needs_gcc
def test_the_status_line_waits_for_a_scan_to_run_long(tmp_path: Path, vision_sp: Path) -> None:
    service = _service(tmp_path, "import json\n")
    code, _, err = _on_terminal(["scan", str(service), "--site-packages", str(vision_sp)], _env(DEPAUDIT_PROGRESS_DELAY="60"))
    assert (code, err) == (0, b"")


def test_an_input_error_erases_the_status_line_first(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "main.py").write_text("import requests\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _on_terminal(["scan", str(tmp_path / "svc"), "--site-packages", str(empty)], _env(), stdout_tty=False)
    assert code == 2
    erased, message = err.rsplit(ERASE_LINE, 1)
    assert HIDE_CURSOR in erased
    assert message.startswith(b"depaudit: error: no installed distribution in ") and message.count(b"\n") == 1


# Colour


@needs_gcc
@pytest.mark.parametrize(
    ("args", "changes", "coloured"),
    [
        ([], {}, True),
        (["--no-color"], {}, False),
        ([], {"NO_COLOR": "1"}, False),
        ([], {"NO_COLOR": ""}, True),  # only a non-empty value says no
        (["--no-color"], {"FORCE_COLOR": "1"}, False),
        ([], {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
    ],
)
def test_colour_on_a_terminal(
    tmp_path: Path, vision_sp: Path, args: list[str], changes: dict[str, str], coloured: bool
) -> None:
    service = _service(tmp_path, "import visionlib\n")
    scan = ["scan", str(service), "--site-packages", str(vision_sp), "-v", "--no-progress", *args]
    code, out, err = _on_terminal(scan, _env(**changes))
    assert code == 1
    assert b"depaudit scan: 1 service(s)" in out and b"depaudit: " in err
    assert (ESC in out, ESC in err) == (coloured, coloured)


@needs_gcc
@pytest.mark.parametrize(("changes", "coloured"), [({}, False), ({"FORCE_COLOR": "1"}, True), ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False)])
def test_force_color_colours_a_pipe(tmp_path: Path, vision_sp: Path, changes: dict[str, str], coloured: bool) -> None:
    service = _service(tmp_path, "import visionlib\n")
    result = _piped(["scan", str(service), "--site-packages", str(vision_sp), "-v"], _env(**changes))
    assert ("\x1b[" in result.stdout, "\x1b[" in result.stderr) == (coloured, coloured)
    # Piped, forced or not, the table keeps the width of a file.
    assert max(map(len, re.sub(r"\x1b\[[0-9;]*m", "", result.stdout).splitlines())) > 80


@pytest.mark.parametrize(
    ("flag", "environ", "expected"),
    [
        (False, {}, None),
        (True, {}, False),
        (False, {"NO_COLOR": "1"}, False),
        (False, {"NO_COLOR": ""}, None),
        (False, {"FORCE_COLOR": "1"}, True),
        (False, {"FORCE_COLOR": "1", "NO_COLOR": "yes"}, False),
        (True, {"FORCE_COLOR": "1"}, False),
    ],
)
def test_colour_precedence(flag: bool, environ: dict[str, str], expected: bool | None) -> None:
    assert colour_choice(flag, environ) is expected


# The counting behind the status line


class _Recorded:
    """A ScanProgress that keeps what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, int]] = []

    def stage(self, name: str) -> None:
        self.calls.append(("stage", name, 0, 0))

    def count(self, unit: str, n: int = 1, *, expected: int = 0) -> None:
        self.calls.append(("count", unit, n, expected))

    def done(self, name: str, summary: str = "") -> None:
        self.calls.append(("done", name, 0, 0))


def _square(n: int) -> int:
    return n * n


@pytest.mark.parametrize("processes", [1, 2])
def test_workers_count_each_result_as_it_arrives(processes: int) -> None:
    told = _Recorded()
    with Workers(processes, told) as workers:
        assert workers.map(_square, list(range(10)), unit="squares") == [n * n for n in range(10)]
        assert workers.map(_square, [3, 4, 5, 6]) == [9, 16, 25, 36]  # no unit: not counted
    assert told.calls == [("count", "squares", 0, 10)] + [("count", "squares", 1, 0)] * 10
