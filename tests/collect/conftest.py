"""Real source trees for the collect tests, written into tmp_path."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from depaudit.collect.imports import collect_imports
from depaudit.collect.model import ServiceImports
from depaudit.collect.services import discover_services

Tree = Mapping[str, "str | bytes"]


def write_tree(root: Path, files: Tree) -> None:
    """Text is dedented and written as UTF-8; bytes are written as they are."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")


@pytest.fixture
def tree(tmp_path: Path) -> Callable[[Tree], Path]:
    """Writes files under tmp_path and returns tmp_path."""

    def make(files: Tree) -> Path:
        write_tree(tmp_path, files)
        return tmp_path

    return make


@pytest.fixture
def collect(tmp_path: Path) -> Callable[[Tree], ServiceImports]:
    """Writes the files as the one service `tmp_path/svc` and collects its imports."""

    def run(files: Tree) -> ServiceImports:
        root = tmp_path / "svc"
        write_tree(root, files)
        services, findings = discover_services(root)
        assert findings == []
        assert len(services) == 1
        return collect_imports(services[0])

    return run
