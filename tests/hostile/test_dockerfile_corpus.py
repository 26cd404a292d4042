"""Hostile family Dockerfiles through the whole pipeline: `depaudit scan --format json --write`,
in-process, on a fleet of one or two families.

Each case asserts the exact Dockerfile findings of the report, the exact bytes `--write` leaves,
that the rest of the scan is still reported (the service's needs, the other family's patch), and
that a second scan has nothing left to change. The properties below (hypothesis) hold over
generated Dockerfiles: random mixes of CRLF / LF, continuations, comments, flags, package lists.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depaudit.cli import main
from depaudit.dockerfile.edit import patch_dockerfile, prune_leaves
from depaudit.dockerfile.parse import apt_installs
from depaudit.dockerfile.problems import dockerfile_problems

CUDA = "nvidia/cuda:12.1.1-runtime-ubuntu22.04"
AUDIO = "docker/family-audio/Dockerfile"
VISION = "docker/family-vision/Dockerfile"
TTS = 'import subprocess\nsubprocess.run(["ffmpeg", "-i", "x"])\nsubprocess.run(["sox", "x"])\n'  # needs ffmpeg, sox
CAM = 'import ctypes\nctypes.CDLL("libGL.so.1")\n'  # needs libgl1
HYGIENIC_VISION = (
    f"FROM {CUDA}\n"
    "RUN apt-get update && apt-get install -y --no-install-recommends \\\n"
    "        libsm6 \\\n"
    "        libxext6 \\\n"
    "    && rm -rf /var/lib/apt/lists/*\n"
)
VISION_PATCHED = HYGIENIC_VISION.replace("        libsm6", "        libgl1 \\\n        libsm6")
NEW_RUN = (
    "RUN apt-get update && apt-get install -y --no-install-recommends \\\n"
    "        ffmpeg \\\n"
    "        sox \\\n"
    "    && rm -rf /var/lib/apt/lists/*\n"
)
LISTS = (
    "apt-get install leaves the package lists in the layer: end this RUN with `&& rm -rf /var/lib/apt/lists/*`"
    " (apt-get clean does not remove them)"
)
RECOMMENDS = (
    "apt-get install without --no-install-recommends: the image also gets every package these recommend;"
    " add --no-install-recommends, then list any recommended package a service needs"
)
UPDATE = (
    "apt-get install without apt-get update before it in the same RUN: the package lists come from a stale"
    " cached layer or are missing; put `apt-get update &&` in front of it"
)
CANNOT = (
    "and read the file back as intended: the patch and --write leave this Dockerfile as it is;"
    " add the packages the report lists by hand"
)


@dataclass
class Fleet:
    """services/tts in family-audio (the Dockerfile under test), services/cam in family-vision."""

    root: Path
    capsys: pytest.CaptureFixture[str]

    def write(self, audio: str | bytes, *, tts: str = TTS, tts_from: str = "FROM family-audio:latest\n",
              vision: str | None = HYGIENIC_VISION) -> None:
        self._file("services/tts/main.py", tts)
        self._file("services/tts/Dockerfile", tts_from)
        self._file(AUDIO, audio)
        if vision is not None:
            self._file("services/cam/main.py", CAM)
            self._file("services/cam/Dockerfile", "FROM family-vision\n")
            self._file(VISION, vision)
        (self.root / "site-packages").mkdir(exist_ok=True)

    def _file(self, relative: str, content: str | bytes) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    def depaudit(self, *extra: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        cwd = os.getcwd()
        os.chdir(self.root)
        try:
            code = main(["scan", "services", "--site-packages", "site-packages", "--no-cache", "-j", "1", *extra])
        finally:
            os.chdir(cwd)
        out, err = self.capsys.readouterr()
        return code, out, err

    def write_scan(self, *extra: str) -> dict[str, Any]:
        """`scan --format json --write`: the report of the scan that patched the files."""
        code, out, err = self.depaudit("--format", "json", "--write", *extra)
        assert code == 1, err  # something was missing
        return json.loads(out)

    def bytes(self, relative: str = AUDIO) -> bytes:
        return (self.root / relative).read_bytes()

    def assert_settled(self) -> None:
        """A second scan has nothing left to change: the patch was idempotent."""
        assert self.depaudit("--format", "patch") == (0, "", "")


@pytest.fixture()
def fleet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Fleet:
    return Fleet(tmp_path, capsys)


def dockerfile_findings(report: dict[str, Any], path: str = AUDIO) -> list[tuple[str, str, int | None, str]]:
    return [(f["kind"], f["path"], f["line"], f["message"]) for f in report["findings"] if f["path"] == path]


def needs(report: dict[str, Any], service: str = "tts") -> list[tuple[str, str, str | None]]:
    found = next(s for s in report["services"] if s["name"] == service)
    return [(n["name"], n["status"], n["package"]) for n in found["needs"]]


def plan(report: dict[str, Any], family: str = "family-audio") -> tuple[list[str], list[str]]:
    found = next(f for f in report["families"] if f["name"] == family)
    return found["installs"], [item["package"] for item in found["add"]]


def assert_rest_reported(report: dict[str, Any], fleet: Fleet) -> None:
    """The other service and family: audited and patched as if nothing else were wrong."""
    assert needs(report, "cam") == [("libGL.so.1", "missing", "libgl1")]
    assert dockerfile_findings(report, VISION) == []
    assert fleet.bytes(VISION) == VISION_PATCHED.encode()


# The shapes people write -----------------------------------------------------------------------
def test_a_heredoc_apt_list_is_read_and_ours_goes_in_a_run_of_its_own(fleet: Fleet) -> None:
    audio = f"FROM {CUDA}\nRUN <<EOF\napt-get update\napt-get install -y libsndfile1 sox\nEOF\nENV A=1\n"
    fleet.write(audio)
    report = fleet.write_scan()
    assert dockerfile_findings(report) == [
        ("dockerfile", AUDIO, 2, "apt-get install inside a heredoc: depaudit reads it but will not patch it")
    ]
    assert plan(report) == (["libsndfile1", "sox"], ["ffmpeg"])  # sox: installed by the heredoc already
    assert fleet.bytes() == audio.replace("\nEOF\n", "\nEOF\n" + NEW_RUN.replace("        sox \\\n", "")).encode()
    assert_rest_reported(report, fleet)
    fleet.assert_settled()


def test_crlf_lines_stay_crlf(fleet: Fleet) -> None:
    audio = (
        f"FROM {CUDA}\r\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends \\\r\n"
        "    libsndfile1 \\\r\n"
        "    libasound2 \\\r\n"
        "    && rm -rf /var/lib/apt/lists/*\r\n"
    )
    fleet.write(audio)
    report = fleet.write_scan()
    assert dockerfile_findings(report) == []
    assert fleet.bytes() == audio.replace("libasound2 \\\r\n", "libasound2 \\\r\n    ffmpeg \\\r\n    sox \\\r\n").encode()
    assert_rest_reported(report, fleet)
    fleet.assert_settled()


def test_no_final_newline_stays_so(fleet: Fleet) -> None:
    audio = f"FROM {CUDA}\nRUN apt-get update && apt-get install -y --no-install-recommends libsndfile1 && rm -rf /var/lib/apt/lists/*"
    fleet.write(audio)
    report = fleet.write_scan()
    assert dockerfile_findings(report) == []
    assert fleet.bytes() == audio.replace("libsndfile1", "libsndfile1 ffmpeg sox").encode()
    assert_rest_reported(report, fleet)
    fleet.assert_settled()


def test_a_continuation_at_the_end_of_the_file(fleet: Fleet) -> None:
    audio = f"FROM {CUDA}\nRUN apt-get update && apt-get install -y --no-install-recommends \\\n    libsndfile1 \\"
    fleet.write(audio)
    report = fleet.write_scan()
    assert dockerfile_findings(report) == [
        ("dockerfile", AUDIO, 2, LISTS),
        ("dockerfile", AUDIO, 2, "the file ends inside a continued instruction (a trailing backslash)"),
    ]
    # Ours join the list; no `&& rm` after a dangling backslash, where it would join whatever follows.
    assert fleet.bytes() == audio.replace("libsndfile1 \\", "libsndfile1 ffmpeg sox \\").encode()
    assert_rest_reported(report, fleet)
    fleet.assert_settled()


def test_arg_in_from_names_the_family_and_the_base(fleet: Fleet) -> None:
    audio = "ARG CUDA=12.1.1\nFROM nvidia/cuda:${CUDA}-runtime-ubuntu22.04\nRUN apt-get update && apt-get install -y --no-install-recommends libsndfile1 && rm -rf /var/lib/apt/lists/*\n"
    fleet.write(audio, tts_from="ARG FAMILY=family-audio\nARG TAG\nFROM ${FAMILY}:${TAG:-latest}\n")
    report = fleet.write_scan()
    tts = next(s for s in report["services"] if s["name"] == "tts")
    assert (tts["families"], tts["base_image"]) == (["family-audio"], CUDA)
    assert dockerfile_findings(report) == []
    assert fleet.bytes() == audio.replace("libsndfile1", "libsndfile1 ffmpeg sox").encode()
    assert_rest_reported(report, fleet)
    fleet.assert_settled()


def test_apt_in_a_build_stage_is_not_the_image_s(fleet: Fleet) -> None:
    audio = (
        "FROM nvidia/cuda:12.1.1-devel-ubuntu22.04 AS build\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends build-essential ffmpeg && rm -rf /var/lib/apt/lists/*\n"
        "RUN make\n"
        f"FROM {CUDA}\n"
        "COPY --from=build /out /opt/out\n"
        'CMD ["python3"]\n'
    )
    fleet.write(audio)
    report = fleet.write_scan()
    assert dockerfile_findings(report) == []
    assert plan(report) == ([], ["ffmpeg", "sox"])  # the build stage's ffmpeg is not in the image
    assert fleet.bytes() == audio.replace(f"FROM {CUDA}\n", f"FROM {CUDA}\n{NEW_RUN}").encode()
    assert_rest_reported(report, fleet)
    fleet.assert_settled()


def test_an_apt_list_split_by_comment_and_blank_lines(fleet: Fleet) -> None:
    audio = (
        f"FROM {CUDA}\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends \\\n"
        "    # audio output\n"
        "    libasound2 \\\n"
        "\n"
        "    # audio files\n"
        "    libsndfile1 \\\n"
        "    && rm -rf /var/lib/apt/lists/*\n"
    )
    fleet.write(audio)
    report = fleet.write_scan()
    assert dockerfile_findings(report) == []
    assert plan(report)[0] == ["libasound2", "libsndfile1"]  # both, past the comments
    assert fleet.bytes() == audio.replace("    libasound2", "    ffmpeg \\\n    libasound2").replace(
        "    libsndfile1 \\\n", "    libsndfile1 \\\n    sox \\\n"
    ).encode()
    assert_rest_reported(report, fleet)
    fleet.assert_settled()


def test_an_exec_form_run_is_reported_and_left_alone(fleet: Fleet) -> None:
    audio = f'FROM {CUDA}\nRUN ["apt-get", "install", "-y", "libsndfile1"]\nCMD ["python3"]\n'
    fleet.write(audio)
    report = fleet.write_scan()
    assert dockerfile_findings(report) == [
        ("dockerfile", AUDIO, 2, "apt in an exec-form RUN: depaudit will not read or patch it")
    ]
    assert plan(report) == ([], ["ffmpeg", "sox"])
    assert fleet.bytes() == audio.replace('"libsndfile1"]\n', f'"libsndfile1"]\n{NEW_RUN}').encode()
    assert_rest_reported(report, fleet)
    fleet.assert_settled()


def test_a_subshell_and_command_substitutions_are_not_package_names(fleet: Fleet) -> None:
    """`(apt-get install x)` once read the package `x)` and put ours after the `)`: outside the
    command. `$(cat list)` and `$PKGS` are no package names, yet ours still go into that list."""
    audio = (
        f"FROM {CUDA}\n"
        "RUN (apt-get update && apt-get install -y --no-install-recommends libsndfile1) && rm -rf /var/lib/apt/lists/*\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends $(cat /tmp/list) $EXTRA && rm -rf /var/lib/apt/lists/*\n"
    )
    fleet.write(audio)
    report = fleet.write_scan()
    assert dockerfile_findings(report) == [(
        "dockerfile", AUDIO, 3,
        "apt-get install $(cat /tmp/list) $EXTRA: the packages these name cannot be known here (a variable with no default"
        " or build-arg, or a command's output); depaudit reads none from them and will not patch this install",
    )]
    assert plan(report) == (["libsndfile1"], ["ffmpeg", "sox"])
    assert fleet.bytes() == audio.replace("libsndfile1)", "libsndfile1 ffmpeg sox)").encode()
    assert_rest_reported(report, fleet)
    fleet.assert_settled()


def test_a_list_of_variables_only_takes_ours_after_them(fleet: Fleet) -> None:
    audio = f"FROM {CUDA}\nARG PKGS=libsndfile1\nRUN apt-get update && apt-get install -y --no-install-recommends $PKGS && rm -rf /var/lib/apt/lists/*\n"
    fleet.write(audio)
    report = fleet.write_scan()  # the patch was once silently empty here
    # sox pulls libsndfile1 in: --prune would take it out, but it stands in the ARG's value.
    assert dockerfile_findings(report) == [
        ("dockerfile", AUDIO, 3, "--prune leaves libsndfile1: $PKGS names it; take it out of that variable's value by hand")
    ]
    assert fleet.bytes() == audio.replace("$PKGS", "$PKGS ffmpeg sox").encode()
    assert_rest_reported(report, fleet)
    fleet.assert_settled()


def test_the_escape_directive_and_a_lone_carriage_return(fleet: Fleet) -> None:
    """With `# escape=``, a new RUN continues its lines with backticks; a lone CR ends no line (for
    Docker as for us), so what looks like two lines is one."""
    audio = f"# escape=`\nFROM {CUDA}\rRUN echo hi\nRUN pip install x"
    fleet.write(audio)
    report = fleet.write_scan()
    assert dockerfile_findings(report) == []
    assert fleet.bytes() == (audio + "\n" + NEW_RUN.replace("\\\n", "`\n")).encode()
    assert_rest_reported(report, fleet)
    fleet.assert_settled()


def test_prune_dropping_the_last_line_of_a_column_ends_the_run_there(fleet: Fleet) -> None:
    """Removing `less`, the line that ended the RUN, once left `ffmpeg \\` continuing into CMD."""
    audio = f"FROM {CUDA}\nRUN apt-get update && apt-get install -y --no-install-recommends \\\n    ffmpeg \\\n    less\nCMD [\"python3\"]\n"
    fleet.write(audio, tts='import subprocess\nsubprocess.run(["ffmpeg"])\n', vision=None)
    code, out, err = fleet.depaudit("--format", "json", "--write", "--prune", "--fail-on", "unused")
    report = json.loads(out)
    assert code == 1, err
    assert [item["package"] for item in report["families"][0]["unused"]] == ["less"]
    assert dockerfile_findings(report) == [("dockerfile", AUDIO, 2, LISTS)]
    assert fleet.bytes() == audio.replace("    ffmpeg \\\n    less\n", "    ffmpeg\n").encode()
    assert fleet.depaudit("--format", "patch", "--prune") == (0, "", "")


def test_a_ten_thousand_line_dockerfile(fleet: Fleet) -> None:
    packages = [f"libdemo{n:05d}" for n in range(3000)]  # none needed: the plan calls each unused
    column = "".join(f"    {p} \\\n" for p in packages)
    comments = "".join(f"# {n}\nENV V{n}=${{V{n - 1}:-x}}\n" for n in range(3498))
    audio = (
        f"FROM {CUDA}\n{comments}RUN apt-get update && apt-get install -y --no-install-recommends \\\n{column}"
        "    && rm -rf /var/lib/apt/lists/*\nCMD [\"python3\"]\n"
    )
    assert audio.count("\n") == 10_000
    fleet.write(audio)
    started = time.perf_counter()
    report = fleet.write_scan()
    assert time.perf_counter() - started < 20
    assert dockerfile_findings(report) == []
    assert plan(report)[1] == ["ffmpeg", "sox"]
    # A sorted column: each at its sorted place (ffmpeg first, sox last).
    assert fleet.bytes() == audio.replace("    libdemo00000", "    ffmpeg \\\n    libdemo00000").replace(
        "    libdemo02999 \\\n", "    libdemo02999 \\\n    sox \\\n"
    ).encode()
    assert_rest_reported(report, fleet)


# Dockerfiles no patch can be made to ------------------------------------------------------------
@pytest.mark.parametrize(
    "audio,expected",
    [
        (
            f"FROM {CUDA}\nRUN <<EOF\napt-get install -y libsndfile1\n",
            [
                (2, "heredoc <<EOF never ends"),
                (2, "apt-get install inside a heredoc: depaudit reads it but will not patch it"),
            ],
        ),
        (
            f"FROM {CUDA}\nRUN pip install torch \\\n",
            [
                (2, "the file ends inside a continued instruction (a trailing backslash)"),
                (2, f"depaudit cannot add packages to a new RUN after this instruction {CANNOT}"),
            ],
        ),
        (
            "RUN pip install torch\n",
            [(1, "no FROM instruction: not a Dockerfile depaudit can follow")],
        ),
    ],
    ids=["heredoc-never-ends", "continuation-swallows-a-new-run", "no-from"],
)
def test_a_dockerfile_that_cannot_be_patched_is_a_finding_and_stays_byte_identical(
    fleet: Fleet, audio: str, expected: list[tuple[int, str]]
) -> None:
    """A new RUN would land in the heredoc's body, or be swallowed by the continuation: the
    patch would not read back as intended, so the file is left as it is and reported."""
    fleet.write(audio.encode())
    report = fleet.write_scan()
    assert dockerfile_findings(report) == sorted(("dockerfile", AUDIO, line, message) for line, message in expected)
    assert fleet.bytes() == audio.encode()
    assert needs(report) == [("ffmpeg", "missing", "ffmpeg"), ("sox", "missing", "sox")]  # still audited
    assert plan(report)[1] == ["ffmpeg", "sox"]  # still planned: for a person to add
    assert_rest_reported(report, fleet)
    assert fleet.depaudit("--format", "patch")[1] == ""  # never a patch that would not apply as meant


# Properties over generated Dockerfiles ----------------------------------------------------------
NAMES = ["curl", "ffmpeg", "git", "libgl1", "libglib2.0-0", "libsm6", "libsndfile1", "libstdc++6", "sox"]


@st.composite
def dockerfiles(draw: st.DrawFn) -> str:
    """A Dockerfile with an apt list in its last stage, laid out any way people do."""
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    packages = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=5))
    flags = draw(st.lists(st.sampled_from(["-y", "-qq", "--no-install-recommends", "-o Dpkg::Use-Pty=0"]), unique=True, max_size=3))
    update = draw(st.sampled_from(["apt-get update && ", ""]))
    cleanup = draw(st.sampled_from([" && rm -rf /var/lib/apt/lists/*", ""]))
    command = f"{update}apt-get install {' '.join(flags)}".rstrip()
    layout = draw(st.sampled_from(["inline", "column", "leading-and"]))
    if layout == "inline":
        run = [f"RUN {command} {' '.join(packages)}{cleanup}".rstrip()]
    else:
        indent = draw(st.sampled_from(["    ", "\t", "  "]))
        run = [f"RUN {command} \\"]
        for package in packages:
            if draw(st.booleans()) and draw(st.booleans()):
                run.append(draw(st.sampled_from([f"{indent}# {package}", ""])))  # inside the continuation
            run.append(f"{indent}{package} \\")
        run.append(f"{indent}&& rm -rf /var/lib/apt/lists/*" if cleanup or layout == "leading-and" else f"{indent}true")
    before = draw(st.lists(st.sampled_from(["ARG A=1", "# c", "", f"ENV X=1 \\{eol}    Y=2", "COPY . /app"]), max_size=3))
    after = draw(st.lists(st.sampled_from(["CMD [\"python3\"]", "# end", "RUN echo done", "WORKDIR /app"]), max_size=3))
    stages = draw(st.sampled_from([[], ["FROM builder AS build", "RUN apt-get install -y gcc"]]))
    lines = [*stages, "FROM base", *before, *run, *after]
    text = eol.join(lines)
    return text + (eol if draw(st.booleans()) else "")


def final_packages(text: str) -> set[str]:
    return {p.name for install in apt_installs(text) for p in install.packages}


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(dockerfiles())
def test_a_patch_with_nothing_new_to_add_changes_no_byte(text: str) -> None:
    assert patch_dockerfile(text, sorted(final_packages(text))) == text
    assert patch_dockerfile(text, []) == text


@PROPERTY
@given(dockerfiles(), st.lists(st.sampled_from(NAMES), min_size=1, max_size=4))
def test_patched_then_read_back_the_packages_are_exactly_the_intended_ones(text: str, add: list[str]) -> None:
    patched = patch_dockerfile(text, add)
    assert final_packages(patched) == final_packages(text) | set(add)
    assert patch_dockerfile(patched, add) == patched  # idempotent
    assert dockerfile_problems(patched) == [p for p in dockerfile_problems(patched) if "cannot add" not in p[1]]
    ending = "\r\n" if "\r\n" in text else "\n"
    assert all(line.endswith(ending) for line in patched.splitlines(keepends=True)[:-1])  # the file's own line ends


@PROPERTY
@given(dockerfiles(), st.data())
def test_pruned_then_read_back_exactly_the_pruned_packages_are_gone(text: str, data: st.DataObject) -> None:
    existing = sorted(final_packages(text))
    remove = data.draw(st.lists(st.sampled_from(existing), unique=True)) if existing else []
    pruned = patch_dockerfile(text, [], remove)
    left, final = set(existing) - set(remove), final_packages(pruned)
    assert left <= final <= set(existing)
    # A list pruned empty goes with its RUN when the RUN only installs; else it stays, and says so.
    named = {word for _, message in prune_leaves(text, remove) for word in message.split(":")[0].split()[2:]}
    assert final - left <= named
    assert (final == left) == (not named)


def test_a_fifo_named_dockerfile_is_unreadable_and_never_blocks(fleet: Fleet) -> None:
    import subprocess
    import sys

    fleet.write("placeholder")
    (fleet.root / AUDIO).unlink()
    os.mkfifo(fleet.root / AUDIO)
    command = [sys.executable, "-m", "depaudit", "scan", "services", "--site-packages", "site-packages", "--no-cache"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [*command, "--format", "json", "--fail-on", "never"], cwd=fleet.root, capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert dockerfile_findings(report) == [("unreadable_file", AUDIO, None, "cannot read: not a regular file but a pipe, socket or device")]
    assert needs(report, "cam") == [("libGL.so.1", "missing", "libgl1")]  # the rest of the scan
