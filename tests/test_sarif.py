"""SARIF that code scanning places: valid against the OASIS 2.1.0 schema, rule ids that are
depaudit's codes, URIs from the repository root under %SRCROOT% that equal the patch's paths."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from depaudit.codes import CODES
from helpers import EXAMPLE_FLEET

pytestmark = pytest.mark.network

_SCHEMA = Path(__file__).parent / "emit" / "sarif" / "sarif-schema-2.1.0.json"
_VISION = "fleet/docker/family-vision-cu121/Dockerfile"


def _depaudit(cwd: Path, site_packages: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "depaudit", "scan", ".", "--site-packages", str(site_packages), *extra],
        cwd=cwd, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example fleet one folder down in a repository: the repository root is not the
    folder depaudit runs in (fleet/services), nor the one above the services (fleet)."""
    root = tmp_path_factory.mktemp("sarif") / "repo"
    shutil.copytree(EXAMPLE_FLEET, root / "fleet")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


@pytest.fixture(scope="module")
def sarif(repo: Path, fleet_site_packages: Path) -> dict[str, Any]:
    result = _depaudit(repo / "fleet" / "services", fleet_site_packages, "--format", "sarif")
    assert result.returncode == 1, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _places(sarif: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    return [
        (
            r["ruleId"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        )
        for r in sarif["runs"][0]["results"]
    ]


def test_the_sarif_of_a_real_scan_is_valid_sarif_2_1_0(sarif: dict[str, Any]) -> None:
    schema = json.loads(_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    validator(schema, format_checker=validator.FORMAT_CHECKER).validate(sarif)


def test_an_invalid_document_fails_the_schema(sarif: dict[str, Any]) -> None:
    """The validation bites: a region with line 0 and a result without a message are rejected."""
    schema = json.loads(_SCHEMA.read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(sarif))
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    broken = json.loads(json.dumps(sarif))
    del broken["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_every_code_is_a_rule_and_each_result_names_its_rule(sarif: dict[str, Any], repo: Path) -> None:
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [(r["id"], r["name"], r["shortDescription"]["text"], r["defaultConfiguration"]["level"]) for r in rules] == [
        (c.id, c.name, c.summary, c.level) for c in CODES.values()
    ]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in run["results"])
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": repo.resolve().as_uri() + "/"}}


def test_results_sit_on_repository_lines(sarif: dict[str, Any], repo: Path) -> None:
    services = "fleet/services"
    assert _places(sarif) == [
        ("DA303", "%SRCROOT%", "fleet/docker/base-gpu-cu121/Dockerfile", 5),  # python3: python3-pip depends on it
        ("DA303", "%SRCROOT%", "fleet/docker/family-torch-cu121/Dockerfile", 6),  # libsndfile1 on its own line
        ("DA303", "%SRCROOT%", "fleet/docker/family-torch-cu121/Dockerfile", 7),
        ("DA303", "%SRCROOT%", "fleet/docker/family-torch-cu121/Dockerfile", 8),
        ("DA301", "%SRCROOT%", _VISION, 3),  # libglib2.0-0 on the apt RUN line
        ("DA302", "%SRCROOT%", _VISION, 6),  # libxrender1 (unused)
        ("DA303", "%SRCROOT%", _VISION, 7),  # libxext6: libgl1 brings it
        ("DA104", "%SRCROOT%", f"{services}/face-recognition/requirements.txt", 3),  # Pillow, never imported
        ("DA201", "%SRCROOT%", f"{services}/face-recognition/detect.py", 5),  # import cv2: libglib-2.0.so.0
        ("DA201", "%SRCROOT%", f"{services}/face-recognition/detect.py", 5),  # and libgthread-2.0.so.0
        ("DA102", "%SRCROOT%", f"{services}/speech-to-text/main.py", 12),  # a guarded import torch
        ("DA103", "%SRCROOT%", f"{services}/text-to-speech/server.py", 5),  # numpy, undeclared
        ("DA103", "%SRCROOT%", f"{services}/vision-agent/agent/preview.py", 7),
        ("DA203", "%SRCROOT%", f"{services}/vision-agent/agent/preview.py", 6),  # a guarded import cv2
        ("DA203", "%SRCROOT%", f"{services}/vision-agent/agent/preview.py", 6),
        ("DA203", "%SRCROOT%", f"{services}/vision-agent/agent/__main__.py", 5),  # djpeg, unmapped
    ]
    for _, _, uri, line in _places(sarif):  # each names a real line of a real file
        assert len((repo / uri).read_text(encoding="utf-8").splitlines()) >= line
    messages = [r["message"]["text"] for r in sarif["runs"][0]["results"]]
    assert messages[8] == "face-recognition: the image lacks libglib-2.0.so.0 (required, missing); libglib2.0-0 provides it"


def test_dockerfile_uris_equal_the_patch_paths(sarif: dict[str, Any], repo: Path, fleet_site_packages: Path) -> None:
    patch = _depaudit(repo / "fleet" / "services", fleet_site_packages, "--format", "patch").stdout
    patched = re.findall(r"^\+\+\+ b/(.+)$", patch, re.M)
    assert patched == [_VISION]
    dockerfiles = {uri for _, _, uri, _ in _places(sarif) if uri.endswith("/Dockerfile")}
    assert set(patched) <= dockerfiles
    assert re.findall(r"^--- a/(.+)$", patch, re.M) == patched
    applied = subprocess.run(["git", "apply", "--check", "-"], input=patch, cwd=repo, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr  # at the repository root, where the URIs point from
