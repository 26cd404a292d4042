"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from helpers import EXAMPLE_FLEET, build_wheel_env


@pytest.fixture(scope="session")
def wheel_env() -> Callable[[str, Sequence[str]], Path]:
    return build_wheel_env


@pytest.fixture(scope="session")
def fleet_site_packages() -> Path:
    """The example fleet's pinned requirements, installed as README command 1 does."""
    return build_wheel_env("example-fleet", ["-r", str(EXAMPLE_FLEET / "requirements.txt")])


@pytest.fixture(autouse=True)
def _isolated_index_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Scans read `depaudit index` output from the cache: never the developer's own."""
    cache = tmp_path_factory.mktemp("depaudit-cache")
    monkeypatch.setenv("DEPAUDIT_CACHE_DIR", str(cache))
    return cache
