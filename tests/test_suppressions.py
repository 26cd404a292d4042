"""Suppressions: an [[ignore]] entry and an inline `# depaudit: ignore[CODE]` comment each take
exactly their result out of the verdict, and every report lists it with its reason."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from depaudit.emit.json_report import load_schema
from helpers import EXAMPLE_FLEET, build_vision_env, have_gcc

needs_gcc = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")


@pytest.fixture(scope="module")
def vision_sp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_vision_env(tmp_path_factory.mktemp("vision-ignore"))


def depaudit(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "depaudit", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"}
    )


def fleet(root: Path, source: str, config: str = "") -> Path:
    (root / "services" / "svc").mkdir(parents=True)
    (root / "services" / "svc" / "main.py").write_text(source)
    (root / "depaudit.toml").write_text('paths = ["services"]\n' + config)
    return root


def scan_json(root: Path, site_packages: Path) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = depaudit(root, "scan", "--site-packages", str(site_packages), "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, load_schema())
    return result.returncode, report


def needs(report: dict) -> list[tuple[str, str | None]]:  # type: ignore[type-arg]
    return [(n["name"], n["code"]) for n in report["services"][0]["needs"]]


@needs_gcc
def test_a_config_entry_suppresses_exactly_its_need(tmp_path: Path, vision_sp: Path) -> None:
    plain_code, plain = scan_json(fleet(tmp_path / "plain", "import visionlib\n"), vision_sp)
    ignore = '\n[[ignore]]\ncode = "DA201"\npackage = "libgl1"\nreason = "the GL stack comes from the host"\n'
    code, report = scan_json(fleet(tmp_path / "ignored", "import visionlib\n", ignore), vision_sp)
    assert (plain_code, code) == (1, 0)  # libGL.so.1 was the one required library missing
    assert report["failing"] is False
    assert needs(report) == [n for n in needs(plain) if n != ("libGL.so.1", "DA201")]
    assert report["suppressed"] == [
        {"code": "DA201", "subject": "svc: libGL.so.1 (libgl1)", "reason": "the GL stack comes from the host",
         "by": "depaudit.toml [[ignore]] 1", "service": "svc", "family": None, "path": "svc/main.py", "line": 1}
    ]
    table = depaudit(tmp_path / "ignored", "scan", "--site-packages", str(vision_sp)).stdout
    assert (
        "Suppressed (1): out of the verdict, by the fleet's decision\n"
        "  DA201 svc: libGL.so.1 (libgl1) — the GL stack comes from the host [depaudit.toml [[ignore]] 1]\n"
    ) in table
    markdown = depaudit(tmp_path / "ignored", "scan", "--site-packages", str(vision_sp), "--format", "markdown").stdout
    assert "| DA201 | svc: libGL.so.1 (libgl1) | the GL stack comes from the host | `depaudit.toml [[ignore]] 1` |" in markdown


@needs_gcc
def test_an_inline_comment_suppresses_exactly_its_line(tmp_path: Path, vision_sp: Path) -> None:
    source = "import cv2  # depaudit: ignore[DA101] installed by the entrypoint\nimport yaml\n"
    code, report = scan_json(fleet(tmp_path / "f", source), vision_sp)
    assert code == 1  # yaml is still missing
    findings = [(f["code"], f["line"]) for f in report["services"][0]["findings"] if f["code"] == "DA101"]
    assert findings == [("DA101", 2)]
    assert report["suppressed"] == [
        {"code": "DA101", "subject": report["suppressed"][0]["subject"], "reason": "installed by the entrypoint",
         "by": "svc/main.py:1", "service": "svc", "family": None, "path": "svc/main.py", "line": 1}
    ]
    assert report["suppressed"][0]["subject"].startswith("svc: svc/main.py:1 ")
    (tmp_path / "f" / "services" / "svc" / "main.py").write_text(source.replace("import yaml\n", ""))
    assert scan_json(tmp_path / "f", vision_sp)[0] == 0
    # Another code on the line suppresses nothing: the comment names what it lives with.
    (tmp_path / "f" / "services" / "svc" / "main.py").write_text("import cv2  # depaudit: ignore[DA102]\n")
    code, report = scan_json(tmp_path / "f", vision_sp)
    assert (code, report["suppressed"]) == (1, [])


@needs_gcc
def test_sarif_keeps_a_suppressed_result_as_suppressed(tmp_path: Path, vision_sp: Path) -> None:
    root = fleet(tmp_path / "f", "import cv2  # depaudit: ignore[DA101] vendored\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    result = depaudit(root, "scan", "--site-packages", str(vision_sp), "--format", "sarif")
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)["runs"][0]["results"]
    assert [(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], r.get("suppressions")) for r in results] == [
        ("DA101", "services/svc/main.py", [{"kind": "inSource", "justification": "vendored"}]),
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('code = "DA201"\n', "depaudit.toml [[ignore]] 1: give a `reason`: a suppression says why"),
        ('reason = "x"\n', "depaudit.toml [[ignore]] 1: say what it ignores: one or more of code, package, family, service, file"),
        ('code = "DEP002"\nreason = "x"\n', "depaudit.toml [[ignore]] 1 code: 'DEP002' is not a depaudit finding code"),
        ('code = "DA201"\nreason = "x"\nwhy = "y"\n', "depaudit.toml [[ignore]] 1: unknown key 'why'"),
    ],
)
def test_an_ignore_entry_that_cannot_be_used_is_exit_2(tmp_path: Path, entry: str, message: str) -> None:
    root = fleet(tmp_path, "import json\n", "\n[[ignore]]\n" + entry)
    result = depaudit(root, "scan")
    assert result.returncode == 2
    assert message in result.stderr, result.stderr


@pytest.mark.network
def test_plan_items_by_package_and_by_code(tmp_path: Path, fleet_site_packages: Path) -> None:
    """`package` alone takes the need and the addition (exit 0, nothing to patch); `code =
    "DA301"` takes only the addition: the need still fails the gate."""
    def run(name: str, entry: str) -> tuple[int, str, dict]:  # type: ignore[type-arg]
        root = tmp_path / name
        shutil.copytree(EXAMPLE_FLEET, root)
        with (root / "depaudit.toml").open("a") as config:
            config.write("\n[[ignore]]\n" + entry)
        common = ["scan", "--site-packages", str(fleet_site_packages)]
        patch = depaudit(root, *common, "--format", "patch")
        return patch.returncode, patch.stdout, json.loads(depaudit(root, *common, "--format", "json").stdout)

    code, patch, report = run("all", 'package = "libglib2.0-0"\nreason = "added by the platform team\'s layer"\n')
    assert (code, patch) == (0, "")
    assert sorted((s["code"], s["subject"]) for s in report["suppressed"]) == [
        ("DA201", "face-recognition: libglib-2.0.so.0 (libglib2.0-0)"),
        ("DA201", "face-recognition: libgthread-2.0.so.0 (libglib2.0-0)"),
        ("DA203", "vision-agent: libglib-2.0.so.0 (libglib2.0-0)"),
        ("DA203", "vision-agent: libgthread-2.0.so.0 (libglib2.0-0)"),
        ("DA301", "family-vision-cu121: add libglib2.0-0"),
    ]
    code, patch, report = run("add", 'code = "DA301"\npackage = "libglib2.0-0"\nreason = "added by a later layer"\n')
    assert (code, patch) == (1, "")
    assert [(s["code"], s["family"], s["path"]) for s in report["suppressed"]] == [
        ("DA301", "family-vision-cu121", "docker/family-vision-cu121/Dockerfile")
    ]
