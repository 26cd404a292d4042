"""The lock tests' wheels, built once per session (lock_wheels.py says how)."""

from __future__ import annotations

import pytest

from helpers import elf_folder
from lock_wheels import Wheels, build_wheels


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Wheels:
    return build_wheels(elf_folder(tmp_path_factory, "lock-wheels"))
