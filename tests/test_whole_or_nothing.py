"""Reports are written whole and before any Dockerfile is patched; a name of any bytes never
crashes a writer; a crash of depaudit is exit 3 with its traceback in a log, never exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import build_vision_env, have_gcc

needs_gcc = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")


@pytest.fixture(scope="module")
def vision_sp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_vision_env(tmp_path_factory.mktemp("vision-whole"))


def depaudit(cwd: Path, *args: str, code: str = "") -> subprocess.CompletedProcess[str]:
    """`depaudit ARGS` through the installed entry (`cli.run`); `code` runs first in the process."""
    script = f"import sys\n{code}\nfrom depaudit.cli import run\nsys.exit(run())\n"
    return subprocess.run(
        [sys.executable, "-c", script, *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, "NO_COLOR": "1", "DEPAUDIT_CACHE_DIR": str(cwd / "cache")}, errors="surrogateescape",
    )


def family_fleet(root: Path) -> Path:
    """A service whose family Dockerfile lacks libgl1: --write would add it."""
    (root / "services" / "svc").mkdir(parents=True)
    (root / "services" / "svc" / "main.py").write_text("import visionlib\n")
    (root / "services" / "svc" / "Dockerfile").write_text("FROM family-x\n")
    (root / "docker" / "family-x").mkdir(parents=True)
    (root / "docker" / "family-x" / "Dockerfile").write_text(
        "FROM ubuntu:22.04\nRUN apt-get update && apt-get install -y --no-install-recommends \\\n        curl \\\n"
        "    && rm -rf /var/lib/apt/lists/*\n"
    )
    return root


@needs_gcc
def test_a_report_that_cannot_be_written_patches_nothing(tmp_path: Path, vision_sp: Path) -> None:
    root = family_fleet(tmp_path / "fleet")
    dockerfile = root / "docker" / "family-x" / "Dockerfile"
    before = dockerfile.read_bytes()
    (root / "blocked").write_text("a file where the report's folder should be")
    result = depaudit(root, "scan", "services", "--site-packages", str(vision_sp), "--write", "--output", "blocked/report.json")
    assert result.returncode == 2
    assert result.stderr.startswith(f"depaudit: error: cannot write {Path('blocked/report.json')}: File exists")
    assert dockerfile.read_bytes() == before  # nothing patched
    # The same run with a report it can write: the report first, then the patch it describes.
    result = depaudit(root, "scan", "services", "--site-packages", str(vision_sp), "--write", "--output", "out/report.json",
                      "--format", "json")
    assert result.returncode == 1, result.stderr
    assert "libgl1" in dockerfile.read_text()
    assert [i["package"] for i in json.loads((root / "out" / "report.json").read_text())["families"][0]["add"]] == ["libgl1"]
    assert not [p for p in (root / "out").iterdir() if p.name.startswith(".")]  # no temporary left behind


@needs_gcc
def test_a_file_named_with_any_bytes_reaches_every_output(tmp_path: Path, vision_sp: Path) -> None:
    service = tmp_path / "fleet" / "svc"
    service.mkdir(parents=True)
    (service / os.fsdecode(b"m\xff\xfe.py")).write_text("import cv2\n")
    result = depaudit(tmp_path / "fleet", "scan", "svc", "--site-packages", str(vision_sp), "--output", "r.json",
                      "--format", "json", "--output-dir", "all")
    assert result.returncode == 1, result.stderr
    report = json.loads((tmp_path / "fleet" / "r.json").read_text(encoding="utf-8"))
    (finding,) = report["services"][0]["findings"]
    # Written as JSON's escape of the byte's stand-in: valid UTF-8, and the same string read back.
    assert (finding["code"], finding["path"]) == ("DA101", "svc/" + os.fsdecode(b"m\xff\xfe.py"))
    assert '"svc/m\\udcff\\udcfe.py"' in (tmp_path / "fleet" / "r.json").read_text(encoding="utf-8")
    assert sorted(p.name for p in (tmp_path / "fleet" / "all").iterdir()) == ["report.json", "report.md", "report.sarif", "report.txt"]  # no family: no bindep/
    table = depaudit(tmp_path / "fleet", "scan", "svc", "--site-packages", str(vision_sp))
    assert table.returncode == 1 and "svc/m\\udcff\\udcfe.py:1" in table.stdout


def test_a_crash_is_exit_3_with_its_traceback_in_a_log(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "main.py").write_text("import json\n")
    crash = "import depaudit.scan\ndef boom(*a, **k):\n    raise RuntimeError('the plan stage\\nfell over')\ndepaudit.scan.run_scan = boom\n"
    result = depaudit(tmp_path, "scan", "svc", code=crash)
    assert (result.returncode, result.stdout) == (3, "")
    (log,) = (tmp_path / "cache" / "crashes").iterdir()
    assert result.stderr == (
        f"depaudit: internal error: RuntimeError: the plan stage fell over (a bug in depaudit, not a finding; the traceback is in {log})\n"
    )
    text = log.read_text()
    assert "Traceback (most recent call last):" in text and "RuntimeError: the plan stage\nfell over" in text
