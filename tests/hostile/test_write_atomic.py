"""`--write` is atomic: a writer stopped at any step leaves the old Dockerfile or the new one,
never a part of either, and no temporary file outlives the next write.

Stops are real: a write in a child process that SIGKILLs itself at a step (mid-write, before
fsync, before the rename, right after it), and failures injected in-process (a full disk at each
system call), through write_atomic and through the CLI.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from depaudit.cli import main
from depaudit.atomic import remove_stale_temporaries, write_atomic

OLD = "FROM base\nRUN apt-get update && apt-get install -y --no-install-recommends libsm6 && rm -rf /var/lib/apt/lists/*\n"
NEW = OLD.replace("libsm6", "libsm6 " + " ".join(f"libdemo{n}" for n in range(20_000)))  # ~300 kB: many write calls


def temporaries(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name != "Dockerfile")


@pytest.fixture()
def dockerfile(tmp_path: Path) -> Path:
    path = tmp_path / "docker" / "Dockerfile"
    path.parent.mkdir()
    path.write_text(OLD)
    path.chmod(0o640)
    return path


# A child that kills itself at one step of write_atomic -------------------------------------------
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from depaudit.atomic import write_atomic

    path, step = Path(sys.argv[1]), sys.argv[2]
    real_write, real_replace = os.write, os.replace

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def write(fd, data):  # half of the first chunk reaches the disk, then the process dies
        real_write(fd, bytes(data[: len(data) // 2]))
        die()

    def replace(*args):
        real_replace(*args)
        die()

    if step == "mid-write":
        os.write = write
    elif step == "before-fsync":
        os.fsync = lambda fd: die()
    elif step == "before-rename":
        os.replace = lambda *args: die()
    elif step == "renamed":
        os.replace = replace
    write_atomic(path, sys.stdin.read())
    """
)


@pytest.mark.parametrize("step", ["mid-write", "before-fsync", "before-rename", "renamed"])
def test_a_writer_killed_at_any_step_leaves_the_old_file_or_the_new_one(dockerfile: Path, step: str) -> None:
    result = subprocess.run([sys.executable, "-c", CHILD, str(dockerfile), step], input=NEW, capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert dockerfile.read_text() == (NEW if step == "renamed" else OLD)
    assert dockerfile.stat().st_mode & 0o777 == 0o640
    # A killed writer cannot remove its temporary file ...
    left = temporaries(dockerfile.parent)
    assert len(left) == (0 if step == "renamed" else 1) and all(n.startswith(".Dockerfile.depaudit-") for n in left)
    # ... the next write to the folder does, and writes whole.
    write_atomic(dockerfile, OLD)
    assert (dockerfile.read_text(), temporaries(dockerfile.parent)) == (OLD, [])


# Failures injected in-process --------------------------------------------------------------------
def _full_disk(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("call", ["write", "fchmod", "fsync", "replace"])
def test_a_failing_system_call_leaves_the_old_file_and_no_temporary(
    dockerfile: Path, monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    monkeypatch.setattr(os, call, _full_disk)
    with pytest.raises(OSError) as raised:
        write_atomic(dockerfile, NEW)
    assert raised.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert (dockerfile.read_text(), temporaries(dockerfile.parent)) == (OLD, [])


def test_only_our_temporaries_of_dead_writers_are_removed(dockerfile: Path) -> None:
    folder = dockerfile.parent
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    names = {
        "dead": f".Dockerfile.depaudit-{dead.stdout.strip()}-0123abcd",
        "alive": f".Dockerfile.depaudit-{os.getpid()}-0123abcd",  # a write in progress
        "editor": ".Dockerfile.swp",
        "lookalike": ".Dockerfile.depaudit-12-notours",
    }
    for name in names.values():
        (folder / name).write_text("x")
    assert remove_stale_temporaries(folder) == [folder / names["dead"]]
    assert temporaries(folder) == sorted(n for key, n in names.items() if key != "dead")


# Through the command line ------------------------------------------------------------------------
def _fleet(root: Path) -> Path:
    (root / "services/tts").mkdir(parents=True)
    (root / "services/tts/main.py").write_text('import subprocess\nsubprocess.run(["ffmpeg"])\n')
    (root / "services/tts/Dockerfile").write_text("FROM family-audio\n")
    (root / "docker/family-audio").mkdir(parents=True)
    (root / "docker/family-audio/Dockerfile").write_text(OLD)
    (root / "site-packages").mkdir()
    return root / "docker/family-audio/Dockerfile"


def _write(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.chdir(root)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["scan", "services", "--site-packages", "site-packages", "--no-cache", "-j", "1", "--write", "--format", "json"])
    return code, out.getvalue(), err.getvalue()


def test_the_cli_write_failing_is_a_one_line_error_and_leaves_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dockerfile = _fleet(tmp_path)
    monkeypatch.setattr(os, "replace", _full_disk)
    code, out, err = _write(tmp_path, monkeypatch)
    assert (code, out, err) == (2, "", f"depaudit: error: cannot write {dockerfile}: No space left on device\n")
    assert (dockerfile.read_text(), temporaries(dockerfile.parent)) == (OLD, [])


def test_the_cli_writes_a_symlinked_dockerfile_where_it_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dockerfile = _fleet(tmp_path)
    shared = tmp_path / "docker/shared.Dockerfile"
    dockerfile.rename(shared)
    dockerfile.symlink_to("../shared.Dockerfile")
    code, out, err = _write(tmp_path, monkeypatch)
    assert code == 1 and json.loads(out)["families"][0]["add"][0]["package"] == "ffmpeg"
    assert err == f"depaudit: patched {dockerfile} (family family-audio)\n"
    assert dockerfile.is_symlink() and os.readlink(dockerfile) == "../shared.Dockerfile"  # the link kept
    assert shared.read_text() == OLD.replace("libsm6", "libsm6 ffmpeg")
    assert temporaries(dockerfile.parent) == []


def test_a_killed_runs_scratch_folder_is_removed_by_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from depaudit.scratch import scratch_folder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = _a_pid_no_process_has()
    stale = tmp_path / f"depaudit-image-{dead}-abc"
    (stale / "root").mkdir(parents=True)
    live = tmp_path / f"depaudit-image-{os.getpid()}-xyz"  # a scan running now, in this process
    live.mkdir()
    mine = scratch_folder("depaudit-image-")
    assert not stale.exists() and live.exists()
    assert mine.parent == tmp_path and mine.name.startswith(f"depaudit-image-{os.getpid()}-")


def _a_pid_no_process_has() -> int:
    import subprocess

    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid  # reaped: nothing runs under it now (reuse within the test is vanishingly rare)
