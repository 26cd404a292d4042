"""The stage order is the import order: the import-linter contracts in pyproject.toml hold, and
they fail when a stage imports one after it, or when the modules of a package import in a circle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO

pytest.importorskip("importlinter", reason="import-linter is a test dependency: pip install -e '.[test]'")

_LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def _lint(package_parent: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the `depaudit` package found in `package_parent`, with `config`'s contracts."""
    env = {**os.environ, "PYTHONPATH": str(package_parent), "NO_COLOR": "1"}
    env.pop("IMPORT_LINTER_CACHE_DIR", None)
    return subprocess.run(
        [sys.executable, "-c", _LINT, str(config), "--no-cache"],
        cwd=package_parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _planted(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """lint-imports on a copy of the package where `module` (a path below depaudit/) gained `line`."""
    shutil.copytree(REPO / "depaudit", tmp_path / "depaudit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    planted = tmp_path / "depaudit" / module
    planted.write_text(planted.read_text(encoding="utf-8") + f"\n{line}  # planted\n")
    return _lint(tmp_path, tmp_path / "pyproject.toml")


def test_the_stages_import_only_downwards_and_no_package_has_an_import_circle() -> None:
    run = _lint(REPO, REPO / "pyproject.toml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Contracts: 2 kept, 0 broken." in run.stdout


def test_an_import_back_up_the_stages_breaks_the_contract(tmp_path: Path) -> None:
    run = _planted(tmp_path, "collect/model.py", "from depaudit.plan.model import FamilyPlan")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Contracts: 0 kept, 2 broken." in run.stdout  # plan imports collect: a circle too
    assert "depaudit.collect is not allowed to import depaudit.plan" in run.stdout
    assert "depaudit.collect.model -> depaudit.plan.model" in run.stdout


def test_an_import_circle_inside_a_stage_breaks_the_contract(tmp_path: Path) -> None:
    run = _planted(tmp_path, "collect/units.py", "from depaudit.collect.hints import file_hints")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Contracts: 1 kept, 1 broken." in run.stdout
    assert "No cycles are allowed in depaudit.collect." in run.stdout
    assert "- .units -> .hints (1 import)" in run.stdout
