"""A patch that merges packages into an existing apt RUN also makes that RUN hygienic, in its style."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from depaudit.dockerfile.edit import patch_dockerfile
from depaudit.dockerfile.parse import HYGIENE, apt_installs
from depaudit.dockerfile.problems import dockerfile_problems
from depaudit.emit.patch import unified_diff

# A column RUN without `apt-get update` and without the lists cleanup.
BARE = "FROM base\n# tools\nRUN apt-get install -y \\\n    curl \\\n    git\nWORKDIR /app\n"
BARE_PATCHED = (
    "FROM base\n# tools\nRUN apt-get update && apt-get install -y \\\n    curl \\\n    git \\\n    wget \\\n"
    "    && rm -rf /var/lib/apt/lists/*\nWORKDIR /app\n"
)
# Same RUN as the last instruction of a file without a final newline.
BARE_AT_END = "FROM base\n# tools\nRUN apt-get install -y \\\n    curl \\\n    git"
BARE_AT_END_PATCHED = (
    "FROM base\n# tools\nRUN apt-get update && apt-get install -y \\\n    curl \\\n    git \\\n    wget \\\n"
    "    && rm -rf /var/lib/apt/lists/*"
)


def _crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def _names(text: str) -> list[list[str]]:
    return [[p.name for p in install.packages] for install in apt_installs(text)]


def _git_apply_check(tmp_path: Path, old: str, new: str) -> None:
    (tmp_path / "Dockerfile").write_bytes(old.encode())
    (tmp_path / "change.patch").write_bytes(unified_diff(old, new, "Dockerfile").encode())
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    checked = subprocess.run(["git", "apply", "--check", "change.patch"], cwd=tmp_path, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    applied = subprocess.run(["git", "apply", "change.patch"], cwd=tmp_path, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    assert (tmp_path / "Dockerfile").read_bytes() == new.encode()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (BARE, BARE_PATCHED),
        (_crlf(BARE), _crlf(BARE_PATCHED)),
        (BARE_AT_END, BARE_AT_END_PATCHED),
        (_crlf(BARE_AT_END), _crlf(BARE_AT_END_PATCHED)),
    ],
    ids=["lf", "crlf", "lf-no-final-newline", "crlf-no-final-newline"],
)
def test_a_run_without_update_and_cleanup_gets_both_when_a_package_is_added(old: str, new: str, tmp_path: Path) -> None:
    assert patch_dockerfile(old, ["wget"]) == new
    assert patch_dockerfile(new, ["wget"]) == new  # a second run is a no-op
    assert _names(new) == [["curl", "git", "wget"]]
    # What is left is the flag depaudit will not add: reported on the install's line.
    assert dockerfile_problems(new) == [(3, HYGIENE["recommends"])]
    _git_apply_check(tmp_path, old, new)


def test_a_hygienic_run_changes_only_on_its_package_lines(tmp_path: Path) -> None:
    old = (
        "FROM base\r\n"
        "RUN apt-get update \\\r\n"
        "    && apt-get install -y --no-install-recommends \\\r\n"
        "        ffmpeg \\\r\n"
        "        libsndfile1 \\\r\n"
        "    && rm -rf /var/lib/apt/lists/*"
    )
    new = patch_dockerfile(old, ["libasound2", "zstd"])
    assert new == old.replace(
        "        ffmpeg \\\r\n", "        ffmpeg \\\r\n        libasound2 \\\r\n"
    ).replace("        libsndfile1 \\\r\n", "        libsndfile1 \\\r\n        zstd \\\r\n")
    diff = unified_diff(old, new, "Dockerfile")
    assert [line for line in diff.split("\n") if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))] == [
        "+        libasound2 \\\r",
        "+        zstd \\\r",
    ]
    assert patch_dockerfile(new, ["libasound2", "zstd"]) == new
    assert dockerfile_problems(new) == []
    _git_apply_check(tmp_path, old, new)


def test_a_one_line_run_gets_yes_update_and_cleanup_on_its_line() -> None:
    old = "FROM base\nRUN apt install curl\nCMD [\"sh\"]\n"
    new = patch_dockerfile(old, ["git"])
    assert new == "FROM base\nRUN apt update && apt install -y curl git && rm -rf /var/lib/apt/lists/*\nCMD [\"sh\"]\n"
    assert patch_dockerfile(new, ["git"]) == new
    assert _names(new) == [["curl", "git"]]


def test_trailing_and_leading_and_chains_keep_their_style() -> None:
    trailing = "FROM base\nRUN apt-get update && \\\n    apt-get install -y \\\n        a \\\n        b\nCMD x\n"
    assert patch_dockerfile(trailing, ["c"]) == (
        "FROM base\nRUN apt-get update && \\\n    apt-get install -y \\\n        a \\\n        b \\\n        c && \\\n"
        "    rm -rf /var/lib/apt/lists/*\nCMD x\n"
    )
    leading = (
        "FROM base\n"
        "RUN echo 'deb http://example/ stable main' > /etc/apt/sources.list.d/x.list \\\n"
        "\t&& DEBIAN_FRONTEND=noninteractive apt-get install --no-install-recommends -y a b \\\n"
        "\t&& apt-get clean\n"
    )
    # The update goes right before the install: after the line that adds a source, not before it.
    assert patch_dockerfile(leading, ["c"]) == (
        "FROM base\n"
        "RUN echo 'deb http://example/ stable main' > /etc/apt/sources.list.d/x.list \\\n"
        "\t&& apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install --no-install-recommends -y a b c \\\n"
        "\t&& apt-get clean \\\n"
        "\t&& rm -rf /var/lib/apt/lists/*\n"
    )


def test_no_install_recommends_is_never_added_to_an_existing_list() -> None:
    old = "FROM base\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n"
    new = patch_dockerfile(old, ["git"])
    assert new == old.replace("curl", "curl git")
    assert dockerfile_problems(new) == [(2, HYGIENE["recommends"])]


def test_a_run_we_add_nothing_to_is_left_as_it_is() -> None:
    old = (
        "FROM base\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends a && rm -rf /var/lib/apt/lists/*\n"
        "RUN apt-get install b\n"
    )
    new = patch_dockerfile(old, ["c"])
    assert new == old.replace(" a &&", " a c &&")  # the second RUN keeps its gaps: they are reported
    assert [(line, message) for line, message in dockerfile_problems(new)] == [
        (3, HYGIENE["yes"]),
        (3, HYGIENE["update"]),
        (3, HYGIENE["lists"]),
        (3, HYGIENE["recommends"]),
    ]
    unhygienic = "FROM base\nRUN apt-get install curl\n"
    assert patch_dockerfile(unhygienic, ["curl"]) == unhygienic  # nothing to add: hygiene alone changes nothing
    assert patch_dockerfile(unhygienic, []) == unhygienic


def test_where_an_edit_would_change_what_runs_it_is_left_to_a_person() -> None:
    # `||` before the install: `x || apt-get update && apt-get install` would run the install after x succeeds.
    # `;` at the end: `...; && rm` is a syntax error. A shell comment would swallow the cleanup.
    cases = {
        "FROM base\nRUN test -x /usr/bin/curl || apt-get install -y curl;\n": "curl git;",
        "FROM base\nRUN yes | apt-get install curl # the tools\n": "curl git #",
    }
    for old, merged in cases.items():
        new = patch_dockerfile(old, ["git"])
        assert new == old.replace(merged.replace(" git", ""), merged)
        assert patch_dockerfile(new, ["git"]) == new


def test_a_cache_mount_over_the_lists_needs_no_cleanup() -> None:
    old = "FROM base\nRUN --mount=type=cache,target=/var/lib/apt,sharing=locked apt-get install -y curl\n"
    assert patch_dockerfile(old, ["git"]) == (
        "FROM base\nRUN --mount=type=cache,target=/var/lib/apt,sharing=locked apt-get update && apt-get install -y curl git\n"
    )


def test_packages_go_after_the_install_not_after_a_later_word_of_the_same_name() -> None:
    old = "FROM base\nRUN apt-get update && apt-get install -y git && git clone https://example/x && rm -rf /var/lib/apt/lists/*\n"
    assert patch_dockerfile(old, ["curl"]) == old.replace("-y git &&", "-y git curl &&")


def test_the_escape_directive_is_the_continuation_of_added_lines() -> None:
    old = "# escape=`\nFROM base\nRUN apt-get update && apt-get install -y `\n    a `\n    b\n"
    assert patch_dockerfile(old, ["c"]) == (
        "# escape=`\nFROM base\nRUN apt-get update && apt-get install -y `\n    a `\n    b `\n    c `\n"
        "    && rm -rf /var/lib/apt/lists/*\n"
    )
