"""An audit from a lock is the audit of the same wheels installed: same needs, tiers, statuses,
findings and plan; only the folder read (and why) differs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import EXAMPLE_FLEET, download_wheels, install_wheels
from depaudit.emit.json_report import dumps
from depaudit.report import ScanReport
from depaudit.scan import ScanOptions, run_scan


@pytest.fixture(scope="session")
def fleet_wheels() -> Path:
    """The example fleet's pinned requirements, downloaded as wheels (a --find-links folder)."""
    return download_wheels("example-fleet", ["-r", str(EXAMPLE_FLEET / "requirements.txt")])


def _without_environment(report: ScanReport) -> dict[str, object]:
    data = json.loads(dumps(report))
    data.pop("environments")  # the folder read and why: the one thing that differs
    return data


def _from_lock(wheels: Path) -> ScanReport:
    return run_scan(
        ScanOptions(
            (EXAMPLE_FLEET / "services",), distro="ubuntu-22.04", lock=EXAMPLE_FLEET / "requirements.txt",
            find_links=(wheels,), python_version="3.11",
        )
    )


@pytest.mark.network
def test_the_fleet_from_its_lock_is_the_same_wheels_installed(fleet_wheels: Path) -> None:
    installed = install_wheels("example-fleet", fleet_wheels)
    from_lock = _from_lock(fleet_wheels)
    from_install = run_scan(ScanOptions((EXAMPLE_FLEET / "services",), (installed,), "ubuntu-22.04"))
    (choice,) = from_lock.environments
    assert choice.source == "the wheels of " + str(EXAMPLE_FLEET / "requirements.txt") + " for Python 3.11 on ubuntu-22.04, from --lock"
    assert choice.folders[0].parts[-3:] == ("lib", "python3.11", "site-packages")
    assert choice.findings == ()
    assert from_lock.failing  # the fleet's known gap (libgthread for cv2) is found from the lock too
    assert _without_environment(from_lock) == _without_environment(from_install)


@pytest.mark.network
def test_the_fleet_from_its_lock_is_the_fleet_venv_but_for_what_venv_seeds(fleet_wheels: Path, fleet_site_packages: Path) -> None:
    """README command 1's venv holds the fleet's wheels plus what `python -m venv` seeds (pip, and
    setuptools before Python 3.12), which no lock names: the distribution count says so, and
    nothing else differs."""
    from_lock = _from_lock(fleet_wheels)
    from_venv = run_scan(ScanOptions((EXAMPLE_FLEET / "services",), (fleet_site_packages,), "ubuntu-22.04"))
    seeded = {path.name.split("-")[0] for path in fleet_site_packages.glob("*.dist-info")} - {
        path.name.split("-")[0] for path in from_lock.environments[0].folders[0].glob("*.dist-info")
    }
    assert "pip" in seeded and seeded <= {"pip", "setuptools"}
    lock, venv = _without_environment(from_lock), _without_environment(from_venv)
    assert venv.pop("distribution_count") == lock.pop("distribution_count") + len(seeded)
    assert lock == venv
