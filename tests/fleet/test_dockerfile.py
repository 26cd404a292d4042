"""The FROM / ARG / ENV chain of Dockerfiles as users write them."""

from __future__ import annotations

from pathlib import Path

from depaudit.dockerfile.parse import apt_installs, instructions, read_image
from depaudit.dockerfile.problems import dockerfile_problems
from depaudit.fleet.families import base_chain, chain_env, family_name, index_family_dockerfiles


def test_instructions_continuations_comments_crlf_and_eof() -> None:
    text = "# syntax=docker/dockerfile:1\r\nFROM a\r\nRUN apt-get install -y \\\r\n    # a comment inside\r\n\r\n    curl \\\r\n    git\r\nENV X=1 \\"
    assert [(i.keyword, i.arguments, i.line) for i in instructions(text)] == [
        ("FROM", "a", 2),
        ("RUN", "apt-get install -y curl git", 3),
        ("ENV", "X=1", 8),  # a continuation at the end of the file still ends the instruction
    ]


def test_escape_directive() -> None:
    text = "# escape=`\nFROM a\nENV P=C:\\tools `\n    Q=2\n"
    assert [(i.keyword, i.arguments) for i in instructions(text)] == [("FROM", "a"), ("ENV", "P=C:\\tools Q=2")]


def test_arg_in_from_multi_stage_and_env_forms() -> None:
    text = """\
ARG CUDA=12.1.1
ARG FLAVOR
FROM --platform=linux/amd64 nvidia/cuda:${CUDA}-runtime-ubuntu22.04 AS runtime
ENV LD_LIBRARY_PATH=/opt/lib:$LD_LIBRARY_PATH LANG="C.UTF-8"
FROM python:3.11 AS builder
ENV BUILD_ONLY 1
FROM runtime
ARG CUDA
ENV CUDA_HOME /usr/local/cuda-${CUDA}
ENV GREETING="${UNSET:-hello}"
"""
    image = read_image(text, {"LD_LIBRARY_PATH": "/usr/local/nvidia/lib"})
    assert image is not None
    assert image.base == "nvidia/cuda:12.1.1-runtime-ubuntu22.04"
    assert image.env == {
        "LD_LIBRARY_PATH": "/opt/lib:/usr/local/nvidia/lib",
        "LANG": "C.UTF-8",
        "CUDA_HOME": "/usr/local/cuda-12.1.1",
        "GREETING": "hello",
    }
    assert read_image("# nothing\n") is None


def test_family_chain_to_the_external_image(tmp_path: Path) -> None:
    (tmp_path / "docker/base").mkdir(parents=True)
    (tmp_path / "docker/base/Dockerfile").write_text("FROM nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04\nENV LD_LIBRARY_PATH=/opt/base/lib:${LD_LIBRARY_PATH}\n")
    (tmp_path / "docker/Dockerfile.family-audio").write_text("FROM registry.example:5000/ml/base:2024\nENV LD_LIBRARY_PATH=/opt/audio/lib:$LD_LIBRARY_PATH\n")
    (tmp_path / "services/tts").mkdir(parents=True)
    (tmp_path / "services/tts/Dockerfile").write_text("ARG FAMILY=family-audio\nFROM ${FAMILY}:latest\n")
    (tmp_path / "docker/loop").mkdir()
    (tmp_path / "docker/loop/Dockerfile").write_text("FROM loop\n")

    index = index_family_dockerfiles(tmp_path)
    chain = base_chain(tmp_path / "services/tts/Dockerfile", index)
    assert chain.families == ("family-audio", "base")
    assert chain.image == "nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04"
    assert chain_env(chain, {"LD_LIBRARY_PATH": "/usr/local/nvidia/lib"})["LD_LIBRARY_PATH"] == (
        "/opt/audio/lib:/opt/base/lib:/usr/local/nvidia/lib"
    )
    assert base_chain(tmp_path / "docker/loop/Dockerfile", index).image == "loop"  # a cycle ends the chain
    assert family_name("registry.example:5000/ml/family-audio:2024@sha256:abc") == "family-audio"


def test_the_family_index_skips_hidden_cache_and_venv_folders(tmp_path: Path) -> None:
    for relative in (
        "Dockerfile",  # the root's own: no folder names a family
        "docker/gpu/Dockerfile",
        "docker/Dockerfile.audio",
        "zzz/gpu/Dockerfile",  # walked later: the first one found keeps the name
        "a/gpu/Dockerfile.notes.txt",  # Dockerfile.* : family `notes.txt`
        ".git/hidden/Dockerfile",
        "web/node_modules/npmpkg/Dockerfile",
        "py/lib/python3.11/site-packages/wheelpkg/Dockerfile",
        "src/__pycache__/Dockerfile",
        "tools/venv-like/Dockerfile.inside-venv",
        "tools/venv-like/deeper/venvdeep/Dockerfile",
        "Dockerfile.root-level",
    ):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("FROM scratch\n")
    (tmp_path / "tools/venv-like/pyvenv.cfg").write_text("home = /usr/bin\n")
    assert index_family_dockerfiles(tmp_path) == {
        "audio": tmp_path / "docker/Dockerfile.audio",
        "gpu": tmp_path / "docker/gpu/Dockerfile",
        "notes.txt": tmp_path / "a/gpu/Dockerfile.notes.txt",
        "root-level": tmp_path / "Dockerfile.root-level",
    }
    assert index_family_dockerfiles(tmp_path, ["zzz/*/Dockerfile", "docker/Dockerfile.*"]) == {
        "audio": tmp_path / "docker/Dockerfile.audio",
        "gpu": tmp_path / "zzz/gpu/Dockerfile",
    }


def test_a_heredoc_body_belongs_to_its_run() -> None:
    text = "FROM a\nRUN <<EOF\napt-get install -y git\nFROM fake\nEOF\nRUN <<-END cat\n\tx\n\tEND\nENV X=1\n"
    assert [(i.keyword, i.line, i.end_line) for i in instructions(text)] == [
        ("FROM", 1, 1),
        ("RUN", 2, 5),
        ("RUN", 6, 8),
        ("ENV", 9, 9),
    ]


def test_problems_name_their_line_and_heredoc_lists_are_read_not_patched() -> None:
    from depaudit.dockerfile.edit import patch_dockerfile
    from depaudit.dockerfile.parse import apt_installs
    from depaudit.dockerfile.problems import dockerfile_problems

    text = 'FROM base\nRUN <<EOF\napt-get update\napt-get install -y git curl\nEOF\nFROBNICATE x\nRUN ["apt-get", "install", "x"]\n'
    assert dockerfile_problems(text) == [
        (6, "unknown instruction 'FROBNICATE'"),
        (2, "apt-get install inside a heredoc: depaudit reads it but will not patch it"),
        (7, "apt in an exec-form RUN: depaudit will not read or patch it"),
    ]
    assert [(a.in_heredoc, [p.name for p in a.packages]) for a in apt_installs(text)] == [(True, ["git", "curl"])]
    assert patch_dockerfile(text, ["git"]) == text  # a heredoc installs it already
    assert dockerfile_problems("FROM a\nRUN <<EOF\nnever closed\n") == [(2, "heredoc <<EOF never ends")]
    assert dockerfile_problems("RUN make \\") == [
        (1, "no FROM instruction: not a Dockerfile depaudit can follow"),
        (1, "the file ends inside a continued instruction (a trailing backslash)"),
    ]


def test_heredoc_markers_in_exec_form_are_strings() -> None:
    # BuildKit opens a heredoc in the shell form of RUN, COPY and ADD only.
    text = (
        'FROM a\nCMD ["python", "-c", "print(1) <<\'PY\'"]\nRUN ["sh", "-c", "cat <<EOF"]\n'
        "RUN --mount=type=cache,target=/root/.cache apt-get update && apt-get install -y curl\nENV X=1\n"
    )
    assert [(i.keyword, i.line, i.heredoc) for i in instructions(text)] == [
        ("FROM", 1, ""), ("CMD", 2, ""), ("RUN", 3, ""), ("RUN", 4, ""), ("ENV", 5, "")
    ]
    assert [[p.name for p in a.packages] for a in apt_installs(text)] == [["curl"]]
    assert not any("heredoc" in message for _, message in dockerfile_problems(text))
    shell = "FROM a\nRUN --network=none <<EOF\necho hi\nEOF\nCOPY <<EOF /x\ny\nEOF\n"
    assert [(i.keyword, i.heredoc) for i in instructions(shell)] == [("FROM", ""), ("RUN", "echo hi\n"), ("COPY", "y\n")]


def test_a_package_pinned_to_a_variable_version_is_still_named() -> None:
    # NVIDIA's CUDA images pin this way: the name is literal, only the version is computed.
    text = (
        "FROM base\nARG V\nRUN apt-get update && apt-get install -y --no-install-recommends cuda-cudart-12-4=${V} "
        "libx=$V $NAME=1 && rm -rf /var/lib/apt/lists/*\n"
    )
    (install,) = apt_installs(text)
    assert [p.name for p in install.packages] == ["cuda-cudart-12-4", "libx"]
    assert install.unknown == ("$NAME=1",)
