"""Dockerfile patches in the file's own style: bytes outside our lines never change."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from depaudit.atomic import write_atomic
from depaudit.dockerfile.edit import patch_dockerfile
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


def test_prune_removes_lines_and_tokens_but_never_empties_a_list() -> None:
    assert patch_dockerfile(COLUMN, [], ["libsm6"]) == COLUMN.replace("        libsm6 \\\r\n", "")
    inline = "FROM base\nRUN apt-get install -y libgl1 libsm6\n"
    assert patch_dockerfile(inline, [], ["libsm6"]) == "FROM base\nRUN apt-get install -y libgl1\n"
    assert patch_dockerfile(inline, [], ["libgl1", "libsm6"]) == inline


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
