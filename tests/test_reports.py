"""reports/ holds the example fleet's scan; this test fails when it drifts from what we report."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from helpers import EXAMPLE_FLEET, REPO
from depaudit.emit.json_report import dumps
from depaudit.emit.table import render_plain_text
from depaudit.scan import ScanOptions, run_scan

REPORTS = REPO / "reports"


@pytest.mark.network
def test_committed_reports_match_a_fresh_scan(fleet_site_packages: Path) -> None:
    made_on = json.loads((REPORTS / "example-fleet.json").read_text(encoding="utf-8"))["python_version"]
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running != made_on and not os.environ.get("DEPAUDIT_UPDATE_REPORTS"):
        pytest.skip(f"reports/ was made on Python {made_on}, this is {running}: pip picks other wheels for the example fleet")
    report = run_scan(ScanOptions((EXAMPLE_FLEET / "services",), (fleet_site_packages,), "ubuntu-22.04"))
    # The environment's folder is this machine's: the committed reports name it by its role.
    shown = str(fleet_site_packages.resolve())
    fresh = {
        "example-fleet.json": dumps(report).replace(shown, "<site-packages>"),
        "example-fleet.txt": render_plain_text(report).replace(shown, "<site-packages>"),
    }
    if os.environ.get("DEPAUDIT_UPDATE_REPORTS"):
        for name, text in fresh.items():
            (REPORTS / name).write_text(text, encoding="utf-8")
    for name, text in fresh.items():
        committed = (REPORTS / name).read_text(encoding="utf-8")
        assert committed == text, (
            f"reports/{name} is out of date; refresh it with "
            "DEPAUDIT_UPDATE_REPORTS=1 .venv/bin/pytest tests/test_reports.py"
        )


@pytest.mark.network
def test_the_example_config_says_what_the_conventions_find(fleet_site_packages: Path) -> None:
    by_convention = run_scan(ScanOptions((EXAMPLE_FLEET / "services",), (fleet_site_packages,), "ubuntu-22.04"))
    configured = run_scan(ScanOptions((), (fleet_site_packages,), config=EXAMPLE_FLEET / "depaudit.toml"))
    assert dumps(configured) == dumps(by_convention)
