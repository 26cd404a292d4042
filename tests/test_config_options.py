"""Every scan option set in the config does what its flag does; a flag given wins; a config that
cannot be read is exit 2 naming the file and the line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from depaudit.fleet.settings import SETTING_KEYS
from helpers import EXAMPLE_FLEET


def depaudit(cwd: Path, *args: str, colour: bool = False) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    environ["FORCE_COLOR" if colour else "NO_COLOR"] = "1"
    return subprocess.run([sys.executable, "-m", "depaudit", *args], cwd=cwd, capture_output=True, text=True, env=environ)


def fleet_copy(folder: Path, settings: str = "") -> Path:
    shutil.copytree(EXAMPLE_FLEET, folder)
    with (folder / "depaudit.toml").open("r+", encoding="utf-8") as config:
        text = config.read()
        config.seek(0)
        config.write(settings + text)  # top-level keys go before the first table
    return folder


def outcome(folder: Path, result: subprocess.CompletedProcess[str]) -> tuple[int, str, str, dict[str, bytes]]:
    """What a run did: its exit code, its output, and every file it left (Dockerfiles, reports)."""
    files = {
        # the reports name the folder (SARIF's root)
        p.relative_to(folder).as_posix(): p.read_bytes().replace(bytes(folder), b"<fleet>")
        for p in sorted(folder.rglob("*")) if p.is_file() and "cache" not in p.parts
    }
    # The cache's files: how many in each of its folders says enough (their names hold digests of
    # the run's inputs, the config among them).
    kept = sorted(p.parent.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and "cache" in p.parts)
    files.update({f"{where} ({kept.count(where)} files)": b"" for where in kept})
    files.pop("depaudit.toml")
    stderr = re.sub(r"\(\d+\.\d+ s\)", "(… s)", result.stderr.replace(str(folder), "<fleet>"))  # -v's timings
    return result.returncode, result.stdout.replace(str(folder), "<fleet>"), stderr, files


# config text → the flags it stands for (relative paths: the config's folder is the run's folder)
CASES = [
    ('format = "json"\n', ["--format", "json"]),
    ('format = "patch"\nprune = true\n', ["--format", "patch", "--prune"]),
    ('fail-on = "never"\n', ["--fail-on", "never"]),
    ('fail-on = "unused"\n', ["--fail-on", "unused"]),
    ('output = "out/report.txt"\n', ["--output", "out/report.txt"]),
    ('output-dir = "reports"\nformat = "bindep"\n', ["--output-dir", "reports", "--format", "bindep"]),
    ("write = true\n", ["--write"]),
    ('write = true\nprune = true\nformat = "patch"\n', ["--write", "--prune", "--format", "patch"]),
    ('hoist = true\nformat = "markdown"\n', ["--hoist", "--format", "markdown"]),
    ("jobs = 1\n", ["--jobs", "1"]),
    ('cache-dir = "cache"\n', ["--cache-dir", "cache"]),
    ('cache-dir = "cache"\ncache = false\n', ["--cache-dir", "cache", "--no-cache"]),
    ('module-reach = false\nformat = "json"\n', ["--no-module-reach", "--format", "json"]),
    ("quiet = true\n", ["-q"]),
    ("verbose = true\ncache = false\n", ["-v", "--no-cache"]),  # counts files parsed: both runs parse them all
    ("color = false\n", ["--no-color"]),  # run with FORCE_COLOR=1: the flag and the key both win over it
    ("progress = false\n", ["--no-progress"]),  # piped: no status line either way (tests/test_cli_output.py: a pty)
]
SAME_HERE = (["--jobs", "1"], ["--fail-on", "unused"], ["--no-progress"])  # change nothing this test can see


@pytest.mark.network
@pytest.mark.parametrize(("settings", "flags"), CASES, ids=[c[0].strip().replace("\n", ";") for c in CASES])
def test_each_setting_changes_the_run_as_its_flag_does(
    tmp_path: Path, fleet_site_packages: Path, settings: str, flags: list[str]
) -> None:
    by_flag = fleet_copy(tmp_path / "flag")
    by_config = fleet_copy(tmp_path / "config", settings)
    common = ["scan", "--site-packages", str(fleet_site_packages)]
    colour = flags == ["--no-color"]
    flagged = outcome(by_flag, depaudit(by_flag, *common, *flags, colour=colour))
    configured = outcome(by_config, depaudit(by_config, *common, colour=colour))
    assert configured == flagged
    if flags not in SAME_HERE:  # the fleet fails already; one process or two give one report
        plain = fleet_copy(tmp_path / "plain")
        baseline = ["--cache-dir", "cache"] if "--no-cache" in flags else []
        assert flagged != outcome(plain, depaudit(plain, *common, *baseline, colour=colour))


def test_every_setting_is_in_the_cases() -> None:
    assert {line.split(" =")[0] for settings, _ in CASES for line in settings.splitlines()} == set(SETTING_KEYS)


@pytest.mark.network
def test_a_flag_given_wins_over_the_config(tmp_path: Path, fleet_site_packages: Path) -> None:
    fleet = fleet_copy(tmp_path / "fleet", 'format = "json"\nfail-on = "never"\nquiet = true\n')
    given = ["scan", "--site-packages", str(fleet_site_packages), "--format", "patch", "--fail-on", "missing"]
    result = depaudit(fleet, *given, "-v")
    assert result.returncode == 1
    assert result.stdout.startswith("--- a/docker/family-vision-cu121/Dockerfile\n")
    assert "depaudit: plan:" in result.stderr  # -v given: the config's quiet does not come with it


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("pyproject.toml", "[project]\nname = 'svc'\n[tool.depaudit\n", "pyproject.toml, line 3: not valid TOML: Expected ']' at the end of a table declaration (at line 3, column"),
        ("pyproject.toml", "[tool.depaudit]\npaths = ['s']\n\nfail-on = 'sometimes'\n", "pyproject.toml, line 4: top level fail-on: expected one of missing, unused, never, got 'sometimes'"),
        ("depaudit.toml", "paths = ['s']\njobs = 0\n", "depaudit.toml, line 2: top level jobs: expected a number of processes, 1 or more, got 0"),
        ("depaudit.toml", "paths = ['s']\n[families.a]\ndockerfile = 'x'\ngpu = 'yes'\n", "depaudit.toml, line 4: [families.a] gpu: expected true or false, got 'yes'"),
        ("depaudit.toml", "paths = ['s']\nformat = 'yaml'\n", "depaudit.toml, line 2: top level format: expected one of table, json, markdown, sarif, bindep, patch, got 'yaml'"),
    ],
)
def test_a_config_that_cannot_be_used_is_exit_2_naming_file_and_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / "s" / "svc").mkdir(parents=True)
    (tmp_path / "s" / "svc" / "main.py").write_text("import json\n")
    (tmp_path / name).write_text(text)
    result = depaudit(tmp_path, "scan", "s")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"depaudit: error: {tmp_path / name}{message.removeprefix(name)}")
    assert result.stderr.count("\n") == 1


def test_an_unreadable_config_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "depaudit.toml").write_bytes(b"paths = ['\xff']\n")
    result = depaudit(tmp_path, "scan")
    assert (result.returncode, result.stderr) == (
        2, f"depaudit: error: {tmp_path / 'depaudit.toml'} is not UTF-8 text: invalid start byte\n"
    )
