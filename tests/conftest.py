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
