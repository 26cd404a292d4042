"""Read a Dockerfile's image (base and environment) from disk: the parser is depaudit.dockerfile.parse."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from depaudit.dockerfile.parse import DockerfileImage, read_image
from depaudit.reading import read_regular


def read_dockerfile(path: Path, inherited: Mapping[str, str] | None = None) -> DockerfileImage | None:
    try:
        text = read_regular(path).decode("utf-8", errors="replace")  # a FIFO named Dockerfile: never blocks
    except OSError:
        return None
    return read_image(text, inherited)
