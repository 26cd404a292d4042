"""The example fleet: the patch applies with git apply, and a second scan has nothing to change."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import EXAMPLE_FLEET

pytestmark = pytest.mark.network


def _depaudit(cwd: Path, site_packages: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "depaudit", "scan", "services", "--site-packages", str(site_packages), *extra],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_patch_applies_changes_only_its_lines_and_is_idempotent(tmp_path: Path, fleet_site_packages: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(EXAMPLE_FLEET, fleet)
    subprocess.run(["git", "init", "-q"], cwd=fleet, check=True)
    before = {p: p.read_bytes() for p in fleet.rglob("Dockerfile")}

    patch = _depaudit(fleet, fleet_site_packages, "--format", "patch").stdout
    assert patch == (
        "--- a/docker/family-vision-cu121/Dockerfile\n"
        "+++ b/docker/family-vision-cu121/Dockerfile\n"
        "@@ -5,4 +5,5 @@\n"
        "         libsm6 \\\n"
        "         libxrender1 \\\n"
        "         libxext6 \\\n"
        "+        libglib2.0-0 \\\n"
        "     && rm -rf /var/lib/apt/lists/*\n"
    )
    (fleet / "change.patch").write_text(patch)
    applied = subprocess.run(["git", "apply", "change.patch"], cwd=fleet, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr

    changed = {p for p, old in before.items() if p.read_bytes() != old}
    assert changed == {fleet / "docker/family-vision-cu121/Dockerfile"}
    old_lines = before[fleet / "docker/family-vision-cu121/Dockerfile"].decode().splitlines()
    new_lines = (fleet / "docker/family-vision-cu121/Dockerfile").read_text().splitlines()
    assert new_lines == old_lines[:7] + ["        libglib2.0-0 \\"] + old_lines[7:]

    assert _depaudit(fleet, fleet_site_packages, "--format", "patch").stdout == ""  # nothing left to change


def test_write_applies_the_same_change(tmp_path: Path, fleet_site_packages: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(EXAMPLE_FLEET, fleet)
    result = _depaudit(fleet, fleet_site_packages, "--write", "--format", "json")
    assert "patched" in result.stderr and "family-vision-cu121" in result.stderr
    assert "        libglib2.0-0 \\\n" in (fleet / "docker/family-vision-cu121/Dockerfile").read_text()
    assert _depaudit(fleet, fleet_site_packages, "--format", "patch").stdout == ""


def test_what_write_prints_and_files_is_what_is_left_to_change(tmp_path: Path, fleet_site_packages: Path) -> None:
    """With --write, the patch printed (and put in --output-dir) is of the Dockerfiles as written:
    nothing is left to change."""
    fleet = tmp_path / "fleet"
    shutil.copytree(EXAMPLE_FLEET, fleet)
    result = _depaudit(fleet, fleet_site_packages, "--write", "--format", "patch", "--output-dir", str(tmp_path / "out"))
    assert "patched" in result.stderr and "family-vision-cu121" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "out/patches").exists()
