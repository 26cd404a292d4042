"""Locks written by real lockers: uv (from PyPI) locks a small project against PyPI as of a
fixed date, and exports that lock as a pylock.toml and a hashed requirements.txt; pip locks the
same pins as a pylock.toml of its own. All say the same thing of what the image installs, and
depaudit reads the same pins from each."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from depaudit.lock.environment import lock_environment
from depaudit.lock.readers import read_lock
from depaudit.lock.tags import wheel_target
from depaudit.native.reads import read_by_the_scan
from depaudit.python.environment import load_environment
from depaudit.python.model import TargetPython
from helpers import PYPI_SIMPLE, _cache_root, build_wheel_env, index_reachable, made_once

UV = "uv==0.13.10"
PIP = "pip==26.3"  # `pip lock` came in 25.1
EXCLUDE_NEWER = "2026-12-01T00:00:00Z"  # the same resolution on every run
PYPROJECT = """\
[project]
name = "app"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["six==1.16.0", "colorama==0.4.6; sys_platform == 'win32'", "requests[socks]==2.32.3"]

[project.optional-dependencies]
gpu = ["packaging==24.2"]

[dependency-groups]
dev = ["iniconfig==2.0.0"]
"""
# What `uv sync --no-dev` installs on Linux with CPython 3.11: colorama is for Windows, packaging
# for an extra nobody asks for, iniconfig for the dev group.
INSTALLED = [
    ("certifi", "2026.10.19.post1"), ("charset-normalizer", "3.5.3"), ("idna", "3.20"), ("pysocks", "1.7.1"),
    ("requests", "2.32.3"), ("six", "1.16.0"), ("urllib3", "2.8.0"),
]
TARGET = TargetPython(python_version="3.11", python_full_version="3.11.7")


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        if not index_reachable():
            pytest.skip("the Python package index is unreachable: uv cannot lock")
        pytest.fail(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def real_locks() -> Path:
    """uv.lock, pylock.toml, requirements.txt and pip's pylock.pip.toml, made once and kept across runs."""
    key = hashlib.sha256(f"{UV}\0{PIP}\0{EXCLUDE_NEWER}\0{PYPROJECT}".encode()).hexdigest()[:16]
    tools = build_wheel_env("lockers", [UV, PIP]).parents[2] / "bin"

    def make(staging: Path) -> None:
        (staging / "pyproject.toml").write_text(PYPROJECT)
        _run([str(tools / "uv"), "lock", "--exclude-newer", EXCLUDE_NEWER, "--index-url", PYPI_SIMPLE, "--python", sys.executable], staging)
        for format_, name in (("pylock.toml", "pylock.toml"), ("requirements.txt", "requirements.txt")):
            _run([str(tools / "uv"), "export", "--frozen", "--no-dev", "--format", format_, "-o", name], staging)
        # pip resolves for this machine: every version pinned, its lock is uv's resolution.
        (staging / "pins.txt").write_text("".join(f"{name}=={version}\n" for name, version in INSTALLED))
        _run([str(tools / "python"), "-m", "pip", "lock", "--disable-pip-version-check", "-r", "pins.txt", "-o", "pylock.pip.toml"], staging)

    return made_once(_cache_root() / f"real-locks-{key}", make)


LOCKS = ["uv.lock", "pylock.toml", "requirements.txt", "pylock.pip.toml"]


@pytest.mark.parametrize("lock", LOCKS)
def test_each_lock_a_locker_writes_pins_what_the_image_installs(real_locks: Path, lock: str) -> None:
    read = read_lock(real_locks / lock, TARGET)
    assert read.findings == ()
    assert sorted((pin.name.lower(), pin.version) for pin in read.pins) == INSTALLED
    assert all(pin.hashes for pin in read.pins)  # both lockers hash every file they lock


def test_the_locks_audit_to_the_same_installed_distributions(real_locks: Path, tmp_path: Path) -> None:
    target = wheel_target("3.11", "ubuntu-22.04")
    cache = tmp_path / "cache"  # shared: a wheel downloaded for one lock is not downloaded again
    seen = []
    for lock in LOCKS:
        audit = lock_environment(real_locks / lock, target, find_links=[], cache=cache, reads=read_by_the_scan, index_url=PYPI_SIMPLE)
        assert audit.findings == (), lock
        seen.append(sorted((d.name.lower(), d.version) for d in load_environment([audit.site_packages]).distributions.values()))
    assert seen == [INSTALLED] * len(LOCKS)
