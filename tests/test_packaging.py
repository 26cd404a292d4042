"""The wheel carries what a non-editable install needs: rules/ and the JSON schema."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import REPO, index_reachable


@pytest.mark.network  # the isolated build fetches hatchling from the package index
def test_wheel_ships_rules_and_schema(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        if not index_reachable():
            pytest.skip("the Python package index is unreachable: cannot fetch the build backend")
        pytest.fail(f"building the wheel failed:\n{result.stderr}")
    (wheel,) = tmp_path.glob("depaudit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "depaudit/rules/ubuntu-22.04.toml",
        "depaudit/rules/debian-12.toml",
        "depaudit/emit/report.schema.json",
    }
    assert expected <= names
    rules = {n for n in names if n.startswith("depaudit/rules/") and n.endswith(".toml")}
    assert rules == {f"depaudit/rules/{p.relative_to(REPO / 'rules').as_posix()}" for p in (REPO / "rules").rglob("*.toml")}
