"""The whole-scan memo: a warm run with nothing changed gives back the report the scan made;
each kind of input changed in turn makes it miss, and the report is then what a scan without
any cache says, byte for byte."""

from __future__ import annotations

import os
import shutil
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from depaudit import consulted
from depaudit.cli import main
from depaudit.packages.rules import rules_dir
from helpers import build_image_scene, build_so, have_gcc, make_dist
from lock_wheels import write_wheel
from test_consulted import _docker_save
from test_fleet_config import _monorepo

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")


def _age(*roots: Path) -> None:
    """Every file and folder below `roots` changed 10 s ago: a scan memoises nothing that changed
    within consulted.RACY_NS of its start (a later change could keep the same times)."""
    then = time.time() - 10
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in [*dirs, *files]:
                os.utime(os.path.join(folder, name), (then, then), follow_symlinks=False)
        os.utime(root, (then, then))


class Scans:
    """`depaudit scan` in this process, its JSON report and what -v said of the memo."""

    def __init__(self, capsys: pytest.CaptureFixture[str], out: Path, arguments: list[str]) -> None:
        self.capsys, self.out, self.arguments = capsys, out, arguments
        self.runs = 0
        # What -v said of the python and native stages, per run, less their times (None: they did not run).
        self.python: list[str | None] = []
        self.native: list[str | None] = []

    def __call__(self, *extra: str) -> tuple[bytes, str]:
        self.runs += 1
        output = self.out / f"report-{self.runs}.json"
        self.capsys.readouterr()
        code = main(["scan", *self.arguments, "--format", "json", "--output", str(output), "--fail-on", "never", "-v", "--no-progress", *extra])
        said = self.capsys.readouterr().err
        for stage, told in (("python", self.python), ("native", self.native)):
            line = next((line for line in said.splitlines() if line.startswith(f"depaudit: {stage}:")), None)
            told.append(line.rsplit(" (", 1)[0] if line is not None else None)
        assert code == 0, said
        memo = [line for line in said.splitlines() if "memo" in line]
        return output.read_bytes(), "\n".join(memo)

    def changed(self, change: Callable[[], object], *aged: Path, differs: bool, before: bytes, extra: tuple[str, ...] = ()) -> bytes:
        """Make `change`, then: the memo misses, the report is what --no-cache says, and (with
        `differs`) not what it was; the next run is a hit with the same report."""
        change()
        _age(*aged)
        after, said = self(*extra)
        assert "memo hit" not in said, said
        assert "changed:" in said or "no memo of this scan" in said, said
        uncached, said_uncached = self("--no-cache", *extra)
        assert said_uncached == ""  # --no-cache: no memo read or written
        assert after == uncached
        assert (after != before) is differs
        again, said = self(*extra)
        assert "memo hit" in said and again == after, said
        return after


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    config = _monorepo(tmp_path / "repo")
    _age(tmp_path / "repo")
    return config


def test_a_warm_run_gives_the_memoised_report_and_says_so(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scan = Scans(capsys, tmp_path, ["--config", str(repo), "--cache-dir", str(tmp_path / "cache"), "-j", "1"])
    cold, said = scan()
    assert said.startswith("depaudit: no memo of this scan; memoised (")
    warm, said = scan()
    assert said.startswith("depaudit: memo hit (") and warm == cold
    assert len(list((tmp_path / "cache/memo").glob("*.pickle"))) == 1
    uncached, _ = scan("--no-cache")
    parallel, _ = scan("--no-cache", "-j", "2")
    assert uncached == parallel == cold
    assert scan("-j", "2") == (cold, said)  # the same scan with more processes: the same memo
    # Every output as a cold scan writes it: the table on stdout, --output-dir's files.
    assert main(["scan", "--config", str(repo), "--no-cache", "--output-dir", str(tmp_path / "cold-dir"), "--fail-on", "never"]) == 0
    cold_table = capsys.readouterr().out
    assert main(["scan", "--config", str(repo), "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(tmp_path / "warm-dir"), "--fail-on", "never"]) == 0
    assert capsys.readouterr().out == cold_table and "libgl1" in cold_table
    written = sorted(p.relative_to(tmp_path / "cold-dir") for p in (tmp_path / "cold-dir").rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(tmp_path / "warm-dir") for p in (tmp_path / "warm-dir").rglob("*") if p.is_file())
    assert all((tmp_path / "cold-dir" / p).read_bytes() == (tmp_path / "warm-dir" / p).read_bytes() for p in written)
    # The exit code as a cold scan's, for each --fail-on (the default fails: libgl1 is missing).
    for fail_on, code in (("missing", 1), ("never", 0)):
        assert main(["scan", "--config", str(repo), "--cache-dir", str(tmp_path / "cache"), "--format", "json", "--fail-on", fail_on]) == code
        assert capsys.readouterr().out.encode() == cold
    # A folder the scan listed whose times moved, its entries the same (an editor's swap file,
    # come and gone): still a hit.
    (repo.parent / "agents/.face.py.swp").write_text("")
    (repo.parent / "agents/.face.py.swp").unlink()
    assert scan()[1].startswith("depaudit: memo hit")
    # Once its times are old enough to be trusted (RACY_NS), the folder is stamped anew.
    then = time.time() - 10
    os.utime(repo.parent / "agents", (then, then))
    (entry,) = (tmp_path / "cache/memo").glob("*.pickle")
    stored = entry.read_bytes()
    assert scan()[1].startswith("depaudit: memo hit")
    restamped = entry.read_bytes()
    assert restamped != stored
    assert scan()[1].startswith("depaudit: memo hit") and entry.read_bytes() == restamped
    # Another option is another scan, beside this one; both stay.
    hoisted, said = scan("--hoist")
    assert "memo hit" not in said
    assert scan("--hoist")[1].startswith("depaudit: memo hit") and scan()[1].startswith("depaudit: memo hit")
    assert len(list((tmp_path / "cache/memo").glob("*.pickle"))) == 2


def test_a_scan_of_inputs_changed_just_before_it_is_not_memoised(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scan = Scans(capsys, tmp_path, ["--config", str(repo), "--cache-dir", str(tmp_path / "cache"), "-j", "1"])
    (repo.parent / "shared/common.py").write_text("import os\nimport sys\n")  # now: within RACY_NS
    _, said = scan()
    assert said.endswith(f"not memoised: {repo.parent / 'shared/common.py'} changed less than {consulted.RACY_NS // 10**9} s before the scan")
    assert "memo hit" not in scan()[1]


def test_each_kind_of_input_changed_misses_and_gives_the_uncached_report(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = repo.parent
    scan = Scans(capsys, tmp_path, ["--config", str(repo), "--cache-dir", str(tmp_path / "cache"), "-j", "2"])
    report, _ = scan()
    assert "memo hit" in scan()[1]

    # A service file.
    report = scan.changed(lambda: (root / "agents/helpers_here.py").write_text("import json\nimport yaml\n"), root, differs=True, before=report)
    assert b'"yaml"' in report
    # A new module that shadows an import: agents/ is the entry's sys.path[0].
    report = scan.changed(lambda: (root / "agents/visionlib.py").write_text(""), root, differs=True, before=report)
    assert b"libGL.so.1" not in report
    (root / "agents/visionlib.py").unlink()
    report = scan.changed(lambda: None, root, differs=True, before=report)  # removed again
    # A wheel's shared object: the bundled library now needs libX11 too.
    stubs, sp = root / "envs/vision/stubs", root / "envs/vision/site-packages"
    report = scan.changed(
        lambda: build_so(sp / "visionlib.libs/libvis-1a2b.so.1", soname="libvis-1a2b.so.1", needed=[stubs / "libGL.so.1", stubs / "libX11.so.6"]),
        root, differs=True, before=report,
    )
    assert b"libX11.so.6" in report
    # A RECORD: audiolib no longer lists its extension module.
    record = next((root / "envs/audio/site-packages").glob("audiolib-*.dist-info")) / "RECORD"
    report = scan.changed(
        lambda: record.write_text("".join(line + "\n" for line in record.read_text().splitlines() if ".so" not in line)),
        root, differs=True, before=report,
    )
    # A family Dockerfile: it installs libGL's package itself now.
    dockerfile = root / "docker/family-vision/Dockerfile"
    report = scan.changed(
        lambda: dockerfile.write_text("FROM base-gpu\nRUN apt-get update && apt-get install -y --no-install-recommends libgl1 && rm -rf /var/lib/apt/lists/*\n"),
        root, differs=True, before=report,
    )
    # The config: Speaker is no longer a service.
    report = scan.changed(
        lambda: repo.write_text(repo.read_text().split("[services.Speaker]")[0]), root, differs=True, before=report
    )
    assert b"Speaker" not in report
    # A rules file: the same bytes, written again (what the report says cannot change, the memo
    # must not be trusted).
    rules = rules_dir() / "ubuntu-22.04.toml"
    status = rules.stat()
    try:
        report = scan.changed(lambda: os.utime(rules, ns=(status.st_atime_ns, status.st_mtime_ns - 10**9)), root, differs=False, before=report)
    finally:
        os.utime(rules, ns=(status.st_atime_ns, status.st_mtime_ns))
    scan()  # the rules as they were: memoised again
    # An option.
    scan.changed(lambda: None, root, differs=True, before=report, extra=("--distro", "debian-12"))


def test_a_scan_after_a_service_file_edit_takes_the_native_stage_as_kept_until_a_wheel_changes(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole-scan memo misses on an edited service file; each environment, loaded, and its
    native stage, whose wheel files are as they were, are given back (stage_memo.py), and the
    report is still what --no-cache says. A wheel's file changed after such a run makes its environment's stage
    run again; the other environment's is still given back."""
    root = repo.parent
    scan = Scans(capsys, tmp_path, ["--config", str(repo), "--cache-dir", str(tmp_path / "cache"), "-j", "2"])
    report, _ = scan()
    assert scan.native[-1] is not None and "as kept" not in scan.native[-1]  # cold: nothing kept yet
    assert "memo hit" in scan()[1]

    def native_of_the_miss() -> str | None:
        return scan.native[-3]  # changed(): the miss, --no-cache, then the hit (no stage runs)

    def python_of_the_miss() -> str | None:
        return scan.python[-3]

    loaded, both = "2 environment(s), 3 distributions reached", "2 environment(s) (2 as kept by a scan before), 3 distributions reached"
    assert scan.python[0] == f"depaudit: python: {loaded}"

    # Only what each change touched is aged: aging a file changes its ctime, which a stamp holds.
    # Each edit of face.py changes what collect reads of it (a comment alone would not miss:
    # memo_edit.py, tests/test_memo_edit.py), never which wheels are reached.
    face = root / "agents/face.py"
    report = scan.changed(lambda: face.write_text(face.read_text() + "import json\n"), face, differs=False, before=report)
    assert native_of_the_miss() == "depaudit: native: 3 distribution walks, 2 environment(s) as kept by a scan before"
    assert python_of_the_miss() == f"depaudit: python: {both}"
    assert scan.python[-2] == f"depaudit: python: {loaded}"
    assert scan.native[-2] == "depaudit: native: 3 distribution walks, 4 ELF objects read, 2 files searched for hints"  # --no-cache
    # Again, with an import of nothing installed: the same wheels are reached, so the stage is still given back.
    report = scan.changed(lambda: face.write_text(face.read_text() + "import yaml\n"), face, differs=True, before=report)
    assert native_of_the_miss() == "depaudit: native: 3 distribution walks, 2 environment(s) as kept by a scan before"
    # A wheel's Python file now loads a library by name: the vision environment's stage runs again.
    init = root / "envs/vision/site-packages/visionlib/__init__.py"
    report = scan.changed(lambda: init.write_text('import ctypes\nctypes.CDLL("libasound.so.2")\n'), init, differs=True, before=report)
    assert b'"libasound.so.2"' in report
    assert python_of_the_miss() == f"depaudit: python: {both}"  # the RECORDs are as they were
    assert native_of_the_miss() == (
        "depaudit: native: 3 distribution walks, 1 environment(s) as kept by a scan before, 0 ELF objects read, 1 files searched for hints"
    )
    # A service file edited after that partial reuse: both given back, the wheel's hint still there.
    report = scan.changed(lambda: face.write_text(face.read_text() + "import os\n"), face, differs=False, before=report)
    assert b'"libasound.so.2"' in report
    assert native_of_the_miss() == "depaudit: native: 3 distribution walks, 2 environment(s) as kept by a scan before"
    # A wheel's shared object: the bundled library now needs libXext too.
    stubs, sp = root / "envs/vision/stubs", root / "envs/vision/site-packages"
    report = scan.changed(
        lambda: build_so(sp / "visionlib.libs/libvis-1a2b.so.1", soname="libvis-1a2b.so.1", needed=[stubs / "libGL.so.1", build_so(stubs / "libXext.so.6", soname="libXext.so.6")]),
        stubs, sp / "visionlib.libs", differs=True, before=report,
    )
    assert b'"libXext.so.6"' in report
    assert native_of_the_miss() == (
        "depaudit: native: 3 distribution walks, 1 environment(s) as kept by a scan before, 1 ELF objects read, 0 files searched for hints"
    )
    # A RECORD: audiolib no longer lists its extension module (the audio environment runs again).
    record = next((root / "envs/audio/site-packages").glob("audiolib-*.dist-info")) / "RECORD"
    report = scan.changed(
        lambda: record.write_text("".join(line + "\n" for line in record.read_text().splitlines() if ".so" not in line)),
        record, differs=True, before=report,
    )
    assert native_of_the_miss() == (
        "depaudit: native: 3 distribution walks, 1 environment(s) as kept by a scan before, 0 ELF objects read, 0 files searched for hints"
    )
    assert python_of_the_miss() == "depaudit: python: 2 environment(s) (1 as kept by a scan before), 3 distributions reached"
    assert len(list((tmp_path / "cache/stages").glob("*.pickle"))) >= 2


def test_an_image_layer_and_an_environment_variable_are_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"  # walked for family Dockerfiles; the reports and the cache are written outside it
    rootfs, sp = build_image_scene(tree / "scene")
    service = tree / "work/svc"
    service.mkdir(parents=True)
    (service / "main.py").write_text("import app\n")
    image = _docker_save(tree / "image.tar", rootfs)
    (tmp_path / "out").mkdir()
    _age(tree)
    # No --site-packages: $VIRTUAL_ENV names the environment.
    monkeypatch.setenv("VIRTUAL_ENV", str(sp))
    scan = Scans(capsys, tmp_path / "out", [str(service), "--image", str(image), "--cache-dir", str(tmp_path / "cache")])
    report, _ = scan()
    assert "memo hit" in scan()[1]
    assert b'"libdefault.so.1"' in report and b'"base-image"' in report

    # An image layer: libdefault is gone from the image.
    def remove_libdefault() -> None:
        lib = rootfs / "usr/lib/x86_64-linux-gnu"
        (lib / "libdefault.so.1").unlink()
        (lib / "libdefault.so.1.2.3").unlink()
        _docker_save(image, rootfs)

    report = scan.changed(remove_libdefault, tree, differs=True, before=report)
    # An environment variable the scan reads: another environment, one distribution more.
    other = tree / "other-env"
    shutil.copytree(sp, other, symlinks=True)
    make_dist(other, "extra", files={"extra.py": ""})
    scan.changed(lambda: monkeypatch.setenv("VIRTUAL_ENV", str(other)), tree, differs=True, before=report)
    # One it does not read changes nothing.
    monkeypatch.setenv("DEPAUDIT_UNRELATED", "1")
    assert "memo hit" in scan()[1]


def test_a_wheel_of_a_lock_rewritten_in_place_is_another_scan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The folder's names and times stay (the file is truncated and written again): the wheel is
    an input of its own."""
    root = tmp_path / "fleet"
    (root / "services" / "svc").mkdir(parents=True)
    (root / "services" / "svc" / "main.py").write_text("import pkg\n")
    (root / "wheels").mkdir()
    (root / "requirements.txt").write_text("pkg==1.0\n")
    wheel = root / "wheels" / "pkg-1.0-py3-none-any.whl"

    def build(requires: str) -> bytes:
        made = write_wheel(
            tmp_path / "made.whl", {"pkg/__init__.py": (b"", zipfile.ZIP_DEFLATED)}, "pkg-1.0.dist-info",
            f"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\nRequires-Dist: {requires}\n",
        )
        return made.read_bytes()

    wheel.write_bytes(build("numpy"))
    _age(root)
    scan = Scans(capsys, tmp_path, [str(root / "services"), "--lock", str(root / "requirements.txt"), "--find-links", str(root / "wheels"),
                                    "--python-version", "3.11", "--distro", "ubuntu-22.04", "--cache-dir", str(tmp_path / "cache"), "-j", "1"])
    before, _ = scan()
    assert scan()[1].startswith("depaudit: memo hit")
    inode = wheel.stat().st_ino

    def rewrite() -> None:
        with open(wheel, "r+b") as stream:
            stream.truncate(0)
            stream.write(build("sympy"))

    after = scan.changed(rewrite, root, differs=True, before=before)
    assert wheel.stat().st_ino == inode
    assert b"sympy is required by pkg 1.0" in after and b"numpy is required" not in after
