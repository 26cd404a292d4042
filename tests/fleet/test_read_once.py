"""A scan reads each Dockerfile once: the fleet reads it, every later stage asks the value it holds."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from helpers import EXAMPLE_FLEET, opened_files
from depaudit.emit.patch import family_patches
from depaudit.scan import ScanOptions, run_scan


def test_a_scan_and_its_patch_open_each_dockerfile_once(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(EXAMPLE_FLEET / "docker", fleet / "docker")
    shutil.copytree(EXAMPLE_FLEET / "services", fleet / "services")
    # A program no family installs: the plan adds it, so the patch has a Dockerfile to edit.
    (fleet / "services/speech-to-text/convert.py").write_text('import subprocess\nsubprocess.run(["sox", "in.wav"])\n')
    # The four services' own Dockerfiles (read for their FROM) and the three family Dockerfiles
    # (read for their FROM and ENV, apt-get install lists and problems, and patched).
    dockerfiles = sorted(os.path.realpath(path) for path in fleet.rglob("Dockerfile"))
    assert len(dockerfiles) == 7
    options = ScanOptions((fleet / "services",), distro="ubuntu-22.04", use_cache=False, processes=1)

    with opened_files().watching(form="real") as opened:
        report = run_scan(options)
        patches = family_patches(report.families, prune=False)

    assert [(plan.name, [item.package for item in plan.add]) for plan, *_ in patches] == [("family-torch-cu121", ["sox"])]
    assert sorted(path for path in opened if os.path.basename(path) == "Dockerfile") == dockerfiles
