"""A Dockerfile read once: its bytes kept for the editor, its text parsed as the reader always did."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import deadline
from depaudit.dockerfile import model
from depaudit.dockerfile.edit import patch_dockerfile
from depaudit.dockerfile.model import Dockerfile, Dockerfiles, read_dockerfile
from depaudit.dockerfile.parse import apt_installs, instructions, read_image
from depaudit.dockerfile.problems import dockerfile_problems

# Undecodable bytes in a keyword, a package name, an ENV value and a comment; a truncated
# three-byte sequence (\xe2\x82) is one U+FFFD to errors="replace" but two surrogates to
# surrogateescape.
UNDECODABLE = (
    b"FROM base\r\n"
    b"# caf\xe9 \xe2\x82\r\n"
    b"ENV GREETING=h\xe9llo\r\n"
    b"RUN apt-get install lib\xffdemo \\\r\n"
    b"    libsm6\r\n"
    b"FRO\xe2\x82B x\r\n"
)


def test_the_text_keeps_undecodable_bytes_and_the_parse_reads_what_the_reader_always_read(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(UNDECODABLE)
    dockerfile = read_dockerfile(path)
    assert dockerfile.text is not None and dockerfile.error is None
    assert dockerfile.text.encode("utf-8", errors="surrogateescape") == UNDECODABLE
    replaced = UNDECODABLE.decode("utf-8", errors="replace")
    assert list(dockerfile.instructions) == instructions(replaced)
    assert list(dockerfile.apt_installs) == apt_installs(replaced)
    assert [p.name for p in dockerfile.apt_installs[0].packages] == ["lib\ufffddemo", "libsm6"]
    assert list(dockerfile.problems) == dockerfile_problems(replaced)
    assert (6, "unknown instruction 'FRO\ufffdB'") in dockerfile.problems
    assert dockerfile.image({"A": "1"}) == read_image(replaced, {"A": "1"})
    # The editor gets the surrogateescape text: every byte it does not edit comes back out.
    patched = patch_dockerfile(dockerfile.text, ["curl"])
    assert patched.encode("utf-8", errors="surrogateescape").startswith(UNDECODABLE[: UNDECODABLE.index(b"RUN")])


def test_a_file_that_cannot_be_read_has_its_reason_and_nothing_parsed(tmp_path: Path) -> None:
    fifo = tmp_path / "Dockerfile"
    os.mkfifo(fifo)
    with deadline(10):  # a FIFO opened for reading would block until a writer comes
        unreadable = read_dockerfile(fifo, "docker/Dockerfile")
    assert (unreadable.path, unreadable.display, unreadable.text) == (fifo, "docker/Dockerfile", None)
    assert unreadable.error == "not a regular file but a pipe, socket or device"
    assert (unreadable.instructions, unreadable.apt_installs, unreadable.problems, unreadable.image()) == ((), (), (), None)
    assert read_dockerfile(tmp_path / "missing").error == "No such file or directory"


def test_problems_are_found_on_first_use_only_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(model, "dockerfile_problems", lambda text, context: calls.append(text) or dockerfile_problems(text, context))
    dockerfile = Dockerfile(Path("Dockerfile"), "Dockerfile", "FROM base\nFROB x\n")
    assert calls == []  # a service's Dockerfile, read for its FROM, is never checked
    assert dockerfile.problems == ((2, "unknown instruction 'FROB'"),)
    assert dockerfile.problems is dockerfile.problems
    assert len(calls) == 1


def test_one_read_per_file_whatever_it_is_called(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[Path] = []
    real = model.read_regular
    monkeypatch.setattr(model, "read_regular", lambda path: reads.append(path) or real(path))
    path = tmp_path / "docker/Dockerfile"
    path.parent.mkdir()
    path.write_text("FROM base\n")
    (tmp_path / "link").symlink_to(path)
    dockerfiles = Dockerfiles()

    first = dockerfiles.read(path)
    assert dockerfiles.read(path) is first
    assert dockerfiles.read(path, first.display) is first
    shown = dockerfiles.read(path, "docker/Dockerfile")
    linked = dockerfiles.read(tmp_path / "link")

    assert reads == [path]
    assert (shown.path, shown.display, shown.text) == (path, "docker/Dockerfile", first.text)
    assert (linked.path, linked.display, linked.text) == (tmp_path / "link", (tmp_path / "link").as_posix(), first.text)
