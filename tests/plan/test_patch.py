"""Dockerfile patches in the file's own style: bytes outside our lines never change."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from depaudit.atomic import write_atomic
from depaudit.dockerfile.edit import patch_dockerfile, prune_leaves
from depaudit.dockerfile.parse import BuildContext, apt_installs
from depaudit.dockerfile.problems import dockerfile_problems
from depaudit.emit.patch import unified_diff

COLUMN = (
    "FROM base\r\n"
    "# vision libraries\r\n"
    "RUN apt-get update && apt-get install -y --no-install-recommends \\\r\n"
    "        libgl1 \\\r\n"
    "        libsm6 \\\r\n"
    "        libxext6 \\\r\n"
    "    && rm -rf /var/lib/apt/lists/*"
)


def test_a_sorted_column_gets_the_package_at_its_place_with_crlf_and_no_final_newline() -> None:
    patched = patch_dockerfile(COLUMN, ["libglib2.0-0"])
    assert patched == COLUMN.replace("        libsm6", "        libglib2.0-0 \\\r\n        libsm6")
    assert patch_dockerfile(patched, ["libglib2.0-0"]) == patched  # idempotent


def test_inline_lists_and_version_pins() -> None:
    text = "FROM base\nRUN apt-get update && apt-get install -y curl=7.88 && rm -rf /var/lib/apt/lists/*\nCMD [\"x\"]\n"
    assert patch_dockerfile(text, ["git", "ffmpeg"]) == text.replace("curl=7.88", "curl=7.88 ffmpeg git")


def test_a_column_whose_last_package_ends_the_command() -> None:
    text = "FROM base\nRUN apt-get update && apt-get install -y \\\n    a \\\n    b && rm -rf /var/lib/apt/lists/*\n"
    assert patch_dockerfile(text, ["d", "c"]) == (  # the rest of b's line moves down with the new last package
        "FROM base\nRUN apt-get update && apt-get install -y \\\n    a \\\n    b \\\n    c \\\n"
        "    d && rm -rf /var/lib/apt/lists/*\n"
    )
    text = "FROM base\nRUN apt-get update && apt-get install -y \\\n    a \\\n    b\n"  # hygienic but for the lists
    assert patch_dockerfile(text, ["c"]) == (
        "FROM base\nRUN apt-get update && apt-get install -y \\\n    a \\\n    b \\\n    c \\\n"
        "    && rm -rf /var/lib/apt/lists/*\n"
    )


def test_without_an_apt_run_a_hygienic_one_is_added_after_the_last_run() -> None:
    text = "FROM builder AS build\nRUN make\nFROM base\nRUN pip install x\nCMD [\"python3\"]"
    assert patch_dockerfile(text, ["libgl1"]) == (
        "FROM builder AS build\nRUN make\nFROM base\nRUN pip install x\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends \\\n"
        "        libgl1 \\\n"
        "    && rm -rf /var/lib/apt/lists/*\n"
        "CMD [\"python3\"]"
    )


def test_prune_removes_lines_and_tokens_and_a_list_it_empties_with_its_apt_only_run() -> None:
    assert patch_dockerfile(COLUMN, [], ["libsm6"]) == COLUMN.replace("        libsm6 \\\r\n", "")
    inline = "FROM base\nRUN apt-get install -y libgl1 libsm6\nCMD [\"python3\"]\n"
    assert patch_dockerfile(inline, [], ["libsm6"]) == inline.replace(" libsm6", "")
    assert patch_dockerfile(inline, [], ["libgl1", "libsm6"]) == 'FROM base\nCMD ["python3"]\n'
    everything = ["libgl1", "libsm6", "libxext6"]
    assert patch_dockerfile(COLUMN, [], everything) == "FROM base\r\n# vision libraries\r\n"
    assert prune_leaves(COLUMN, everything) == []
    # A RUN that does more than install keeps its emptied install, and a finding says so.
    mixed = "FROM base\nRUN apt-get update && apt-get install -y git && git clone https://example.org/x /x\n"
    assert patch_dockerfile(mixed, [], ["git"]) == mixed
    assert prune_leaves(mixed, ["git"]) == [
        (2, "--prune leaves git: taking them out would empty this apt-get install, and its RUN does more than install:"
            " remove the command by hand")
    ]


def test_a_package_list_from_a_variable_is_read_and_never_added_twice() -> None:
    text = 'FROM base\nARG PKGS="libgl1 libsm6 ffmpeg"\nRUN apt-get update && apt-get install -y $PKGS && rm -rf /var/lib/apt/lists/*\n'
    assert [(p.name, p.line, p.variable) for i in apt_installs(text) for p in i.packages] == [
        ("libgl1", 3, "PKGS"), ("libsm6", 3, "PKGS"), ("ffmpeg", 3, "PKGS")
    ]
    assert [p.name for i in apt_installs(text, BuildContext(build_args={"PKGS": "curl"})) for p in i.packages] == ["curl"]
    assert patch_dockerfile(text, ["libgl1", "libglib2.0-0"], ["ffmpeg"]) == text.replace("$PKGS", "$PKGS libglib2.0-0")
    assert prune_leaves(text, ["ffmpeg"]) == [(3, "--prune leaves ffmpeg: $PKGS names it; take it out of that variable's value by hand")]


def test_a_list_that_cannot_be_known_is_a_finding_and_never_patched() -> None:
    text = "FROM base\nRUN apt-get update && apt-get install -y $EXTRA curl $(cat /tmp/more) && rm -rf /var/lib/apt/lists/*\n"
    (install,) = apt_installs(text)
    assert ([p.name for p in install.packages], install.unknown) == (["curl"], ("$EXTRA", "$(cat /tmp/more)"))
    assert (2, (
        "apt-get install $EXTRA $(cat /tmp/more): the packages these name cannot be known here (a variable with no default or"
        " build-arg, or a command's output); depaudit reads none from them and will not patch this install"
    )) in dockerfile_problems(text)
    patched = patch_dockerfile(text, ["libgl1"], ["curl"])
    assert patched.startswith(text) and "libgl1" in patched[len(text):]  # a RUN of its own; the list stays
    assert prune_leaves(text, ["curl"]) == []  # the problem above already says this install is never edited


def test_heredoc_and_exec_form_runs_are_not_edited() -> None:
    text = 'FROM base\nRUN ["apt-get", "install", "-y", "curl"]\nRUN <<EOF\napt-get install -y git\nEOF\n'
    patched = patch_dockerfile(text, ["libgl1"])
    assert patched == text + (  # a new RUN after the heredoc's terminator, both left as they were
        "RUN apt-get update && apt-get install -y --no-install-recommends \\\n"
        "        libgl1 \\\n"
        "    && rm -rf /var/lib/apt/lists/*\n"
    )


def test_git_apply_takes_the_diff_and_write_is_atomic_keeping_the_mode(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_bytes(COLUMN.encode())
    dockerfile.chmod(0o640)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    new = patch_dockerfile(COLUMN, ["libglib2.0-0", "libxrender1"])
    (tmp_path / "change.patch").write_bytes(unified_diff(COLUMN, new, "Dockerfile").encode())
    applied = subprocess.run(["git", "apply", "change.patch"], cwd=tmp_path, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    assert dockerfile.read_bytes() == new.encode()
    dockerfile.chmod(0o640)
    write_atomic(dockerfile, COLUMN)
    assert dockerfile.read_bytes() == COLUMN.encode()
    assert stat.S_IMODE(os.stat(dockerfile).st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == [".git", "Dockerfile", "change.patch"]  # no temp file left
