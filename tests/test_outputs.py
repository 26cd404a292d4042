"""The CI outputs: Markdown that renders, bindep, --output-dir, --fail-on (SARIF: test_sarif.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import markdown
import pytest

from helpers import EXAMPLE_FLEET

pytestmark = pytest.mark.network


def _scan(site_packages: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "depaudit", "scan", str(EXAMPLE_FLEET / "services"), "--site-packages", str(site_packages), *extra],
        capture_output=True,
        text=True,
    )


def test_markdown_renders_as_tables(fleet_site_packages: Path) -> None:
    html = markdown.markdown(_scan(fleet_site_packages, "--format", "markdown").stdout, extensions=["tables"])
    assert html.count("<table>") == 3  # the family plan; face-recognition and vision-agent needs
    assert "<h3>face-recognition on <code>nvidia/cuda:12.1.1-runtime-ubuntu22.04</code></h3>" in html
    assert re.search(r"<td><code>family-vision-cu121</code></td>\s*<td><code>docker/family-vision-cu121/Dockerfile</code></td>\s*<td><code>libglib2.0-0</code> \(\+[0-9.]+ MB\)</td>", html)
    assert "<strong>1 required package(s) missing:</strong> <code>libglib2.0-0</code>" in html


def test_output_dir_bindep_and_fail_on(fleet_site_packages: Path, tmp_path: Path) -> None:
    result = _scan(fleet_site_packages, "--output-dir", str(tmp_path / "out"), "--format", "json")
    assert result.returncode == 1
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == [
        "bindep/base-gpu-cu121.txt",
        "bindep/family-torch-cu121.txt",
        "bindep/family-vision-cu121.txt",
        "patches/family-vision-cu121.patch",
        "report.json",
        "report.md",
        "report.sarif",
        "report.txt",
    ]
    assert (tmp_path / "out/bindep/family-torch-cu121.txt").read_text().splitlines()[1:] == [
        "ffmpeg [platform:dpkg]",
        "libportaudio2 [platform:dpkg]",
    ]
    assert _scan(fleet_site_packages, "--fail-on", "never").returncode == 0
    assert _scan(fleet_site_packages, "--fail-on", "unused").returncode == 1
