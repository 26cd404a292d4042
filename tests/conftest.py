"""Fixtures shared by the whole suite: real wheels installed into cached virtual environments."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_FLEET = REPO / "examples" / "fleet"


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "depaudit-tests"


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    assert len(found) == 1, f"expected one site-packages in {venv}, found {found}"
    return found[0]


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=900,
    )


def _index_reachable() -> bool:
    with tempfile.TemporaryDirectory() as scratch:
        probe = _pip(Path(sys.executable), "download", "--no-deps", "--dest", scratch, "six==1.16.0")
    return probe.returncode == 0


def build_wheel_env(name: str, pip_args: Sequence[str], cwd: Path = REPO) -> Path:
    """A venv with real wheels from the package index, cached across runs by its inputs.

    Returns its site-packages. Skips the calling test when the index cannot be reached.
    """
    key_material = [name, sys.version, *pip_args]
    for arg in pip_args:
        candidate = cwd / arg
        if candidate.is_file():  # requirements files: their content is part of the key
            key_material.append(candidate.read_text())
            for included in candidate.parent.rglob("*.txt"):
                key_material.append(f"{included}:{included.read_text()}")
    digest = hashlib.sha256("\0".join(key_material).encode()).hexdigest()[:16]
    venv = _cache_root() / f"{name}-{digest}"
    if (venv / ".complete").exists():
        return _site_packages(venv)

    venv.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=venv.parent))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True)
        result = _pip(staging / "bin" / "python", "install", "--no-compile", *pip_args)
        if result.returncode != 0:
            if not _index_reachable():
                pytest.skip("the Python package index is unreachable: cannot install real wheels")
            pytest.fail(f"pip install {' '.join(pip_args)} failed:\n{result.stdout}\n{result.stderr}")
        (staging / ".complete").touch()
        # venvs are not relocatable for running, but we only read their site-packages.
        if not venv.exists():
            staging.rename(venv)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _site_packages(venv)


@pytest.fixture(scope="session")
def wheel_env() -> Callable[[str, Sequence[str]], Path]:
    return build_wheel_env


@pytest.fixture(scope="session")
def fleet_site_packages() -> Path:
    """The example fleet's pinned requirements, installed as README command 1 does."""
    return build_wheel_env("example-fleet", ["-r", str(EXAMPLE_FLEET / "requirements.txt")])
