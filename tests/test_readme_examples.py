"""Every fenced README block that starts with `$ depaudit …` is run, as README command 1 leaves
things (the example fleet's environment in ./.venv), and must print exactly what the block shows."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import EXAMPLE_FLEET, REPO

EXAMPLE = re.compile(r"```[a-z]*\n(\$ depaudit [^\n]*)\n(.*?)```", re.S)


def readme_examples() -> list[tuple[str, str]]:
    return EXAMPLE.findall((REPO / "README.md").read_text(encoding="utf-8"))


def test_the_readme_shows_examples_to_run() -> None:
    commands = [command for command, _ in readme_examples()]
    assert len(commands) >= 4, commands
    assert any(" why " in command for command in commands)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory, fleet_site_packages: Path) -> Path:
    """The repository's root as command 1 leaves it: examples/fleet, and .venv holding its wheels."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(EXAMPLE_FLEET, root / "examples" / "fleet")
    venv = root / ".venv"
    version = fleet_site_packages.parent.name  # python3.X
    (venv / "lib" / version).mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = /usr/bin\nversion = {version.removeprefix('python')}.0\n")
    (venv / "lib" / version / "site-packages").symlink_to(fleet_site_packages, target_is_directory=True)
    return root


@pytest.mark.network
@pytest.mark.parametrize(("command", "shown"), readme_examples(), ids=[c for c, _ in readme_examples()])
def test_a_readme_example_prints_what_it_shows(checkout: Path, command: str, shown: str) -> None:
    args = shlex.split(command.removeprefix("$ "))
    environ = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "FORCE_COLOR")}
    result = subprocess.run(
        [sys.executable, "-m", "depaudit", *args[1:]], cwd=checkout, capture_output=True, text=True,
        env={**environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )
    assert result.returncode in (0, 1), result.stderr
    assert result.stdout == shown, f"README.md shows another output for `{command}`; it prints:\n{result.stdout}"
