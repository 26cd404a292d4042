"""Scratch folders (what a scan copies out of an image) are removed on every exit path: a result,
an error, exit 3, Ctrl-C, SIGTERM; a run killed outright (SIGKILL) leaves its folder, and the next
run removes it, never the folder of a run still going, even one whose pid it cannot see.

The slow scan is real: an OCI layout whose one layer is a 4 GiB sparse tar (nothing on disk)
that the digest check reads to its end. The test waits for the scan's scratch folder to appear,
then signals it while it hashes.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from depaudit.scratch import release_all, remove_stale_scratch, scratch_folder
from image_builders import config_bytes, docker_save, file, sha256, tar_bytes

SLOW_LAYER = 4 << 30


def _slow_image(root: Path) -> Path:
    """An OCI layout folder whose layer is a sparse tar of one 4 GiB file, named by a digest
    it does not hold: the check reads every byte before it can say so."""
    layout = root / "slow.oci"
    (layout / "blobs/sha256").mkdir(parents=True)
    layer = "0" * 64
    info = tarfile.TarInfo("big")
    info.size = SLOW_LAYER
    with open(layout / "blobs/sha256" / layer, "wb") as out:
        out.write(info.tobuf(tarfile.PAX_FORMAT))
        out.truncate(out.tell() + SLOW_LAYER + 2 * tarfile.BLOCKSIZE)  # the content, then the end marker: zeros
    config = config_bytes([])
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": f"sha256:{sha256(config)}"},
                           "layers": [{"digest": f"sha256:{layer}"}]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{"digest": f"sha256:{sha256(manifest)}"}]}).encode()
    for blob in (config, manifest):
        (layout / "blobs/sha256" / sha256(blob)).write_bytes(blob)
    (layout / "index.json").write_bytes(index)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return layout


@pytest.fixture()
def scene(tmp_path: Path) -> dict[str, Path]:
    service, site_packages, tmpdir = tmp_path / "svc", tmp_path / "site-packages", tmp_path / "tmp"
    for made in (service, site_packages, tmpdir):
        made.mkdir()
    (service / "main.py").write_text('import ctypes\nctypes.CDLL("libz.so.1")\n')
    quick = docker_save(tmp_path / "quick.tar", [tar_bytes([file("etc/os-release", b'ID=debian\nVERSION_ID="12"\n')])])
    return {"service": service, "site_packages": site_packages, "tmpdir": tmpdir, "slow": _slow_image(tmp_path), "quick": quick}


def _start(scene: dict[str, Path], image: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "depaudit", "scan", str(scene["service"]), "--image", str(scene[image]),
               "--site-packages", str(scene["site_packages"]), "--no-cache", "--jobs", "1", "--no-progress"]
    env = {**os.environ, "TMPDIR": str(scene["tmpdir"])}
    # A suite started in the background by a shell without job control ignores SIGINT, and so
    # would the scan (Python keeps an inherited SIG_IGN): the scan gets Ctrl-C as a terminal has it.
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _scratch_appears(process: subprocess.Popen[str], tmpdir: Path) -> Path:
    """The scan's scratch folder, once it exists (the scan is then hashing its 4 GiB layer)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        made = [tmpdir / name for name in os.listdir(tmpdir) if name.startswith(f"depaudit-image-{process.pid}-")]
        if made:
            return made[0]
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    raise AssertionError("the scan made no scratch folder in 120 s")


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [(signal.SIGTERM, 143, "depaudit: terminated (SIGTERM)\n"), (signal.SIGINT, 130, "depaudit: interrupted\n")],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_signalled_scan_removes_its_scratch_folder(scene: dict[str, Path], signum: int, code: int, said: str) -> None:
    process = _start(scene, "slow")
    scratch = _scratch_appears(process, scene["tmpdir"])
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert (process.returncode, stdout, stderr) == (code, "", said)
    assert not scratch.exists() and os.listdir(scene["tmpdir"]) == []


def test_a_killed_scans_folder_is_removed_by_the_next_run_never_a_live_ones(scene: dict[str, Path]) -> None:
    killed = _start(scene, "slow")
    stale = _scratch_appears(killed, scene["tmpdir"])
    killed.kill()
    killed.communicate(timeout=60)
    assert stale.is_dir()  # SIGKILL: nothing could run
    live = _start(scene, "slow")
    going = _scratch_appears(live, scene["tmpdir"])
    try:
        quick = _start(scene, "quick")
        stdout, stderr = quick.communicate(timeout=300)
        assert quick.returncode == 1, stderr  # libz is missing from the quick image: the gate fails
        assert not stale.exists()
        assert going.is_dir() and os.listdir(scene["tmpdir"]) == [going.name]  # the live run's is kept; the quick one's is gone
    finally:
        live.terminate()
        live.communicate(timeout=120)
    assert live.returncode == 143 and os.listdir(scene["tmpdir"]) == []


def test_a_scan_that_ends_well_leaves_nothing(scene: dict[str, Path]) -> None:
    quick = _start(scene, "quick")
    stdout, stderr = quick.communicate(timeout=300)
    assert (quick.returncode, stderr) == (1, "")
    assert "libz.so.1" in stdout and os.listdir(scene["tmpdir"]) == []


def test_an_internal_error_removes_the_scratch_folder_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 3: a bug met after the image was opened (no input makes one on purpose, so main is
    replaced by one that opens a scratch folder and fails)."""
    import tempfile

    import depaudit.cli as cli

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    made: list[Path] = []

    def failing(argv: object = None) -> int:
        made.append(scratch_folder("depaudit-image-"))
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "main", failing)
    assert cli.run() == 3
    assert "depaudit: internal error: RuntimeError: a bug" in capsys.readouterr().err
    assert made and not made[0].exists() and os.listdir(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the caller's handler is back


def _a_pid_no_process_has() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


def test_a_folder_whose_pid_is_gone_but_whose_lock_is_held_is_kept(tmp_path: Path) -> None:
    """A run in another container sharing the temporary folder: its pid is none here, but the
    lock it holds on its folder is seen."""
    folder = tmp_path / f"depaudit-image-{_a_pid_no_process_has()}-other"
    (folder / "root").mkdir(parents=True)
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        assert remove_stale_scratch(tmp_path) == [] and folder.is_dir()
    finally:
        os.close(handle)
    assert remove_stale_scratch(tmp_path) == [folder] and not folder.exists()


def test_only_our_names_are_swept_and_never_through_a_link(tmp_path: Path) -> None:
    dead = _a_pid_no_process_has()
    kept = [tmp_path / "depaudit-image-x-1", tmp_path / f"other-{dead}-1", tmp_path / f"depaudit-image-{dead}"]
    for folder in kept:
        folder.mkdir()
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "precious").write_text("x")
    (tmp_path / f"depaudit-image-{dead}-link").symlink_to(tmp_path / "target")
    assert remove_stale_scratch(tmp_path) == []
    assert all(folder.is_dir() for folder in kept) and (tmp_path / "target" / "precious").exists()


def test_a_folder_made_but_not_yet_recorded_when_the_run_ends_is_removed_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal between the folder's making and its recording: the last step finds it by name."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ours = tmp_path / f"depaudit-image-{os.getpid()}-unrecorded"
    (ours / "layer").mkdir(parents=True)
    theirs = tmp_path / f"depaudit-image-{_a_pid_no_process_has()}-other"
    theirs.mkdir()
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "precious").write_text("x")
    (tmp_path / f"depaudit-image-{os.getpid()}-link").symlink_to(tmp_path / "target")
    release_all()
    assert not ours.exists() and theirs.is_dir() and (tmp_path / "target" / "precious").exists()


@pytest.mark.parametrize("whom", ["the scan", "its process group"])
def test_a_sigterm_while_workers_parse_ends_them_all_and_cleans_up(scene: dict[str, Path], whom: str) -> None:
    """Workers forked with the handler in place die as SIGTERM means (a cancelled CI job signals
    the whole group); the scan unwinds, exits 143 and removes its folder. 300 modules of 300
    functions each keep two workers parsing for many seconds: the signal comes while they do."""
    body = "".join(f"def f{n}(x):\n    import json\n    return [json.dumps(x) for _ in range({n})]\n" for n in range(300))
    for number in range(300):
        (scene["service"] / f"m{number}.py").write_text(body)
    (scene["service"] / "main.py").write_text("".join(f"import m{number}\n" for number in range(300)))
    command = [sys.executable, "-m", "depaudit", "scan", str(scene["service"]), "--image", str(scene["quick"]),
               "--site-packages", str(scene["site_packages"]), "--no-cache", "--jobs", "2", "--no-progress"]
    process = subprocess.Popen(command, env={**os.environ, "TMPDIR": str(scene["tmpdir"])}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    listing = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    workers: list[str] = []
    deadline = time.monotonic() + 120
    while not workers and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            workers = listing.read_text().split()
        except FileNotFoundError:
            process.kill()
            pytest.skip("this kernel does not list a process's children")
        time.sleep(0.01)
    assert workers and os.listdir(scene["tmpdir"]) != []
    if whom == "the scan":
        process.send_signal(signal.SIGTERM)
    else:
        os.killpg(process.pid, signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert (process.returncode, stdout, stderr) == (143, "", "depaudit: terminated (SIGTERM)\n")
    assert os.listdir(scene["tmpdir"]) == []
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{worker}").exists() for worker in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [worker for worker in workers if Path(f"/proc/{worker}").exists()] == []
