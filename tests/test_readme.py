"""The README opens with the two set-up commands, and CI runs exactly the second one."""

from __future__ import annotations

import re
from pathlib import Path

from depaudit.fleet.config import load_config
from helpers import REPO


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", text)


def test_readme_opens_with_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    commands = _readme_commands()
    assert len(commands) == 2
    assert text.index(commands[1]) < text.index("\n## ")  # both before the first section
    assert commands[0].endswith("depaudit scan examples/fleet/services")
    assert commands[1].endswith(".venv/bin/pytest")


def test_ci_runs_the_readme_test_command() -> None:
    script = (REPO / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in script


def test_the_readme_config_example_is_a_valid_config(tmp_path: Path) -> None:
    text = (REPO / "README.md").read_text()
    (block,) = re.findall(r"```toml\n(.+?)\n```", text, re.S)
    (tmp_path / "depaudit.toml").write_text(block)
    config = load_config(tmp_path / "depaudit.toml")
    assert sorted(config.families) == ["family-vision"]
    assert config.services["FaceRecognition"].entry == tmp_path / "agents/face.py"
    assert config.family_globs == ("docker/*/Dockerfile",)
