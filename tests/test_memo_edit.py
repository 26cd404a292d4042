"""The whole-scan memo after an edit of a service file (memo_edit.py): an edit that changes nothing
the scan takes from the file (its imports with their lines and context, its calls of imported
names, its native hints, the lines that could hold an inline suppression) gives back the stored
report, and that report is byte for byte what a scan without any cache says of the edited tree.
Any other edit, or an edit together with any other change, is a miss, and the report is again
what --no-cache says."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from depaudit import consulted, memo
from helpers import REPO, build_so, have_gcc, make_dist
from test_fleet_config import _monorepo
from test_scan_memo import Scans, _age

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")

FACE = '''\
"""Face recognition: the entry script."""
import shared.vision
from helpers_here import greet
import kit


def main(path):
    total = 0
    for part in path.split("/"):
        total += len(part)
    return kit.play(path)
'''

HELPERS = '''\
import json
import subprocess


def greet():
    return json.dumps("hi")


def convert(path):
    subprocess.run(["ffmpeg", "-i", path])
'''

KIT = '''\
def play(path):
    import ctypes
    return ctypes.CDLL("libasound.so.2")


def stop(path):
    return path
'''


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The monorepo of test_fleet_config, its entry script calling into a wheel (kit.play loads
    libasound) and its helper starting ffmpeg (a native hint in the service's own code)."""
    config = _monorepo(tmp_path / "repo")
    root = config.parent
    make_dist(root / "envs/vision/site-packages", "kit", files={"kit/__init__.py": KIT})
    (root / "agents/face.py").write_text(FACE)
    (root / "agents/helpers_here.py").write_text(HELPERS)
    _age(root)
    return config


class Edits:
    """Scans of `repo` around edits: each edit is made, the files it names aged past the racy
    window, and the tree scanned with the cache and without."""

    def __init__(self, repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.root = repo.parent
        self.scan = Scans(capsys, tmp_path, ["--config", str(repo), "--cache-dir", str(tmp_path / "cache"), "-j", "2"])
        self.report, said = self.scan()
        assert said.startswith("depaudit: no memo of this scan; memoised (")
        assert self.scan()[1].startswith("depaudit: memo hit (")

    def edit(self, change: Callable[[], object], *aged: Path) -> tuple[bytes, str, bytes]:
        """The report and what -v said of the memo after `change`, and the report --no-cache
        gives of the edited tree."""
        change()
        _age(*aged)
        after, said = self.scan()
        uncached, said_uncached = self.scan("--no-cache")
        assert said_uncached == ""
        return after, said, uncached

    def reused(self, change: Callable[[], object], edited: Path, *aged: Path) -> None:
        """`change` changes no fact: the memo is reused, no stage runs, the report is the one
        kept and --no-cache's; the next run is a plain hit (the edit was stamped)."""
        after, said, uncached = self.edit(change, *(aged or (edited,)))
        assert said.startswith(f"depaudit: memo reused: {edited} edited, no collected fact changed ("), said
        assert self.scan.python[-2] is None and self.scan.native[-2] is None  # no stage ran
        assert after == uncached == self.report
        again, said = self.scan()
        assert said.startswith("depaudit: memo hit (") and again == after, said

    def missed(self, change: Callable[[], object], *aged: Path, differs: bool, why: str = "changed: ") -> bytes:
        """`change` is more than an edit that keeps every fact: a miss (-v says `why`), the scan
        runs, and its report is --no-cache's; with `differs`, not the one before."""
        after, said, uncached = self.edit(change, *aged)
        assert "memo reused" not in said and "memo hit" not in said, said
        assert said.startswith(f"depaudit: {why}"), said
        assert self.scan.python[-2] is not None  # the scan ran
        assert after == uncached
        assert (after != self.report) is differs
        again, said = self.scan()
        assert said.startswith("depaudit: memo hit (") and again == after, said
        self.report = after
        return after


def _append(path: Path, text: str) -> Callable[[], None]:
    return lambda: path.write_text(path.read_text() + text)


def _replace(path: Path, old: str, new: str) -> Callable[[], None]:
    def change() -> None:
        text = path.read_text()
        assert text.count(old) == 1
        path.write_text(text.replace(old, new))

    return change


def test_an_edit_that_changes_no_collected_fact_gives_the_memoised_report(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edits = Edits(repo, tmp_path, capsys)
    assert b'"libasound.so.2"' in edits.report and b'"ffmpeg"' in edits.report
    face, helpers = edits.root / "agents/face.py", edits.root / "agents/helpers_here.py"
    # A comment appended.
    edits.reused(_append(face, "# checked by hand\n"), face)
    # A function body changed, calling nothing an import binds (json is the stdlib's).
    edits.reused(_replace(face, "total += len(part)", "total = total + len(part) * 2"), face)
    edits.reused(_replace(helpers, 'json.dumps("hi")', 'json.dumps({"greeting": "hello"})'), helpers)
    # The docstring reworded on its own line; a comment inside a function.
    edits.reused(_replace(face, "Face recognition: the entry script.", "Recognises faces."), face)
    edits.reused(_replace(helpers, '    subprocess.run(["ffmpeg", "-i", path])\n', '    subprocess.run(["ffmpeg", "-i", path])  # slow\n'), helpers)
    # Saved as an editor does: a new file renamed over the old (another inode; the folder's
    # times move, its entries do not).
    def saved_by_rename() -> None:
        swap = edits.root / "agents/.face.py.new"
        swap.write_text(face.read_text() + "\n# saved by rename\n")
        then = face.stat().st_mtime - 10
        os.utime(swap, (then, then))
        os.replace(swap, face)

    edits.reused(saved_by_rename, face)
    # Two files at once, neither changing a fact.
    both = lambda: (_append(face, "# one\n")(), _append(helpers, "# two\n")())  # noqa: E731
    after, said, uncached = edits.edit(both, face, helpers)
    assert said.startswith(f"depaudit: memo reused: {face}, {helpers} edited, no collected fact changed (")
    assert after == uncached == edits.report


def test_an_edit_that_changes_a_collected_fact_or_comes_with_another_change_is_a_scan(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edits = Edits(repo, tmp_path, capsys)
    root = edits.root
    face, vision = root / "agents/face.py", root / "shared/vision.py"
    # An import added: yaml, which nothing provides.
    imports = f"changed: read {face} (its imports or calls of imported names changed); memoised ("
    report = edits.missed(_append(face, "import yaml\n"), face, differs=True, why=imports)
    assert b'"yaml"' in report
    # An import moved down a line: the evidence names its line.
    assert b'"shared/vision.py:2 import visionlib"' in report
    moved = lambda: vision.write_text("# the vision helpers\n" + vision.read_text())  # noqa: E731
    report = edits.missed(moved, vision, differs=True, why=f"changed: read {vision} (its imports or calls of imported names changed)")
    assert b'"shared/vision.py:3 import visionlib"' in report
    # A call that counts for reach: kit.play loads libasound, kit.stop nothing (libasound is
    # then only inside a function not known to be called: optional).
    assert b'"agents/face.py:11 calls kit.play"' in report
    report = edits.missed(_replace(face, "return kit.play(path)", "return kit.stop(path)"), face, differs=True, why=imports)
    assert b"calls kit.play" not in report and b'"inside a function not known to be called"' in report
    # The same call moved down a line (a blank line in the function): its line is evidence.
    edits.missed(_replace(face, "return kit.stop(path)", "return kit.play(path)"), face, differs=True, why=imports)
    report = edits.missed(_replace(face, "    total = 0\n", "    total = 0\n\n"), face, differs=True, why=imports)
    assert b'"agents/face.py:12 calls kit.play"' in report
    # A native hint changed: ffmpeg becomes ffprobe (of the same package).
    helpers = root / "agents/helpers_here.py"
    assert b"\"agents/helpers_here.py:10 subprocess.run('ffmpeg')\"" in report
    report = edits.missed(_replace(helpers, '"ffmpeg", "-i"', '"ffprobe", "-i"'), helpers, differs=True, why=f"changed: read {helpers} (its native hints changed)")
    assert b"\"agents/helpers_here.py:10 subprocess.run('ffprobe')\"" in report and b"subprocess.run('ffmpeg')" not in report
    # A comment edit with a file added beside it (never imported): the folder's listing changed.
    edits.missed(lambda: (_append(face, "# one\n")(), (root / "agents/extra.py").write_text("import torch\n")), face, root / "agents", differs=False)
    # … and with a file deleted.
    edits.missed(lambda: (_append(face, "# two\n")(), (root / "agents/unrelated.py").unlink()), face, root / "agents", differs=False)
    # … and with a wheel's shared object rebuilt: the bundled library needs libXext too.
    stubs, sp = root / "envs/vision/stubs", root / "envs/vision/site-packages"

    def with_a_library() -> None:
        _append(face, "# three\n")()
        xext = build_so(stubs / "libXext.so.6", soname="libXext.so.6")
        build_so(sp / "visionlib.libs/libvis-1a2b.so.1", soname="libvis-1a2b.so.1", needed=[stubs / "libGL.so.1", xext])

    report = edits.missed(with_a_library, face, stubs, sp / "visionlib.libs", differs=True)
    assert b'"libXext.so.6"' in report
    # A comment edit, the file now a link to the edited copy (links are never taken; the entry
    # script is read where the link leads).
    def made_a_link() -> None:
        copy = root / "agents/face_copy.txt"
        copy.write_text(face.read_text() + "# four\n")
        face.unlink()
        face.symlink_to(copy.name)

    report = edits.missed(made_a_link, face, root / "agents", differs=True, why=f"changed: probed {face};")  # the local finder asked what it is
    assert b'"agents/face_copy.txt:4 import kit"' in report
    # A comment alone, but an inline suppression on the line the needs point at.
    suppressed = _replace(vision, "import visionlib\n", "import visionlib  # depaudit: ignore[DA201] bundled at run time\n")
    report = edits.missed(suppressed, vision, differs=True, why=f"changed: read {vision} (a line that can hold an inline suppression changed)")
    assert b'"bundled at run time"' in report and b'"libXext.so.6"' not in report


def test_a_source_file_also_read_as_requirements_is_a_scan_when_edited(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """face.py named as the service's requirements file too: the requirements reader takes its
    lines as it likes, so no edit of it is taken as a source edit alone."""
    repo.write_text(repo.read_text().replace('entry = "agents/face.py"\n', 'entry = "agents/face.py"\nrequirements = ["agents/face.py"]\n'))
    _age(repo)
    edits = Edits(repo, tmp_path, capsys)
    face = edits.root / "agents/face.py"
    edits.missed(_append(face, "# a comment: no requirement, no import\n"), face, differs=False, why=f"changed: read {face}; memoised (")


def test_a_file_another_reader_reads_too_keeps_no_facts() -> None:
    """Only a file read by nothing but the readers that say what they take (inside sourcing())
    can be taken as an edit alone: one read by any other reader keeps no facts in the memo."""
    with consulted.recording() as record:
        with consulted.sourcing():
            consulted.note_read("a.py")
            consulted.note_read("b.py")
        consulted.note_facts("a.py", "inline", ())
        consulted.note_facts("b.py", "inline", ())
        consulted.note_read("b.py")  # a requirements reader, say: its bytes may go anywhere
        consulted.note_read("c.py")
    assert record.read == {"a.py", "b.py", "c.py"} and record.plain == {"b.py", "c.py"}
    assert sorted(memo._source_facts(record)) == ["a.py"]


def test_a_file_that_now_fails_to_parse_is_a_scan(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edits = Edits(repo, tmp_path, capsys)
    face = edits.root / "agents/face.py"
    report = edits.missed(_append(face, "def broken(:\n"), face, differs=True, why=f"changed: read {face} (Python cannot parse it)")
    assert b'"parse_error"' in report
    # Once it holds a parse error, a comment more is a scan too (the fallback's route is not repeated).
    edits.missed(_append(face, "# still broken\n"), face, differs=False, why=f"changed: read {face} (Python cannot parse it)")


def test_the_reuse_imports_no_stage_and_no_libcst_for_a_file_of_plain_imports(repo: Path, tmp_path: Path) -> None:
    """In a fresh process, as the CLI runs: the edited file is read by `ast` alone, and the
    modules of the scan's stages are never imported."""
    command = [
        sys.executable, "-X", "importtime", "-m", "depaudit", "scan", "--config", str(repo), "--cache-dir", str(tmp_path / "cache"),
        "--format", "json", "--output", str(tmp_path / "report.json"), "--fail-on", "never", "-v",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cold = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "memoised (" in cold.stderr
    face = repo.parent / "agents/face.py"
    _append(face, "# checked\n")()
    _age(face)
    run = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    said = [line for line in run.stderr.splitlines() if line.startswith("depaudit:")]
    assert said[0].startswith(f"depaudit: memo reused: {face} edited, no collected fact changed ("), said
    imported = {line.split("|")[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert "depaudit.collect.imports" in imported and "depaudit.memo_edit" in imported
    heavy = sorted(name for name in imported if name.split(".")[0] == "libcst" or name.startswith(("depaudit.scan", "depaudit.native", "depaudit.packages", "depaudit.python", "depaudit.plan", "depaudit.suppress")))
    assert heavy == []


def test_an_edit_within_the_racy_window_is_reused_and_stamped_by_a_later_run(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file changed less than RACY_NS ago is compared as it reads now, as a scan would read it;
    but a later change could keep its times, so the entry keeps the old stamp (left as it was)
    and the next run compares again, stamping it once it is old enough."""
    edits = Edits(repo, tmp_path, capsys)
    face = edits.root / "agents/face.py"
    (entry,) = (tmp_path / "cache/memo").glob("*.pickle")
    stored = entry.read_bytes()
    _append(face, "# now\n")()
    after, said = edits.scan()
    assert said.startswith(f"depaudit: memo reused: {face} edited, no collected fact changed (")
    assert said.endswith(f"; not stamped anew: changed less than {consulted.RACY_NS // 10**9} s ago")
    assert after == edits.scan("--no-cache")[0] == edits.report
    assert entry.read_bytes() == stored
    # Changed again within the window, to a new import: a miss, and not memoised.
    _append(face, "import yaml\n")()
    after, said = edits.scan()
    assert said == (
        f"depaudit: changed: read {face} (its imports or calls of imported names changed); "
        f"not memoised: {face} changed less than {consulted.RACY_NS // 10**9} s before the scan"
    )
    assert b'"yaml"' in after and after == edits.scan("--no-cache")[0]
    # Old enough now: memoised by a scan (the facts changed), then a hit.
    _age(face)
    assert edits.scan()[1].startswith("depaudit: changed: read ")
    assert edits.scan()[1].startswith("depaudit: memo hit (")
    _append(face, "# later\n")()
    assert "; not stamped anew" in edits.scan()[1]
    _age(face)
    assert edits.scan()[1].startswith(f"depaudit: memo reused: {face} edited")
    assert edits.scan()[1].startswith("depaudit: memo hit (")


# Lines an edit inserts: some change no fact (comments, code calling nothing imported, a
# docstring), some change one (an import, a call of an imported name, a native hint, an inline
# suppression). A file that does not parse is test_a_file_that_now_fails_to_parse_is_a_scan's.
_LINES = (
    "# a comment",
    "",
    "VALUE = 1",
    '"""A string."""',
    "import yaml",
    "import kit",
    "kit.play('x')",
    "kit.stop('x')",
    "import ctypes; ctypes.CDLL('libfoo.so.1')",
    "import os  # depaudit: ignore[DA201] checked",
    "try:\n    import yaml\nexcept ImportError:\n    yaml = None",
    "def later():\n    return kit.play('y')",
)


def test_random_edits_give_the_uncached_report_whether_reused_or_not(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lines inserted, deleted or appended at random in the service's files, one file or two at
    a time (an insertion that would break the file is an append instead): after each, the
    report is --no-cache's, byte for byte, whether the memo was reused or the scan ran.
    DEPAUDIT_FUZZ_EXAMPLES edits (12 in CI); DEPAUDIT_FUZZ_TALLY=FILE writes how many of them
    were reused and how many scanned (a run by hand)."""
    import ast
    import random

    edits = Edits(repo, tmp_path, capsys)
    files = [edits.root / name for name in ("agents/face.py", "agents/helpers_here.py", "shared/vision.py", "shared/common.py")]
    chooser = random.Random(22)
    reused = missed = 0
    for _ in range(int(os.environ.get("DEPAUDIT_FUZZ_EXAMPLES", "12"))):
        changed = chooser.sample(files, chooser.choice((1, 1, 1, 2)))
        for path in changed:
            lines = path.read_text().split("\n")
            where, line = chooser.randrange(len(lines) + 1), chooser.choice(_LINES)
            operation = chooser.choice(("insert", "insert", "append", "delete"))
            edited = list(lines)
            if operation == "delete" and len(lines) > 1:
                del edited[min(where, len(lines) - 1)]
            elif operation == "insert":
                edited.insert(where, line)
            try:
                ast.parse("\n".join(edited))
            except SyntaxError:
                edited = list(lines)
                operation = "append"
            if operation == "append":
                edited.append(line)
            path.write_text("\n".join(edited))
        after, said, uncached = edits.edit(lambda: None, *changed)
        assert after == uncached, said
        if "memo reused" in said:
            reused += 1
        else:
            missed += 1
    Path(os.environ.get("DEPAUDIT_FUZZ_TALLY", os.devnull)).write_text(f"{reused} reused, {missed} missed\n")
    assert reused and missed  # both routes taken (seed 22)
